#include "cluster/etcd_client.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace bulkhead::cluster {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// etcd's gateway renders int64 fields as JSON strings ("revision":"4") and omits zero values.
Result<int64_t> json_int(const nlohmann::json &obj, const char *field) {
  if (!obj.is_object() || !obj.contains(field))
    return int64_t{0};
  const auto &v = obj[field];
  if (v.is_number_integer())
    return v.get<int64_t>();
  if (v.is_string()) {
    const auto &s = v.get_ref<const std::string &>();
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size())
      return out;
  }
  return failf("field '{}' is not an integer: {}", field, v.dump());
}

Result<std::pair<std::string, KeyValue>> parse_kv(const nlohmann::json &kv) {
  std::pair<std::string, KeyValue> out;
  out.first = BH_TRY(base64_decode(kv.value("key", std::string())));
  out.second.value = BH_TRY(base64_decode(kv.value("value", std::string())));
  out.second.mod_revision = BH_TRY(json_int(kv, "mod_revision"));
  out.second.lease = BH_TRY(json_int(kv, "lease"));
  return out;
}

// httplib reports a failed connect only as "Connection"; connecting once more ourselves recovers
// the errno that tells a stopped etcd (ECONNREFUSED) from an unreachable host (ETIMEDOUT, ...).
int connect_errno(const std::string &host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return EHOSTUNREACH;
  int err = 0;
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    err = errno;
  } else {
    if (::connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (n == 0) {
          err = ETIMEDOUT;
        } else if (n < 0) {
          err = errno;
        } else {
          socklen_t len = sizeof(err);
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        }
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return err;
}

std::string error_excerpt(const std::string &body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error")) {
    const auto &e = parsed["error"];
    if (e.is_string())
      return e.get<std::string>();
    if (e.is_object() && e.contains("message") && e["message"].is_string())
      return e["message"].get<std::string>();
  }
  std::string excerpt = body.substr(0, 200);
  if (auto nl = excerpt.find('\n'); nl != std::string::npos)
    excerpt.resize(nl);
  return excerpt;
}

} // namespace

std::string base64_encode(const std::string &in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t n = uint8_t(in[i]) << 16;
    if (rest == 2)
      n |= uint8_t(in[i + 1]) << 8;
    out += kB64[(n >> 18) & 63];
    out += kB64[(n >> 12) & 63];
    out += rest == 2 ? kB64[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(const std::string &in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  if (in.size() % 4 != 0)
    return failf("invalid base64 (length {}): '{}'", in.size(), in.substr(0, 40));
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int pad = 0;
    uint32_t n = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = in[i + j];
      // '=' only at the end of the last group, and never in its first two positions.
      if (c == '=' && i + 4 == in.size() && j >= 2 && (j == 3 || in[i + 3] == '=')) {
        ++pad;
        n <<= 6;
        continue;
      }
      int v = value(c);
      if (v < 0 || pad > 0)
        return failf("invalid base64 character at offset {}: '{}'", i + j, in.substr(0, 40));
      n = (n << 6) | uint32_t(v);
    }
    out += char((n >> 16) & 255);
    if (pad < 2)
      out += char((n >> 8) & 255);
    if (pad < 1)
      out += char(n & 255);
  }
  return out;
}

std::string prefix_range_end(const std::string &prefix) {
  std::string end = prefix;
  while (!end.empty() && uint8_t(end.back()) == 0xff)
    end.pop_back();
  if (end.empty())
    return std::string(1, '\0'); // etcd: range_end "\0" means every key >= key
  end.back() = char(uint8_t(end.back()) + 1);
  return end;
}

Result<EtcdClient> EtcdClient::create(std::vector<std::string> endpoints, std::chrono::milliseconds timeout) {
  if (endpoints.empty())
    return fail("etcd client: no endpoints given");
  if (timeout.count() <= 0)
    return failf("etcd client: timeout must be positive, got {} ms", timeout.count());
  std::vector<Endpoint> parsed;
  for (const auto &url : endpoints) {
    // Only plain http: etcd here listens on a trusted local or cluster network (docs/cluster.md).
    constexpr std::string_view scheme = "http://";
    if (url.rfind(scheme, 0) != 0)
      return failf("etcd endpoint '{}': expected http://HOST:PORT", url);
    std::string rest = url.substr(scheme.size());
    while (!rest.empty() && rest.back() == '/')
      rest.pop_back();
    auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos)
      return failf("etcd endpoint '{}': expected http://HOST:PORT", url);
    std::string host = rest.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2); // IPv6 literal
    std::string port_text = rest.substr(colon + 1);
    int port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port <= 0 || port > 65535)
      return failf("etcd endpoint '{}': invalid port '{}'", url, port_text);
    parsed.push_back(Endpoint{url, host, port});
  }
  return EtcdClient(std::move(parsed), std::move(endpoints), timeout);
}

Result<nlohmann::json> EtcdClient::call(const std::string &path, const nlohmann::json &body,
                                        bool idempotent) const {
  const std::string payload = body.dump();
  const auto sec = timeout_.count() / 1000;
  const auto usec = (timeout_.count() % 1000) * 1000;
  std::string unreachable; // one entry per endpoint that refused the connection or did not answer
  for (const auto &ep : endpoints_) {
    httplib::Client client(ep.host, ep.port);
    client.set_connection_timeout(sec, usec);
    client.set_read_timeout(sec, usec);
    client.set_write_timeout(sec, usec);
    client.set_keep_alive(false);
    httplib::Result res = client.Post(path.c_str(), payload, "application/json");
    if (!res) {
      if (res.error() == httplib::Error::Connection) {
        int err = connect_errno(ep.host, ep.port, timeout_);
        if (!unreachable.empty())
          unreachable += "; ";
        unreachable += fmt::format("{}: connecting failed: {}", ep.url,
                                   err ? std::strerror(err) : "connection closed at once");
        continue;
      }
      // A member cut off from its quorum accepts connections and never answers a linearizable
      // read: a request that changes nothing (a read, a lease renewal) goes on to the next member.
      if (idempotent) {
        if (!unreachable.empty())
          unreachable += "; ";
        unreachable += fmt::format("{}: no answer (httplib: {}; read timeout {} ms)", ep.url,
                                   httplib::to_string(res.error()), timeout_.count());
        continue;
      }
      // The request may have reached etcd: retrying elsewhere could apply a txn twice.
      return fail(fmt::format("etcd at {}: POST {}: request failed (httplib: {}; connect/read timeout {} ms)",
                              ep.url, path, httplib::to_string(res.error()), timeout_.count()),
                  ETIMEDOUT);
    }
    // The keepalive endpoint streams: each answer is one JSON object on its own line.
    std::string text = res->body;
    if (auto nl = text.find('\n'); nl != std::string::npos)
      text.resize(nl);
    if (res->status >= 400)
      return failf("etcd at {}: POST {}: HTTP {}: {}", ep.url, path, res->status, error_excerpt(res->body));
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (!parsed.is_object())
      return failf("etcd at {}: POST {}: answer is not a JSON object: '{}'", ep.url, path,
                   text.substr(0, 200));
    if (parsed.contains("error"))
      return failf("etcd at {}: POST {}: {}", ep.url, path, error_excerpt(text));
    return parsed;
  }
  return failf("etcd unreachable (POST {}): {}", path, unreachable);
}

Status EtcdClient::put(const std::string &key, const std::string &value, int64_t lease) const {
  nlohmann::json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease)
    body["lease"] = std::to_string(lease);
  BH_TRY(call("/v3/kv/put", body));
  return {};
}

Result<std::optional<KeyValue>> EtcdClient::get(const std::string &key) const {
  auto res = BH_TRY(call("/v3/kv/range", {{"key", base64_encode(key)}}, true));
  if (!res.contains("kvs") || !res["kvs"].is_array() || res["kvs"].empty())
    return std::optional<KeyValue>();
  auto kv = BH_TRY(context(parse_kv(res["kvs"][0]), "etcd range answer for key '" + key + "'"));
  return std::optional<KeyValue>(std::move(kv.second));
}

Result<std::vector<std::pair<std::string, KeyValue>>> EtcdClient::list(const std::string &prefix) const {
  std::string start = prefix.empty() ? std::string(1, '\0') : prefix;
  auto res = BH_TRY(
      call("/v3/kv/range",
           {{"key", base64_encode(start)}, {"range_end", base64_encode(prefix_range_end(prefix))}}, true));
  std::vector<std::pair<std::string, KeyValue>> out;
  if (res.contains("kvs") && res["kvs"].is_array())
    for (const auto &kv : res["kvs"])
      out.push_back(BH_TRY(context(parse_kv(kv), "etcd range answer for prefix '" + prefix + "'")));
  return out;
}

Result<bool> EtcdClient::remove(const std::string &key) const {
  auto res = BH_TRY(call("/v3/kv/deleterange", {{"key", base64_encode(key)}}));
  return BH_TRY(json_int(res, "deleted")) > 0;
}

Result<int64_t> EtcdClient::remove_prefix(const std::string &prefix) const {
  std::string start = prefix.empty() ? std::string(1, '\0') : prefix;
  auto res = BH_TRY(call("/v3/kv/deleterange", {{"key", base64_encode(start)},
                                                {"range_end", base64_encode(prefix_range_end(prefix))}}));
  return json_int(res, "deleted");
}

Result<int64_t> EtcdClient::grant_lease(int64_t ttl_s, int64_t *granted_ttl_s) const {
  if (ttl_s <= 0)
    return failf("etcd lease: TTL must be positive, got {} s", ttl_s);
  auto res = BH_TRY(call("/v3/lease/grant", {{"TTL", std::to_string(ttl_s)}}));
  int64_t id = BH_TRY(json_int(res, "ID"));
  if (id == 0)
    return failf("etcd lease grant (TTL {} s): answer carries no lease ID: {}", ttl_s, res.dump());
  if (granted_ttl_s)
    *granted_ttl_s = json_int(res, "TTL").value_or(ttl_s);
  return id;
}

Result<int64_t> EtcdClient::keep_alive(int64_t lease) const {
  auto res = BH_TRY(call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}}, true));
  // The streaming gateway wraps each answer in "result".
  const nlohmann::json &answer = res.contains("result") ? res["result"] : res;
  int64_t ttl = BH_TRY(json_int(answer, "TTL"));
  if (ttl <= 0)
    return failf("etcd lease {}: expired or unknown, its keys are gone", lease);
  return ttl;
}

Status EtcdClient::revoke_lease(int64_t lease) const {
  BH_TRY(call("/v3/lease/revoke", {{"ID", std::to_string(lease)}}));
  return {};
}

Result<bool> EtcdClient::txn_put(const std::string &key, const nlohmann::json &compare,
                                 const std::string &value, int64_t lease) const {
  nlohmann::json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease)
    put["lease"] = std::to_string(lease);
  nlohmann::json body = {{"compare", nlohmann::json::array({compare})},
                         {"success", nlohmann::json::array({{{"request_put", put}}})}};
  auto res = BH_TRY(call("/v3/kv/txn", body));
  // "succeeded" is omitted when false (the gateway drops zero values).
  return res.contains("succeeded") && res["succeeded"].is_boolean() && res["succeeded"].get<bool>();
}

Result<bool> EtcdClient::create_if_absent(const std::string &key, const std::string &value,
                                          int64_t lease) const {
  // A key that does not exist has create_revision 0.
  nlohmann::json cmp = {
      {"target", "CREATE"}, {"result", "EQUAL"}, {"key", base64_encode(key)}, {"create_revision", "0"}};
  return txn_put(key, cmp, value, lease);
}

Result<bool> EtcdClient::compare_and_swap(const std::string &key, int64_t expected_mod_revision,
                                          const std::string &value, int64_t lease) const {
  nlohmann::json cmp = {{"target", "MOD"},
                        {"result", "EQUAL"},
                        {"key", base64_encode(key)},
                        {"mod_revision", std::to_string(expected_mod_revision)}};
  return txn_put(key, cmp, value, lease);
}

Result<bool> EtcdClient::txn(const std::vector<Guard> &guards, const nlohmann::json &request) const {
  nlohmann::json compare = nlohmann::json::array();
  for (const auto &g : guards)
    compare.push_back({{"target", "MOD"},
                       {"result", "EQUAL"},
                       {"key", base64_encode(g.key)},
                       {"mod_revision", std::to_string(g.mod_revision)}});
  nlohmann::json body = {{"compare", compare}, {"success", nlohmann::json::array({request})}};
  auto res = BH_TRY(call("/v3/kv/txn", body));
  return res.contains("succeeded") && res["succeeded"].is_boolean() && res["succeeded"].get<bool>();
}

Result<bool> EtcdClient::put_if(const std::vector<Guard> &guards, const std::string &key,
                                const std::string &value, int64_t lease) const {
  nlohmann::json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease)
    put["lease"] = std::to_string(lease);
  return txn(guards, {{"request_put", put}});
}

Result<bool> EtcdClient::remove_if(const std::vector<Guard> &guards, const std::string &key) const {
  return txn(guards, {{"request_delete_range", {{"key", base64_encode(key)}}}});
}

} // namespace bulkhead::cluster
