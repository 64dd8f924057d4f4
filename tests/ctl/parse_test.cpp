// Argument checking: bad values stop before any request, with one line naming the value.
#include <gtest/gtest.h>

#include "cli/ctl.hpp"
#include "cli/ctl_values.hpp"
#include "fake_daemon.hpp"

using namespace bulkhead::ctl;
using bulkhead::ctl::test::run_ctl;

namespace {

// Parses in-process; returns the exit status when parsing ended the run, -1 when an action is set.
int parse_only(std::vector<std::string> args, std::unique_ptr<Cli> *keep = nullptr) {
  auto cli = make_cli();
  auto done = parse(*cli, std::move(args));
  int result = done ? *done : (cli->action ? -1 : -2);
  if (keep)
    *keep = std::move(cli);
  return result;
}

} // namespace

TEST(CtlParse, ValidCommandLines) {
  EXPECT_EQ(parse_only({"list"}), -1);
  EXPECT_EQ(parse_only({"list", "--json", "--socket", "/x"}), -1);
  EXPECT_EQ(parse_only({"create", "web", "--template", "busybox", "--start", "--restart", "always"}), -1);
  EXPECT_EQ(
      parse_only({"exec", "-t", "--user", "1000", "--env", "A=b", "--cwd", "/tmp", "web", "--", "ls", "-l"}),
      -1);
  EXPECT_EQ(
      parse_only({"template", "create", "deb", "--debootstrap", "bookworm", "--mirror", "http://m/debian"}),
      -1);
  EXPECT_EQ(parse_only({"set", "web", "--pids", "none"}), -1);
  EXPECT_EQ(parse_only({"kill", "web", "HUP"}), -1);
  EXPECT_EQ(parse_only({"logs", "web", "-f"}), -1);
  EXPECT_EQ(parse_only({"net", "attach", "web", "lan0:ipv4=198.18.77.9,egress=10mbit"}), -1);
  EXPECT_EQ(parse_only({"net", "detach", "web", "eth1"}), -1);
}

TEST(CtlParse, SocketFlagAfterTheCommandAndEnv) {
  std::unique_ptr<Cli> cli;
  ASSERT_EQ(parse_only({"template", "list", "--socket", "/run/other.sock"}, &cli), -1);
  EXPECT_EQ(cli->context.socket, "/run/other.sock");
  ASSERT_EQ(parse_only({"list"}, &cli), -1);
  EXPECT_EQ(cli->context.socket, "/run/bulkhead/bulkheadd.sock");
}

TEST(CtlParse, InitTakesTheRest) {
  std::unique_ptr<Cli> cli;
  ASSERT_EQ(parse_only({"create", "web", "--template", "t", "--init", "/sbin/init", "-v"}, &cli), -1);
  ASSERT_TRUE(cli->context.init);
  EXPECT_EQ(*cli->context.init, (std::vector<std::string>{"/sbin/init", "-v"}));
  std::vector<std::string> args = {"--socket", "create", "create", "w", "--init=/bin/sh", "-c", "x"};
  auto init = split_init(args);
  ASSERT_TRUE(init);
  EXPECT_EQ(*init, (std::vector<std::string>{"/bin/sh", "-c", "x"}));
  EXPECT_EQ(args, (std::vector<std::string>{"--socket", "create", "create", "w"}));
  args = {"exec", "w", "--", "--init"};
  EXPECT_FALSE(split_init(args));
}

TEST(CtlParse, BadValuesAreOneLineErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string err;
  };
  const std::vector<Case> cases = {
      {{"create", "web", "--template", "busybox", "--memory", "12Q"},
       "bulkheadctl: --memory: \"12Q\": not a size (examples: 256M, 1.5G, 1048576)\n"},
      {{"create", "web", "--template", "busybox", "--disk", "2X"},
       "bulkheadctl: --disk: \"2X\": not a size (examples: 256M, 1.5G, 1048576)\n"},
      {{"create", "web", "--template", "busybox", "--disk-inodes", "-4"},
       "bulkheadctl: --disk-inodes: \"-4\": not a number of files (a whole number above 0)\n"},
      // The inode count of an ext4 image is fixed at create: set has no such flag.
      {{"set", "web", "--disk-inodes", "100"},
       "bulkheadctl: The following arguments were not expected: 100 --disk-inodes\n"},
      {{"create", "web"}, "bulkheadctl: --template is required\n"},
      {{"create", "Web!", "--template", "busybox"},
       "bulkheadctl: NAME: \"Web!\": not a valid name (lower-case letters, digits and '-', at most 63, not "
       "starting "
       "with '-')\n"},
      {{"create", "web", "--template", "b", "--restart", "sometimes"},
       "bulkheadctl: --restart: \"sometimes\": not a restart policy (no, on-failure, on-failure:N, "
       "always)\n"},
      {{"create", "web", "--template", "b", "--cpus", "0"},
       "bulkheadctl: --cpus: \"0\": not a number of CPUs (a number above 0, e.g. 0.5 or 2)\n"},
      {{"create", "web", "--template", "b", "--env", "NOVALUE"},
       "bulkheadctl: --env: \"NOVALUE\": not KEY=VALUE\n"},
      {{"kill", "web", "SIGFOO"},
       "bulkheadctl: SIGNAL: \"SIGFOO\": not a signal (a name such as TERM or a number)\n"},
      {{"set", "web", "--onboot", "--no-onboot"}, "bulkheadctl: --onboot excludes --no-onboot\n"},
      {{"set", "web"},
       "bulkheadctl: set: nothing to change: give --memory, --cpus, --pids, --disk, --restart, --onboot, "
       "--no-onboot or --net-limit\n"},
      {{"frobnicate"}, "bulkheadctl: The following argument was not expected: frobnicate\n"},
      {{"net", "attach", "web", "lan0:mtu=9000"},
       "bulkheadctl: net attach lan0:mtu=9000: expected ipv4=ADDRESS or ipv6=ADDRESS (or ingress=RATE, "
       "egress=RATE), got \"mtu=9000\"\n"},
      {{"net", "detach", "web"}, "bulkheadctl: NIC is required\n"},
      {{"port", "add", "web", "0:80"},
       "bulkheadctl: port add: \"0:80\": host port '0' is not a port (a number from 1 to 65535)\n"},
      {{"port", "rm", "web", "80/sctp"}, "bulkheadctl: port rm: \"80/sctp\": protocol 'sctp': tcp or udp\n"},
      {{"host", "evacuate", "h2", "--parallel", "0"},
       "bulkheadctl: --parallel: Value 0 not in range 1 to 8\n"},
      {{"host", "evacuate", "h2", "--parallel", "99"},
       "bulkheadctl: --parallel: Value 99 not in range 1 to 8\n"},
      {{"host", "evacuate", "h2", "--cold", "--live"}, "bulkheadctl: --cold excludes --live\n"},
      {{"exec", "web", "ls", "-l"},
       "bulkheadctl: The following argument was not expected: -l (give the command after --: exec NAME -- "
       "CMD...)\n"},
  };
  for (const auto &c : cases) {
    auto args = c.args;
    args.insert(args.begin(), {"--socket", "/nonexistent/bulkheadd.sock"});
    auto r = run_ctl(args);
    EXPECT_EQ(r.status, 1) << c.args[0];
    EXPECT_EQ(r.err, c.err);
    EXPECT_EQ(r.out, "");
  }
}

TEST(CtlParse, SignalsAndRestart) {
  EXPECT_EQ(*normalize_signal("SIGTERM"), "TERM");
  EXPECT_EQ(*normalize_signal("hup"), "HUP");
  EXPECT_EQ(*normalize_signal("9"), "KILL");
  EXPECT_FALSE(normalize_signal("0"));
  EXPECT_FALSE(normalize_signal("99"));
  EXPECT_TRUE(check_restart("on-failure:5"));
  EXPECT_FALSE(check_restart("on-failure:"));
  EXPECT_FALSE(check_restart("on-failure:x"));
  EXPECT_TRUE(check_name("web-1"));
  EXPECT_FALSE(check_name("-web"));
  EXPECT_FALSE(check_name(std::string(64, 'a')));
  EXPECT_TRUE(check_name(std::string(63, 'a')));
}

TEST(CtlParse, VersionHelpAndGeneratedDocs) {
  auto r = run_ctl({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.rfind("bulkheadctl version ", 0), 0u) << r.out;
  r = run_ctl({"create", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--template"), std::string::npos);
  r = run_ctl({"--generate-man"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find(".TH BULKHEADCTL 1"), std::string::npos);
  EXPECT_NE(r.out.find(".SS \"bulkheadctl template import\""), std::string::npos);
  EXPECT_NE(r.out.find("\\fB\\-\\-memory\\fR \\fISIZE\\fR"), std::string::npos);
  EXPECT_EQ(r.out.find("generate"), r.out.find("generate-man.")) << "hidden flags stay hidden";
  r = run_ctl({"--generate-completion"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("complete -o default -F _bulkheadctl bulkheadctl"), std::string::npos);
}
