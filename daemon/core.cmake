# bulkheadd's core: records, supervision, operations, events, the API server.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET GLOBAL libsystemd)
add_library(bulkhead_daemon_records STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/container_config.cpp ${CMAKE_CURRENT_SOURCE_DIR}/record_store.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/id_ranges.cpp)
target_link_libraries(bulkhead_daemon_records PUBLIC bulkhead_base nlohmann_json::nlohmann_json)
add_library(bulkhead_daemon STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_lifecycle.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon_info.cpp ${CMAKE_CURRENT_SOURCE_DIR}/events.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/operations.cpp ${CMAKE_CURRENT_SOURCE_DIR}/monitor_launcher.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/lxcfs.cpp ${CMAKE_CURRENT_SOURCE_DIR}/api_server.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/networks.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_networks.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/nic_setup.cpp ${CMAKE_CURRENT_SOURCE_DIR}/container_disk.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/snapshot_store.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_snapshots.cpp ${CMAKE_CURRENT_SOURCE_DIR}/request_fields.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon_checkpoint.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_migrate.cpp ${CMAKE_CURRENT_SOURCE_DIR}/replicator.cpp ${CMAKE_CURRENT_SOURCE_DIR}/replica_shipment.cpp ${CMAKE_CURRENT_SOURCE_DIR}/peer_file_sender.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon_evacuate.cpp ${CMAKE_CURRENT_SOURCE_DIR}/evacuation_plan.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_replica.cpp ${CMAKE_CURRENT_SOURCE_DIR}/replica_flattening.cpp ${CMAKE_CURRENT_SOURCE_DIR}/restore_lock.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/nat.cpp ${CMAKE_CURRENT_SOURCE_DIR}/nic_host.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon_nics.cpp ${CMAKE_CURRENT_SOURCE_DIR}/routed_network.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/trust_store.cpp ${CMAKE_CURRENT_SOURCE_DIR}/cluster_trust.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/peer_server.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_cluster_trust.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/daemon_remotes.cpp ${CMAKE_CURRENT_SOURCE_DIR}/cluster_member.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/cluster_view.cpp ${CMAKE_CURRENT_SOURCE_DIR}/cluster_placement.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/cluster_leader.cpp ${CMAKE_CURRENT_SOURCE_DIR}/cluster_control.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/fencing.cpp ${CMAKE_CURRENT_SOURCE_DIR}/self_fence.cpp ${CMAKE_CURRENT_SOURCE_DIR}/cgroup_placement.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/nic_hotplug.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_nic_hotplug.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/port_forwards.cpp ${CMAKE_CURRENT_SOURCE_DIR}/daemon_ports.cpp)
target_link_libraries(bulkhead_daemon PUBLIC bulkhead_daemon_records bulkhead_runtime bulkhead_storage
                      bulkhead_network bulkhead_peer bulkhead_monitor_client bulkhead_cluster PkgConfig::HTTPLIB Threads::Threads)
# The unit names bulkheadd where `cmake --install` puts it (/usr/local/sbin by default).
include(GNUInstallDirs)
set(BULKHEADD_INSTALLED ${CMAKE_INSTALL_FULL_SBINDIR}/bulkheadd)
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/systemd/bulkheadd.service.in ${CMAKE_CURRENT_BINARY_DIR}/bulkheadd.service @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bulkheadd.service DESTINATION lib/systemd/system COMPONENT bulkheadd)
