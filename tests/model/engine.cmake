# model/engine: kernels, parity with transformers on the tiny fixtures and
# stories260K, loglikelihood / rolling / generate semantics.
qsweep_test(model_engine_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_kernels_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/engine_parity_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/engine_api_test.cpp
  LIBS qsweep_model)
# model/backend: the embedded backend's lm-eval request encoding (stories260K).
qsweep_test(model_backend_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/backend_test.cpp
  LIBS qsweep_model)
# model/serve + model/backend/openai_backend: the OpenAI-compatible API and client.
qsweep_test(model_serve_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/serve_test.cpp
  LIBS qsweep_model)
# model/cuda: the GPU engine against transformers and the CPU engine (GPU
# machine; skips without a visible GPU). CUDA builds only.
if(TARGET qsweep_model_cuda)
  qsweep_test(model_gpu_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/gpu_engine_test.cpp
    LIBS qsweep_model_cuda nlohmann_json::nlohmann_json)
endif()
