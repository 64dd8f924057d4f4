// A real HTTP server on a temp unix socket serving canned API answers, and a runner for the real
// bulkheadctl binary: the tests check what the client sends and prints, over a real connection.
#pragma once

#include <httplib.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace bulkhead::ctl::test {

struct Request {
  std::string method, path, body;
};

class FakeDaemon {
public:
  FakeDaemon();
  ~FakeDaemon();
  httplib::Server &server() { return server_; }
  // Starts serving; the routes must be set before.
  void start();
  const std::string &socket() const { return socket_; }
  const std::string &dir() const { return dir_; }
  std::vector<Request> requests();
  // Routes whose requests are recorded.
  void handle(const std::string &method, const std::string &path, httplib::Server::Handler handler);
  // A fixed JSON answer with a status.
  void answer(const std::string &method, const std::string &path, int status, const std::string &body);

private:
  void record(const httplib::Request &req);
  httplib::Server server_;
  std::thread thread_;
  std::string dir_, socket_;
  std::mutex mutex_;
  std::vector<Request> requests_;
};

struct RunResult {
  int status = -1; // exit status, or 128+N when killed by signal N
  std::string out, err;
};

struct RunOptions {
  std::vector<std::string> env; // added to a minimal environment (PATH, TZ=UTC)
  bool as_nobody = false;
};

RunResult run_ctl(const std::vector<std::string> &args, const RunOptions &options = {});

std::string temp_dir();

} // namespace bulkhead::ctl::test
