# model/tokenizer: Hugging Face tokenizer.json (BPE), SentencePiece
# tokenizer.model, llama2.c tok512.bin, the tokenizer.json writer, and chat
# templates.
target_sources(qsweep_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/added_vocabulary.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bpe_model.cpp
  ${CMAKE_CURRENT_LIST_DIR}/byte_level.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chat_template.cpp
  ${CMAKE_CURRENT_LIST_DIR}/decoder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hf_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hf_tokenizer_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/llama2c_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/normalizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pattern.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pre_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/regex.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sentencepiece_tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tokenizer_json_reader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/utf8.cpp
)
