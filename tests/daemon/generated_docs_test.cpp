// The man pages and bash completions of bulkheadd and bulkhead (the OCI CLI), generated from their
// CLI11 definitions by the hidden --generate-man / --generate-completion (issue 11 item 3), as
// tests/ctl/parse_test.cpp checks bulkheadctl's: valid roff, every flag, hidden flags left out, and
// a completion script that bash accepts and that completes what the binary parses.
#include <gtest/gtest.h>

#include "../integration/harness.hpp"
#include "daemon_fixture.hpp"

namespace {

using bh_test::contains;
using bh_test::run_command;

std::string bulkhead_path() { return BULKHEAD_BINARY; }

// The first line of both outputs says which flag generated them; the hidden flags must not be elsewhere.
std::string without_first_line(const std::string &s) { return s.substr(s.find('\n') + 1); }

// groff's warnings (-ww) on the page; empty when it renders cleanly. "" also when groff is missing.
std::string groff_warnings(const std::string &page) {
  std::string path = ::testing::TempDir() + "/page.roff";
  EXPECT_TRUE(bh_test::write_file(path, page));
  auto r = run_command(
      {"sh", "-c", "command -v groff >/dev/null || exit 0; groff -man -Tutf8 -ww -z \"$0\"", path});
  return r.out + r.err;
}

// Runs the completion function of `script` on the command line `words` (the last one being
// completed) and returns COMPREPLY, one candidate a line.
std::string complete(const std::string &script, const std::string &function, const std::string &words) {
  std::string path = ::testing::TempDir() + "/completion.bash";
  EXPECT_TRUE(bh_test::write_file(path, script));
  auto r = run_command({"bash", "-c",
                        "source \"$0\"; read -ra COMP_WORDS <<<\"$1\"; [[ $1 == *' ' ]] && COMP_WORDS+=('');"
                        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); " +
                            function + "; for w in \"${COMPREPLY[@]}\"; do echo \"$w\"; done",
                        path, words});
  EXPECT_EQ(r.exit_code, 0) << r;
  return r.out;
}

TEST(GeneratedDocs, BulkheaddManPage) {
  auto r = run_command({bh_test::bulkheadd_path(), "--generate-man"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string &man = r.out;
  EXPECT_TRUE(contains(man, ".TH BULKHEADD 8")) << man;
  EXPECT_TRUE(contains(man, "bulkheadd \\- the bulkhead hosting daemon"));
  for (const char *flag : {"\\fB\\-\\-root\\fR", "\\fB\\-\\-socket\\fR", "\\fB\\-\\-cgroup\\-parent\\fR",
                           "\\fB\\-\\-no\\-lxcfs\\fR", "\\fB\\-\\-stop\\-containers\\-on\\-exit\\fR"})
    EXPECT_TRUE(contains(man, flag)) << flag;
  EXPECT_TRUE(contains(man, "(default: /var/lib/bulkhead)"));
  // No subcommands: no COMMAND in the synopsis, no COMMANDS section.
  EXPECT_FALSE(contains(man, "COMMAND")) << man;
  EXPECT_FALSE(contains(without_first_line(man), "generate")) << "hidden flags stay hidden";
  EXPECT_TRUE(contains(man, ".SH SEE ALSO\nbulkheadctl(1)"));
  EXPECT_EQ(groff_warnings(man), "");
  // The generator needs neither root nor a daemon; --help does not list the hidden flags either.
  r = run_command({bh_test::bulkheadd_path(), "--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(contains(r.out, "generate")) << r.out;
}

TEST(GeneratedDocs, BulkheaddCompletion) {
  auto r = run_command({bh_test::bulkheadd_path(), "--generate-completion"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(contains(r.out, "complete -o default -F _bulkheadd bulkheadd")) << r.out;
  EXPECT_EQ(complete(r.out, "_bulkheadd", "bulkheadd --so"), "--socket\n");
  EXPECT_EQ(complete(r.out, "_bulkheadd", "bulkheadd --stop"), "--stop-containers-on-exit\n");
  EXPECT_EQ(complete(r.out, "_bulkheadd", "bulkheadd --root /var/lib/bulkhead --no"), "--no-lxcfs\n");
  // A directory flag's value is completed with file names.
  EXPECT_TRUE(contains(complete(r.out, "_bulkheadd", "bulkheadd --root /"), "/etc")) << "file names";
  EXPECT_FALSE(contains(without_first_line(r.out), "generate")) << "hidden flags are not offered";
}

TEST(GeneratedDocs, BulkheadOciCliManPageAndCompletion) {
  auto r = run_command({bulkhead_path(), "--generate-man"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string &man = r.out;
  EXPECT_TRUE(contains(man, ".TH BULKHEAD 8")) << man;
  for (const char *cmd : {"create", "run", "start", "state", "kill", "delete", "exec", "list", "spec",
                          "pause", "resume", "update", "ps", "events", "features", "checkpoint", "restore"})
    EXPECT_TRUE(contains(man, ".SS \"bulkhead " + std::string(cmd) + "\"")) << cmd;
  EXPECT_TRUE(contains(man, "\\fB\\-b\\fR, \\fB\\-\\-bundle\\fR"));
  EXPECT_FALSE(contains(without_first_line(man), "generate")) << "hidden flags stay hidden";
  EXPECT_EQ(groff_warnings(man), "");

  r = run_command({bulkhead_path(), "--generate-completion"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string script = r.out;
  EXPECT_TRUE(contains(script, "complete -o default -F _bulkhead bulkhead")) << script;
  EXPECT_EQ(complete(script, "_bulkhead", "bulkhead ki"), "kill\n");
  EXPECT_EQ(complete(script, "_bulkhead", "bulkhead --ro"), "--root\n");
  EXPECT_EQ(complete(script, "_bulkhead", "bulkhead --root /run/x cre"), "create\n");
  EXPECT_EQ(complete(script, "_bulkhead", "bulkhead create --bu"), "--bundle\n");
  // As runc, global flags go before the command: they are not offered after it.
  EXPECT_EQ(complete(script, "_bulkhead", "bulkhead create --ro"), "");
  // The generators are not in the runc-compatible help.
  r = run_command({bulkhead_path(), "--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(contains(r.out, "generate")) << r.out;
}

} // namespace
