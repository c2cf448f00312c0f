# model/util: CPython random.Random port, checked against python3 itself.
qsweep_test(model_util_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/python_random_test.cpp
  LIBS qsweep_model)
