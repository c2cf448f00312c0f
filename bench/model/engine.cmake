# Engine benchmarks: GEMM peak vs prefill, copy bandwidth vs decode, prefix reuse.
add_executable(engine_bench ${CMAKE_CURRENT_LIST_DIR}/engine_bench.cpp)
target_link_libraries(engine_bench PRIVATE qsweep_model benchmark::benchmark)
