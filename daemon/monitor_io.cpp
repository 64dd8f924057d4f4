#include "daemon/monitor_io.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "bulkhead/io.hpp"

namespace bulkhead::daemon {

namespace {

std::pair<std::string, std::string> split_path(const std::string &path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

} // namespace

Status write_durable(const std::string &path, std::string_view data) {
  auto [dir, name] = split_path(path);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd)
    return failf_errno("opening directory {}", dir);
  std::string tmp = "." + name + ".tmp";
  {
    UniqueFd fd(
        ::openat(dfd.get(), tmp.c_str(), O_WRONLY | O_TRUNC | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd)
      return failf_errno("creating {}/{}", dir, tmp);
    BH_CHECK(write_all(fd.get(), data, path));
    if (::fsync(fd.get()) < 0)
      return failf_errno("fsync of {}/{}", dir, tmp);
  }
  if (::renameat(dfd.get(), tmp.c_str(), dfd.get(), name.c_str()) < 0) {
    auto err = failf_errno("renaming {}/{} to {}", dir, tmp, name);
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    return err;
  }
  if (::fsync(dfd.get()) < 0)
    return failf_errno("fsync of directory {}", dir);
  return {};
}

int group_id(const std::string &name, const std::string &group_file) {
  auto text = read_file(group_file);
  if (!text)
    return -1;
  std::string_view rest(*text);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    // name:password:gid:members
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos || line.substr(0, c1) != name)
      continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos)
      continue;
    auto c3 = line.find(':', c2 + 1);
    std::string gid(line.substr(c2 + 1, c3 == std::string_view::npos ? std::string_view::npos : c3 - c2 - 1));
    char *end = nullptr;
    long v = std::strtol(gid.c_str(), &end, 10);
    if (!gid.empty() && *end == '\0' && v >= 0 && v < INT32_MAX)
      return static_cast<int>(v);
  }
  return -1;
}

Result<UniqueFd> listen_control_socket(const std::string &path, int gid) {
  auto [dir, name] = split_path(path);
  UniqueFd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dfd)
    return failf_errno("control socket {}: opening directory {}", path, dir);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s)
    return failf_errno("control socket {}: socket", path);
  struct stat st {};
  if (::fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    // A socket left by a monitor that died is replaced; anything else is not ours to remove.
    if (!S_ISSOCK(st.st_mode))
      return failf("control socket {}: the path exists and is not a socket", path);
    if (::unlinkat(dfd.get(), name.c_str(), 0) < 0)
      return failf_errno("control socket {}: removing the stale socket", path);
  }
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  // Through the directory fd, so a long daemon root never exceeds sun_path.
  auto via = fmt::format("/proc/self/fd/{}/{}", dfd.get(), name);
  if (via.size() >= sizeof addr.sun_path)
    return failf("control socket {}: file name too long", path);
  std::memcpy(addr.sun_path, via.c_str(), via.size() + 1);
  // Created 0600 (no window where others could connect), then opened up to the group.
  mode_t old = ::umask(0177);
  int r = ::bind(s.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
  ::umask(old);
  if (r < 0)
    return failf_errno("control socket {}: bind", path);
  if (::fchownat(dfd.get(), name.c_str(), 0, gid >= 0 ? static_cast<gid_t>(gid) : 0, AT_SYMLINK_NOFOLLOW) <
          0 ||
      ::fchmodat(dfd.get(), name.c_str(), gid >= 0 ? 0660 : 0600, 0) < 0) {
    auto err = failf_errno("control socket {}: setting owner and mode", path);
    ::unlinkat(dfd.get(), name.c_str(), 0);
    return err;
  }
  if (::listen(s.get(), 16) < 0) {
    auto err = failf_errno("control socket {}: listen", path);
    ::unlinkat(dfd.get(), name.c_str(), 0);
    return err;
  }
  return s;
}

Status check_peer(int conn, int gid) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return failf_errno("reading the peer's credentials");
  if (cred.uid == 0)
    return {};
  if (gid >= 0) {
    if (cred.gid == static_cast<gid_t>(gid))
      return {};
    gid_t groups[256];
    socklen_t glen = sizeof groups;
    if (::getsockopt(conn, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0 &&
        std::find(groups, groups + glen / sizeof(gid_t), static_cast<gid_t>(gid)) !=
            groups + glen / sizeof(gid_t))
      return {};
  }
  return failf("permission denied: uid {} (pid {}) is neither root nor in group bulkhead", cred.uid,
               cred.pid);
}

Result<std::string> read_line(int fd, size_t max, std::vector<UniqueFd> *fds) {
  std::string line;
  for (;;) {
    char c;
    struct iovec iov {
      &c, 1
    };
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
    struct msghdr mh {};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return failf_errno("reading a line");
    }
    if (n == 0)
      return fail(line.empty() ? "the peer closed the connection"
                               : "the peer closed the connection mid-line");
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
        continue;
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int got;
        std::memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof got);
        if (fds)
          fds->emplace_back(got);
        else
          ::close(got);
      }
    }
    if (c == '\n')
      return line;
    if (line.size() >= max)
      return failf("line longer than {} bytes", max);
    line.push_back(c);
  }
}

Status send_line(int fd, std::string_view line, const std::vector<int> &fds) {
  std::string data(line);
  data.push_back('\n');
  struct iovec iov {
    data.data(), data.size()
  };
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)] = {};
  if (!fds.empty()) {
    if (fds.size() > 8)
      return fail("send_line: at most 8 descriptors");
    mh.msg_control = control;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  while ((n = ::sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0)
    if (errno != EINTR)
      return failf_errno("sending a line");
  // The rest (rare: a full socket buffer) goes without the fds, which already left with byte 0.
  if (static_cast<size_t>(n) < data.size())
    BH_CHECK(write_all(fd, std::string_view(data).substr(static_cast<size_t>(n)), "a line"));
  return {};
}

int64_t unix_now() { return static_cast<int64_t>(::time(nullptr)); }

} // namespace bulkhead::daemon
