#include "storage/debootstrap.hpp"

#include <algorithm>
#include <csignal>
#include <deque>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "storage/import_context.hpp"
#include "storage/resolve.hpp"
#include "storage/spawn.hpp"
#include "storage/staging.hpp"
#include "storage/template_store.hpp"
#include "storage/tree.hpp"

extern char **environ;

namespace bulkhead::storage {

namespace {

std::vector<std::string> files_in(const std::string &dir, std::string_view suffix) {
  std::vector<std::string> out;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (struct dirent *de = ::readdir(d))
      if (std::string_view(de->d_name).ends_with(suffix))
        out.push_back(dir + "/" + de->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_http(const std::string &uri) { return uri.starts_with("http://") || uri.starts_with("https://"); }

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r"));
  s.erase(s.find_last_not_of(" \t\r;") + 1);
  return s;
}

bool valid_suite(const std::string &s) {
  if (s.empty() || s.size() > 64 || s[0] == '-')
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

} // namespace

std::string default_mirror(const std::string &sources_d, const std::string &list) {
  auto files = files_in(sources_d, ".sources");
  std::stable_partition(files.begin(), files.end(),
                        [](const std::string &f) { return f.ends_with("/debian.sources"); });
  for (const auto &f : files) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.starts_with("URIs:"))
        continue;
      std::istringstream uris(line.substr(5));
      std::string uri;
      while (uris >> uri)
        if (is_http(uri))
          return uri;
    }
  }
  std::ifstream in(list);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string word;
    if (!(ls >> word) || word != "deb")
      continue;
    while (ls >> word) {
      if (word.starts_with("[")) { // options: [arch=amd64 signed-by=...]
        while (!word.ends_with("]") && ls >> word) {
        }
        continue;
      }
      if (is_http(word))
        return word;
      break;
    }
  }
  return {};
}

std::string apt_http_proxy(const std::string &conf_d) {
  for (const auto &f : files_in(conf_d, "")) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      std::string t = trim(line);
      std::string lower = t;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (!lower.starts_with("acquire::http::proxy "))
        continue;
      auto q1 = t.find('"');
      auto q2 = t.find('"', q1 + 1);
      if (q1 != std::string::npos && q2 != std::string::npos) {
        std::string v = t.substr(q1 + 1, q2 - q1 - 1);
        if (is_http(v))
          return v;
      }
    }
  }
  return {};
}

Result<TemplateInfo> TemplateStore::debootstrap(const std::string &name, const std::string &suite,
                                                const std::string &mirror_in, const ProgressFn &progress,
                                                const std::atomic<bool> *cancel) {
  BH_CHECK(validate_name("template", name));
  if (!valid_suite(suite))
    return fail(fmt::format("invalid suite \"{}\"", suite), EINVAL);
  std::string mirror = mirror_in.empty() ? default_mirror() : mirror_in;
  if (mirror.empty())
    return fail("debootstrap: no mirror given and no http(s) URI in the host's apt sources", EINVAL);
  if (!is_http(mirror) || mirror.find_first_of(" \t\n") != std::string::npos)
    return fail(fmt::format("debootstrap: mirror \"{}\" is not an http(s) URL", mirror), EINVAL);
  std::string what = fmt::format("debootstrap of template {} ({} from {})", name, suite, mirror);

  UniqueFd tdir = BH_TRY(context(open_templates_dir(dir_, true), what));
  struct stat st {};
  if (::fstatat(tdir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    return fail(fmt::format("template {} already exists", name), EEXIST);
  ImportContext ctx(progress, cancel);
  Staging staging = BH_TRY(context(Staging::create(tdir.get(), dir_, name), what));

  // The environment of the daemon is not debootstrap's business: a known PATH, the proxy the host's
  // apt uses (from the environment, else from apt.conf.d) and nothing else.
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C",
                                  "DEBIAN_FRONTEND=noninteractive", "HOME=/root"};
  bool have_proxy = false;
  for (char **e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    for (std::string_view k : {"http_proxy=", "https_proxy=", "no_proxy=", "HTTP_PROXY=", "HTTPS_PROXY="})
      if (v.starts_with(k)) {
        env.emplace_back(v);
        have_proxy = have_proxy || k.starts_with("http_proxy") || k.starts_with("HTTP_PROXY");
      }
  }
  if (!have_proxy)
    if (std::string p = apt_http_proxy(); !p.empty())
      env.push_back("http_proxy=" + p);

  std::string rootfs = staging.rootfs_path();
  // minbase is Priority: required + apt, which has no init at all: a system container of it could not
  // boot. systemd-sysv makes /sbin/init systemd (the template then gets SIGRTMIN+3 as stop signal);
  // dbus is what systemctl's peers (hostnamectl, timedatectl, loginctl) and most services talk to.
  // Recommends stay out, as in a minbase.
  Child child = BH_TRY(
      context(spawn_with_output({"debootstrap", "--variant=minbase",
                                 std::string("--include=") + kDebootstrapInclude, suite, rootfs, mirror},
                                env),
              what));
  ctx.report("debootstrap", 0, 0, true);

  std::deque<std::string> tail; // the last lines, for the error message
  std::string partial;
  bool cancelled = false;
  for (;;) {
    if (ctx.cancelled()) {
      cancelled = true;
      ::kill(-child.pid, SIGKILL); // the group: debootstrap's wget, dpkg and chroot children too
      break;
    }
    struct pollfd pfd {
      child.output.get(), POLLIN, 0
    };
    int r = ::poll(&pfd, 1, 200);
    if (r < 0 && errno != EINTR) {
      ::kill(-child.pid, SIGKILL);
      break;
    }
    if (r <= 0)
      continue;
    char buf[4096];
    ssize_t n = ::read(child.output.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    partial.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = partial.find_first_of("\r\n")) != std::string::npos;) {
      std::string line = partial.substr(0, nl);
      partial.erase(0, nl + 1);
      if (line.empty())
        continue;
      ctx.report("debootstrap: " + line, 0, 0, true);
      tail.push_back(line);
      if (tail.size() > 5)
        tail.pop_front();
    }
  }
  int status = BH_TRY(context(wait_child(child.pid), what));
  detach_mounts_under(rootfs); // /proc, /sys or a bind of /dev that a killed debootstrap left
  if (cancelled)
    return fail(fmt::format("{}: cancelled", what), ECANCELED);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string last;
    for (const auto &l : tail)
      last += (last.empty() ? "" : " | ") + l;
    return fail(fmt::format("{}: debootstrap failed ({} {}): {}", what,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), last),
                EIO);
  }

  // debootstrap copies the host's /etc/hostname; systemd would set that over the container's own
  // (the spec's hostname, NAME by default). Without the file it keeps the one it was given.
  ::unlinkat(staging.rootfs_fd(), "etc/hostname", 0);
  // The container's /dev is the runtime's: no device node of the host's kind stays in a template.
  auto dev = open_beneath_nofollow(staging.rootfs_fd(), "dev", O_RDONLY | O_DIRECTORY);
  if (dev)
    BH_CHECK(context(remove_device_nodes(dev->get()), what + ": removing device nodes from /dev"));
  return context(finish_import(staging, name, "debootstrap:" + suite, ctx), what);
}

} // namespace bulkhead::storage
