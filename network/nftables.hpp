// nf_tables through libnftables (Debian libnftables-dev), never by running `nft`: one context per
// call, commands given as nft's own language, applied by the kernel as ONE transaction per buffer
// (a buffer that deletes and re-creates a table replaces it atomically). libnftables speaks
// NETLINK_NETFILTER from the calling thread, so it acts in that thread's network namespace.
#pragma once

#include <string>
#include <string_view>

#include "bulkhead/result.hpp"

namespace bulkhead::net {

// Runs `commands` in one transaction; the error carries libnftables' own message.
Status nft_run(std::string_view commands);

// `list table FAMILY NAME` output (nft's text), or ENOENT when the table does not exist.
Result<std::string> nft_list_table(std::string_view family, std::string_view name);

// Deletes the table if it exists (idempotent, one transaction).
Status nft_delete_table(std::string_view family, std::string_view name);

} // namespace bulkhead::net
