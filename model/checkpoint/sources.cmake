# model/checkpoint: safetensors (reader + writer), config.json, HF folders, llama2.c import.
target_sources(qsweep_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/safetensors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/llama2c.cpp)
