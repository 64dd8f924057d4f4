// The bulkheadd client face of the C ABI: daemon/api_client (HTTP + JSON over the unix socket),
// one ApiClient per call so a handle is shared by threads without a lock (ApiClient keeps the last
// HTTP status). exec goes through `bulkheadctl exec` in a spawned helper: it needs the monitor's
// control protocol, which lives in the CLI's code, and the library depends on the client side only.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/api_client.hpp"
#include "lib/abi_common.hpp"
#include "lib/helper_spawn.hpp"

struct bulkhead_client {
  std::string socket;
  std::string ctl_binary;
};

namespace bulkhead::abi {

bulkhead_status exec_args(std::vector<std::string> &argv, const bulkhead_exec_options *options, bool ctl,
                          const char *id);

namespace {

constexpr size_t kClientV1 = sizeof(bulkhead_client_options);

bulkhead_status check(const bulkhead_client *c, const char *name) {
  if (c == nullptr)
    return set_error(BULKHEAD_E_INVALID, "client handle is NULL");
  if (name == nullptr || *name == '\0')
    return set_error(BULKHEAD_E_INVALID, "container name is NULL or empty");
  return BULKHEAD_OK;
}

bulkhead_status answer(const Result<nlohmann::json> &r, char **json_out) {
  if (!r)
    return set_error(BULKHEAD_E_DAEMON, r.error().text());
  if (json_out != nullptr)
    if (auto s = give_string(r->dump(), json_out); s != BULKHEAD_OK)
      return s;
  return ok();
}

bulkhead_status state_action(bulkhead_client *c, const char *name, nlohmann::json request) {
  if (auto s = check(c, name); s != BULKHEAD_OK)
    return s;
  daemon::ApiClient api(c->socket);
  auto op = api.put(daemon::api_path("/1.0/containers/", name, "/state"), request);
  if (!op)
    return set_error(BULKHEAD_E_DAEMON, op.error().text());
  return answer(api.wait_operation(*op), nullptr);
}

} // namespace
} // namespace bulkhead::abi

using namespace bulkhead::abi;
using bulkhead::daemon::api_path;
using bulkhead::daemon::ApiClient;

BH_API bulkhead_status bulkhead_client_new(const bulkhead_client_options *options, bulkhead_client **out) {
  return guarded([&] {
    if (out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "out (bulkhead_client **) is NULL");
    *out = nullptr;
    bulkhead_client_options o;
    if (auto s = load_options(options, kClientV1, "bulkhead_client_options", &o); s != BULKHEAD_OK)
      return s;
    auto c = std::make_unique<bulkhead_client>();
    c->socket = o.socket != nullptr ? o.socket : bulkhead::daemon::kDefaultSocket;
    if (c->socket.empty())
      return set_error(BULKHEAD_E_INVALID, "client options: socket is empty");
    c->ctl_binary = helper_path(o.ctl_binary, "BULKHEADCTL_BINARY", BULKHEAD_INSTALLED_CTL);
    *out = c.release();
    return ok();
  });
}

BH_API void bulkhead_client_free(bulkhead_client *c) { delete c; }

BH_API bulkhead_status bulkhead_client_list(bulkhead_client *c, char **json_out) {
  return guarded([&] {
    if (c == nullptr)
      return set_error(BULKHEAD_E_INVALID, "client handle is NULL");
    if (json_out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "json_out is NULL");
    ApiClient api(c->socket);
    return answer(api.get("/1.0/containers"), json_out);
  });
}

BH_API bulkhead_status bulkhead_client_info(bulkhead_client *c, const char *name, char **json_out) {
  return guarded([&] {
    if (auto s = check(c, name); s != BULKHEAD_OK)
      return s;
    if (json_out == nullptr)
      return set_error(BULKHEAD_E_INVALID, "json_out is NULL");
    ApiClient api(c->socket);
    return answer(api.get(api_path("/1.0/containers/", name)), json_out);
  });
}

BH_API bulkhead_status bulkhead_client_create(bulkhead_client *c, const char *request_json, char **json_out) {
  return guarded([&] {
    if (c == nullptr)
      return set_error(BULKHEAD_E_INVALID, "client handle is NULL");
    if (request_json == nullptr)
      return set_error(BULKHEAD_E_INVALID, "request_json is NULL");
    auto body = nlohmann::json::parse(request_json, nullptr, false);
    if (!body.is_object())
      return set_error(BULKHEAD_E_INVALID, "request_json is not a JSON object");
    ApiClient api(c->socket);
    return answer(api.post("/1.0/containers", body), json_out);
  });
}

BH_API bulkhead_status bulkhead_client_start(bulkhead_client *c, const char *name) {
  return guarded([&] { return state_action(c, name, {{"action", "start"}}); });
}

BH_API bulkhead_status bulkhead_client_stop(bulkhead_client *c, const char *name, int timeout_s) {
  return guarded([&] {
    if (timeout_s < 0)
      return set_error(BULKHEAD_E_INVALID, "stop timeout " + std::to_string(timeout_s) + " is negative");
    nlohmann::json req = {{"action", "stop"}};
    if (timeout_s > 0)
      req["timeout"] = timeout_s;
    return state_action(c, name, req);
  });
}

BH_API bulkhead_status bulkhead_client_exec(bulkhead_client *c, const char *name,
                                            const bulkhead_exec_options *options, int *exit_status) {
  return guarded([&] {
    if (auto s = check(c, name); s != BULKHEAD_OK)
      return s;
    if (c->ctl_binary.empty() || c->ctl_binary[0] != '/')
      return set_error(BULKHEAD_E_INVALID, "bulkheadctl \"" + c->ctl_binary + "\" is not an absolute path");
    std::vector<std::string> argv = {c->ctl_binary, "--socket", c->socket, "exec"};
    if (auto s = exec_args(argv, options, true, name); s != BULKHEAD_OK)
      return s;
    auto r = run_helper(argv, "", Stdio::Inherit);
    if (!r)
      return set_error(BULKHEAD_E_SPAWN, r.error().text());
    if (exit_status != nullptr)
      *exit_status = r->exit_status;
    return ok();
  });
}
