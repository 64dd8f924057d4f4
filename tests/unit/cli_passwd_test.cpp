#include <cstdio>
#include <gtest/gtest.h>
#include <unistd.h>

#include "bulkhead/io.hpp"
#include "cli/passwd.hpp"

using bulkhead::cli::user_name;
using bulkhead::cli::user_name_in;

TEST(PasswdLookup, FindsTheFirstNameWithTheUid) {
  const char *text = "root:x:0:0:root:/root:/bin/bash\n"
                     "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
                     "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
                     "alias:x:1000:1000::/home/alice:/bin/sh\n";
  EXPECT_EQ(user_name_in(text, 0), "root");
  EXPECT_EQ(user_name_in(text, 1), "daemon");
  EXPECT_EQ(user_name_in(text, 1000), "alice");
  EXPECT_EQ(user_name_in(text, 4242), std::nullopt);
}

TEST(PasswdLookup, SkipsCommentsAndMalformedLines) {
  const char *text = "# comment:x:7:7\n"
                     ":x:7:7::/:/bin/sh\n"
                     "short:x\n"
                     "badnum:x:7a:7::/:/bin/sh\n"
                     "empty:x::7::/:/bin/sh\n"
                     "nouid\n"
                     "\n"
                     "last:x:7:7"; // no trailing newline, no further fields
  EXPECT_EQ(user_name_in(text, 7), "last");
  EXPECT_EQ(user_name_in("", 0), std::nullopt);
}

TEST(PasswdLookup, ReadsAFileAndReportsAMissingOne) {
  char path[] = "/tmp/bulkhead-passwd-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(bulkhead::write_all(fd, "svc:x:321:321::/:/bin/false\n", "passwd"));
  ::close(fd);
  EXPECT_EQ(user_name(321, path), "svc");
  ::unlink(path);
  EXPECT_EQ(user_name(321, path), std::nullopt);
}
