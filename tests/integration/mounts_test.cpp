// config.mounts: the default set, tmpfs with options, bind mounts (ro/rw, dir/file).
#include "harness.hpp"

using namespace bh_test;

namespace {

class MountsTest : public BulkheadTest {
protected:
  static Mutator add_mount(json mount) {
    return [mount](json &c) { c["mounts"].push_back(mount); };
  }
  // The mountinfo line whose mount point is `mp`, from the container's point of view.
  static std::string line_for(const std::string &mountinfo, const std::string &mp) {
    std::string found;
    for (auto &line : split_lines(mountinfo)) {
      auto words = split_words(line);
      if (words.size() > 4 && words[4] == mp)
        found = line; // the last one is the visible one
    }
    return found;
  }
};

TEST_F(MountsTest, DefaultMountsHaveTheirTypes) {
  auto r = run_container({"cat", "/proc/self/mountinfo"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::vector<std::pair<std::string, std::string>> want = {
      {"/proc", " - proc "},     {"/dev", " - tmpfs "},         {"/dev/pts", " - devpts "},
      {"/dev/shm", " - tmpfs "}, {"/dev/mqueue", " - mqueue "}, {"/sys", " - sysfs "}};
  for (auto &[mp, type] : want) {
    std::string line = line_for(r.out, mp);
    EXPECT_TRUE(contains(line, type)) << mp << " should be" << type << "mount; line: '" << line << "'\n"
                                      << r.out;
  }
  std::string sys = line_for(r.out, "/sys");
  EXPECT_EQ(split_words(sys).size() > 5 ? split_words(sys)[5].substr(0, 3) : "", "ro,") << sys;
  std::string root = line_for(r.out, "/");
  EXPECT_FALSE(root.empty()) << r.out;
}

TEST_F(MountsTest, TmpfsWithOptions) {
  auto r = run_container({"sh", "-c", "grep ' /mnt/t ' /proc/self/mountinfo; stat -c %a /mnt/t"},
                         add_mount({{"destination", "/mnt/t"},
                                    {"type", "tmpfs"},
                                    {"source", "tmpfs"},
                                    {"options", {"size=1m", "mode=755"}}}));
  ASSERT_EQ(r.exit_code, 0) << r;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r;
  EXPECT_TRUE(contains(lines[0], " - tmpfs ")) << r;
  EXPECT_TRUE(contains(lines[0], "size=1024k")) << r;
  EXPECT_TRUE(contains(lines[0], "mode=755")) << r;
  EXPECT_EQ(lines[1], "755") << r;
}

TEST_F(MountsTest, TmpfsFlagsAreApplied) {
  auto r = run_container({"sh", "-c", "grep ' /mnt/flags ' /proc/self/mountinfo"},
                         add_mount({{"destination", "/mnt/flags"},
                                    {"type", "tmpfs"},
                                    {"source", "tmpfs"},
                                    {"options", {"nosuid", "nodev", "noexec", "ro"}}}));
  ASSERT_EQ(r.exit_code, 0) << r;
  auto words = split_words(r.out);
  ASSERT_GT(words.size(), 5u) << r;
  std::string opts = "," + words[5] + ",";
  for (const char *o : {",ro,", ",nosuid,", ",nodev,", ",noexec,"})
    EXPECT_TRUE(contains(opts, o)) << "missing " << o << " in " << r.out;
}

TEST_F(MountsTest, ReadOnlyBindMount) {
  std::string data = make_temp_dir("data");
  ASSERT_TRUE(write_file(data + "/hello.txt", "bound data\n"));
  auto r = run_container(
      {"sh", "-c", "cat /data/hello.txt && touch /data/new"},
      add_mount(
          {{"destination", "/data"}, {"type", "bind"}, {"source", data}, {"options", {"rbind", "ro"}}}));
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "bound data\n") << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
  EXPECT_FALSE(path_exists(data + "/new"));
}

TEST_F(MountsTest, ReadWriteBindMount) {
  std::string data = make_temp_dir("data");
  ASSERT_TRUE(write_file(data + "/hello.txt", "bound data\n"));
  auto r = run_container(
      {"sh", "-c", "cat /data/hello.txt && echo written > /data/new"},
      add_mount({{"destination", "/data"}, {"type", "none"}, {"source", data}, {"options", {"bind", "rw"}}}));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "bound data\n") << r;
  EXPECT_EQ(read_file(data + "/new"), "written\n");
}

TEST_F(MountsTest, BindMountOfAFile) {
  std::string data = make_temp_dir("data");
  ASSERT_TRUE(write_file(data + "/file.txt", "single file\n"));
  auto r = run_container({"cat", "/etc/bound.txt"}, add_mount({{"destination", "/etc/bound.txt"},
                                                               {"type", "bind"},
                                                               {"source", data + "/file.txt"},
                                                               {"options", {"bind", "ro"}}}));
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "single file\n") << r;
}

TEST_F(MountsTest, MountsAreAppliedInOrder) {
  // A tmpfs, then a bind mount inside it: the second must land on top of the first.
  std::string data = make_temp_dir("data");
  ASSERT_TRUE(write_file(data + "/inner.txt", "inner\n"));
  auto r = run_container({"cat", "/mnt/outer/inner/inner.txt"}, [&](json &c) {
    c["mounts"].push_back({{"destination", "/mnt/outer"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
    c["mounts"].push_back({{"destination", "/mnt/outer/inner"},
                           {"type", "bind"},
                           {"source", data},
                           {"options", {"rbind", "ro"}}});
  });
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "inner\n") << r;
}

} // namespace
