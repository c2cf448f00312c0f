# model/backend: inference backends behind one text-level interface (the
# embedded engine; remote OpenAI-compatible servers in issue #8).
target_sources(qsweep_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/hflm_encoding.cpp
  ${CMAKE_CURRENT_LIST_DIR}/embedded_backend.cpp
  ${CMAKE_CURRENT_LIST_DIR}/openai_backend.cpp)
