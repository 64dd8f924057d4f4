// CRIU 3.17's nftables network lock, and the table it leaves behind in a restored namespace.
//
// CRIU locks a dumped tree's network with an nftables table `inet CRIU-<root pid>` whose input and
// output chains drop every packet but its own. When the tree's network namespace is dumped too, the
// ruleset CRIU saves (nftables-<id>.img, nft's text) contains that table, so the restore brings it
// back; CRIU 3.17's unlock then deletes `CRIU-<the restored root's pid>`, a name that is not there
// (CRIU 3.18 records the dump's name in the inventory; 3.17 does not), and the restored container
// would drop every packet. bulkhead takes the table names from the images before the restore and
// deletes them at CRIU's "network-unlock" notification, while the tree is still stopped.
#pragma once

#include <string>
#include <vector>

#include "bulkhead/result.hpp"

namespace bulkhead::migration {

// The names (e.g. "CRIU-4242") of the inet tables named CRIU-<digits> in the nftables images of
// `images_dir` (an open directory); none when the network namespace was not dumped.
std::vector<std::string> criu_lock_tables(int images_dir);

// Deletes the inet tables `names` in the network namespace `netns` (an fd), one nf_tables
// transaction each over NETLINK_NETFILTER (no libnftables: the static `bulkhead` binary links this
// and Debian ships no libnftables.a). A table already gone is fine.
Status delete_inet_tables(int netns, const std::vector<std::string> &names);

} // namespace bulkhead::migration
