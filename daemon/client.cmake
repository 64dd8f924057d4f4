# bulkhead_api_client: HTTP/1.1 + JSON over bulkheadd's unix socket (docs/api.md), for bulkheadctl
# and, later, the C ABI. Debian's cpp-httplib is a compiled library found through pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CPP_HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
add_library(bulkhead_api_client STATIC ${CMAKE_CURRENT_LIST_DIR}/api_client.cpp)
target_link_libraries(bulkhead_api_client PUBLIC bulkhead_base nlohmann_json::nlohmann_json
                      PRIVATE PkgConfig::CPP_HTTPLIB)
