#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "oci/default_spec.hpp"
#include "oci/parse.hpp"
#include "oci/validate.hpp"

namespace bulkhead::oci {
namespace {

// `runc spec` output extended with every section the parser models.
constexpr const char *kFullConfig = R"json({
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1000, "gid": 1001, "umask": 18, "additionalGids": [5, 10]},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/work",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"],
      "inheritable": [],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_KILL"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "docker-default",
    "oomScoreAdj": -500,
    "selinuxLabel": "system_u:system_r:container_t:s0",
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "priority": 2, "flags": ["SCHED_FLAG_RESET_ON_FORK"],
                  "runtime": 10000000, "deadline": 20000000, "period": 30000000},
    "execCPUAffinity": {"initial": "0-3", "final": "7"}
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "domainname": "example.test",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/data", "type": "none", "source": "/srv/data", "options": ["rbind", "idmap"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/netns-hook", "args": ["netns-hook", "--up"], "env": ["A=1"], "timeout": 5}],
    "createRuntime": [{"path": "/bin/cr"}],
    "createContainer": [{"path": "/bin/cc"}],
    "startContainer": [{"path": "/bin/sc"}],
    "poststart": [{"path": "/bin/ps1"}, {"path": "/bin/ps2", "timeout": 1}],
    "poststop": [{"path": "/bin/cleanup"}]
  },
  "annotations": {"org.example.key": "value", "b": ""},
  "linux": {
    "namespaces": [
      {"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "mount"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"}
    ],
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    "timeOffsets": {"monotonic": {"secs": -86400, "nanosecs": 5}, "boottime": {"secs": 7}},
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
      {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
      {"path": "/dev/fifo", "type": "p"}
    ],
    "cgroupsPath": "/bulkhead/box",
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
      ],
      "memory": {"limit": 536870912, "reservation": 268435456, "swap": -1, "kernel": 1, "kernelTCP": 2,
                 "swappiness": 60, "disableOOMKiller": true, "useHierarchy": false, "checkBeforeUpdate": true},
      "cpu": {"shares": 1024, "quota": 50000, "burst": 1000, "period": 100000, "realtimeRuntime": 950000,
              "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0", "idle": 1},
      "pids": {"limit": 128},
      "blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 100}, {"major": 8, "minor": 16}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 104857600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 1}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 2}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 3}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 1}},
      "unified": {"memory.high": "1G", "io.max": "8:0 rbps=1024"}
    },
    "rootfsPropagation": "rslave",
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
      "flags": ["SECCOMP_FILTER_FLAG_LOG"],
      "listenerPath": "/run/seccomp.sock",
      "listenerMetadata": "meta",
      "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "args": [{"index": 0, "value": 8, "valueTwo": 4294967295, "op": "SCMP_CMP_MASKED_EQ"},
                  {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
      ]
    },
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"},
    "maskedPaths": ["/proc/acpi", "/proc/kcore"],
    "readonlyPaths": ["/proc/bus", "/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "intelRdt": {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20",
                 "schemata": ["L2:0=ff"], "enableCMT": true, "enableMBM": true},
    "personality": {"domain": "LINUX32", "flags": []},
    "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-3", "flags": ["MPOL_F_STATIC_NODES"]}
  }
})json";

std::string error_of(const Result<Spec> &r) { return r ? std::string("<no error>") : r.error().message; }

TEST(OciParse, FullConfigProcess) {
  auto r = parse_spec(kFullConfig);
  ASSERT_TRUE(r) << r.error().message;
  const Spec &s = *r;
  EXPECT_EQ(s.oci_version, "1.2.0");
  ASSERT_TRUE(s.process);
  const Process &p = *s.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size);
  EXPECT_EQ(p.console_size->height, 25u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 1001u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_EQ(p.user.additional_gids, (std::vector<uint32_t>{5, 10}));
  EXPECT_EQ(p.args, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  ASSERT_EQ(p.env.size(), 2u);
  EXPECT_EQ(p.env[1], "TERM=xterm");
  EXPECT_EQ(p.cwd, "/work");
  ASSERT_TRUE(p.capabilities);
  EXPECT_EQ(p.capabilities->bounding.size(), 3u);
  EXPECT_EQ(p.capabilities->effective, (std::vector<std::string>{"CAP_AUDIT_WRITE", "CAP_KILL"}));
  EXPECT_TRUE(p.capabilities->inheritable.empty());
  EXPECT_EQ(p.capabilities->permitted.size(), 3u);
  EXPECT_EQ(p.capabilities->ambient, (std::vector<std::string>{"CAP_KILL"}));
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].hard, 1024u);
  EXPECT_EQ(p.rlimits[0].soft, 512u);
  EXPECT_EQ(p.rlimits[1].hard, UINT64_MAX);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.apparmor_profile, "docker-default");
  EXPECT_EQ(p.oom_score_adj, -500);
  EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0");
  ASSERT_TRUE(p.io_priority);
  EXPECT_EQ(p.io_priority->klass, "IOPRIO_CLASS_BE");
  EXPECT_EQ(p.io_priority->priority, 4);
  ASSERT_TRUE(p.scheduler);
  EXPECT_EQ(p.scheduler->policy, "SCHED_DEADLINE");
  EXPECT_EQ(p.scheduler->nice, -5);
  EXPECT_EQ(p.scheduler->priority, 2);
  EXPECT_EQ(p.scheduler->flags, (std::vector<std::string>{"SCHED_FLAG_RESET_ON_FORK"}));
  EXPECT_EQ(p.scheduler->runtime, 10000000u);
  EXPECT_EQ(p.scheduler->deadline, 20000000u);
  EXPECT_EQ(p.scheduler->period, 30000000u);
  EXPECT_EQ(p.exec_cpu_affinity_initial_raw, "0-3");
  EXPECT_EQ(p.exec_cpu_affinity_final_raw, "7");
}

TEST(OciParse, FullConfigTopLevel) {
  auto r = parse_spec(kFullConfig);
  ASSERT_TRUE(r) << r.error().message;
  const Spec &s = *r;
  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_TRUE(s.root.readonly);
  EXPECT_EQ(s.hostname, "box");
  EXPECT_EQ(s.domainname, "example.test");
  ASSERT_EQ(s.mounts.size(), 3u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_EQ(s.mounts[0].type, "proc");
  EXPECT_EQ(s.mounts[0].source, "proc");
  EXPECT_TRUE(s.mounts[0].options.empty());
  EXPECT_EQ(s.mounts[1].options,
            (std::vector<std::string>{"nosuid", "strictatime", "mode=755", "size=65536k"}));
  ASSERT_EQ(s.mounts[2].uid_mappings.size(), 1u);
  EXPECT_EQ(s.mounts[2].uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(s.mounts[2].uid_mappings[0].size, 65536u);
  ASSERT_EQ(s.mounts[2].gid_mappings.size(), 1u);
  EXPECT_EQ(s.mounts[2].gid_mappings[0].host_id, 200000u);

  ASSERT_EQ(s.hooks.prestart.size(), 1u);
  const Hook &h = s.hooks.prestart[0];
  EXPECT_EQ(h.path, "/usr/bin/netns-hook");
  EXPECT_EQ(h.args, (std::vector<std::string>{"netns-hook", "--up"}));
  EXPECT_EQ(h.env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(h.timeout, 5);
  EXPECT_EQ(s.hooks.create_runtime.at(0).path, "/bin/cr");
  EXPECT_EQ(s.hooks.create_container.at(0).path, "/bin/cc");
  EXPECT_EQ(s.hooks.start_container.at(0).path, "/bin/sc");
  ASSERT_EQ(s.hooks.poststart.size(), 2u);
  EXPECT_FALSE(s.hooks.poststart[0].timeout);
  EXPECT_EQ(s.hooks.poststart[1].timeout, 1);
  EXPECT_EQ(s.hooks.poststop.at(0).path, "/bin/cleanup");

  EXPECT_EQ(s.annotations, (std::map<std::string, std::string>{{"org.example.key", "value"}, {"b", ""}}));
}

TEST(OciParse, FullConfigLinux) {
  auto r = parse_spec(kFullConfig);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->linux);
  const Linux &l = *r->linux;
  ASSERT_EQ(l.namespaces.size(), 8u);
  const NamespaceType order[] = {NamespaceType::Pid,    NamespaceType::Network, NamespaceType::Mount,
                                 NamespaceType::Ipc,    NamespaceType::Uts,     NamespaceType::User,
                                 NamespaceType::Cgroup, NamespaceType::Time};
  for (size_t i = 0; i < 8; ++i)
    EXPECT_EQ(l.namespaces[i].type, order[i]) << i;
  EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/x");
  EXPECT_EQ(l.namespaces[0].path, "");
  ASSERT_EQ(l.uid_mappings.size(), 2u);
  EXPECT_EQ(l.uid_mappings[1].container_id, 1u);
  EXPECT_EQ(l.uid_mappings[1].host_id, 100000u);
  EXPECT_EQ(l.uid_mappings[1].size, 65536u);
  ASSERT_EQ(l.gid_mappings.size(), 1u);
  EXPECT_EQ(l.gid_mappings[0].host_id, 1000u);
  ASSERT_EQ(l.time_offsets.size(), 2u);
  EXPECT_EQ(l.time_offsets.at("monotonic").secs, -86400);
  EXPECT_EQ(l.time_offsets.at("monotonic").nanosecs, 5u);
  EXPECT_EQ(l.time_offsets.at("boottime").secs, 7);
  ASSERT_EQ(l.devices.size(), 3u);
  EXPECT_EQ(l.devices[0].path, "/dev/fuse");
  EXPECT_EQ(l.devices[0].type, 'c');
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].file_mode, 0666u);
  EXPECT_EQ(l.devices[0].uid, 0u);
  EXPECT_EQ(l.devices[1].type, 'b');
  EXPECT_FALSE(l.devices[1].file_mode);
  EXPECT_EQ(l.devices[2].type, 'p');
  EXPECT_EQ(l.cgroups_path, "/bulkhead/box");
  EXPECT_EQ(l.rootfs_propagation, "rslave");
  EXPECT_EQ(l.sysctl,
            (std::map<std::string, std::string>{{"net.ipv4.ip_forward", "1"}, {"kernel.shmmax", "4096"}}));
  EXPECT_EQ(l.masked_paths, (std::vector<std::string>{"/proc/acpi", "/proc/kcore"}));
  EXPECT_EQ(l.readonly_paths, (std::vector<std::string>{"/proc/bus", "/proc/sys"}));
  EXPECT_EQ(l.mount_label, "system_u:object_r:container_file_t:s0");
  ASSERT_TRUE(l.intel_rdt);
  EXPECT_EQ(l.intel_rdt->clos_id, "guaranteed");
  EXPECT_EQ(l.intel_rdt->l3_cache_schema, "L3:0=7f0");
  EXPECT_EQ(l.intel_rdt->mem_bw_schema, "MB:0=20");
  EXPECT_EQ(l.intel_rdt->schemata, (std::vector<std::string>{"L2:0=ff"}));
  EXPECT_TRUE(l.intel_rdt->enable_cmt);
  EXPECT_TRUE(l.intel_rdt->enable_mbm);
  ASSERT_TRUE(l.personality);
  EXPECT_EQ(l.personality->domain, "LINUX32");
  EXPECT_TRUE(l.personality->flags.empty());
  ASSERT_TRUE(l.memory_policy);
  EXPECT_EQ(l.memory_policy->mode, "MPOL_INTERLEAVE");
  EXPECT_EQ(l.memory_policy->nodes, "0-3");
  EXPECT_EQ(l.memory_policy->flags, (std::vector<std::string>{"MPOL_F_STATIC_NODES"}));
}

TEST(OciParse, FullConfigResources) {
  auto r = parse_spec(kFullConfig);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->linux && r->linux->resources);
  const Resources &res = *r->linux->resources;
  ASSERT_EQ(res.devices.size(), 2u);
  EXPECT_FALSE(res.devices[0].allow);
  EXPECT_EQ(res.devices[0].type, "");
  EXPECT_FALSE(res.devices[0].major);
  EXPECT_EQ(res.devices[0].access, "rwm");
  EXPECT_TRUE(res.devices[1].allow);
  EXPECT_EQ(res.devices[1].type, "c");
  EXPECT_EQ(res.devices[1].major, 10);
  EXPECT_EQ(res.devices[1].minor, 229);

  ASSERT_TRUE(res.memory);
  EXPECT_EQ(res.memory->limit, 536870912);
  EXPECT_EQ(res.memory->reservation, 268435456);
  EXPECT_EQ(res.memory->swap, -1);
  EXPECT_EQ(res.memory->kernel, 1);
  EXPECT_EQ(res.memory->kernel_tcp, 2);
  EXPECT_EQ(res.memory->swappiness, 60u);
  EXPECT_EQ(res.memory->disable_oom_killer, true);
  EXPECT_EQ(res.memory->use_hierarchy, false);
  EXPECT_EQ(res.memory->check_before_update, true);

  ASSERT_TRUE(res.cpu);
  EXPECT_EQ(res.cpu->shares, 1024u);
  EXPECT_EQ(res.cpu->quota, 50000);
  EXPECT_EQ(res.cpu->burst, 1000u);
  EXPECT_EQ(res.cpu->period, 100000u);
  EXPECT_EQ(res.cpu->realtime_runtime, 950000);
  EXPECT_EQ(res.cpu->realtime_period, 1000000u);
  EXPECT_EQ(res.cpu->cpus, "0-1");
  EXPECT_EQ(res.cpu->mems, "0");
  EXPECT_EQ(res.cpu->idle, 1);

  ASSERT_TRUE(res.pids);
  EXPECT_EQ(res.pids->limit, 128);

  ASSERT_TRUE(res.block_io);
  EXPECT_EQ(res.block_io->weight, 500);
  EXPECT_EQ(res.block_io->leaf_weight, 300);
  ASSERT_EQ(res.block_io->weight_device.size(), 2u);
  EXPECT_EQ(res.block_io->weight_device[0].major, 8);
  EXPECT_EQ(res.block_io->weight_device[0].weight, 600);
  EXPECT_EQ(res.block_io->weight_device[0].leaf_weight, 100);
  EXPECT_EQ(res.block_io->weight_device[1].minor, 16);
  EXPECT_FALSE(res.block_io->weight_device[1].weight);
  ASSERT_EQ(res.block_io->throttle_read_bps_device.size(), 1u);
  EXPECT_EQ(res.block_io->throttle_read_bps_device[0].rate, 104857600u);
  EXPECT_EQ(res.block_io->throttle_write_bps_device.at(0).rate, 1u);
  EXPECT_EQ(res.block_io->throttle_read_iops_device.at(0).rate, 2u);
  EXPECT_EQ(res.block_io->throttle_write_iops_device.at(0).rate, 3u);

  ASSERT_EQ(res.hugepage_limits.size(), 1u);
  EXPECT_EQ(res.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(res.hugepage_limits[0].limit, 209715200u);

  ASSERT_TRUE(res.network);
  EXPECT_EQ(res.network->class_id, 1048577u);
  ASSERT_EQ(res.network->priorities.size(), 1u);
  EXPECT_EQ(res.network->priorities[0].name, "eth0");
  EXPECT_EQ(res.network->priorities[0].priority, 500u);

  ASSERT_EQ(res.rdma.size(), 2u);
  EXPECT_EQ(res.rdma.at("mlx5_1").hca_handles, 3u);
  EXPECT_EQ(res.rdma.at("mlx5_1").hca_objects, 10000u);
  EXPECT_FALSE(res.rdma.at("mlx4_0").hca_handles);

  EXPECT_EQ(res.unified,
            (std::map<std::string, std::string>{{"memory.high", "1G"}, {"io.max", "8:0 rbps=1024"}}));
}

TEST(OciParse, FullConfigSeccomp) {
  auto r = parse_spec(kFullConfig);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_TRUE(r->linux && r->linux->seccomp);
  const Seccomp &sc = *r->linux->seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_EQ(sc.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}));
  EXPECT_EQ(sc.flags, (std::vector<std::string>{"SECCOMP_FILTER_FLAG_LOG"}));
  EXPECT_EQ(sc.listener_path, "/run/seccomp.sock");
  EXPECT_EQ(sc.listener_metadata, "meta");
  ASSERT_EQ(sc.syscalls.size(), 2u);
  EXPECT_EQ(sc.syscalls[0].names, (std::vector<std::string>{"read", "write"}));
  EXPECT_EQ(sc.syscalls[0].action, "SCMP_ACT_ALLOW");
  EXPECT_FALSE(sc.syscalls[0].errno_ret);
  EXPECT_TRUE(sc.syscalls[0].args.empty());
  EXPECT_EQ(sc.syscalls[1].errno_ret, 38u);
  ASSERT_EQ(sc.syscalls[1].args.size(), 2u);
  EXPECT_EQ(sc.syscalls[1].args[0].index, 0u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 8u);
  EXPECT_EQ(sc.syscalls[1].args[0].value_two, 4294967295u);
  EXPECT_EQ(sc.syscalls[1].args[0].op, "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(sc.syscalls[1].args[1].index, 1u);
  EXPECT_EQ(sc.syscalls[1].args[1].value_two, 0u);
  EXPECT_EQ(sc.syscalls[1].args[1].op, "SCMP_CMP_EQ");
}

TEST(OciParse, FullConfigValidates) {
  auto r = parse_spec(kFullConfig);
  ASSERT_TRUE(r) << r.error().message;
  auto v = validate_spec(*r);
  EXPECT_TRUE(v) << v.error().message;
}

TEST(OciParse, AbsentSectionsStayAbsent) {
  auto r = parse_spec(R"({"ociVersion": "1.2.0", "root": {"path": "rootfs"}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->process);
  EXPECT_FALSE(r->linux);
  EXPECT_FALSE(r->root.readonly);
  EXPECT_TRUE(r->mounts.empty());
  EXPECT_TRUE(r->hooks.empty());
}

TEST(OciParse, NullMeansAbsent) {
  auto r = parse_spec(R"({"ociVersion": "1.2.0", "process": null, "mounts": null,
                          "linux": {"resources": null, "seccomp": null, "namespaces": null}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->process);
  ASSERT_TRUE(r->linux);
  EXPECT_FALSE(r->linux->resources);
  EXPECT_FALSE(r->linux->seccomp);
}

TEST(OciParse, UnknownFieldsAreIgnored) {
  auto r = parse_spec(R"({
    "ociVersion": "1.2.0", "futureField": {"x": [1, 2]}, "windows": {"layerFolders": []},
    "process": {"args": ["sh"], "cwd": "/", "surprise": true, "user": {"uid": 1, "extra": "x"}},
    "root": {"path": "rootfs", "nested": {"deep": null}},
    "mounts": [{"destination": "/tmp", "type": "tmpfs", "unknownOption": 3}],
    "linux": {"netDevices": {"eth1": {"name": "eth0"}}, "newKnob": 1,
              "resources": {"memory": {"limit": 1, "futureMemoryKnob": "z"}}}
  })");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->process->user.uid, 1u);
  EXPECT_EQ(r->mounts.at(0).destination, "/tmp");
  EXPECT_EQ(r->linux->resources->memory->limit, 1);
}

TEST(OciParse, MalformedJson) {
  auto r = parse_spec(R"({"ociVersion": "1.2.0",)");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message.starts_with("malformed JSON: ")) << r.error().message;
  EXPECT_NE(r.error().message.find("parse error"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("[json.exception"), std::string::npos) << r.error().message;

  auto empty = parse_spec("");
  ASSERT_FALSE(empty);
  EXPECT_TRUE(empty.error().message.starts_with("malformed JSON: ")) << empty.error().message;
}

TEST(OciParse, TopLevelMustBeObject) {
  auto r = parse_spec("[1, 2]");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "config must be a JSON object");
}

TEST(OciParse, TypeErrorsNameThePath) {
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"args": "sh"}})")),
            "process.args: must be an array of strings");
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"args": ["sh", 1]}})")),
            "process.args: must be an array of strings");
  EXPECT_EQ(
      error_of(parse_spec(R"({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": 3}]}})")),
      "linux.namespaces[2].type: must be a string");
  EXPECT_EQ(error_of(parse_spec(R"({"mounts": [{"destination": "/a"}, {"destination": ["/b"]}]})")),
            "mounts[1].destination: must be a string");
  EXPECT_EQ(error_of(parse_spec(R"({"ociVersion": 1})")), "ociVersion: must be a string");
  EXPECT_EQ(error_of(parse_spec(R"({"process": []})")), "process: must be an object");
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"terminal": "yes"}})")),
            "process.terminal: must be a boolean");
  EXPECT_EQ(error_of(parse_spec(R"({"mounts": {}})")), "mounts: must be an array");
  EXPECT_EQ(error_of(parse_spec(R"({"annotations": {"a": 1}})")),
            "annotations: must be an object of strings");
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"sysctl": {"net.x": true}}})")),
            "linux.sysctl: must be an object of strings");
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"timeOffsets": {"boottime": {"secs": "1"}}}})")),
            R"(linux.timeOffsets["boottime"].secs: must be a 64-bit integer)");
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": -1}}}}})")),
            R"(linux.resources.rdma["mlx5_1"].hcaHandles: must be an unsigned 32-bit integer)");
  EXPECT_EQ(error_of(parse_spec(R"({"hooks": {"poststop": [{"path": "/x", "timeout": "5"}]}})")),
            "hooks.poststop[0].timeout: must be a 32-bit integer");
  EXPECT_EQ(error_of(parse_spec(
                R"({"linux": {"seccomp": {"syscalls": [{"names": ["a"], "args": [{"index": 1.5}]}]}}})")),
            "linux.seccomp.syscalls[0].args[0].index: must be an unsigned 32-bit integer");
}

TEST(OciParse, IntegerRangesAreEnforced) {
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"user": {"uid": -1}}})")),
            "process.user.uid: must be an unsigned 32-bit integer");
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"user": {"uid": 4294967296}}})")),
            "process.user.uid: must be an unsigned 32-bit integer");
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"user": {"gid": 1.0}}})")),
            "process.user.gid: must be an unsigned 32-bit integer");
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"resources": {"blockIO": {"weight": 65536}}}})")),
            "linux.resources.blockIO.weight: must be an unsigned 16-bit integer");
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"resources": {"memory": {"limit": 9223372036854775808}}}})")),
            "linux.resources.memory.limit: must be a 64-bit integer");
  auto ok = parse_spec(R"({"process": {"user": {"uid": 4294967295}, "oomScoreAdj": -1000}})");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->process->user.uid, 4294967295u);
  EXPECT_EQ(ok->process->oom_score_adj, -1000);
}

TEST(OciParse, UnknownNamespaceNamesIndex) {
  EXPECT_EQ(error_of(parse_spec(
                R"({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "pidd"}]}})")),
            R"(linux.namespaces[2].type: unknown namespace "pidd")");
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"namespaces": [{"path": "/proc/1/ns/pid"}]}})")),
            "linux.namespaces[0].type: is required");
}

TEST(OciParse, DeviceTypeMustBeOneLetter) {
  EXPECT_EQ(error_of(parse_spec(R"({"linux": {"devices": [{"path": "/dev/x", "type": "cc"}]}})")),
            R"(linux.devices[0].type: must be one of "c", "b", "u", "p")");
}

TEST(OciParse, RlimitTypeIsRequired) {
  EXPECT_EQ(error_of(parse_spec(R"({"process": {"rlimits": [{"hard": 1, "soft": 1}]}})")),
            "process.rlimits[0].type: is required");
}

TEST(OciParse, ParseProcess) {
  auto p = parse_process(R"({"args": ["ls", "-l"], "cwd": "/tmp", "env": ["A=B"], "terminal": false,
                             "user": {"uid": 7, "gid": 8}, "capabilities": {"bounding": ["CAP_KILL"]}})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->args, (std::vector<std::string>{"ls", "-l"}));
  EXPECT_EQ(p->cwd, "/tmp");
  EXPECT_EQ(p->user.uid, 7u);
  EXPECT_EQ(p->capabilities->bounding, (std::vector<std::string>{"CAP_KILL"}));

  auto bad = parse_process(R"({"args": [1]})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "args: must be an array of strings");
  auto malformed = parse_process("{");
  ASSERT_FALSE(malformed);
  EXPECT_TRUE(malformed.error().message.starts_with("malformed JSON: "));
}

class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/bulkhead-oci-test-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string &path() const { return path_; }
  void write(const std::string &name, const std::string &content) const {
    std::ofstream(path_ + "/" + name) << content;
  }

private:
  std::string path_;
};

TEST(OciParse, LoadBundleSpec) {
  TempDir dir;
  dir.write("config.json", kFullConfig);
  auto r = load_bundle_spec(dir.path());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->hostname, "box");
  auto slash = load_bundle_spec(dir.path() + "/");
  ASSERT_TRUE(slash) << slash.error().message;
}

TEST(OciParse, LoadBundleSpecMissing) {
  TempDir dir;
  auto r = load_bundle_spec(dir.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().text(), "opening " + dir.path() + "/config.json: No such file or directory");
}

TEST(OciParse, LoadBundleSpecMalformedNamesFile) {
  TempDir dir;
  dir.write("config.json", "{\"ociVersion\": ");
  auto r = load_bundle_spec(dir.path());
  ASSERT_FALSE(r);
  const std::string prefix = dir.path() + "/config.json: malformed JSON: ";
  EXPECT_TRUE(r.error().message.starts_with(prefix)) << r.error().message;

  dir.write("config.json", R"({"process": {"args": "sh"}})");
  auto typed = load_bundle_spec(dir.path());
  ASSERT_FALSE(typed);
  EXPECT_EQ(typed.error().message, dir.path() + "/config.json: process.args: must be an array of strings");
}

TEST(OciHooks, RoundTrip) {
  auto spec = parse_spec(kFullConfig);
  ASSERT_TRUE(spec) << spec.error().message;
  nlohmann::json j = hooks_to_json(spec->hooks);
  EXPECT_EQ(j, nlohmann::json::parse(R"({
    "prestart": [{"path": "/usr/bin/netns-hook", "args": ["netns-hook", "--up"], "env": ["A=1"], "timeout": 5}],
    "createRuntime": [{"path": "/bin/cr"}],
    "createContainer": [{"path": "/bin/cc"}],
    "startContainer": [{"path": "/bin/sc"}],
    "poststart": [{"path": "/bin/ps1"}, {"path": "/bin/ps2", "timeout": 1}],
    "poststop": [{"path": "/bin/cleanup"}]
  })"));

  // Through text too: that is how the state directory stores them.
  auto back = hooks_from_json(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(hooks_to_json(*back), j);
  ASSERT_EQ(back->prestart.size(), 1u);
  EXPECT_EQ(back->prestart[0].path, "/usr/bin/netns-hook");
  EXPECT_EQ(back->prestart[0].args, (std::vector<std::string>{"netns-hook", "--up"}));
  EXPECT_EQ(back->prestart[0].env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(back->prestart[0].timeout, 5);
  EXPECT_EQ(back->poststart.size(), 2u);
  EXPECT_FALSE(back->poststart[0].timeout);
  EXPECT_EQ(back->poststop.at(0).path, "/bin/cleanup");
}

TEST(OciHooks, EmptyAndInvalid) {
  EXPECT_EQ(hooks_to_json(Hooks{}), nlohmann::json::object());
  auto from_null = hooks_from_json(nullptr);
  ASSERT_TRUE(from_null);
  EXPECT_TRUE(from_null->empty());
  auto from_empty = hooks_from_json(nlohmann::json::object());
  ASSERT_TRUE(from_empty);
  EXPECT_TRUE(from_empty->empty());

  auto bad = hooks_from_json(nlohmann::json::parse(R"({"poststop": [{"path": 5}]})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "hooks.poststop[0].path: must be a string");
  auto not_object = hooks_from_json(nlohmann::json::array());
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().message, "hooks: must be an object");
}

TEST(OciDefaultSpec, ParsesAndValidates) {
  for (bool rootless : {false, true}) {
    SCOPED_TRACE(rootless ? "rootless" : "root");
    auto r = parse_spec(default_spec_json(rootless));
    ASSERT_TRUE(r) << r.error().message;
    auto v = validate_spec(*r);
    EXPECT_TRUE(v) << v.error().message;
    EXPECT_EQ(r->oci_version, "1.2.0");
    ASSERT_TRUE(r->process);
    EXPECT_EQ(r->process->args, (std::vector<std::string>{"sh"}));
    EXPECT_TRUE(r->process->terminal);
    EXPECT_EQ(r->process->cwd, "/");
    EXPECT_TRUE(r->process->no_new_privileges);
    ASSERT_EQ(r->process->rlimits.size(), 1u);
    EXPECT_EQ(r->process->rlimits[0].type, "RLIMIT_NOFILE");
    EXPECT_EQ(r->root.path, "rootfs");
    EXPECT_TRUE(r->root.readonly);
    EXPECT_EQ(r->hostname, "runc");
    EXPECT_EQ(r->mounts.size(), 7u);
    ASSERT_TRUE(r->linux);
    EXPECT_EQ(r->linux->masked_paths.size(), 10u);
    EXPECT_EQ(r->linux->readonly_paths.size(), 5u);
  }
}

TEST(OciDefaultSpec, RootAndRootlessDiffer) {
  auto root = parse_spec(default_spec_json(false));
  ASSERT_TRUE(root);
  EXPECT_TRUE(root->linux->has_namespace(NamespaceType::Network));
  EXPECT_FALSE(root->linux->has_namespace(NamespaceType::User));
  EXPECT_TRUE(root->linux->uid_mappings.empty());
  ASSERT_TRUE(root->linux->resources);
  ASSERT_EQ(root->linux->resources->devices.size(), 1u);
  EXPECT_FALSE(root->linux->resources->devices[0].allow);
  EXPECT_EQ(root->linux->resources->devices[0].access, "rwm");
  EXPECT_EQ(root->mounts[2].options.back(), "gid=5");
  EXPECT_EQ(root->mounts[5].type, "sysfs");

  auto rootless = parse_spec(default_spec_json(true));
  ASSERT_TRUE(rootless);
  EXPECT_FALSE(rootless->linux->has_namespace(NamespaceType::Network));
  EXPECT_TRUE(rootless->linux->has_namespace(NamespaceType::User));
  EXPECT_FALSE(rootless->linux->resources);
  ASSERT_EQ(rootless->linux->uid_mappings.size(), 1u);
  EXPECT_EQ(rootless->linux->uid_mappings[0].container_id, 0u);
  EXPECT_EQ(rootless->linux->uid_mappings[0].host_id, ::geteuid());
  EXPECT_EQ(rootless->linux->uid_mappings[0].size, 1u);
  EXPECT_EQ(rootless->linux->gid_mappings.at(0).host_id, ::getegid());
  EXPECT_EQ(rootless->mounts[2].options.back(), "mode=0620");
  EXPECT_EQ(rootless->mounts[5].type, "none");
  EXPECT_EQ(rootless->mounts[5].source, "/sys");
}

TEST(OciDefaultSpec, FormattedLikeRunc) {
  std::string text = default_spec_json(false);
  // Tab indentation, runc's key order, no trailing newline.
  EXPECT_TRUE(
      text.starts_with("{\n\t\"ociVersion\": \"1.2.0\",\n\t\"process\": {\n\t\t\"terminal\": true,\n"))
      << text.substr(0, 80);
  EXPECT_NE(
      text.find(
          "\t\t\t{\n\t\t\t\t\"type\": \"RLIMIT_NOFILE\",\n\t\t\t\t\"hard\": 1024,\n\t\t\t\t\"soft\": 1024\n"),
      std::string::npos);
  EXPECT_TRUE(text.ends_with("\n\t}\n}"));
  auto j = nlohmann::ordered_json::parse(text);
  std::vector<std::string> keys;
  for (const auto &[k, v] : j.items())
    keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"ociVersion", "process", "root", "hostname", "mounts", "linux"}));
}

} // namespace
} // namespace bulkhead::oci
