#include "runtime/images_lent.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::runtime {

namespace {

// A chain of pre-dumps is a few levels deep; this only stops a "parent" link loop.
constexpr int kMaxParents = 64;

} // namespace

Result<std::vector<std::string>> image_chain(const std::string &images) {
  std::vector<std::string> chain{images};
  for (int depth = 0; depth < kMaxParents; ++depth) {
    const std::string &dir = chain.back();
    // CRIU's link to the pre-dump this dump's pages build on (--parent-path).
    char target[PATH_MAX];
    ssize_t len = ::readlink((dir + "/parent").c_str(), target, sizeof target - 1);
    if (len <= 0)
      break;
    target[len] = '\0';
    std::string next = target[0] == '/' ? std::string(target) : dir + "/" + target;
    char real[PATH_MAX];
    if (!::realpath(next.c_str(), real))
      return failf_errno("restore: parent images {} of {}", next, dir);
    chain.push_back(real);
  }
  return chain;
}

Result<ImagesLent> ImagesLent::lend(const std::string &images, uid_t uid, gid_t gid) {
  ImagesLent lent;
  for (const auto &dir : BH_TRY(image_chain(images))) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
      return failf_errno("restore: CRIU images {}", dir);
    std::vector<std::string> names{"."};
    {
      DIR *d = ::fdopendir(::dup(fd.get()));
      if (!d)
        return failf_errno("restore: listing CRIU images {}", dir);
      while (auto *e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && (e->d_type == DT_REG || e->d_type == DT_UNKNOWN))
          names.push_back(n);
      }
      ::closedir(d);
    }
    for (const auto &n : names) {
      struct stat st {};
      if (::fstatat(fd.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
        return failf_errno("restore: {}/{}", dir, n);
      if (n != "." && !S_ISREG(st.st_mode))
        continue;
      if (st.st_uid == uid && st.st_gid == gid)
        continue;
      std::string path = n == "." ? dir : dir + "/" + n;
      if (::fchownat(fd.get(), n.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return failf_errno("restore: lending {} to uid {} gid {} (the restored user namespace's root)", path,
                           uid, gid);
      lent.owners_.push_back({path, st.st_uid, st.st_gid});
    }
  }
  return lent;
}

void ImagesLent::give_back() {
  // Newest first: a directory goes back after its files.
  for (auto it = owners_.rbegin(); it != owners_.rend(); ++it)
    if (::lchown(it->path.c_str(), it->uid, it->gid) < 0)
      (void)write_all(STDERR_FILENO,
                      fmt::format("bulkhead: giving {} back to {}:{}: {}\n", it->path, it->uid, it->gid,
                                  std::strerror(errno)),
                      "stderr");
  owners_.clear();
}

} // namespace bulkhead::runtime
