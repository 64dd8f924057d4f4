// The fixture of the NAT and port forward tests (nat_test.cpp, port_test.cpp): bulkheadd in a
// private network namespace (DaemonTest::use_private_netns), whose nf_tables ruleset the tests read
// through libnftables themselves (not through the daemon's code), on a thread that joins that
// netns; and a "neighbour" netns on an uplink veth.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include <gtest/gtest.h>
#include <nftables/libnftables.h>

#include "daemon_fixture.hpp"

namespace bh_test {

class DaemonNatTest : public DaemonTest {
protected:
  void SetUp() override {
    DaemonTest::SetUp();
    use_private_netns();
  }
  void TearDown() override {
    if (nb_fd_ >= 0) {
      (void)ip_in_netns({"link", "del", "up0"});
      ::close(nb_fd_);
    }
    DaemonTest::TearDown();
  }
  // The output of an nft command in the daemon's netns; nullopt when it fails (no such table).
  std::optional<std::string> nft(const std::string &cmd) {
    std::optional<std::string> out;
    std::thread([&] {
      if (::setns(netns_fd_, CLONE_NEWNET) < 0)
        return;
      nft_ctx *c = nft_ctx_new(NFT_CTX_DEFAULT);
      nft_ctx_buffer_output(c);
      nft_ctx_buffer_error(c);
      if (nft_run_cmd_from_buffer(c, cmd.c_str()) == 0)
        out = nft_ctx_get_output_buffer(c);
      nft_ctx_free(c);
    }).join();
    return out;
  }
  std::string ip_forward() {
    auto r = run_command({"nsenter", "--net=" + netns_path(), "cat", "/proc/sys/net/ipv4/ip_forward"});
    return r.out;
  }
  // A "neighbour" netns on the uplink veth up0 (198.18.0.1/30 in the daemon's netns <-> nb0
  // 198.18.0.2/30), with no route to the containers' subnets. The veth goes with TearDown.
  void make_neighbour() {
    std::thread([&] {
      if (::unshare(CLONE_NEWNET) == 0)
        nb_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    }).join();
    ASSERT_GE(nb_fd_, 0);
    std::string nb = neighbour_path();
    ASSERT_TRUE(ip_in_netns({"link", "add", "up0", "type", "veth", "peer", "name", "nb0", "netns", nb}).ok());
    ASSERT_TRUE(ip_in_netns({"addr", "add", "198.18.0.1/30", "dev", "up0"}).ok());
    ASSERT_TRUE(ip_in_netns({"link", "set", "up0", "up"}).ok());
    ASSERT_TRUE(in_neighbour({"ip", "addr", "add", "198.18.0.2/30", "dev", "nb0"}).ok());
    ASSERT_TRUE(in_neighbour({"ip", "link", "set", "nb0", "up"}).ok());
    ASSERT_TRUE(in_neighbour({"ip", "link", "set", "lo", "up"}).ok());
  }
  std::string neighbour_path() const {
    return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(nb_fd_);
  }
  CommandResult in_neighbour(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"nsenter", "--net=" + neighbour_path()});
    return run_command(argv);
  }
  // Deletes up0 (and with it nb0) now; TearDown does it otherwise.
  void remove_neighbour() {
    ASSERT_TRUE(ip_in_netns({"link", "del", "up0"}).ok());
    ::close(nb_fd_);
    nb_fd_ = -1;
  }

  int nb_fd_ = -1;
};

} // namespace bh_test
