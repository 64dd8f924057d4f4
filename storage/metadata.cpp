#include "storage/metadata.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "bulkhead/unique_fd.hpp"

namespace bulkhead::storage {

using json = nlohmann::json;

std::string info_to_json(const TemplateInfo &info) {
  json j = {{"name", info.name},
            {"source", info.source},
            {"created_unix", info.created_unix},
            {"size_bytes", info.size_bytes},
            {"files", info.files},
            {"init", info.init},
            {"init_present", info.init_present},
            {"stop_signal", info.stop_signal}};
  return j.dump(2) + "\n";
}

Result<TemplateInfo> info_from_json(const std::string &text, const std::string &what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(fmt::format("{}: not a JSON object", what), EINVAL);
  try {
    TemplateInfo info;
    info.name = j.at("name").get<std::string>();
    info.source = j.value("source", "");
    info.created_unix = j.value("created_unix", int64_t{0});
    info.size_bytes = j.value("size_bytes", uint64_t{0});
    info.files = j.value("files", uint64_t{0});
    info.init = j.value("init", std::string("/sbin/init"));
    info.init_present = j.value("init_present", true);
    info.stop_signal = j.value("stop_signal", std::string("SIGPWR"));
    return info;
  } catch (const json::exception &e) {
    return fail(fmt::format("{}: {}", what, e.what()), EINVAL);
  }
}

Status write_durable_at(int dirfd, const std::string &name, const std::string &data,
                        const std::string &what) {
  std::string tmp = "." + name + ".tmp";
  {
    UniqueFd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd)
      return failf_errno("creating {}", what);
    BH_CHECK(write_all(fd.get(), data, what));
    if (::fsync(fd.get()) < 0)
      return failf_errno("fsync of {}", what);
  }
  if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) < 0) {
    auto err = failf_errno("renaming {} into place", what);
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return err;
  }
  if (::fsync(dirfd) < 0)
    return failf_errno("fsync of the directory of {}", what);
  return {};
}

} // namespace bulkhead::storage
