// Phase 2 of the monitor: one poll loop over init's pidfd, SIGCHLD (exec workers), the control
// socket, the pty master and the clients. No threads, one 4 KiB stack buffer, one small record per
// client; the container never waits for us (pty output is always read, slow clients lose bytes).
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <list>

#include "bulkhead/io.hpp"
#include "bulkhead/runtime.hpp"
#include "daemon/monitor.hpp"
#include "daemon/monitor_checkpoint.hpp"
#include "daemon/monitor_console_log.hpp"
#include "daemon/monitor_exec.hpp"
#include "daemon/monitor_io.hpp"
#include "storage/overlay.hpp"

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxRequest = 64 * 1024;

struct Client {
  UniqueFd fd;
  std::string request;       // bytes of the request line so far
  std::vector<UniqueFd> fds; // SCM_RIGHTS that came with it
  bool console = false;      // attached: raw relay with the pty master
  pid_t worker = 0;          // a tty exec's worker: resize lines become SIGWINCH to it
  bool closed = false;       // erased after the poll round, so iterators held for it stay valid
};

void warn(const std::string &m) { (void)write_all(STDERR_FILENO, m + "\n", "stderr"); }

class Monitor {
public:
  explicit Monitor(WatchState &w)
      : w_(w), pty_(w.pty_master), listen_(w.listen_fd), pidfd_(w.init_pidfd),
        log_(w.log, UniqueFd(w.log_fd), w.log_max) {}

  int run();

private:
  void on_pty();
  void on_accept();
  void on_client(Client &c);
  void dispatch(Client &c, std::string_view extra);
  void reap_workers();
  void drain_pty();
  int finish(const siginfo_t &info);
  static void close(Client &c) {
    c.fd.reset();
    c.fds.clear();
    c.closed = true;
  }
  static void reply_and_close(Client &c, const json &reply) {
    (void)send_line(c.fd.get(), reply.dump());
    close(c);
  }

  WatchState &w_;
  UniqueFd pty_, listen_, pidfd_, sigfd_;
  ConsoleLog log_;
  std::list<Client> clients_;
  std::vector<pid_t> workers_;
  UniqueFd pty_peer_;    // our own slave fd: the master never hangs up when the container closes
                         // its console, so poll never spins on POLLHUP
  bool pty_hup_ = false; // without pty_peer_, no slave open: re-polled on a 1 s timer
  // The one checkpoint worker at a time, and whether a finished one dumped and stopped the
  // container (init's exit is then a checkpoint, not a crash: exit_file says so).
  pid_t ckpt_worker_ = 0;
  bool ckpt_stop_ = false;
  bool checkpointed_ = false;
  void reaped_checkpoint(int status) {
    checkpointed_ = ckpt_stop_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    ckpt_worker_ = 0;
  }
  // A daemon that dropped a checkpoint waits until the worker closed the connection, which it does
  // only by exiting; the exit may not have reached our signalfd yet when the next request comes.
  // So a worker still there is given a moment (20 ms at most: an exiting worker takes
  // microseconds) before the request is refused.
  bool reap_ending_checkpoint() {
    for (int i = 0; i < 20 && ckpt_worker_; ++i) {
      int status = 0;
      if (::waitpid(ckpt_worker_, &status, WNOHANG) == ckpt_worker_)
        reaped_checkpoint(status);
      else
        ::usleep(1000);
    }
    return ckpt_worker_ == 0;
  }
};

void Monitor::on_pty() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(pty_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN)
      return;
    if (n <= 0) { // EIO: the last slave fd closed; the master stays ours
      pty_hup_ = true;
      return;
    }
    std::string_view data(buf, static_cast<size_t>(n));
    log_.write(data);
    for (auto &c : clients_)
      if (c.console && !c.closed &&
          ::send(c.fd.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
          errno != EINTR)
        close(c);
    if (static_cast<size_t>(n) < sizeof buf)
      return;
  }
}

void Monitor::on_accept() {
  for (;;) {
    UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn)
      return;
    if (auto ok = check_peer(conn.get(), w_.gid); !ok) {
      (void)send_line(conn.get(), json{{"error", ok.error().text()}}.dump());
      continue;
    }
    clients_.push_back(Client{std::move(conn), {}, {}, false});
  }
}

void Monitor::on_client(Client &c) {
  char buf[4096];
  if (c.worker) {
    // The worker owns the reply; we only read the client's resize lines. The socket is blocking
    // (for the worker), hence MSG_DONTWAIT.
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) {
      close(c);
      return;
    }
    c.request.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = c.request.find('\n')) != std::string::npos;) {
      json line = json::parse(c.request.substr(0, nl), nullptr, false);
      c.request.erase(0, nl + 1);
      if (line.is_object() && line.value("op", "") == "resize")
        ::kill(c.worker, SIGWINCH);
    }
    if (c.request.size() > kMaxRequest)
      close(c);
    return;
  }
  if (c.console) {
    ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n <= 0) {
      close(c); // detached; the container does not notice
      return;
    }
    // Never block on the pty: input beyond what its buffer takes is dropped.
    (void)!::write(pty_.get(), buf, static_cast<size_t>(n));
    return;
  }
  struct iovec iov {
    buf, sizeof buf
  };
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)] = {};
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(c.fd.get(), &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
        c.fds.emplace_back(fd);
      }
    }
  if (n <= 0 || (mh.msg_flags & MSG_CTRUNC)) {
    if (n > 0)
      reply_and_close(c, json{{"error", "at most 3 file descriptors may come with a request"}});
    else
      close(c);
    return;
  }
  std::string_view got(buf, static_cast<size_t>(n));
  auto nl = got.find('\n');
  c.request.append(got.substr(0, nl));
  if (c.request.size() > kMaxRequest) {
    reply_and_close(c, json{{"error", fmt::format("request longer than {} bytes", kMaxRequest)}});
    return;
  }
  if (nl != std::string_view::npos)
    dispatch(c, got.substr(nl + 1));
}

void Monitor::dispatch(Client &c, std::string_view extra) {
  json req = json::parse(c.request, nullptr, false);
  c.request.clear();
  c.request.shrink_to_fit();
  if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string()) {
    reply_and_close(c, json{{"error", "request: expected a JSON object with a string \"op\""}});
    return;
  }
  std::string op = req["op"].get<std::string>();
  if (op == "status") {
    if (req.size() != 1)
      return reply_and_close(c, json{{"error", "status: unexpected keys"}});
    reply_and_close(c, json{{"monitor_pid", w_.monitor_pid},
                            {"monitor_start_time", w_.monitor_start_time},
                            {"init_pid", w_.init_pid},
                            {"init_start_time", w_.init_start_time},
                            {"started_unix", w_.started_unix}});
  } else if (op == "console") {
    if (req.size() != 1)
      return reply_and_close(c, json{{"error", "console: unexpected keys"}});
    if (auto ok = send_line(c.fd.get(), R"({"ok":true})"); !ok) {
      close(c);
      return;
    }
    c.console = true;
    c.fds.clear();
    if (!extra.empty())
      (void)!::write(pty_.get(), extra.data(), extra.size());
  } else if (op == "exec") {
    auto r = exec_request_from_json(req);
    if (!r)
      return reply_and_close(c, json{{"error", r.error().text()}});
    // The worker answers on the connection; make it blocking for the worker's plain writes.
    int fl = ::fcntl(c.fd.get(), F_GETFL);
    ::fcntl(c.fd.get(), F_SETFL, fl & ~O_NONBLOCK);
    auto pid = spawn_exec_worker(w_, *r, c.fd.get(), c.fds);
    if (!pid)
      return reply_and_close(c, json{{"error", pid.error().text()}});
    workers_.push_back(*pid);
    if (r->tty) {
      // Kept open (the worker has its own copy) for the client's resize lines.
      c.worker = *pid;
      c.fds.clear();
      if (!extra.empty())
        c.request.assign(extra);
    } else {
      close(c); // the worker holds the connection now
    }
  } else if (op == "checkpoint") {
    if (ckpt_worker_ && !reap_ending_checkpoint())
      return reply_and_close(c, json{{"error", "a checkpoint of this container is already running"}});
    auto r = checkpoint_request_from_json(req);
    if (!r)
      return reply_and_close(c, json{{"error", r.error().text()}});
    int fl = ::fcntl(c.fd.get(), F_GETFL);
    ::fcntl(c.fd.get(), F_SETFL, fl & ~O_NONBLOCK);
    auto pid = spawn_checkpoint_worker(w_, *r, c.fd.get());
    if (!pid)
      return reply_and_close(c, json{{"error", pid.error().text()}});
    ckpt_worker_ = *pid;
    ckpt_stop_ = r->stop;
    close(c); // the worker holds the connection now
  } else {
    reply_and_close(c,
                    json{{"error", fmt::format("unknown op {:?} (status, console, exec, checkpoint)", op)}});
  }
}

void Monitor::reap_workers() {
  signalfd_siginfo si;
  while (::read(sigfd_.get(), &si, sizeof si) == sizeof si) {
  }
  int status = 0;
  if (ckpt_worker_ && ::waitpid(ckpt_worker_, &status, WNOHANG) == ckpt_worker_)
    reaped_checkpoint(status);
  // partition, not remove_if: the reaped pids must stay readable behind the running ones.
  auto reaped = std::partition(workers_.begin(), workers_.end(),
                               [](pid_t p) { return ::waitpid(p, nullptr, WNOHANG) != p; });
  // Our copy of a finished tty exec's connection goes too, so its client sees the end.
  for (auto it = reaped; it != workers_.end(); ++it)
    for (auto &c : clients_)
      if (c.worker == *it)
        close(c);
  workers_.erase(reaped, workers_.end());
}

void Monitor::drain_pty() {
  pty_hup_ = false;
  for (int i = 0; i < 64 && !pty_hup_; ++i) {
    struct pollfd p {
      pty_.get(), POLLIN, 0
    };
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
      return;
    on_pty();
  }
}

int Monitor::finish(const siginfo_t &info) {
  drain_pty();
  clients_.clear(); // console clients see EOF
  // Exec workers end with the container's pid namespace; give them a moment to reply.
  for (int i = 0; i < 20 && !workers_.empty(); ++i) {
    struct pollfd p {
      sigfd_.get(), POLLIN, 0
    };
    ::poll(&p, 1, 100);
    reap_workers();
  }
  // A dump that stopped the container ends with its worker deleting the runtime state: wait for
  // it, so the two never delete at once.
  int status = 0;
  while (ckpt_worker_ && ::waitpid(ckpt_worker_, &status, 0) < 0 && errno == EINTR) {
  }
  if (ckpt_worker_)
    reaped_checkpoint(status);
  RuntimeOptions ro;
  ro.root = w_.oci_root;
  ro.log = [](LogLevel level, const std::string &m) {
    if (level != LogLevel::Debug)
      warn(m);
  };
  if (auto r = Runtime(ro).remove(w_.name, DeleteOptions{true}); !r && !checkpointed_)
    warn("deleting container " + w_.name + ": " + r.error().text());
  if (auto r = storage::unmount_overlay(w_.rootfs); !r)
    warn(r.error().text());
  if (::unlink(w_.socket.c_str()) < 0 && errno != ENOENT)
    warn(fmt::format("removing {}: {}", w_.socket, std::strerror(errno)));
  // Killed by signal N: code 128+N as a shell reports it, signal N (2 = SIGINT after a poweroff
  // or halt in the pid namespace, 1 = SIGHUP after a reboot).
  bool killed = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  int signal = killed ? info.si_status : 0;
  int code = killed ? 128 + signal : info.si_status;
  json exit = {{"code", code}, {"signal", signal}, {"at", unix_now()}};
  if (checkpointed_)
    exit["checkpointed"] = true;
  auto written = write_durable(w_.exit_file, exit.dump());
  if (!written) {
    warn(written.error().text());
    return 1;
  }
  return 0;
}

int Monitor::run() {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  sigfd_.reset(::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC));
  for (int fd : {pty_.get(), listen_.get()})
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  pty_peer_.reset(::ioctl(pty_.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  std::vector<struct pollfd> pfds;
  std::vector<std::list<Client>::iterator> owners;
  for (;;) {
    pfds.assign({{pidfd_.get(), POLLIN, 0},
                 {sigfd_.get(), POLLIN, 0},
                 {listen_.get(), POLLIN, 0},
                 {pty_hup_ ? -1 : pty_.get(), POLLIN, 0}});
    owners.clear();
    for (auto it = clients_.begin(); it != clients_.end(); ++it) {
      pfds.push_back({it->fd.get(), POLLIN, 0});
      owners.push_back(it);
    }
    int n = ::poll(pfds.data(), pfds.size(), pty_hup_ ? 1000 : -1);
    if (n < 0 && errno != EINTR) {
      warn(fmt::format("poll: {}", std::strerror(errno)));
      return 1;
    }
    if (n <= 0) {
      pty_hup_ = false; // a process may have opened /dev/console again
      continue;
    }
    if (pfds[0].revents) {
      siginfo_t info{};
      if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) == 0)
        return finish(info);
      warn(fmt::format("waitid on init's pidfd: {}", std::strerror(errno)));
      return 1;
    }
    if (pfds[1].revents)
      reap_workers();
    if (pfds[3].revents & POLLIN)
      on_pty();
    else if (pfds[3].revents & (POLLHUP | POLLERR))
      pty_hup_ = true;
    for (size_t i = 4; i < pfds.size(); ++i)
      if (pfds[i].revents)
        if (!owners[i - 4]->closed)
          on_client(*owners[i - 4]);
    clients_.remove_if([](const Client &c) { return c.closed; });
    if (pfds[2].revents)
      on_accept();
  }
}

} // namespace

int watch_container(WatchState &w) { return Monitor(w).run(); }

} // namespace bulkhead::daemon
