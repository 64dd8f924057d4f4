# Cluster: the etcd client against a real etcd the suite starts on free 127.0.0.1 ports
# (Debian's etcd-server from tests/install-deps.sh; its absence fails the suite).
file(GLOB CLUSTER_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cluster/*.cpp)
add_executable(bulkhead_cluster_tests ${CLUSTER_TEST_SOURCES})
target_link_libraries(bulkhead_cluster_tests PRIVATE bulkhead_cluster GTest::gtest_main)
gtest_discover_tests(bulkhead_cluster_tests TEST_PREFIX "cluster." DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 120)
