// Internal operations shared by the lifecycle commands.
#pragma once

#include <functional>
#include <string>

#include "bulkhead/runtime.hpp"
#include "oci/state.hpp"
#include "runtime/state_store.hpp"

namespace bulkhead::runtime {

struct CreatedContainer {
  int pid = 0;
  bool terminal = false; // the pty master was sent over the console socket
};

// console_fd: an already connected console socket (foreground `run` relays the pty itself);
// otherwise CreateOptions::console_socket is connected when the process wants a terminal.
Result<CreatedContainer> create_container(const RuntimeOptions &ro, const std::string &id,
                                          const CreateOptions &co, int console_fd = -1);
Status start_container(const RuntimeOptions &ro, const std::string &id);
Result<int> exec_in_container(const RuntimeOptions &ro, const std::string &id, const ExecOptions &o);
Status checkpoint_container(const RuntimeOptions &ro, const std::string &id, const CheckpointOptions &o);
// What a restorer that is the tree's parent for good (bulkheadd's monitor) hands restore instead of
// paths: an already connected console socket, and the network namespace the tree gets in place of
// the one it was dumped with (the dump had --empty-ns network: its NICs were made afresh here).
// A tree in a user namespace cannot take a namespace made outside it (root inside would have no
// power over it): CRIU makes that one afresh, and setup_netns(pid of the restored init) fills it
// before anything of the tree is restored in it.
struct RestoreFds {
  int console_fd = -1;
  int netns_fd = -1;
  std::function<Status(pid_t)> setup_netns;
};
Result<int> restore_container(const RuntimeOptions &ro, const std::string &id, const RestoreOptions &o,
                              RestoreFds fds = {});
Status delete_container(const RuntimeOptions &ro, const std::string &id, bool force);

std::string compute_status(const ContainerDir &dir, const ContainerRecord &rec);
oci::State to_state(const ContainerRecord &rec, const std::string &status);
std::string state_json(const ContainerRecord &rec, const std::string &status);

void log_warning(const RuntimeOptions &ro, const std::string &msg);
// What the runtime does, step by step (`--debug`); never from a cloned child.
void log_debug(const RuntimeOptions &ro, const std::string &msg);

} // namespace bulkhead::runtime
