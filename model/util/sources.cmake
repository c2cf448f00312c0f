# model/util: reference-compatible helpers (CPython's random.Random).
target_sources(qsweep_model PRIVATE ${CMAKE_CURRENT_LIST_DIR}/python_random.cpp)
