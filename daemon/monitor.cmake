# The per-container monitor (bulkhead-monitor's logic), its client and the system-container spec.
# The client library carries no runtime code, so bulkheadctl and bulkheadd link it cheaply.
add_library(bulkhead_spec_builder STATIC ${CMAKE_CURRENT_LIST_DIR}/spec_builder.cpp)
# ContainerConfig's JSON lives in bulkhead_daemon_records (daemon/core.cmake); only its
# container_config.o is pulled into the monitor.
target_link_libraries(bulkhead_spec_builder PUBLIC bulkhead_daemon_records bulkhead_oci)

add_library(bulkhead_monitor_client STATIC
  ${CMAKE_CURRENT_LIST_DIR}/monitor_client.cpp ${CMAKE_CURRENT_LIST_DIR}/monitor_io.cpp
  ${CMAKE_CURRENT_LIST_DIR}/monitor_protocol.cpp)
target_link_libraries(bulkhead_monitor_client PUBLIC bulkhead_base nlohmann_json::nlohmann_json)

if(NOT TARGET bulkhead_storage_overlay)
  # The monitor needs only the overlay part of storage, and must link statically: the full
  # bulkhead_storage brings libarchive and libcrypto, which Debian ships as shared objects only.
  # (storage/ may define this target itself; then that one is used.)
  add_library(bulkhead_storage_overlay STATIC ${CMAKE_SOURCE_DIR}/storage/overlay.cpp
              ${CMAKE_SOURCE_DIR}/storage/mountinfo.cpp ${CMAKE_SOURCE_DIR}/storage/idmapped.cpp)
  target_link_libraries(bulkhead_storage_overlay PUBLIC bulkhead_base)
endif()

add_library(bulkhead_monitor_lib STATIC
  ${CMAKE_CURRENT_LIST_DIR}/monitor.cpp ${CMAKE_CURRENT_LIST_DIR}/monitor_launch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/monitor_setup.cpp ${CMAKE_CURRENT_LIST_DIR}/monitor_loop.cpp
  ${CMAKE_CURRENT_LIST_DIR}/monitor_exec.cpp ${CMAKE_CURRENT_LIST_DIR}/monitor_console_log.cpp
  ${CMAKE_CURRENT_LIST_DIR}/monitor_checkpoint.cpp)
target_link_libraries(bulkhead_monitor_lib PUBLIC bulkhead_runtime bulkhead_storage_overlay bulkhead_spec_builder
                      bulkhead_monitor_client)
