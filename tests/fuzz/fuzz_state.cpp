// state.json records under --root: parsed by every command. A record that parses must survive a
// save/load round trip unchanged, and turn into the state object `state` prints.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "oci/parse.hpp"
#include "runtime/state_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace bulkhead;
  auto rec = runtime::parse_record(std::string_view(reinterpret_cast<const char *>(data), size), "fuzz");
  if (!rec)
    return 0;
  std::string saved = runtime::record_json(*rec);
  auto again = runtime::parse_record(saved, "fuzz (round trip)");
  if (!again || runtime::record_json(*again) != saved)
    std::abort(); // what save writes, load must read back as it was
  return 0;
}
