# model/checkpoint: safetensors reader/writer, config.json, HF folders, llama2.c import.
qsweep_test(model_checkpoint_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/safetensors_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/config_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/llama2c_test.cpp
  LIBS qsweep_model)
