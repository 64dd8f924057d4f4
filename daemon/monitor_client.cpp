#include "daemon/monitor_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "bulkhead/fd_passing.hpp"
#include "daemon/monitor_io.hpp"
#include "daemon/monitor_protocol.hpp"

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxReply = 64 * 1024;

Result<json> read_reply(int fd, const std::string &socket_path) {
  std::string line = BH_TRY(context(read_line(fd, kMaxReply), "monitor " + socket_path));
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return failf("monitor {}: reply is not a JSON object: {:?}", socket_path, line);
  if (j.contains("error")) {
    std::string e = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
    return failf("monitor {}: {}", socket_path, e);
  }
  return j;
}

Result<UniqueFd> request(const std::string &socket_path, const json &req, const std::vector<int> &fds = {}) {
  UniqueFd s = BH_TRY(connect_unix_socket(socket_path, "monitor control socket"));
  if (auto sent = send_line(s.get(), req.dump(), fds); !sent) {
    // A peer the monitor refuses (SO_PEERCRED) gets its answer at once, and the connection closes
    // before our line is read: the refusal is then still there to read, and says more than EPIPE.
    if (sent.error().code == EPIPE || sent.error().code == ECONNRESET)
      if (auto reply = read_reply(s.get(), socket_path); !reply)
        return tl::unexpected(reply.error());
    return tl::unexpected(with_context(sent.error(), "monitor " + socket_path));
  }
  return s;
}

// One reply line of a checkpoint: an error, or `key` true.
Status checkpoint_reply(int fd, const std::string &socket_path, const char *key) {
  json reply = BH_TRY(read_reply(fd, socket_path));
  if (!reply.value(key, false))
    return failf("monitor {}: unexpected checkpoint reply {}", socket_path, reply.dump());
  return {};
}

} // namespace

Result<int> monitor_exec(const std::string &socket_path, const ExecRequest &r, int in_fd, int out_fd,
                         int err_fd, int winch_fd) {
  UniqueFd s = BH_TRY(request(socket_path, exec_request_to_json(r), {in_fd, out_fd, err_fd}));
  if (r.tty && winch_fd >= 0) {
    // Until the reply arrives, relay window changes. The reply is the only thing the monitor side
    // ever writes, so "readable" means it is there (or the connection ended).
    for (;;) {
      struct pollfd p[2] = {{s.get(), POLLIN, 0}, {winch_fd, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR)
          continue;
        return failf_errno("monitor {}: waiting for the exec to end", socket_path);
      }
      if (p[0].revents)
        break;
      if (p[1].revents) {
        char drain[256];
        (void)!::read(winch_fd, drain, sizeof drain);
        // A lost resize is harmless (the next one carries the then-current size).
        (void)send_line(s.get(), R"({"op":"resize"})", {});
      }
    }
  }
  json reply = BH_TRY(read_reply(s.get(), socket_path));
  if (!reply.contains("exit") || !reply["exit"].is_number_integer())
    return failf("monitor {}: exec reply without an exit status: {}", socket_path, reply.dump());
  return reply["exit"].get<int>();
}

Result<int> monitor_console(const std::string &socket_path) {
  UniqueFd s = BH_TRY(request(socket_path, json{{"op", "console"}}));
  json reply = BH_TRY(read_reply(s.get(), socket_path));
  if (!reply.value("ok", false))
    return failf("monitor {}: unexpected console reply {}", socket_path, reply.dump());
  return s.release();
}

Result<json> monitor_status(const std::string &socket_path) {
  UniqueFd s = BH_TRY(request(socket_path, json{{"op", "status"}}));
  return read_reply(s.get(), socket_path);
}

namespace {

// Asks for a checkpoint (monitor.cpp's table), with its parent images when there are any.
Result<UniqueFd> ask_checkpoint(const std::string &socket_path, json req, const std::string &parent) {
  if (!parent.empty())
    req["parent"] = parent;
  return request(socket_path, req);
}

// Asks for a checkpoint and reads the first reply, which must say `key`.
Result<UniqueFd> checkpoint_request(const std::string &socket_path, json req, const std::string &parent,
                                    const char *key) {
  UniqueFd s = BH_TRY(ask_checkpoint(socket_path, std::move(req), parent));
  BH_CHECK(checkpoint_reply(s.get(), socket_path, key));
  return s;
}

} // namespace

Status monitor_checkpoint(const std::string &socket_path, const std::string &images, bool stop, bool pre_dump,
                          const std::string &parent) {
  json req{{"op", "checkpoint"}, {"images", images}, {"stop", stop}};
  if (pre_dump)
    req["pre_dump"] = true;
  return checkpoint_request(socket_path, req, parent, "ok").map([](auto &&) {});
}

Result<MonitorDump> MonitorDump::prepare(const std::string &socket_path, const std::string &images, bool stop,
                                         const std::string &parent) {
  auto d = BH_TRY(request(socket_path, images, stop, parent));
  BH_CHECK(d.ready());
  return d;
}

Result<MonitorDump> MonitorDump::request(const std::string &socket_path, const std::string &images, bool stop,
                                         const std::string &parent) {
  json req{{"op", "checkpoint"}, {"images", images}, {"stop", stop}, {"wait_for_go", true}};
  UniqueFd s = BH_TRY(ask_checkpoint(socket_path, std::move(req), parent));
  return MonitorDump(socket_path, std::move(s), false);
}

Status MonitorDump::ready() {
  if (ready_)
    return {};
  if (!conn_)
    return failf("monitor {}: this checkpoint was already asked for", socket_);
  BH_CHECK(checkpoint_reply(conn_.get(), socket_, "ready"));
  ready_ = true;
  return {};
}

MonitorDump::~MonitorDump() {
  if (!conn_)
    return;
  // The worker reads EOF, ends its CRIU, answers and exits: its end closes only then.
  ::shutdown(conn_.get(), SHUT_WR);
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  char buf[512];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    struct pollfd p {
      conn_.get(), POLLIN, 0
    };
    if (left.count() <= 0)
      return;
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      return;
    ssize_t n = ::read(conn_.get(), buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
      return;
  }
}

Status MonitorDump::dump(const std::string &images, const std::string &parent) {
  if (!conn_)
    return failf("monitor {}: this checkpoint was already asked for", socket_);
  BH_CHECK(ready());
  json go{{"op", "go"}};
  if (!images.empty()) {
    go["images"] = images;
    go["parent"] = parent;
  }
  BH_CHECK(context(send_line(conn_.get(), go.dump()), "monitor " + socket_));
  UniqueFd s = std::move(conn_);
  return checkpoint_reply(s.get(), socket_, "ok");
}

} // namespace bulkhead::daemon
