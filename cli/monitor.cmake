# bulkhead-monitor: one per running system container (daemon/monitor.cpp). Static like the CLI:
# every monitor is resident for the container's whole life, so its pages count in the per-container
# memory (docs/daemon.md).
add_executable(bulkhead_monitor ${CMAKE_CURRENT_LIST_DIR}/bulkhead_monitor.cpp)
set_target_properties(bulkhead_monitor PROPERTIES OUTPUT_NAME bulkhead-monitor)
target_link_libraries(bulkhead_monitor PRIVATE bulkhead_monitor_lib)
if(BULKHEAD_STATIC)
  target_link_options(bulkhead_monitor PRIVATE -static-pie -Wl,--gc-sections)
endif()
install(TARGETS bulkhead_monitor RUNTIME DESTINATION libexec/bulkhead)
