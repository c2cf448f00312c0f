# hub_test: the Hub client, HF cache layout and download stage against a
# loopback fake Hub (tests/model/hub/fake_hub_server.*).
find_package(OpenSSL REQUIRED)
qsweep_test(hub_test
  SOURCES hub/fake_hub_server.cpp hub/hub_source_test.cpp hub/hub_client_test.cpp
          hub/download_stage_test.cpp
  LIBS qsweep_model qsweep_stages OpenSSL::Crypto)
