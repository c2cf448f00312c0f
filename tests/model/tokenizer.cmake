# Tests of model/tokenizer: parity with HF tokenizers on the fixture corpus,
# SentencePiece and llama2.c tokenizers, chat templates, bad input.
find_package(OpenSSL REQUIRED)
qsweep_test(tokenizer_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/tokenizer_corpus.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tokenizer_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tokenizer_parity_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/sentencepiece_tokenizer_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/llama2c_tokenizer_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cpp
  LIBS qsweep_model OpenSSL::Crypto)
