// What a hosted container is: the part of its record the user chose (bulkheadctl create/set).
// The daemon's record store persists it with the runtime status (daemon/record_store.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

struct Limits {
  std::optional<uint64_t> memory_bytes; // memory.max
  std::optional<double> cpus;           // cpu.max quota/period (0.5 = half a CPU)
  std::optional<int64_t> pids;          // pids.max
};

// A hard bound on the container's own files (its upper layer), kept by the storage backend
// (daemon/container_disk.hpp). Empty: the backend's default (no bound with "dir").
struct DiskLimits {
  std::optional<uint64_t> bytes;
  std::optional<uint64_t> inodes;
};

struct RestartPolicy {
  enum class Kind { No, OnFailure, Always };
  Kind kind = Kind::No;
  int max_retries = 0; // on-failure:N; 0 = no bound
};

// A bridged NIC on a managed network (daemon/networks.hpp). The addresses are requested
// (--net NAME:ipv4=A) or allocated from the network's IPAM at create, and kept here, so they stay
// the same across restarts; they are released on destroy.
struct NicConfig {
  std::string network;
  std::string name;      // in the container: eth0, eth1, ...
  std::string host_name; // the host end of the veth, <= 15 characters
  std::string ipv4;      // "198.18.77.2/24" (the network's prefix), empty: none
  std::string ipv6;
  std::string mac;     // the container end's address: derived from container name + index at create
  std::string ingress; // the container's download cap as a tc rate ("20mbit"), empty: none
  std::string egress;  // its upload cap
};

// A host port forwarded to the container (`bulkheadctl port add`, docs/network.md "Port forwards"):
// DNAT of host_port/proto to container_port at the container's address on `network` (its NIC on
// a NATed network, chosen at `port add`). Kept in the record so it outlives daemon restarts; the
// rule exists only while the container runs.
struct PortForward {
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string proto = "tcp"; // "tcp" or "udp"
  std::string network;
};

// An unprivileged container's ids (daemon/id_ranges.hpp): ids 0..size-1 inside are uid..uid+size-1
// and gid..gid+size-1 on the host.
struct IdMap {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t size = 0;
};

struct ContainerConfig {
  std::string name;
  std::string template_name;
  std::string hostname; // default: name
  Limits limits;
  std::vector<std::string> env; // KEY=VALUE, added to the init's environment
  RestartPolicy restart;
  bool onboot = false;
  std::vector<std::string> init; // argv of the container's init; empty: the template's init
  std::string stop_signal;       // empty: the template's (TemplateInfo::stop_signal)
  std::vector<NicConfig> nets;   // bridged NICs, eth0 first
  std::string storage = "dir";   // the backend that holds its upper layer: "dir" or "ext4"
  DiskLimits disk;
  // Host port forwards, unique per (host_port, proto) on the host.
  std::vector<PortForward> ports;
  int64_t created_unix = 0;
  // Set: an unprivileged container (its own user namespace over this id range); empty: privileged
  // (root inside is root outside). Fixed at create: its files on disk are owned by these ids.
  std::optional<IdMap> idmap;
};

// "256M", "1G", "1048576" (bytes; K/M/G/T are powers of 1024).
Result<uint64_t> parse_size(const std::string &text);
// "no", "on-failure", "on-failure:3", "always".
Result<RestartPolicy> parse_restart_policy(const std::string &text);
std::string restart_policy_text(const RestartPolicy &policy);

nlohmann::json to_json(const ContainerConfig &config);
// {"uid", "gid", "size"}: an id range as the record, the API and the migration protocol write it.
nlohmann::json to_json(const IdMap &m);
// Strict: unknown fields and wrong types are errors naming the field.
Result<ContainerConfig> config_from_json(const nlohmann::json &j);

} // namespace bulkhead::daemon
