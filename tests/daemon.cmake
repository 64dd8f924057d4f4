# bulkheadd end to end: the real daemon, client and monitor binaries on busybox system containers.
add_executable(bulkhead_daemon_tests ${CMAKE_CURRENT_SOURCE_DIR}/daemon/daemon_fixture.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/lifecycle_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/bad_input_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/generated_docs_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/api_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/exec_tty_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/network_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/snapshot_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/nat_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/routed_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/lxcfs_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/remote_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/nic_attach_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/port_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/checkpoint_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/migrate_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/cluster_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/cluster_failover_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/cluster_trust_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/cluster_self_fence_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon/replica_test.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon/unprivileged_test.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/harness.cpp)
find_package(PkgConfig REQUIRED)
pkg_check_modules(NFT_FOR_TESTS REQUIRED IMPORTED_TARGET libnftables)
target_link_libraries(bulkhead_daemon_tests PRIVATE bulkhead_base nlohmann_json::nlohmann_json GTest::gtest_main
                      PkgConfig::LIBARCHIVE PkgConfig::NFT_FOR_TESTS)
target_compile_definitions(bulkhead_daemon_tests PRIVATE
  BULKHEAD_BINARY="$<TARGET_FILE:bulkhead_cli>" BULKHEADD_BINARY="$<TARGET_FILE:bulkheadd>"
  BULKHEADCTL_BINARY="$<TARGET_FILE:bulkheadctl>"
  MAKE_BUSYBOX_ROOTFS="${CMAKE_CURRENT_SOURCE_DIR}/storage/make-busybox-rootfs.sh")
add_dependencies(bulkhead_daemon_tests bulkheadd bulkheadctl bulkhead_monitor bulkhead_cli)
gtest_discover_tests(bulkhead_daemon_tests TEST_PREFIX "daemon." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)

# Units of the daemon core: records (durable writes, strict parsing), config values, events, operations.
add_executable(bulkhead_daemon_unit_tests ${CMAKE_CURRENT_SOURCE_DIR}/daemon/records_unit_test.cpp
                                          ${CMAKE_CURRENT_SOURCE_DIR}/daemon/cluster_join_unit_test.cpp
                                          ${CMAKE_CURRENT_SOURCE_DIR}/daemon/evacuation_plan_unit_test.cpp
                                          ${CMAKE_CURRENT_SOURCE_DIR}/daemon/cgroup_placement_unit_test.cpp
                                          ${CMAKE_CURRENT_SOURCE_DIR}/daemon/peer_channel_unit_test.cpp
                                          ${CMAKE_CURRENT_SOURCE_DIR}/daemon/replication_schedule_unit_test.cpp
                                          ${CMAKE_CURRENT_SOURCE_DIR}/daemon/trust_store_unit_test.cpp)
target_link_libraries(bulkhead_daemon_unit_tests PRIVATE bulkhead_daemon GTest::gtest_main)
gtest_discover_tests(bulkhead_daemon_unit_tests TEST_PREFIX "daemon_unit." DISCOVERY_TIMEOUT 60)
