// migration/criu.hpp's pure parts: flag values and how CRIU's log is quoted in errors; and the
// CriuService started ahead of a dump (the real `criu swrk`: a VERSION needs no kernel support).
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

namespace {

// PATH for one test, put back after it.
class ScopedPath {
public:
  explicit ScopedPath(const std::string &path) {
    const char *old = std::getenv("PATH");
    old_ = old ? old : "";
    ::setenv("PATH", path.c_str(), 1);
  }
  ~ScopedPath() { ::setenv("PATH", old_.c_str(), 1); }

private:
  std::string old_;
};

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

} // namespace

TEST(CriuService, AnswersBeforeAnyRequestAndLeavesNoProcessWhenDropped) {
  if (!migration::find_criu())
    GTEST_SKIP() << "criu is not installed";
  pid_t pid = -1;
  {
    auto service = migration::CriuService::start();
    ASSERT_TRUE(service) << service.error().text();
    pid = service->pid();
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(alive(pid)); // it answered and waits for its request
  }
  // Killed and reaped by the destructor: not even a zombie is left.
  EXPECT_FALSE(alive(pid));
  EXPECT_EQ(errno, ESRCH);
}

TEST(CriuService, ACriuThatDiesAtStartIsAClearErrorAndLeavesNoProcess) {
  auto dir = std::filesystem::temp_directory_path() / ("bh-fake-criu-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "criu");
    f << "#!/bin/sh\nexit 1\n";
  }
  ::chmod((dir / "criu").c_str(), 0755);
  {
    ScopedPath path(dir.string());
    auto service = migration::CriuService::start();
    ASSERT_FALSE(service);
    EXPECT_NE(service.error().text().find("swrk exited without answering"), std::string::npos)
        << service.error().text();
    EXPECT_NE(service.error().text().find((dir / "criu").string()), std::string::npos)
        << service.error().text();
  }
  // The fake exited and was reaped: no child of ours is left.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  std::filesystem::remove_all(dir);
}

TEST(CriuService, NoCriuInPathIsAClearError) {
  ScopedPath path("/nonexistent-bulkhead-test");
  auto service = migration::CriuService::start();
  ASSERT_FALSE(service);
  EXPECT_NE(service.error().text().find("criu: not found in PATH"), std::string::npos)
      << service.error().text();
}

TEST(MigrationCriu, LogDurationIsTheLastTimestamp) {
  char path[] = "/tmp/bh-criu-log-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text = "(00.000852) Version: 3.17.1 (gitid 0)\n"
                     "(00.801430) Dumping finished successfully\n"
                     "some line without a timestamp\n\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  EXPECT_EQ(migration::log_duration_ms(path), 801);
  ASSERT_EQ(::truncate(path, 0), 0);
  EXPECT_EQ(migration::log_duration_ms(path), std::nullopt); // empty: no timestamp
  ::unlink(path);
  EXPECT_EQ(migration::log_duration_ms(path), std::nullopt); // missing
}
