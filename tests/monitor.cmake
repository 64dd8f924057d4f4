# bulkhead-monitor on real system containers (busybox init as pid 1), driven through its fd-3
# launch line and its control-socket client. MonitorVm* tests need cgroup v2 controllers and lxcfs
# (tests/vm/run-in-vm.sh) and skip elsewhere.
file(GLOB MONITOR_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/monitor/*.cpp)
add_executable(bulkhead_monitor_tests ${MONITOR_TEST_SOURCES})
target_link_libraries(bulkhead_monitor_tests PRIVATE bulkhead_monitor_lib GTest::gtest_main)
target_compile_definitions(bulkhead_monitor_tests PRIVATE
  BULKHEAD_MONITOR_BINARY="$<TARGET_FILE:bulkhead_monitor>")
add_dependencies(bulkhead_monitor_tests bulkhead_monitor)
gtest_discover_tests(bulkhead_monitor_tests TEST_PREFIX "monitor." DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 300)
