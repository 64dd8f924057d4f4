#include <csignal>
#include <cstring>
#include <string>

#include "bulkhead/runtime.hpp"

namespace bulkhead {

Result<int> parse_signal(const std::string &text) {
  if (text.empty())
    return fail("empty signal");
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    char *end = nullptr;
    long v = std::strtol(text.c_str(), &end, 10);
    if (*end || v < 0 || v >= NSIG)
      return failf("invalid signal {:?}", text);
    return static_cast<int>(v);
  }
  std::string name;
  for (char c : text)
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0)
    name = name.substr(3);
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    const char *abbrev = ::sigabbrev_np(sig);
    if (abbrev && name == abbrev)
      return sig;
  }
  if (name.rfind("RTMIN", 0) == 0 || name.rfind("RTMAX", 0) == 0) {
    int base = name[2] == 'M' && name[3] == 'I' ? SIGRTMIN : SIGRTMAX;
    std::string rest = name.substr(5);
    if (rest.empty())
      return base;
    long off = std::strtol(rest.c_str(), nullptr, 10);
    int sig = static_cast<int>(base + off);
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
      return sig;
  }
  return failf("unknown signal {:?}", text);
}

} // namespace bulkhead
