#include "cli/passwd.hpp"

#include <charconv>

#include "bulkhead/io.hpp"

namespace bulkhead::cli {

std::optional<std::string> user_name_in(std::string_view passwd, uid_t uid) {
  while (!passwd.empty()) {
    size_t eol = passwd.find('\n');
    std::string_view line = passwd.substr(0, eol);
    passwd = eol == std::string_view::npos ? std::string_view{} : passwd.substr(eol + 1);
    size_t c1 = line.find(':');
    if (c1 == 0 || c1 == std::string_view::npos || line.front() == '#')
      continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos)
      continue;
    size_t c3 = line.find(':', c2 + 1);
    std::string_view field = line.substr(c2 + 1, c3 == std::string_view::npos ? c3 : c3 - c2 - 1);
    uid_t value = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (ec != std::errc{} || end != field.data() + field.size() || field.empty())
      continue;
    if (value == uid)
      return std::string(line.substr(0, c1));
  }
  return std::nullopt;
}

std::optional<std::string> user_name(uid_t uid, const std::string &path) {
  auto text = read_file(path);
  if (!text)
    return std::nullopt;
  return user_name_in(*text, uid);
}

} // namespace bulkhead::cli
