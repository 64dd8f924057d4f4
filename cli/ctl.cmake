# bulkheadctl, the client of bulkheadd (docs/bulkheadctl.md).

# The man page and bash completion generators (bulkhead_cli_docs) are in cli/CMakeLists.txt.

# Everything but main, so the tests link the same command tree.
add_library(bulkhead_ctl STATIC ctl.cpp ctl_values.cpp ctl_format.cpp ctl_containers.cpp ctl_events.cpp
            ctl_templates.cpp ctl_networks.cpp ctl_ports.cpp ctl_exec.cpp ctl_terminal.cpp ctl_snapshots.cpp ctl_checkpoint.cpp ctl_migrate.cpp ctl_host.cpp ctl_cluster.cpp ctl_replica.cpp
            ctl_remotes.cpp ctl_net_attach.cpp)
target_link_libraries(bulkhead_ctl PUBLIC bulkhead_api_client bulkhead_cli_docs nlohmann_json::nlohmann_json)

# exec and console go to the container's monitor through its client library. When the tree has
# none (it is built from daemon/monitor.cmake), they report that instead, and ctl_exec_run.cpp is
# still compiled so it keeps matching daemon/monitor_client.hpp.
if(TARGET bulkhead_monitor_client)
  target_sources(bulkhead_ctl PRIVATE ctl_exec_run.cpp)
  target_link_libraries(bulkhead_ctl PUBLIC bulkhead_monitor_client)
else()
  message(STATUS "bulkheadctl: no bulkhead_monitor_client target; exec and console will say so")
  target_sources(bulkhead_ctl PRIVATE ctl_exec_missing.cpp)
  add_library(bulkhead_ctl_exec_check OBJECT ctl_exec_run.cpp)
  target_link_libraries(bulkhead_ctl_exec_check PRIVATE bulkhead_base nlohmann_json::nlohmann_json)
  if(TARGET CLI11::CLI11)
    target_link_libraries(bulkhead_ctl_exec_check PRIVATE CLI11::CLI11)
  endif()
endif()

add_executable(bulkheadctl bulkheadctl.cpp)
target_link_libraries(bulkheadctl PRIVATE bulkhead_ctl)
set_source_files_properties(bulkheadctl.cpp PROPERTIES COMPILE_DEFINITIONS "BULKHEAD_COMMIT=\"${BULKHEAD_COMMIT}\"")
if(TARGET bulkhead_ctl_exec_check)
  add_dependencies(bulkheadctl bulkhead_ctl_exec_check)
endif()
install(TARGETS bulkheadctl RUNTIME DESTINATION bin COMPONENT bulkheadd)

bulkhead_cli_docs_for(bulkheadctl bulkheadctl 1 bulkheadd)
