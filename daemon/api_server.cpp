#include "daemon/api_server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "bulkhead/io.hpp"
#include "daemon/daemon.hpp"

namespace bulkhead::daemon {

using nlohmann::json;

namespace {

constexpr size_t kMaxBody = 1 << 20;
// Event streams, log follows and operation waits each hold a thread for their duration.
constexpr size_t kThreads = 32;

std::optional<gid_t> bulkhead_gid() {
  group grp{}, *out = nullptr;
  char buf[4096];
  if (::getgrnam_r("bulkhead", &grp, buf, sizeof buf, &out) == 0 && out)
    return out->gr_gid;
  return std::nullopt;
}

// The peer's credentials as the kernel recorded them at connect time: cpp-httplib 0.11 reports the
// SO_PEERCRED pid of a unix-socket client as the request's remote_port. The *real* uid and gid of
// that process are checked (an exec of a setuid program does not change them), plus its
// supplementary groups. This is the second lock: the first is the socket's 0660 root:bulkhead.
bool peer_allowed(int pid) {
  if (pid <= 0)
    return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  long uid = -1, gid = -1;
  std::vector<long> groups;
  while (std::getline(in, line)) {
    std::istringstream s(line.substr(line.find(':') + 1));
    if (line.rfind("Uid:", 0) == 0)
      s >> uid;
    else if (line.rfind("Gid:", 0) == 0)
      s >> gid;
    else if (line.rfind("Groups:", 0) == 0)
      for (long g; s >> g;)
        groups.push_back(g);
  }
  if (uid == 0)
    return true;
  auto allowed = bulkhead_gid();
  if (uid < 0 || !allowed)
    return false;
  if (gid == static_cast<long>(*allowed))
    return true;
  return std::find(groups.begin(), groups.end(), static_cast<long>(*allowed)) != groups.end();
}

class CheckedServer : public httplib::Server {};

int http_status(const Error &e) {
  switch (e.code) {
  case ENOENT:
    return 404;
  case EEXIST:
  case EBUSY:
  case ENOKEY:       // the cluster's trust: this host holds no key (join first)
  case EKEYREJECTED: // ... or another cluster's
    return 409;
  case EINVAL:
  case ERANGE:
    return 400;
  case EACCES:
  case EPERM:
    return 403;
  case ETIMEDOUT:
    return 504;
  case EOPNOTSUPP: // e.g. an unprivileged create on a host with no id pool (docs/unprivileged.md)
    return 501;
  case ENOSPC: // a full disk, or no free id range left (docs/unprivileged.md)
    return 507;
  default:
    return 500;
  }
}

void reply(httplib::Response &res, int status, const json &body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void reply_error(httplib::Response &res, const Error &e) {
  // A client error reads best without the errno suffix it would add nothing to ("... : Invalid argument").
  int status = http_status(e);
  reply(res, status, {{"error", status == 500 ? e.text() : e.message}});
}

Result<json> parse_body(const httplib::Request &req) {
  if (req.body.empty())
    return json::object();
  try {
    return json::parse(req.body);
  } catch (const json::exception &ex) {
    return fail(std::string("malformed JSON body: ") + ex.what(), EINVAL);
  }
}

template <class T> void answer(httplib::Response &res, int ok_status, const Result<T> &r) {
  if (!r)
    return reply_error(res, r.error());
  if constexpr (std::is_same_v<T, json>)
    reply(res, ok_status, *r);
}

} // namespace

struct ApiServer::Impl {
  Daemon &daemon;
  std::string path;
  CheckedServer server;
};

ApiServer::ApiServer(Daemon &daemon, std::string socket_path)
    : impl_(new Impl{daemon, std::move(socket_path), {}}) {
  auto &d = impl_->daemon;
  auto &s = impl_->server;
  s.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  s.set_payload_max_length(kMaxBody);
  s.set_address_family(AF_UNIX);
  s.set_pre_routing_handler([](const httplib::Request &req, httplib::Response &res) {
    if (peer_allowed(req.remote_port))
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 403;
    res.set_content(
        R"({"error": "permission denied: the bulkheadd API is for root and members of group bulkhead"})"
        "\n",
        "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([](const httplib::Request &req, httplib::Response &res) {
    if (!res.body.empty())
      return;
    std::string msg = res.status == 404   ? "no such endpoint: " + req.method + " " + req.path
                      : res.status == 413 ? "request body larger than 1 MiB"
                                          : "HTTP " + std::to_string(res.status);
    res.set_content(json{{"error", msg}}.dump() + "\n", "application/json");
  });
  s.set_exception_handler([](const httplib::Request &, httplib::Response &res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception &e) {
      what = e.what();
    } catch (...) {
    }
    reply(res, 500, {{"error", what}});
  });

  s.Get("/1.0", [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.server_info()); });
  s.Get("/1.0/containers",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.list()); });
  s.Post("/1.0/containers", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.create(*body));
  });
  s.Get(R"(/1.0/containers/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    answer(res, 200, d.info(req.matches[1]));
  });
  s.Patch(R"(/1.0/containers/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 200, d.set(req.matches[1], *body));
  });
  s.Delete(R"(/1.0/containers/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    bool force = req.has_param("force") && req.get_param_value("force") != "0";
    auto r = d.destroy(req.matches[1], force);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, json::object());
  });
  s.Put(R"(/1.0/containers/([^/]+)/state)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    auto op = d.change_state(req.matches[1], *body);
    if (!op)
      return reply_error(res, op.error());
    reply(res, 202, (*op)->to_json());
  });
  s.Get(R"(/1.0/containers/([^/]+)/console)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto path = d.console_socket(req.matches[1]);
    if (!path)
      return reply_error(res, path.error());
    reply(res, 200, {{"socket", *path}});
  });
  s.Get(R"(/1.0/containers/([^/]+)/logs)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto path = d.log_path(req.matches[1]);
    if (!path)
      return reply_error(res, path.error());
    std::string text = read_file(*path + ".1").value_or("") + read_file(*path).value_or("");
    bool follow = req.has_param("follow") && req.get_param_value("follow") != "0";
    if (!follow) {
      res.set_content(text, "text/plain");
      return;
    }
    auto name = std::string(req.matches[1]);
    std::string log = *path;
    res.set_chunked_content_provider("text/plain", [&d, name, log, text, sent = false, offset = uint64_t{0}](
                                                       size_t, httplib::DataSink &sink) mutable {
      if (!sent) {
        sent = true;
        struct stat st {};
        offset = ::stat(log.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
        if (!text.empty() && !sink.write(text.data(), text.size()))
          return false;
        return true;
      }
      // Follow the current file; a rotation (smaller size) starts again from its beginning.
      for (int i = 0; i < 20; ++i) {
        if (!sink.is_writable())
          return false;
        struct stat st {};
        if (::stat(log.c_str(), &st) == 0) {
          auto size = static_cast<uint64_t>(st.st_size);
          if (size < offset)
            offset = 0;
          if (size > offset) {
            auto all = read_file(log).value_or("");
            if (all.size() > offset) {
              std::string chunk = all.substr(offset);
              offset = all.size();
              return sink.write(chunk.data(), chunk.size());
            }
          }
        }
        if (!d.info(name)) {
          sink.done();
          return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return true;
    });
  });

  // NICs attached to / detached from a container (docs/network.md "Attaching and detaching NICs").
  s.Post(R"(/1.0/containers/([^/]+)/nics)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.attach_nic(req.matches[1], *body));
  });
  s.Delete(R"(/1.0/containers/([^/]+)/nics/([^/]+))",
           [&d](const httplib::Request &req, httplib::Response &res) {
             answer(res, 200, d.detach_nic(req.matches[1], req.matches[2]));
           });

  // Snapshots and backups (docs/snapshots.md).
  auto op_reply = [](httplib::Response &res, const Result<std::shared_ptr<Operation>> &op) {
    if (!op)
      return reply_error(res, op.error());
    reply(res, 202, (*op)->to_json());
  };
  s.Get(R"(/1.0/containers/([^/]+)/snapshots)", [&d](const httplib::Request &req, httplib::Response &res) {
    answer(res, 200, d.snapshots(req.matches[1]));
  });
  s.Post(R"(/1.0/containers/([^/]+)/snapshots)",
         [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
           auto body = parse_body(req);
           if (!body)
             return reply_error(res, body.error());
           op_reply(res, d.create_snapshot(req.matches[1], *body));
         });
  s.Post(R"(/1.0/containers/([^/]+)/snapshots/([^/]+)/restore)",
         [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
           op_reply(res, d.restore_snapshot(req.matches[1], req.matches[2]));
         });
  s.Delete(R"(/1.0/containers/([^/]+)/snapshots/([^/]+))",
           [&d](const httplib::Request &req, httplib::Response &res) {
             auto r = d.remove_snapshot(req.matches[1], req.matches[2]);
             if (!r)
               return reply_error(res, r.error());
             reply(res, 200, json::object());
           });
  s.Post(R"(/1.0/containers/([^/]+)/checkpoint)",
         [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
           auto body = parse_body(req);
           if (!body)
             return reply_error(res, body.error());
           op_reply(res, d.checkpoint(req.matches[1], *body));
         });
  s.Post(R"(/1.0/containers/([^/]+)/restore)",
         [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
           auto body = parse_body(req);
           if (!body)
             return reply_error(res, body.error());
           op_reply(res, d.restore_checkpoint(req.matches[1], *body));
         });
  s.Post(R"(/1.0/containers/([^/]+)/migrate)",
         [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
           auto body = parse_body(req);
           if (!body)
             return reply_error(res, body.error());
           op_reply(res, d.migrate(req.matches[1], *body));
         });
  // Continuous replication (docs/replication.md): protection of a container here, replicas held here.
  s.Post(R"(/1.0/containers/([^/]+)/protect)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    auto r = d.protect(req.matches[1], *body);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, *r);
  });
  s.Delete(R"(/1.0/containers/([^/]+)/protect)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto r = d.unprotect(req.matches[1]);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, *r);
  });
  s.Get("/1.0/replicas",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.replicas()); });
  s.Post(R"(/1.0/replicas/([^/]+)/activate)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto r = d.activate_replica_report(req.matches[1]);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, *r);
  });
  // The etcd-backed cluster this host joined with --cluster (docs/cluster.md "Hosts in the cluster").
  s.Get("/1.0/cluster", [&d](const httplib::Request &, httplib::Response &res) {
    auto r = d.cluster_info();
    if (!r)
      return reply_error(res, with_context(r.error(), "reading the cluster from etcd"));
    reply(res, 200, *r);
  });
  // The cluster's trust (docs/remotes.md "One trust for the whole cluster").
  s.Post("/1.0/cluster/tokens", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.cluster_token(*body));
  });
  s.Post("/1.0/cluster/join", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 200, d.cluster_join(*body));
  });
  // Evacuation of the whole host (docs/migration.md "Evacuating a host").
  s.Get("/1.0/host",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.host_info()); });
  s.Post("/1.0/host/evacuate", [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    op_reply(res, d.evacuate(*body));
  });
  // This host's share of the cluster's containers (docs/migration.md "Rebalancing a cluster").
  s.Post("/1.0/cluster/rebalance", [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    op_reply(res, d.rebalance(*body));
  });
  s.Post(R"(/1.0/containers/([^/]+)/export)",
         [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
           auto body = parse_body(req);
           if (!body)
             return reply_error(res, body.error());
           op_reply(res, d.export_container(req.matches[1], *body));
         });
  s.Post("/1.0/imports", [&d, op_reply](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    op_reply(res, d.import_container(*body));
  });

  // Port forwards (docs/network.md "Port forwards").
  s.Get("/1.0/ports",
        [&d](const httplib::Request &, httplib::Response &res) { answer(res, 200, d.ports("")); });
  s.Get(R"(/1.0/containers/([^/]+)/ports)", [&d](const httplib::Request &req, httplib::Response &res) {
    answer(res, 200, d.ports(req.matches[1]));
  });
  s.Post(R"(/1.0/containers/([^/]+)/ports)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.add_port(req.matches[1], *body));
  });
  s.Delete(R"(/1.0/containers/([^/]+)/ports/([^/]+)/([^/]+))",
           [&d](const httplib::Request &req, httplib::Response &res) {
             auto r = d.remove_port(req.matches[1], req.matches[2], req.matches[3]);
             if (!r)
               return reply_error(res, r.error());
             reply(res, 200, json::object());
           });

  s.Get("/1.0/templates",
        [&d](const httplib::Request &, httplib::Response &res) { answer(res, 200, d.templates()); });
  s.Post("/1.0/templates", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    auto op = d.import_template(*body);
    if (!op)
      return reply_error(res, op.error());
    reply(res, 202, (*op)->to_json());
  });
  s.Get(R"(/1.0/templates/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    answer(res, 200, d.template_info(req.matches[1]));
  });
  s.Delete(R"(/1.0/templates/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto r = d.remove_template(req.matches[1]);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, json::object());
  });

  s.Get("/1.0/networks",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.networks().list()); });
  s.Post("/1.0/networks", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.networks().create(*body));
  });
  s.Get(R"(/1.0/networks/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    answer(res, 200, d.networks().info(req.matches[1]));
  });
  s.Delete(R"(/1.0/networks/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto r = d.remove_network(req.matches[1]);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, json::object());
  });

  // Pairing with other hosts (docs/remotes.md).
  s.Post("/1.0/trust", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.trust_add(*body));
  });
  s.Get("/1.0/trust",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.trust_list()); });
  s.Delete(R"(/1.0/trust/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto r = d.trust_remove(req.matches[1]);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, json::object());
  });
  s.Get("/1.0/remotes",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.remote_list()); });
  s.Post("/1.0/remotes", [&d](const httplib::Request &req, httplib::Response &res) {
    auto body = parse_body(req);
    if (!body)
      return reply_error(res, body.error());
    answer(res, 201, d.remote_add(*body));
  });
  s.Delete(R"(/1.0/remotes/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto r = d.remote_remove(req.matches[1]);
    if (!r)
      return reply_error(res, r.error());
    reply(res, 200, json::object());
  });

  s.Get("/1.0/operations",
        [&d](const httplib::Request &, httplib::Response &res) { reply(res, 200, d.operations().list()); });
  s.Get(R"(/1.0/operations/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto op = d.operations().find(req.matches[1]);
    if (!op)
      return reply(res, 404, {{"error", "operation " + std::string(req.matches[1]) + " does not exist"}});
    reply(res, 200, op->to_json());
  });
  s.Get(R"(/1.0/operations/([^/]+)/wait)", [&d](const httplib::Request &req, httplib::Response &res) {
    auto op = d.operations().find(req.matches[1]);
    if (!op)
      return reply(res, 404, {{"error", "operation " + std::string(req.matches[1]) + " does not exist"}});
    int64_t timeout_ms = -1;
    if (req.has_param("timeout")) {
      try {
        timeout_ms = static_cast<int64_t>(std::stod(req.get_param_value("timeout")) * 1000);
      } catch (const std::exception &) {
        return reply(res, 400, {{"error", "timeout must be a number of seconds"}});
      }
    }
    op->wait(timeout_ms);
    reply(res, 200, op->to_json());
  });
  s.Delete(R"(/1.0/operations/([^/]+))", [&d](const httplib::Request &req, httplib::Response &res) {
    auto op = d.operations().find(req.matches[1]);
    if (!op)
      return reply(res, 404, {{"error", "operation " + std::string(req.matches[1]) + " does not exist"}});
    if (!d.operations().cancel(op->id()))
      return reply(res, 409, {{"error", "operation " + op->id() + " has already finished"}});
    reply(res, 200, op->to_json());
  });

  s.Get("/1.0/events", [&d](const httplib::Request &, httplib::Response &res) {
    auto sub = d.events().subscribe();
    res.set_chunked_content_provider(
        "application/x-ndjson",
        [&d, sub](size_t, httplib::DataSink &sink) {
          if (!sink.is_writable())
            return false;
          if (auto line = sub->next(500)) {
            *line += "\n";
            return sink.write(line->data(), line->size());
          }
          return true;
        },
        [&d, sub](bool) { d.events().unsubscribe(sub); });
  });
  s.Get("/metrics", [&d](const httplib::Request &, httplib::Response &res) {
    res.set_content(d.metrics(), "text/plain; version=0.0.4");
  });
}

ApiServer::~ApiServer() = default;

Status ApiServer::bind() {
  const auto &path = impl_->path;
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return fail("socket path " + path + " is longer than 107 bytes", ENAMETOOLONG);
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
      return failf_errno("creating {}", dir);
  }
  // The root lock is held, so a socket file here is a dead daemon's.
  ::unlink(path.c_str());
  // Created 0600 first (umask), then opened up to the group: no window where others can connect.
  mode_t old = ::umask(0177);
  bool ok = impl_->server.bind_to_port(path, 80);
  ::umask(old);
  if (!ok)
    return fail_errno("binding the API socket " + path);
  auto gid = bulkhead_gid();
  if (gid) {
    if (::chown(path.c_str(), 0, *gid) < 0 || ::chmod(path.c_str(), 0660) < 0)
      return failf_errno("setting the owner/mode of {}", path);
  }
  return {};
}

void ApiServer::serve() { impl_->server.listen_after_bind(); }

void ApiServer::stop() { impl_->server.stop(); }

} // namespace bulkhead::daemon
