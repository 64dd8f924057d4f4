// CRIU restores a tree that lives in a user namespace partly from inside that namespace: the
// restored tasks open their own image files (core, pages, tty-info, ...) as the namespace's root,
// which on the host is an unprivileged uid (100000, ...) that cannot read root's 0600 images
// ("Unable to open tty-info.img: Permission denied" in restore.log). The images directory, its
// files and the pre-dump parents it links to are lent to that uid for the restore and given back
// to their owners when the lender goes out of scope.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::runtime {

// `images` and the pre-dump directories its "parent" links lead to (CRIU's --parent-path), each
// resolved, newest first; an error names a parent link that leads nowhere.
Result<std::vector<std::string>> image_chain(const std::string &images);

class ImagesLent {
public:
  // Lends `images` (a directory of CRIU images) to uid:gid; nothing is changed on failure.
  static Result<ImagesLent> lend(const std::string &images, uid_t uid, gid_t gid);
  ImagesLent() = default;
  ImagesLent(ImagesLent &&o) noexcept : owners_(std::move(o.owners_)) { o.owners_.clear(); }
  ImagesLent &operator=(ImagesLent &&) = delete;
  ~ImagesLent() { give_back(); }
  size_t size() const { return owners_.size(); }

private:
  struct Owner {
    std::string path;
    uid_t uid;
    gid_t gid;
  };
  void give_back();
  std::vector<Owner> owners_;
};

} // namespace bulkhead::runtime
