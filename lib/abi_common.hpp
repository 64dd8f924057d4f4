// What every C entry point shares: the per-thread last error, the options-struct size rule, the
// strings handed to the caller, and a catch-all so no C++ exception crosses the C boundary.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "bulkhead/bulkhead.h"

#define BH_API extern "C" __attribute__((visibility("default")))

namespace bulkhead::abi {

bulkhead_status set_error(bulkhead_status status, std::string message);
inline bulkhead_status ok() { return set_error(BULKHEAD_OK, ""); }

// The extensible-struct rule of docs/abi.md (the kernel's clone3/openat2 rule): `size` must be at
// least the first version's size; bytes beyond what this library knows must be zero. Copies what
// is known into *out (fields the caller's older struct lacks stay zero).
template <class T> bulkhead_status load_options(const T *in, size_t first_size, const char *what, T *out) {
  std::memset(out, 0, sizeof(T));
  out->size = sizeof(T);
  if (in == nullptr)
    return BULKHEAD_OK;
  if (in->size < first_size)
    return set_error(BULKHEAD_E_VERSION, std::string(what) + ": size " + std::to_string(in->size) +
                                             " is smaller than any version of the struct (" +
                                             std::to_string(first_size) + " bytes); use BULKHEAD_INIT");
  if (in->size > sizeof(T)) {
    const auto *extra = reinterpret_cast<const unsigned char *>(in) + sizeof(T);
    for (size_t i = 0; i < in->size - sizeof(T); ++i)
      if (extra[i] != 0)
        return set_error(BULKHEAD_E_VERSION,
                         std::string(what) + ": size " + std::to_string(in->size) +
                             " has fields this library (ABI " + std::to_string(BULKHEAD_ABI_VERSION) + ", " +
                             std::to_string(sizeof(T)) + " bytes) does not know, and they are set");
  }
  std::memcpy(out, in, in->size < sizeof(T) ? in->size : sizeof(T));
  out->size = sizeof(T);
  return BULKHEAD_OK;
}

// A malloc'd copy the caller frees with bulkhead_free.
bulkhead_status give_string(const std::string &s, char **out);

template <class F> bulkhead_status guarded(F &&f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc &) {
    return set_error(BULKHEAD_E_NOMEM, "out of memory");
  } catch (const std::exception &e) {
    return set_error(BULKHEAD_E_FAILED, e.what());
  }
}

// The helper binary: the explicit path, else the environment variable, else the installed one.
std::string helper_path(const char *explicit_path, const char *env_name, const char *installed);

} // namespace bulkhead::abi
