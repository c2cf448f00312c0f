# model/util: CPython's random.Random, whole-file text I/O.
target_sources(qsweep_model PRIVATE ${CMAKE_CURRENT_LIST_DIR}/python_random.cpp
  ${CMAKE_CURRENT_LIST_DIR}/python_str.cpp
  ${CMAKE_CURRENT_LIST_DIR}/text_file.cpp)
