// Typed client of bulkheadd's HTTP API (docs/api.md) over its unix socket. It never prints or
// exits: every outcome is a Result, so bulkheadctl and the planned C ABI share it.
#pragma once

#include <csignal>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bulkhead/result.hpp"

namespace bulkhead::daemon {

inline constexpr const char *kDefaultSocket = "/run/bulkhead/bulkheadd.sock";

class ApiClient {
public:
  explicit ApiClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // JSON requests. A 4xx/5xx answer becomes an Error whose message is the body's "error" text;
  // an empty 2xx body is an empty object.
  Result<nlohmann::json> get(const std::string &path) { return request("GET", path, nullptr); }
  Result<nlohmann::json> post(const std::string &path, const nlohmann::json &body) {
    return request("POST", path, &body);
  }
  Result<nlohmann::json> put(const std::string &path, const nlohmann::json &body) {
    return request("PUT", path, &body);
  }
  Result<nlohmann::json> patch(const std::string &path, const nlohmann::json &body) {
    return request("PATCH", path, &body);
  }
  Result<nlohmann::json> del(const std::string &path) { return request("DELETE", path, nullptr); }

  // A GET whose answer is not JSON (logs), returned as is.
  Result<std::string> get_text(const std::string &path);

  // Waits for an operation to finish, calling on_progress with each Operation object seen on the
  // way (the first one included). Success returns the final Operation; "failure" and "cancelled"
  // become an Error carrying the operation's own error text.
  using ProgressFn = std::function<void(const nlohmann::json &operation)>;
  Result<nlohmann::json> wait_operation(const std::string &id, const ProgressFn &on_progress = {});
  // The 202 answer of a request is an Operation: waits for it (see wait_operation).
  Result<nlohmann::json> wait_operation(const nlohmann::json &operation, const ProgressFn &on_progress = {});

  // Streams a long answer (events, logs?follow=1). on_line gets each line without its '\n' (a last
  // unterminated line too); returning false stops the stream, which is then a success.
  using LineFn = std::function<bool(std::string_view line)>;
  Status stream(const std::string &path, const LineFn &on_line);
  // The same, with the bytes as they arrive (console output is not line-shaped).
  using ChunkFn = std::function<bool(std::string_view data)>;
  Status stream_raw(const std::string &path, const ChunkFn &on_data);

  const std::string &socket_path() const { return socket_path_; }
  // HTTP status of the last answer (0 when none arrived), for callers that branch on 404/409.
  int last_status() const { return last_status_; }

  // Seconds to poll /wait with before reporting progress again; tests shorten nothing else.
  void set_poll_seconds(int s) { poll_seconds_ = s; }
  // While an operation is waited for, a non-zero *flag (set by a signal handler, e.g. on Ctrl-C)
  // asks the daemon once to cancel it; the wait goes on until the daemon says how it ended.
  void set_cancel_flag(const volatile std::sig_atomic_t *flag) { cancel_flag_ = flag; }

private:
  Result<nlohmann::json> request(const char *method, const std::string &path, const nlohmann::json *body);
  Result<std::string> raw_request(const char *method, const std::string &path, const std::string *body);
  Error unreachable() const;

  std::string socket_path_;
  int last_status_ = 0;
  int poll_seconds_ = 1;
  const volatile std::sig_atomic_t *cancel_flag_ = nullptr;
};

// "/1.0/containers/" + name, with name percent-encoded where it is not [A-Za-z0-9._~-].
std::string api_path(std::string_view prefix, std::string_view name, std::string_view suffix = "");

// The one-line message a 4xx/5xx answer stands for: the body's "error" text when it is the API's
// error object, else the status and the start of the body.
std::string error_message(int status, const std::string &body);

} // namespace bulkhead::daemon
