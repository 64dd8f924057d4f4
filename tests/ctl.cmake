# bulkheadctl and its API client against a real HTTP server on a temp unix socket (tests/ctl).
if(TARGET bulkheadctl)
  file(GLOB CTL_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/ctl/*.cpp)
  add_executable(bulkhead_ctl_tests ${CTL_TEST_SOURCES})
  target_link_libraries(bulkhead_ctl_tests PRIVATE bulkhead_ctl PkgConfig::CPP_HTTPLIB GTest::gtest_main)
  target_compile_definitions(bulkhead_ctl_tests PRIVATE BULKHEADCTL_BINARY="$<TARGET_FILE:bulkheadctl>")
  add_dependencies(bulkhead_ctl_tests bulkheadctl)
  gtest_discover_tests(bulkhead_ctl_tests TEST_PREFIX "ctl." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
endif()
