#include "daemon/api_client.hpp"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "bulkhead/unique_fd.hpp"

namespace bulkhead::daemon {

namespace {

// Plain requests may take as long as the daemon's own work (a forced destroy stops the container);
// operations are polled in short /wait calls, so this bound only catches a hung daemon.
constexpr time_t kRequestTimeoutS = 300;
// Streams (events, logs -f) are idle for as long as nothing happens; httplib's poll() takes
// milliseconds in an int, so 20 days is about the longest bound it can carry.
constexpr time_t kStreamTimeoutS = 20 * 24 * 3600;

std::unique_ptr<httplib::Client> make_client(const std::string &socket_path, time_t read_timeout_s) {
  // With AF_UNIX, httplib takes the host as the socket path; the port is ignored.
  auto c = std::make_unique<httplib::Client>(socket_path, 80);
  c->set_address_family(AF_UNIX);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(read_timeout_s, 0);
  c->set_write_timeout(30, 0);
  // Otherwise the Host header would carry the socket path.
  c->set_default_headers({{"Host", "bulkheadd"}, {"Accept", "application/json"}});
  return c;
}

std::string transport_error(const std::string &socket_path, httplib::Error e) {
  return "talking to bulkheadd at " + socket_path + ": " + httplib::to_string(e);
}

} // namespace

std::string api_path(std::string_view prefix, std::string_view name, std::string_view suffix) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out(prefix);
  for (unsigned char ch : name) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  out += suffix;
  return out;
}

std::string error_message(int status, const std::string &body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string() &&
      !parsed["error"].get<std::string>().empty())
    return parsed["error"].get<std::string>();
  std::string excerpt = body.substr(0, 200);
  while (!excerpt.empty() && (excerpt.back() == '\n' || excerpt.back() == '\r'))
    excerpt.pop_back();
  if (auto nl = excerpt.find('\n'); nl != std::string::npos)
    excerpt.resize(nl);
  if (excerpt.empty())
    return "bulkheadd answered HTTP " + std::to_string(status);
  return "bulkheadd answered HTTP " + std::to_string(status) + ": " + excerpt;
}

// httplib reports only "Connection": a connect() of our own recovers the errno that tells a
// daemon that is not running from a socket the caller may not open.
Error ApiClient::unreachable() const {
  int err = 0;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (!fd) {
    err = errno;
  } else if (socket_path_.size() >= sizeof(addr.sun_path)) {
    err = ENAMETOOLONG;
  } else {
    socket_path_.copy(addr.sun_path, socket_path_.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0)
      err = errno;
  }
  if (err == EACCES || err == EPERM)
    return Error{0, "permission denied on " + socket_path_ +
                        ": bulkheadctl must run as root or as a member of group 'bulkhead'"};
  std::string why = err ? std::strerror(err) : "the connection failed";
  return Error{0, "cannot reach bulkheadd at " + socket_path_ + ": " + why +
                      "; start it with 'systemctl start bulkheadd' or 'bulkheadd --foreground'"};
}

Result<std::string> ApiClient::raw_request(const char *method, const std::string &path,
                                           const std::string *body) {
  last_status_ = 0;
  auto client = make_client(socket_path_, kRequestTimeoutS);
  httplib::Request req;
  req.method = method;
  req.path = path;
  if (body) {
    req.body = *body;
    req.set_header("Content-Type", "application/json");
  }
  httplib::Result res = client->send(req);
  if (!res) {
    if (res.error() == httplib::Error::Connection)
      return tl::unexpected(unreachable());
    return fail(transport_error(socket_path_, res.error()));
  }
  last_status_ = res->status;
  if (res->status >= 400)
    return fail(error_message(res->status, res->body));
  return std::move(res->body);
}

Result<nlohmann::json> ApiClient::request(const char *method, const std::string &path,
                                          const nlohmann::json *body) {
  std::string text;
  if (body) {
    std::string encoded = body->dump();
    text = BH_TRY(raw_request(method, path, &encoded));
  } else {
    text = BH_TRY(raw_request(method, path, nullptr));
  }
  if (text.empty())
    return nlohmann::json::object();
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded())
    return fail(std::string(method) + " " + path +
                ": bulkheadd answered something that is not JSON: " + text.substr(0, 120));
  return parsed;
}

Result<std::string> ApiClient::get_text(const std::string &path) { return raw_request("GET", path, nullptr); }

Result<nlohmann::json> ApiClient::wait_operation(const nlohmann::json &operation,
                                                 const ProgressFn &on_progress) {
  if (!operation.is_object() || !operation.contains("id") || !operation["id"].is_string())
    return fail("bulkheadd answered an operation without an \"id\": " + operation.dump().substr(0, 200));
  if (on_progress)
    on_progress(operation);
  return wait_operation(operation["id"].get<std::string>(), on_progress);
}

Result<nlohmann::json> ApiClient::wait_operation(const std::string &id, const ProgressFn &on_progress) {
  // Short bounded waits rather than one long one: each answer carries fresh progress to show.
  const std::string path = api_path("/1.0/operations/", id, "/wait?timeout=" + std::to_string(poll_seconds_));
  bool cancel_sent = false;
  for (;;) {
    if (cancel_flag_ && *cancel_flag_ && !cancel_sent) {
      cancel_sent = true;
      // Refused when it already ended (or cannot be cancelled): the wait below tells which.
      (void)del(api_path("/1.0/operations/", id));
    }
    auto asked = std::chrono::steady_clock::now();
    nlohmann::json op = BH_TRY(get(path));
    if (!op.is_object() || !op.contains("status") || !op["status"].is_string())
      return fail("operation " + id + ": bulkheadd answered an object without \"status\"");
    if (on_progress)
      on_progress(op);
    const std::string status = op["status"].get<std::string>();
    if (status == "running") {
      // A daemon that answers at once (no bounded wait) must not be polled in a tight loop.
      if (std::chrono::steady_clock::now() - asked < std::chrono::milliseconds(50))
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (status == "success")
      return op;
    std::string why = op.value("error", std::string());
    if (why.empty())
      why = status == "cancelled" ? "cancelled" : "failed without a reason";
    return fail(why);
  }
}

Status ApiClient::stream_raw(const std::string &path, const ChunkFn &on_data) {
  last_status_ = 0;
  auto client = make_client(socket_path_, kStreamTimeoutS);
  std::string error_body;
  bool stopped = false;
  httplib::Result res = client->Get(
      path,
      [&](const httplib::Response &r) {
        last_status_ = r.status;
        return true;
      },
      [&](const char *data, size_t len) {
        if (last_status_ >= 400) {
          error_body.append(data, len);
          return true;
        }
        if (!on_data(std::string_view(data, len))) {
          stopped = true;
          return false;
        }
        return true;
      });
  if (stopped)
    return {};
  if (!res) {
    if (res.error() == httplib::Error::Connection)
      return tl::unexpected(unreachable());
    return fail(transport_error(socket_path_, res.error()));
  }
  last_status_ = res->status;
  if (res->status >= 400)
    return fail(error_message(res->status, error_body.empty() ? res->body : error_body));
  return {};
}

Status ApiClient::stream(const std::string &path, const LineFn &on_line) {
  std::string pending;
  bool stopped = false;
  auto done = stream_raw(path, [&](std::string_view data) {
    pending.append(data);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      if (!on_line(line)) {
        stopped = true;
        return false;
      }
    }
    pending.erase(0, start);
    return true;
  });
  if (!done)
    return done;
  if (!stopped && !pending.empty())
    on_line(pending);
  return {};
}

} // namespace bulkhead::daemon
