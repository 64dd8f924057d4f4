#include "fake_daemon.hpp"

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace bulkhead::ctl::test {

std::string temp_dir() {
  char tmpl[] = "/tmp/bulkhead-ctl-test.XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

FakeDaemon::FakeDaemon() : dir_(temp_dir()), socket_(dir_ + "/bulkheadd.sock") {
  server_.set_address_family(AF_UNIX);
}

void FakeDaemon::start() {
  // bind_to_port binds and listens, so clients can connect as soon as it returns.
  if (!server_.bind_to_port(socket_, 80))
    throw std::runtime_error("binding " + socket_ + " failed");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
}

FakeDaemon::~FakeDaemon() {
  server_.stop();
  if (thread_.joinable())
    thread_.join();
  std::filesystem::remove_all(dir_);
}

void FakeDaemon::record(const httplib::Request &req) {
  std::lock_guard lock(mutex_);
  std::string path = req.path;
  if (!req.params.empty()) {
    std::string query;
    for (const auto &[k, v] : req.params)
      query += (query.empty() ? "?" : "&") + k + "=" + v;
    path += query;
  }
  requests_.push_back({req.method, path, req.body});
}

std::vector<Request> FakeDaemon::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

void FakeDaemon::handle(const std::string &method, const std::string &path,
                        httplib::Server::Handler handler) {
  // Recorded in the handler, where the body has been read, before the answer goes out.
  auto recorded = [this, handler](const httplib::Request &req, httplib::Response &res) {
    record(req);
    handler(req, res);
  };
  if (method == "GET")
    server_.Get(path, recorded);
  else if (method == "POST")
    server_.Post(path, recorded);
  else if (method == "PUT")
    server_.Put(path, recorded);
  else if (method == "PATCH")
    server_.Patch(path, recorded);
  else if (method == "DELETE")
    server_.Delete(path, recorded);
  else
    throw std::invalid_argument("FakeDaemon::handle: method " + method);
}

void FakeDaemon::answer(const std::string &method, const std::string &path, int status,
                        const std::string &body) {
  handle(method, path, [status, body](const httplib::Request &, httplib::Response &res) {
    res.status = status;
    res.set_content(body, "application/json");
  });
}

namespace {

std::string slurp(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

RunResult run_ctl(const std::vector<std::string> &args, const RunOptions &options) {
  std::string dir = temp_dir();
  std::string out_path = dir + "/out", err_path = dir + "/err";
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC"};
  env.insert(env.end(), options.env.begin(), options.env.end());
  std::vector<char *> argv, envp;
  static std::string binary = BULKHEADCTL_BINARY;
  argv.push_back(binary.data());
  std::vector<std::string> args_copy = args;
  for (auto &a : args_copy)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto &e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0)
      ::_exit(126);
    if (options.as_nobody && (::setgroups(0, nullptr) < 0 || ::setgid(65534) < 0 || ::setuid(65534) < 0))
      ::_exit(125);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  RunResult r;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid)
    throw std::runtime_error("running bulkheadctl failed");
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::filesystem::remove_all(dir);
  return r;
}

} // namespace bulkhead::ctl::test
