// Messages of the create handshake (see the table in create.cpp). One message per SEQPACKET
// record: a fixed header and an optional text payload (error text, state JSON).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bulkhead/result.hpp"

namespace bulkhead::runtime {

enum class Msg : uint32_t {
  Go = 1,       // parent -> child: placed in the cgroup, carry on (payload: its host path, or empty)
  InitPid,      // intermediate -> parent: value = host pid of init
  UsernsReady,  // child -> parent: write my id maps
  UsernsMapped, // parent -> child
  MountsReady,  // child -> parent: mounts done, run prestart/createRuntime hooks
  HooksDone,    // parent -> child: payload = state JSON for createContainer hooks
  Ready,        // child -> parent: blocked before exec, create may return
  Error,        // either way: payload = error text
};

struct Message {
  Msg type{};
  int32_t value = 0;
  int32_t code = 0; // errno carried with Error
  std::string payload;
};

Status send_msg(int fd, Msg type, int32_t value = 0, std::string_view payload = {}, int32_t code = 0);
// EOF (peer gone) is an error with code EPIPE.
Result<Message> recv_msg(int fd);
// Sends an Error carrying an Error value; best effort (the peer may be gone).
void send_error(int fd, const Error &e);

} // namespace bulkhead::runtime
