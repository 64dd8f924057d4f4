# bulkhead-monitor: one per running system container (daemon/monitor.cpp). Every monitor is
# resident for its container's whole life, so what it adds per container is budgeted: static
# (no ld.so, no shared-library relocations), and non-PIE: -static-pie relocates .data.rel.ro at
# start, 32 KiB more private dirty memory per monitor (112 vs 80 KiB measured idle). The text is
# page cache shared by all monitors. The price is a fixed load address for a root process that
# only root and group bulkhead can talk to.
add_executable(bulkhead_monitor ${CMAKE_CURRENT_LIST_DIR}/bulkhead_monitor.cpp)
set_target_properties(bulkhead_monitor PROPERTIES OUTPUT_NAME bulkhead-monitor)
target_link_libraries(bulkhead_monitor PRIVATE bulkhead_monitor_lib)
if(BULKHEAD_STATIC)
  target_link_options(bulkhead_monitor PRIVATE -static -no-pie -Wl,--gc-sections)
endif()
install(TARGETS bulkhead_monitor RUNTIME DESTINATION libexec/bulkhead COMPONENT bulkheadd)
