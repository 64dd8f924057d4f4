// Errors are values: every fallible call returns Result<T>, carrying errno and the context
// needed to act on it ("mounting proc on /proc: Operation not permitted").
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <tl/expected.hpp>
#include <utility>

#include <fmt/core.h>

namespace bulkhead {

struct Error {
  int code = 0;        // errno value, 0 when the failure is not a system error
  std::string message; // what failed, on which path/value

  std::string text() const {
    if (code == 0)
      return message;
    return message + ": " + std::strerror(code);
  }
};

template <class T> using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> fail(std::string message, int code = 0) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Captures errno at the call site, so build the message lazily after the failing call.
inline tl::unexpected<Error> fail_errno(std::string message) { return fail(std::move(message), errno); }

template <class... Args> tl::unexpected<Error> failf(fmt::format_string<Args...> f, Args &&...args) {
  return fail(fmt::format(f, std::forward<Args>(args)...));
}

template <class... Args> tl::unexpected<Error> failf_errno(fmt::format_string<Args...> f, Args &&...args) {
  int saved = errno;
  return fail(fmt::format(f, std::forward<Args>(args)...), saved);
}

// Adds an outer layer of context: "creating container x: mounting /proc: ...".
inline Error with_context(Error e, const std::string &context) {
  e.message = context + ": " + e.message;
  return e;
}

template <class T> Result<T> context(Result<T> r, const std::string &ctx) {
  if (!r)
    return tl::unexpected<Error>(with_context(std::move(r.error()), ctx));
  return r;
}

} // namespace bulkhead

// Unwraps a Result or returns its error from the enclosing function (GNU statement expression).
#define BH_TRY(expr)                                                                                         \
  ({                                                                                                         \
    auto bh_try_result_ = (expr);                                                                            \
    if (!bh_try_result_)                                                                                     \
      return tl::unexpected<::bulkhead::Error>(std::move(bh_try_result_.error()));                           \
    std::move(*bh_try_result_);                                                                              \
  })

// For Result<void>.
#define BH_CHECK(expr)                                                                                       \
  do {                                                                                                       \
    auto bh_check_result_ = (expr);                                                                          \
    if (!bh_check_result_)                                                                                   \
      return tl::unexpected<::bulkhead::Error>(std::move(bh_check_result_.error()));                         \
  } while (0)
