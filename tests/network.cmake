# Network: links, addresses, routes, sysctls, tc caps (measured with real transfers) and IPAM, on
# real rtnetlink inside network namespaces each test creates (needs root; no host link is touched).
file(GLOB NETWORK_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/network/*.cpp)
add_executable(bulkhead_network_tests ${NETWORK_TEST_SOURCES})
# bulkhead_migration: criu_lock_table_test checks its netlink deletion against libnftables;
# criu_netns_test its connection check and where CRIU starts.
target_link_libraries(bulkhead_network_tests PRIVATE bulkhead_network bulkhead_migration nlohmann_json::nlohmann_json
                      GTest::gtest_main)
gtest_discover_tests(bulkhead_network_tests TEST_PREFIX "network." DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 300)
