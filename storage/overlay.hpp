// A container's root filesystem: an overlay of its template (lower, read-only, shared) and its
// private upper directory, so N containers of one template hold one copy of the system libraries.
#pragma once

#include <string>

#include "bulkhead/result.hpp"

namespace bulkhead::storage {

struct OverlayPaths {
  std::string lower;  // the template's rootfs
  std::string upper;  // <root>/containers/NAME/upper
  std::string work;   // <root>/containers/NAME/work (same filesystem as upper)
  std::string target; // <root>/containers/NAME/bundle/rootfs
};

// Creates upper/work/target if missing (0755, 0700 for work) and mounts the overlay on target.
// Errors name the paths and the errno text.
Status mount_overlay(const OverlayPaths &paths);
// Detaches the mount on target (MNT_DETACH). Succeeds if nothing is mounted there.
Status unmount_overlay(const std::string &target);
// True if target is a mount point of an overlay (read from /proc/self/mountinfo).
bool overlay_mounted(const std::string &target);

// RAII: unmounts on destruction unless released.
class OverlayMount {
public:
  OverlayMount() = default;
  explicit OverlayMount(std::string target) : target_(std::move(target)) {}
  OverlayMount(const OverlayMount &) = delete;
  OverlayMount &operator=(const OverlayMount &) = delete;
  OverlayMount(OverlayMount &&o) noexcept : target_(std::move(o.target_)) { o.target_.clear(); }
  ~OverlayMount() {
    if (!target_.empty())
      (void)unmount_overlay(target_);
  }
  void release() { target_.clear(); }

private:
  std::string target_;
};

} // namespace bulkhead::storage
