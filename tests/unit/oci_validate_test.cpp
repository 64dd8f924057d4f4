#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "oci/parse.hpp"
#include "oci/validate.hpp"

namespace bulkhead::oci {
namespace {

// The smallest spec validate_spec accepts; each test breaks one rule of it.
Spec valid_spec() {
  Spec s;
  s.oci_version = "1.2.0";
  s.root.path = "rootfs";
  s.process.emplace();
  s.process->args = {"sh"};
  s.process->cwd = "/";
  s.linux.emplace();
  s.linux->namespaces = {{NamespaceType::Pid, ""}, {NamespaceType::Mount, ""}};
  return s;
}

std::string error_after(const std::function<void(Spec &)> &mutate) {
  Spec s = valid_spec();
  mutate(s);
  auto r = validate_spec(s);
  return r ? std::string("<valid>") : r.error().message;
}

TEST(OciValidate, MinimalSpecIsValid) {
  EXPECT_EQ(error_after([](Spec &) {}), "<valid>");
  EXPECT_EQ(error_after([](Spec &s) { s.linux.reset(); }), "<valid>");
}

TEST(OciValidate, TopLevel) {
  EXPECT_EQ(error_after([](Spec &s) { s.oci_version.clear(); }), "ociVersion: is required");
  EXPECT_EQ(error_after([](Spec &s) { s.root.path.clear(); }), "root.path: must be a non-empty string");
  EXPECT_EQ(error_after([](Spec &s) { s.process.reset(); }), "process: is required");
}

TEST(OciValidate, FirstViolationWins) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.oci_version.clear();
              s.root.path.clear();
            }),
            "ociVersion: is required");
}

TEST(OciValidate, Process) {
  EXPECT_EQ(error_after([](Spec &s) { s.process->args.clear(); }), "process.args: must be a non-empty array");
  EXPECT_EQ(error_after([](Spec &s) { s.process->cwd = "work"; }), "process.cwd: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) { s.process->cwd.clear(); }), "process.cwd: must be an absolute path");
}

TEST(OciValidate, Rlimits) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.process->rlimits = {{"RLIMIT_NOFILE", 10, 20}, {"RLIMIT_CORE", 0, 0}};
            }),
            "<valid>");
  EXPECT_EQ(error_after([](Spec &s) {
              s.process->rlimits = {{"RLIMIT_NOFILE", 1, 1}, {"RLIMIT_FOO", 1, 1}};
            }),
            R"(process.rlimits[1].type: unknown rlimit "RLIMIT_FOO")");
  EXPECT_EQ(error_after([](Spec &s) {
              s.process->rlimits = {{"nofile", 1, 1}};
            }),
            R"(process.rlimits[0].type: unknown rlimit "nofile")");
  EXPECT_EQ(error_after([](Spec &s) {
              s.process->rlimits = {{"RLIMIT_NOFILE", 2048, 1024}};
            }),
            "process.rlimits[0].soft: must not exceed hard (2048 > 1024)");
  EXPECT_EQ(error_after([](Spec &s) {
              s.process->rlimits = {{"RLIMIT_NOFILE", 1, 1}, {"RLIMIT_NOFILE", 2, 2}};
            }),
            R"(process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE")");
}

TEST(OciValidate, Mounts) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.mounts.resize(4);
              for (auto &m : s.mounts)
                m.destination = "/m";
              s.mounts[3].destination = "relative/dir";
            }),
            "mounts[3].destination: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) { s.mounts.resize(1); }),
            "mounts[0].destination: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) {
              s.mounts.resize(1);
              s.mounts[0].destination = "/data";
              s.mounts[0].uid_mappings = {{0, 1000, 1}};
            }),
            "mounts[0]: uidMappings and gidMappings must be set together");
  // Idmapped mounts do not need a container user namespace.
  EXPECT_EQ(error_after([](Spec &s) {
              s.mounts.resize(1);
              s.mounts[0].destination = "/data";
              s.mounts[0].uid_mappings = {{0, 1000, 1}};
              s.mounts[0].gid_mappings = {{0, 1000, 1}};
            }),
            "<valid>");
}

TEST(OciValidate, Namespaces) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces = {{NamespaceType::Pid, ""},
                                     {NamespaceType::Mount, ""},
                                     {NamespaceType::Ipc, ""},
                                     {NamespaceType::Pid, "/proc/1/ns/pid"}};
            }),
            R"(linux.namespaces[3].type: duplicate namespace "pid")");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::Network, "netns/x"});
            }),
            "linux.namespaces[2].path: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::Network, "/run/netns/x"});
            }),
            "<valid>");
}

TEST(OciValidate, UnknownNamespaceFromConfig) {
  // The model cannot hold an unknown type, so parse_spec reports it with the validation wording.
  auto r = parse_spec(R"({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                          "process": {"args": ["sh"], "cwd": "/"},
                          "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "pidd"}]}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, R"(linux.namespaces[2].type: unknown namespace "pidd")");
}

TEST(OciValidate, IdMappingsNeedUserNamespace) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->uid_mappings = {{0, 1000, 1}};
            }),
            "linux.uidMappings: requires a user namespace");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->gid_mappings = {{0, 1000, 1}};
            }),
            "linux.gidMappings: requires a user namespace");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::User, ""});
              s.linux->uid_mappings = {{0, 1000, 1}};
              s.linux->gid_mappings = {{0, 1000, 1}};
            }),
            "<valid>");
  // A user namespace without mappings is allowed (the runtime maps nothing, or joins one).
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::User, ""});
            }),
            "<valid>");
}

TEST(OciValidate, Hooks) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.hooks.prestart = {{"/bin/ok", {}, {}, 1}, {"hook.sh", {}, {}, {}}};
            }),
            "hooks.prestart[1].path: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) {
              s.hooks.poststop = {{"/bin/cleanup", {}, {}, 0}};
            }),
            "hooks.poststop[0].timeout: must be greater than zero");
  EXPECT_EQ(error_after([](Spec &s) {
              s.hooks.create_runtime = {{"/bin/x", {}, {}, -3}};
            }),
            "hooks.createRuntime[0].timeout: must be greater than zero");
  EXPECT_EQ(error_after([](Spec &s) {
              s.hooks.start_container = {{"", {}, {}, {}}};
            }),
            "hooks.startContainer[0].path: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) {
              s.hooks.create_container = {{"/bin/x", {"x"}, {"A=B"}, 30}};
            }),
            "<valid>");
}

TEST(OciValidate, Devices) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->devices.resize(2);
              s.linux->devices[0].path = "/dev/fuse";
              s.linux->devices[1].path = "/dev/x";
              s.linux->devices[1].type = 'x';
            }),
            R"(linux.devices[1].type: must be one of "c", "b", "u", "p")");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->devices.resize(1);
              s.linux->devices[0].path = "dev/fuse";
            }),
            "linux.devices[0].path: must be an absolute path");
  for (char t : {'c', 'b', 'u', 'p'}) {
    EXPECT_EQ(error_after([t](Spec &s) {
                s.linux->devices.resize(1);
                s.linux->devices[0].path = "/dev/d";
                s.linux->devices[0].type = t;
              }),
              "<valid>");
  }
}

TEST(OciValidate, Sysctl) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->sysctl = {{"", "1"}};
            }),
            "linux.sysctl: keys must be non-empty");
  EXPECT_EQ(error_after([](Spec &s) { s.linux->sysctl = {{"net.ipv4.ip_forward", "1"}}; }), "<valid>");
}

TEST(OciValidate, RootfsPropagation) {
  for (const char *p :
       {"", "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"}) {
    EXPECT_EQ(error_after([p](Spec &s) { s.linux->rootfs_propagation = p; }), "<valid>") << p;
  }
  EXPECT_EQ(
      error_after([](Spec &s) { s.linux->rootfs_propagation = "recursive"; }),
      R"(linux.rootfsPropagation: unknown propagation "recursive" (must be one of shared, slave, private, )"
      R"(unbindable, rshared, rslave, rprivate, runbindable))");
}

TEST(OciValidate, TimeOffsets) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->time_offsets = {{"monotonic", {1, 0}}};
            }),
            "linux.timeOffsets: requires a new time namespace");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::Time, "/proc/1/ns/time"});
              s.linux->time_offsets = {{"monotonic", {1, 0}}};
            }),
            "linux.timeOffsets: cannot be set when joining an existing time namespace");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::Time, ""});
              s.linux->time_offsets = {{"monotonic", {1, 0}}, {"realtime", {2, 0}}};
            }),
            R"(linux.timeOffsets["realtime"]: unknown clock (must be "monotonic" or "boottime"))");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->namespaces.push_back({NamespaceType::Time, ""});
              s.linux->time_offsets = {{"monotonic", {1, 0}}, {"boottime", {-5, 10}}};
            }),
            "<valid>");
}

TEST(OciValidate, HostnameNeedsUts) {
  EXPECT_EQ(error_after([](Spec &s) { s.hostname = "box"; }), "hostname: requires a new uts namespace");
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux.reset();
              s.hostname = "box";
            }),
            "hostname: requires a new uts namespace");
  EXPECT_EQ(error_after([](Spec &s) { s.domainname = "example.test"; }),
            "domainname: requires a new uts namespace");
  EXPECT_EQ(error_after([](Spec &s) {
              s.hostname = "box";
              s.domainname = "example.test";
              s.linux->namespaces.push_back({NamespaceType::Uts, ""});
            }),
            "<valid>");
}

TEST(OciValidate, MaskedAndReadonlyPaths) {
  EXPECT_EQ(error_after([](Spec &s) {
              s.linux->masked_paths = {"/proc/kcore", "proc/keys"};
            }),
            "linux.maskedPaths[1]: must be an absolute path");
  EXPECT_EQ(error_after([](Spec &s) { s.linux->readonly_paths = {"sys"}; }),
            "linux.readonlyPaths[0]: must be an absolute path");
}

TEST(OciContainerId, Accepted) {
  for (const char *id : {"a", "abc-123", "my_container.v2+x", "A-Z.0_9+", "...", ".hidden", "-leading"}) {
    auto r = validate_container_id(id);
    EXPECT_TRUE(r) << id << ": " << r.error().message;
  }
  EXPECT_TRUE(validate_container_id(std::string(1024, 'x')));
}

TEST(OciContainerId, Rejected) {
  auto msg = [](const std::string &id) {
    auto r = validate_container_id(id);
    return r ? std::string("<valid>") : r.error().message;
  };
  EXPECT_EQ(msg(""), "invalid container id: must not be empty");
  EXPECT_EQ(msg(std::string(1025, 'x')), "invalid container id: longer than 1024 bytes");
  EXPECT_EQ(msg("."), R"(invalid container id ".": reserved name)");
  EXPECT_EQ(msg(".."), R"(invalid container id "..": reserved name)");
  EXPECT_EQ(msg("a/b"), R"(invalid container id "a/b": contains "/")");
  EXPECT_EQ(msg("../etc"), R"(invalid container id "../etc": contains "/")");
  EXPECT_EQ(msg("has space"), R"(invalid container id "has space": contains " ")");
  EXPECT_EQ(msg("a,b"), R"(invalid container id "a,b": contains ",")");
  EXPECT_EQ(msg("new\nline"), R"(invalid container id "new\nline": contains "\n")");
  EXPECT_EQ(msg(std::string("nul\0x", 5)), R"(invalid container id "nul\x00x": contains "\x00")");
  EXPECT_EQ(msg("caf\xc3\xa9"), R"(invalid container id "café": contains "\xc3")");
}

} // namespace
} // namespace bulkhead::oci
