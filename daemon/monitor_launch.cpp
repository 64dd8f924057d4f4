// The monitor's inputs as JSON: the daemon's launch line and the watch-mode hand-over.
#include <set>

#include "daemon/monitor.hpp"

namespace bulkhead::daemon {

namespace {

using json = nlohmann::json;

Status check_keys(const json &j, const std::set<std::string> &keys, const char *what) {
  if (!j.is_object())
    return failf("{}: expected a JSON object", what);
  for (const auto &[k, v] : j.items())
    if (!keys.count(k))
      return failf("{}: unknown key {:?}", what, k);
  for (const auto &k : keys)
    if (!j.contains(k))
      return failf("{}: missing key {:?}", what, k);
  return {};
}

Result<std::string> string_at(const json &j, const char *key, bool absolute, bool may_be_empty = false) {
  const json &v = j.at(key);
  if (!v.is_string())
    return failf("monitor launch: {:?} must be a string", key);
  std::string s = v.get<std::string>();
  if (s.empty() && may_be_empty)
    return s;
  if (s.empty() || (absolute && s[0] != '/'))
    return failf("monitor launch: {:?} must be an absolute path, not {:?}", key, s);
  return s;
}

template <class T> Result<T> number_at(const json &j, const char *key, const char *what) {
  const json &v = j.at(key);
  if (!v.is_number_integer())
    return failf("{}: {:?} must be an integer", what, key);
  return v.get<T>();
}

} // namespace

Result<MonitorLaunch> launch_from_json(const json &given) {
  json j = given;
  std::string restore_images;
  if (j.contains("restore_images")) { // optional
    restore_images = BH_TRY(string_at(j, "restore_images", true));
    j.erase("restore_images");
  }
  bool systemd_cgroup = false;
  if (j.contains("systemd_cgroup")) { // optional: false
    if (!j["systemd_cgroup"].is_boolean())
      return fail("monitor launch: \"systemd_cgroup\" must be true or false");
    systemd_cgroup = j["systemd_cgroup"].get<bool>();
    j.erase("systemd_cgroup");
  }
  BH_CHECK(check_keys(j,
                      {"config", "lower", "upper", "work", "rootfs", "bundle", "oci_root", "cgroups_path",
                       "init_path", "lxcfs_dir", "socket", "log", "log_max", "state_file", "exit_file"},
                      "monitor launch"));
  MonitorLaunch l;
  l.config = BH_TRY(context(config_from_json(j.at("config")), "monitor launch: config"));
  l.lower = BH_TRY(string_at(j, "lower", true));
  l.upper = BH_TRY(string_at(j, "upper", true));
  l.work = BH_TRY(string_at(j, "work", true));
  l.rootfs = BH_TRY(string_at(j, "rootfs", true));
  l.bundle = BH_TRY(string_at(j, "bundle", true));
  l.oci_root = BH_TRY(string_at(j, "oci_root", true));
  l.cgroups_path = BH_TRY(string_at(j, "cgroups_path", false, true));
  l.init_path = BH_TRY(string_at(j, "init_path", true));
  l.lxcfs_dir = BH_TRY(string_at(j, "lxcfs_dir", true, true));
  l.socket = BH_TRY(string_at(j, "socket", true));
  l.log = BH_TRY(string_at(j, "log", true));
  const json &max = j.at("log_max");
  if (!max.is_number_unsigned() || max.get<uint64_t>() < 4096)
    return fail("monitor launch: \"log_max\" must be an integer of at least 4096 (bytes)");
  l.log_max = max.get<uint64_t>();
  l.state_file = BH_TRY(string_at(j, "state_file", true));
  l.exit_file = BH_TRY(string_at(j, "exit_file", true));
  l.restore_images = std::move(restore_images);
  l.systemd_cgroup = systemd_cgroup;
  if (l.config.name.empty())
    return fail("monitor launch: config.name is empty");
  return l;
}

json launch_to_json(const MonitorLaunch &l) {
  json j{{"config", to_json(l.config)},
         {"lower", l.lower},
         {"upper", l.upper},
         {"work", l.work},
         {"rootfs", l.rootfs},
         {"bundle", l.bundle},
         {"oci_root", l.oci_root},
         {"cgroups_path", l.cgroups_path},
         {"init_path", l.init_path},
         {"lxcfs_dir", l.lxcfs_dir},
         {"socket", l.socket},
         {"log", l.log},
         {"log_max", l.log_max},
         {"state_file", l.state_file},
         {"exit_file", l.exit_file}};
  if (!l.restore_images.empty())
    j["restore_images"] = l.restore_images;
  if (l.systemd_cgroup)
    j["systemd_cgroup"] = true;
  return j;
}

json watch_to_json(const WatchState &w) {
  return json{{"name", w.name},
              {"oci_root", w.oci_root},
              {"bundle", w.bundle},
              {"rootfs", w.rootfs},
              {"socket", w.socket},
              {"log", w.log},
              {"exit_file", w.exit_file},
              {"log_max", w.log_max},
              {"init_pid", w.init_pid},
              {"init_start_time", w.init_start_time},
              {"monitor_pid", w.monitor_pid},
              {"monitor_start_time", w.monitor_start_time},
              {"started_unix", w.started_unix},
              {"gid", w.gid},
              {"pty_master", w.pty_master},
              {"listen_fd", w.listen_fd},
              {"init_pidfd", w.init_pidfd},
              {"log_fd", w.log_fd}};
}

Result<WatchState> watch_from_json(const json &j) {
  const char *what = "monitor watch state";
  BH_CHECK(check_keys(j,
                      {"name", "oci_root", "bundle", "rootfs", "socket", "log", "exit_file", "log_max",
                       "init_pid", "init_start_time", "monitor_pid", "monitor_start_time", "started_unix",
                       "gid", "pty_master", "listen_fd", "init_pidfd", "log_fd"},
                      what));
  WatchState w;
  for (auto [key, field] : {std::pair{"name", &w.name},
                            {"oci_root", &w.oci_root},
                            {"bundle", &w.bundle},
                            {"rootfs", &w.rootfs},
                            {"socket", &w.socket},
                            {"log", &w.log},
                            {"exit_file", &w.exit_file}}) {
    if (!j.at(key).is_string())
      return failf("{}: {:?} must be a string", what, key);
    *field = j.at(key).get<std::string>();
  }
  w.log_max = BH_TRY(number_at<uint64_t>(j, "log_max", what));
  w.init_pid = BH_TRY(number_at<int>(j, "init_pid", what));
  w.init_start_time = BH_TRY(number_at<uint64_t>(j, "init_start_time", what));
  w.monitor_pid = BH_TRY(number_at<int>(j, "monitor_pid", what));
  w.monitor_start_time = BH_TRY(number_at<uint64_t>(j, "monitor_start_time", what));
  w.started_unix = BH_TRY(number_at<int64_t>(j, "started_unix", what));
  w.gid = BH_TRY(number_at<int>(j, "gid", what));
  w.pty_master = BH_TRY(number_at<int>(j, "pty_master", what));
  w.listen_fd = BH_TRY(number_at<int>(j, "listen_fd", what));
  w.init_pidfd = BH_TRY(number_at<int>(j, "init_pidfd", what));
  w.log_fd = BH_TRY(number_at<int>(j, "log_fd", what));
  return w;
}

} // namespace bulkhead::daemon
