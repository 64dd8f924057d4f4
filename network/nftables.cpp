#include "network/nftables.hpp"

#include <cerrno>
#include <memory>

#include <fmt/format.h>
#include <nftables/libnftables.h>

namespace bulkhead::net {

namespace {

struct CtxDeleter {
  void operator()(nft_ctx *c) const { nft_ctx_free(c); }
};
using Ctx = std::unique_ptr<nft_ctx, CtxDeleter>;

// Output and errors go to buffers (never to the daemon's stdout/stderr).
Result<Ctx> make_ctx() {
  Ctx c(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!c)
    return fail("libnftables: nft_ctx_new failed", ENOMEM);
  if (nft_ctx_buffer_output(c.get()) != 0 || nft_ctx_buffer_error(c.get()) != 0)
    return fail("libnftables: cannot buffer output", ENOMEM);
  return c;
}

std::string trimmed(const char *s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

} // namespace

Status nft_run(std::string_view commands) {
  auto c = make_ctx();
  if (!c)
    return tl::unexpected(c.error());
  std::string buf(commands);
  if (nft_run_cmd_from_buffer(c->get(), buf.c_str()) != 0) {
    std::string err = trimmed(nft_ctx_get_error_buffer(c->get()));
    int code = err.find("No such file or directory") != std::string::npos ? ENOENT : EINVAL;
    return fail(fmt::format("nftables: {}", err.empty() ? "command failed" : err), code);
  }
  return {};
}

Result<std::string> nft_list_table(std::string_view family, std::string_view name) {
  auto c = make_ctx();
  if (!c)
    return tl::unexpected(c.error());
  std::string cmd = fmt::format("list table {} {}", family, name);
  if (nft_run_cmd_from_buffer(c->get(), cmd.c_str()) != 0) {
    std::string err = trimmed(nft_ctx_get_error_buffer(c->get()));
    if (err.find("No such file or directory") != std::string::npos)
      return fail(fmt::format("nftables: no table {} {}", family, name), ENOENT);
    return fail(fmt::format("nftables: {}: {}", cmd, err), EINVAL);
  }
  return std::string(nft_ctx_get_output_buffer(c->get()));
}

Status nft_delete_table(std::string_view family, std::string_view name) {
  // "add table" is a no-op on an existing table, so the delete always finds one.
  return nft_run(fmt::format("add table {0} {1}\ndelete table {0} {1}\n", family, name));
}

} // namespace bulkhead::net
