#include "rootfs/mount_options.hpp"

#include <algorithm>
#include <linux/mount.h>
#include <string_view>
#include <sys/mount.h>

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef MOUNT_ATTR_NOSYMFOLLOW
#define MOUNT_ATTR_NOSYMFOLLOW 0x00200000
#endif

namespace bulkhead::rootfs {

namespace {

struct FlagOption {
  std::string_view name;
  bool clear;
  unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"iversion", false, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},
    {"loud", true, MS_SILENT},
    {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"noiversion", true, MS_I_VERSION},
    {"nolazytime", true, MS_LAZYTIME},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"silent", false, MS_SILENT},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
    {"symfollow", true, MS_NOSYMFOLLOW},
};

struct PropagationOption {
  std::string_view name;
  unsigned long flags;
};

constexpr PropagationOption kPropagation[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct RecursiveOption {
  std::string_view name;
  bool clear;
  uint64_t attr;
};

constexpr RecursiveOption kRecursive[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},
    {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID},
    {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},
    {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC},
    {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnodiratime", false, MOUNT_ATTR_NODIRATIME},
    {"rdiratime", true, MOUNT_ATTR_NODIRATIME},
    {"rrelatime", false, MOUNT_ATTR_RELATIME},
    {"rnorelatime", true, MOUNT_ATTR_RELATIME},
    {"rnoatime", false, MOUNT_ATTR_NOATIME},
    {"ratime", true, MOUNT_ATTR_NOATIME},
    {"rstrictatime", false, MOUNT_ATTR_STRICTATIME},
    {"rnostrictatime", true, MOUNT_ATTR_STRICTATIME},
    {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
    {"rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW},
};

} // namespace

MountOptions parse_mount_options(const std::vector<std::string> &options) {
  MountOptions out;
  for (const auto &opt : options) {
    if (opt == "bind") {
      out.bind = true;
      continue;
    }
    if (opt == "rbind") {
      out.bind = out.recursive_bind = true;
      continue;
    }
    if (opt == "tmpcopyup") {
      out.tmpcopyup = true;
      continue;
    }
    if (opt == "idmap" || opt == "ridmap") {
      out.idmap = true;
      out.recursive_idmap = out.recursive_idmap || opt == "ridmap";
      continue;
    }
    bool matched = false;
    for (const auto &f : kFlagOptions) {
      if (opt != f.name)
        continue;
      if (f.clear) {
        out.flags &= ~f.flag;
        out.cleared |= f.flag;
      } else {
        out.flags |= f.flag;
        out.cleared &= ~f.flag;
      }
      matched = true;
      break;
    }
    for (const auto &p : kPropagation) {
      if (matched || opt != p.name)
        continue;
      out.propagation.push_back(p.flags);
      matched = true;
    }
    for (const auto &r : kRecursive) {
      if (matched || opt != r.name)
        continue;
      if (r.clear) {
        out.rec_attr_clr |= r.attr;
        out.rec_attr_set &= ~r.attr;
      } else {
        out.rec_attr_set |= r.attr;
        out.rec_attr_clr &= ~r.attr;
      }
      matched = true;
    }
    if (matched)
      continue;
    if (!out.data.empty())
      out.data += ',';
    out.data += opt;
  }
  return out;
}

uint64_t mount_attrs_from_flags(unsigned long ms, uint64_t *clear_mask) {
  uint64_t set = 0;
  uint64_t clr = 0;
  auto map = [&](unsigned long flag, uint64_t attr) {
    if (ms & flag)
      set |= attr;
    else
      clr |= attr;
  };
  map(MS_RDONLY, MOUNT_ATTR_RDONLY);
  map(MS_NOSUID, MOUNT_ATTR_NOSUID);
  map(MS_NODEV, MOUNT_ATTR_NODEV);
  map(MS_NOEXEC, MOUNT_ATTR_NOEXEC);
  map(MS_NODIRATIME, MOUNT_ATTR_NODIRATIME);
  map(MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW);
  if (ms & MS_NOATIME) {
    set |= MOUNT_ATTR_NOATIME;
    clr |= MOUNT_ATTR__ATIME;
  } else if (ms & MS_STRICTATIME) {
    set |= MOUNT_ATTR_STRICTATIME;
    clr |= MOUNT_ATTR__ATIME;
  } else if (ms & MS_RELATIME) {
    set |= MOUNT_ATTR_RELATIME;
    clr |= MOUNT_ATTR__ATIME;
  }
  if (clear_mask)
    *clear_mask = clr;
  return set;
}

std::vector<std::string> known_mount_options() {
  std::vector<std::string> out{"bind", "rbind", "tmpcopyup"};
  for (const auto &f : kFlagOptions)
    out.emplace_back(f.name);
  for (const auto &p : kPropagation)
    out.emplace_back(p.name);
  for (const auto &r : kRecursive)
    out.emplace_back(r.name);
  std::sort(out.begin(), out.end());
  return out;
}

Result<unsigned long> propagation_flags(const std::string &value) {
  if (value.empty())
    return 0UL;
  for (const auto &p : kPropagation)
    if (value == p.name)
      return p.flags;
  return failf("linux.rootfsPropagation: unknown value {:?}", value);
}

} // namespace bulkhead::rootfs
