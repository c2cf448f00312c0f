# model/engine: the embedded fp32 CPU engine (Eigen + oneTBB).
target_sources(qsweep_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/linear.cpp
  ${CMAKE_CURRENT_LIST_DIR}/kv_cache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rope.cpp
  ${CMAKE_CURRENT_LIST_DIR}/norm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mlp.cpp
  ${CMAKE_CURRENT_LIST_DIR}/attention.cpp
  ${CMAKE_CURRENT_LIST_DIR}/decoder_layer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/transformer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sampler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rolling.cpp
  ${CMAKE_CURRENT_LIST_DIR}/token_engine.cpp
  ${CMAKE_CURRENT_LIST_DIR}/engine.cpp)
# Eigen's kernels need the host's vector units (AVX2/AVX-512 FMA) to reach GEMM
# peak. PUBLIC so that every translation unit including Eigen agrees on
# alignment and vector width (mixing them breaks Eigen's aligned allocation).
option(QSWEEP_NATIVE_ARCH "Compile qsweep_model and its users with -march=native" ON)
if(QSWEEP_NATIVE_ARCH)
  # GCC 12 warns falsely (-W[maybe-]uninitialized) inside its own AVX-512 intrinsics headers under Eigen.
  target_compile_options(qsweep_model PUBLIC -march=native -Wno-maybe-uninitialized -Wno-uninitialized)
endif()
target_compile_definitions(qsweep_model PUBLIC EIGEN_DONT_PARALLELIZE)
