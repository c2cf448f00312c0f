# model/hub: the HTTP interface (libcurl), Hub sources and settings, the HF
# cache layout and the Hub client.
target_sources(qsweep_model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/http.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hub_source.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hub_cache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hub_client.cpp)
