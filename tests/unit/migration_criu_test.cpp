// migration/criu.hpp's pure parts: flag values and how CRIU's log is quoted in errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <sched.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "migration/criu.hpp"

using namespace bulkhead;

TEST(MigrationCriu, CgroupModes) {
  EXPECT_EQ(*migration::parse_cgroup_mode(""), migration::CgroupMode::Soft);
  EXPECT_EQ(*migration::parse_cgroup_mode("soft"), migration::CgroupMode::Soft);
  EXPECT_EQ(*migration::parse_cgroup_mode("full"), migration::CgroupMode::Full);
  EXPECT_EQ(*migration::parse_cgroup_mode("strict"), migration::CgroupMode::Strict);
  EXPECT_EQ(*migration::parse_cgroup_mode("ignore"), migration::CgroupMode::Ignore);
  auto bad = migration::parse_cgroup_mode("props");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().text().find("\"props\""), std::string::npos) << bad.error().text();
}

TEST(MigrationCriu, EmptyNamespaces) {
  EXPECT_EQ(*migration::parse_empty_ns({}), 0u);
  EXPECT_EQ(*migration::parse_empty_ns({"network"}), static_cast<unsigned>(CLONE_NEWNET));
  EXPECT_FALSE(migration::parse_empty_ns({"network", "pid"}));
}

TEST(MigrationCriu, LogErrorsQuoteTheFirstAndTheLastErrors) {
  char path[] = "/tmp/bh-criu-log-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::string log = "(0.1) start\n(0.2) opening socket 7\n(0.3) Error (a.c:1): the cause\n";
  for (int i = 0; i < 10; ++i)
    log +=
        "(0.4) step " + std::to_string(i) + "\n(0.5) Error (b.c:2): consequence " + std::to_string(i) + "\n";
  log += "(0.9) Error (cr-dump.c:3): Dumping FAILED.\n";
  ASSERT_TRUE(write_file_at(AT_FDCWD, path, log, O_WRONLY | O_TRUNC));
  std::string quoted = migration::log_errors(path, 4);
  // The cause with the line before it, then the last errors; nothing in between.
  EXPECT_EQ(quoted, "\n  (0.2) opening socket 7\n  (0.3) Error (a.c:1): the cause\n  ...\n  (0.4) step 9\n"
                    "  (0.5) Error (b.c:2): consequence 9\n  (0.9) Error (cr-dump.c:3): Dumping FAILED.");
  EXPECT_EQ(migration::log_errors("/nonexistent/dump.log"), "");

  // A cause CRIU logs without "Error" (a page server that is not there) still comes first.
  ASSERT_TRUE(write_file_at(AT_FDCWD, path,
                            "(1) Connecting to server 127.0.0.1:1\n(2) Can't connect to server 127.0.0.1:1\n"
                            "(3) Unfreezing tasks into 1\n(4) Error (infect.c:356): Unable to detach\n"
                            "(5) Error (cr-dump.c:2053): Dumping FAILED.\n",
                            O_WRONLY | O_CREAT | O_TRUNC, 0600));
  quoted = migration::log_errors(path, 4);
  ::unlink(path);
  EXPECT_EQ(quoted, "\n  (1) Connecting to server 127.0.0.1:1\n  (2) Can't connect to server 127.0.0.1:1\n"
                    "  (3) Unfreezing tasks into 1\n  (4) Error (infect.c:356): Unable to detach\n"
                    "  (5) Error (cr-dump.c:2053): Dumping FAILED.");
}
