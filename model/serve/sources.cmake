# model/serve: the OpenAI-compatible API over the embedded engine (protocol
# only; `qsweep serve` in pipeline/cli binds it to HTTP).
target_sources(qsweep_model PRIVATE ${CMAKE_CURRENT_LIST_DIR}/openai_server.cpp)
