// Snapshots and backups end to end with the real bulkheadd/bulkheadctl on busybox containers:
// a snapshot brings back a deleted file (running and stopped), list/rm, an export imported under a
// new name boots with the same files, an incremental export holds only what changed and applies,
// and bad archives (truncated, "..", absolute, devices, symlinked parents, no template) are refused
// leaving nothing behind. The export/import lines of bulkheadctl (sizes, seconds, rates) are
// printed for bench/README.md.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "daemon_fixture.hpp"

namespace bh_test {

namespace fs = std::filesystem;

namespace {

struct TarMember {
  TarMember(std::string p, char t = 'f', std::string d = "", dev_t r = 0)
      : path(std::move(p)), type(t), data(std::move(d)), rdev(r) {}
  std::string path;
  char type;        // f file, d dir, l symlink, h hardlink, c char device, b block device
  std::string data; // file content, or link target
  dev_t rdev;
};

// Crafted archives, written with libarchive (what an attacker could hand to `import`).
void write_tar(const std::string &file, const std::vector<TarMember> &members) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax(a);
  ASSERT_EQ(archive_write_open_filename(a, file.c_str()), ARCHIVE_OK);
  for (const auto &m : members) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, m.path.c_str());
    archive_entry_set_perm(e, m.type == 'd' ? 0755 : 0644);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (m.type) {
    case 'd':
      archive_entry_set_filetype(e, AE_IFDIR);
      break;
    case 'l':
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, m.data.c_str());
      break;
    case 'h':
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, m.data.c_str());
      break;
    case 'c':
    case 'b':
      archive_entry_set_filetype(e, m.type == 'c' ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdev(e, m.rdev);
      break;
    default:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    }
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (m.type == 'f' && !m.data.empty())
      archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

// The members of an archive: path -> type letter (as above), plus the manifest's text.
std::map<std::string, char> list_tar(const std::string &file, json *manifest = nullptr) {
  std::map<std::string, char> out;
  struct archive *a = archive_read_new();
  archive_read_support_format_all(a);
  archive_read_support_filter_all(a);
  EXPECT_EQ(archive_read_open_filename(a, file.c_str(), 65536), ARCHIVE_OK);
  struct archive_entry *e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string p = archive_entry_pathname(e);
    char t = archive_entry_hardlink(e) ? 'h' : 'f';
    switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
      t = 'd';
      break;
    case AE_IFLNK:
      t = 'l';
      break;
    case AE_IFCHR:
      t = 'c';
      break;
    default:
      break;
    }
    out[p] = t;
    if (manifest && p == "bulkhead-export.json") {
      std::string text(static_cast<size_t>(archive_entry_size(e)), '\0');
      archive_read_data(a, text.data(), text.size());
      *manifest = json::parse(text);
    }
  }
  archive_read_free(a);
  return out;
}

class SnapshotTest : public DaemonTest {
protected:
  // Everything a failed import could have left: containers, their directories, snapshot and
  // template staging.
  void expect_nothing_left(const std::set<std::string> &containers, const std::set<std::string> &templates) {
    auto r = ctl({"list", "--json"});
    ASSERT_TRUE(r.ok()) << r;
    std::set<std::string> names;
    for (const auto &c : json::parse(r.out))
      names.insert(c["name"].get<std::string>());
    EXPECT_EQ(names, containers);
    std::set<std::string> dirs;
    for (const auto &d : fs::directory_iterator(root_ + "/containers"))
      dirs.insert(d.path().filename());
    EXPECT_EQ(dirs, containers);
    std::set<std::string> tdirs;
    for (const auto &d : fs::directory_iterator(root_ + "/templates"))
      tdirs.insert(d.path().filename());
    EXPECT_EQ(tdirs, templates);
    if (fs::exists(root_ + "/snapshots")) {
      for (const auto &c : fs::directory_iterator(root_ + "/snapshots"))
        for (const auto &s : fs::directory_iterator(c.path()))
          EXPECT_FALSE(s.path().filename().string().starts_with(".staging")) << s.path();
    }
  }

  std::string upper(const std::string &name) { return root_ + "/containers/" + name + "/disk/upper"; }
};

} // namespace

TEST_F(SnapshotTest, SnapshotRestoresDeletedFileRunningAndStopped) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());
  auto r = ctl({"start", "c1"});
  ASSERT_TRUE(r.ok()) << r;
  // Files of every kind the upper layer holds: a file and a hardlink to it, a symlink (kept, not
  // followed), a directory, a deleted template file (a whiteout) and a re-created template
  // directory (opaque, trusted.overlay.opaque).
  r = ctl({"exec", "c1", "--", "sh", "-c",
           "echo hello > /root/keep && ln /root/keep /root/hard && ln -s /etc/passwd /root/link && "
           "mkdir -p /root/d && echo x > /root/d/f && rm /etc/group && rm -r /var/log && mkdir /var/log"});
  ASSERT_TRUE(r.ok()) << r;

  r = ctl({"snapshot", "create", "c1", "s1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "snapshot s1 of c1")) << r;
  EXPECT_TRUE(contains(r.out, "(frozen)")) << r;
  EXPECT_EQ(info("c1")["state"], "running"); // thawed again
  // Stored under --root, outside the container's directory, with the whiteout as-is.
  std::string snap = root_ + "/snapshots/c1/s1/upper";
  struct stat st {};
  ASSERT_EQ(::lstat((snap + "/etc/group").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
  ASSERT_EQ(::lstat((snap + "/root/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  struct stat a {
  }, b{};
  ASSERT_EQ(::lstat((snap + "/root/keep").c_str(), &a), 0);
  ASSERT_EQ(::lstat((snap + "/root/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  char v[8] = {};
  EXPECT_EQ(::lgetxattr((upper("c1") + "/var/log").c_str(), "trusted.overlay.opaque", v, sizeof v),
            ::lgetxattr((snap + "/var/log").c_str(), "trusted.overlay.opaque", v, sizeof v));

  // Running: the deleted file comes back (the container is stopped, restored and started).
  r = ctl({"exec", "c1", "--", "sh", "-c",
           "rm /root/keep /root/hard && rm -r /root/d && echo later > /root/new"});
  ASSERT_TRUE(r.ok()) << r;
  r = ctl({"snapshot", "restore", "c1", "s1"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "stopped and started again")) << r;
  ASSERT_EQ(info("c1")["state"], "running");
  r = ctl({"exec", "c1", "--", "sh", "-c",
           "cat /root/keep /root/d/f; readlink /root/link; test -e /etc/group || echo nogroup; "
           "test -e /root/new || echo nonew; stat -c %i /root/keep /root/hard | uniq | wc -l"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "hello\nx\n/etc/passwd\nnogroup\nnonew\n1\n");

  // Stopped: snapshot, delete on the (unmounted) upper layer, restore, boot.
  ASSERT_TRUE(ctl({"stop", "c1", "--timeout", "20"}).ok());
  r = ctl({"snapshot", "create", "c1", "s2"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_TRUE(contains(r.out, "(stopped)")) << r;
  ASSERT_EQ(::unlink((upper("c1") + "/root/keep").c_str()), 0);
  r = ctl({"snapshot", "restore", "c1", "s2"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(read_file(upper("c1") + "/root/keep"), "hello\n");
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  r = ctl({"exec", "c1", "--", "cat", "/root/keep"});
  EXPECT_EQ(r.out, "hello\n") << r;

  // A name that exists is refused, and nothing changes.
  r = ctl({"snapshot", "create", "c1", "s1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "already has a snapshot \"s1\"")) << r;
  r = ctl({"snapshot", "restore", "c1", "nosuch"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "no snapshot \"nosuch\"")) << r;

  // list / rm
  r = ctl({"snapshot", "list", "c1", "--json"});
  ASSERT_TRUE(r.ok()) << r;
  auto list = json::parse(r.out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "s1");
  EXPECT_EQ(list[1]["name"], "s2");
  EXPECT_EQ(list[0]["container_state"], "frozen");
  EXPECT_EQ(list[1]["container_state"], "stopped");
  r = ctl({"snapshot", "list", "c1"});
  EXPECT_TRUE(contains(r.out, "NAME") && contains(r.out, "s2")) << r;
  ASSERT_TRUE(ctl({"snapshot", "rm", "c1", "s1"}).ok());
  EXPECT_FALSE(path_exists(root_ + "/snapshots/c1/s1"));
  r = ctl({"snapshot", "list", "c1", "--json"});
  EXPECT_EQ(json::parse(r.out).size(), 1u);
  EXPECT_FALSE(ctl({"snapshot", "rm", "c1", "s1"}).ok());

  // destroy takes the snapshots along.
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
  EXPECT_FALSE(path_exists(root_ + "/snapshots/c1"));
}

TEST_F(SnapshotTest, ExportImportedUnderNewNameBootsWithSameFiles) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(
      ctl({"create", "c1", "--template", "busybox", "--hostname", "web.example", "--env", "A=b"}).ok());
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  auto r =
      ctl({"exec", "c1", "--", "sh", "-c",
           "echo hello > /root/keep && ln /root/keep /root/hard && ln -s ../etc/passwd /root/link && "
           "head -c 8388608 /dev/urandom > /root/big && rm /etc/group && rm -r /var/log && mkdir /var/log && "
           "md5sum /root/big > /root/big.md5"});
  ASSERT_TRUE(r.ok()) << r;

  // Running: exported from a frozen copy; the container keeps running.
  std::string file = dir_ + "/c1.tar.gz";
  r = ctl({"export", "c1", file});
  ASSERT_TRUE(r.ok()) << r;
  std::cout << "[bench] " << r.out;
  EXPECT_EQ(info("c1")["state"], "running");
  json manifest;
  auto members = list_tar(file, &manifest);
  EXPECT_EQ(manifest["kind"], "full");
  EXPECT_EQ(manifest["template"]["name"], "busybox");
  EXPECT_TRUE(manifest["template"]["digest"].get<std::string>().starts_with("sha256:"));
  EXPECT_EQ(members["upper/etc/group"], 'c');
  EXPECT_EQ(members["upper/root/link"], 'l');
  EXPECT_EQ(members["upper/root/hard"] == 'h' || members["upper/root/keep"] == 'h', true);
  EXPECT_TRUE(members.count("bulkhead-export.end"));
  // An existing file is never overwritten.
  r = ctl({"export", "c1", file});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "already exists")) << r;

  r = ctl({"import", file, "c2"});
  ASSERT_TRUE(r.ok()) << r;
  std::cout << "[bench] " << r.out;
  auto i = info("c2");
  EXPECT_EQ(i["state"], "stopped");
  EXPECT_EQ(i["template"], "busybox");
  EXPECT_EQ(i["hostname"], "web.example") << i.dump();
  ASSERT_TRUE(ctl({"start", "c2"}).ok());
  r = ctl(
      {"exec", "c2", "--", "sh", "-c",
       "cat /root/keep; readlink /root/link; test -e /etc/group || echo nogroup; md5sum -c /root/big.md5; "
       "stat -c %i /root/keep /root/hard | uniq | wc -l; echo $A"});
  ASSERT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.out, "hello\n../etc/passwd\nnogroup\n/root/big: OK\n1\nb\n");
  r = ctl({"exec", "c2", "--", "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ | grep ^A="});
  EXPECT_EQ(trim(r.out), "A=b") << r;
  char v[8] = {};
  EXPECT_GT(::lgetxattr((upper("c2") + "/var/log").c_str(), "trusted.overlay.opaque", v, sizeof v), 0);

  // Same name again: refused before anything is made.
  r = ctl({"import", file, "c2"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "already exists")) << r;

  // Stopped + uncompressed, and with the template: imported on a "new host" (the template removed).
  ASSERT_TRUE(ctl({"stop", "c1", "--timeout", "20"}).ok());
  std::string full = dir_ + "/c1-tmpl.tar";
  r = ctl({"export", "c1", full, "--with-template"});
  ASSERT_TRUE(r.ok()) << r;
  std::cout << "[bench] " << r.out;
  ASSERT_TRUE(ctl({"destroy", "c1"}).ok());
  ASSERT_TRUE(ctl({"destroy", "c2", "--force"}).ok());
  ASSERT_TRUE(ctl({"template", "rm", "busybox"}).ok());
  r = ctl({"import", full});
  ASSERT_TRUE(r.ok()) << r;
  std::cout << "[bench] " << r.out;
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  r = ctl({"exec", "c1", "--", "sh", "-c", "cat /root/keep; md5sum -c /root/big.md5"});
  EXPECT_EQ(r.out, "hello\n/root/big: OK\n") << r;
  ASSERT_TRUE(ctl({"destroy", "c1", "--force"}).ok());
}

TEST_F(SnapshotTest, IncrementalExportHoldsOnlyChangesAndApplies) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  auto r = ctl({"exec", "c1", "--", "sh", "-c",
                "mkdir /data && echo one > /data/a && echo two > /data/b && echo three > /data/c"});
  ASSERT_TRUE(r.ok()) << r;
  ASSERT_TRUE(ctl({"stop", "c1", "--timeout", "20"}).ok());
  ASSERT_TRUE(ctl({"snapshot", "create", "c1", "base"}).ok());
  // The base goes to the other side as a full export of the snapshot (which brings the snapshot).
  std::string full = dir_ + "/full.tar";
  ASSERT_TRUE(ctl({"export", "c1", full, "--snapshot", "base"}).ok());
  r = ctl({"import", full, "c2"});
  ASSERT_TRUE(r.ok()) << r;
  auto s1 = json::parse(ctl({"snapshot", "list", "c1", "--json"}).out);
  auto s2 = json::parse(ctl({"snapshot", "list", "c2", "--json"}).out);
  ASSERT_EQ(s2.size(), 1u);
  EXPECT_EQ(s2[0]["id"], s1[0]["id"]);

  // One file changed, one deleted (in the stopped container's upper layer, so nothing else moves).
  ASSERT_TRUE(write_file(upper("c1") + "/data/a", "changed\n"));
  ASSERT_EQ(::unlink((upper("c1") + "/data/b").c_str()), 0);
  std::string inc = dir_ + "/inc.tar.zst";
  r = ctl({"export", "c1", inc, "--incremental-from", "base"});
  ASSERT_TRUE(r.ok()) << r;
  std::cout << "[bench] " << r.out;
  json manifest;
  auto members = list_tar(inc, &manifest);
  EXPECT_EQ(manifest["kind"], "incremental");
  EXPECT_EQ(manifest["base_snapshot"]["name"], "base");
  EXPECT_EQ(manifest["deletions"], json::array({"data/b"}));
  std::set<std::string> files;
  for (const auto &[p, t] : members)
    if (t != 'd')
      files.insert(p);
  EXPECT_EQ(files, (std::set<std::string>{"bulkhead-export.json", "upper/data/a", "bulkhead-export.end"}));

  // Refused on a running container and on one without the base.
  ASSERT_TRUE(ctl({"start", "c2"}).ok());
  r = ctl({"import", inc, "c2"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "stop it first")) << r;
  ASSERT_TRUE(ctl({"stop", "c2", "--timeout", "20"}).ok());
  ASSERT_TRUE(ctl({"create", "c3", "--template", "busybox"}).ok());
  r = ctl({"import", inc, "c3"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "no snapshot \"base\"")) << r;

  r = ctl({"import", inc, "c2"});
  ASSERT_TRUE(r.ok()) << r;
  std::cout << "[bench] " << r.out;
  ASSERT_TRUE(ctl({"start", "c2"}).ok());
  r = ctl({"exec", "c2", "--", "sh", "-c", "cat /data/a /data/c; test -e /data/b || echo nob"});
  EXPECT_EQ(r.out, "changed\nthree\nnob\n") << r;
  ASSERT_TRUE(ctl({"destroy", "c2", "--force"}).ok());
}

// Export and import are operations: cancelled (DELETE /1.0/operations/ID), an export removes its
// file and an import removes the container it was making. Which of cancel and completion wins is
// up to the scheduler, so both outcomes are checked for what they must leave.
TEST_F(SnapshotTest, CancelledExportAndImportLeaveNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());
  fs::create_directories(upper("c1") + "/data");
  for (int i = 0; i < 16; ++i)
    ASSERT_TRUE(run_command({"sh", "-c",
                             "head -c 8388608 /dev/urandom > " + upper("c1") + "/data/f" + std::to_string(i)})
                    .ok());
  std::string file = dir_ + "/cancel.tar";
  auto a = http("POST", "/1.0/containers/c1/export", json{{"file", file}}.dump());
  ASSERT_EQ(a.status, 202) << a.body.dump();
  std::string id = a.body["id"];
  auto c = http("DELETE", "/1.0/operations/" + id);
  auto w = http("GET", "/1.0/operations/" + id + "/wait");
  std::cout << "[cancel] export " << (c.status == 200 ? "cancelled" : "finished first") << "\n";
  if (c.status == 200) {
    EXPECT_EQ(w.body["status"], "cancelled") << w.body.dump();
    EXPECT_FALSE(path_exists(file));
  } else {
    EXPECT_EQ(w.body["status"], "success") << w.body.dump();
    EXPECT_TRUE(path_exists(file));
  }
  if (!path_exists(file)) {
    ASSERT_TRUE(ctl({"export", "c1", file}).ok());
  }

  a = http("POST", "/1.0/imports", json{{"file", file}, {"name", "c2"}}.dump());
  ASSERT_EQ(a.status, 202) << a.body.dump();
  id = a.body["id"];
  c = http("DELETE", "/1.0/operations/" + id);
  w = http("GET", "/1.0/operations/" + id + "/wait");
  std::cout << "[cancel] import " << (c.status == 200 ? "cancelled" : "finished first") << "\n";
  if (c.status == 200) {
    EXPECT_EQ(w.body["status"], "cancelled") << w.body.dump();
    expect_nothing_left({"c1"}, {"busybox"});
  } else {
    EXPECT_EQ(w.body["status"], "success") << w.body.dump();
    ASSERT_TRUE(ctl({"destroy", "c2"}).ok());
  }
  ASSERT_TRUE(ctl({"destroy", "c1"}).ok());
}

TEST_F(SnapshotTest, BadArchivesAreRefusedAndLeaveNothing) {
  start_daemon();
  import_busybox();
  ASSERT_TRUE(ctl({"create", "c1", "--template", "busybox"}).ok());
  ASSERT_TRUE(ctl({"start", "c1"}).ok());
  ASSERT_TRUE(ctl({"exec", "c1", "--", "sh", "-c", "head -c 1048576 /dev/urandom > /root/big"}).ok());
  ASSERT_TRUE(ctl({"stop", "c1", "--timeout", "20"}).ok());
  std::string good = dir_ + "/good.tar";
  ASSERT_TRUE(ctl({"export", "c1", good}).ok());
  json manifest;
  list_tar(good, &manifest);
  const std::set<std::string> before_c = {"c1"}, before_t = {"busybox"};

  // Truncated in the middle of a file, and cut before the trailer.
  std::string data = read_file(good);
  std::string cut = dir_ + "/cut.tar";
  ASSERT_TRUE(write_file(cut, data.substr(0, data.size() / 2)));
  auto r = ctl({"import", cut, "n1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "runcated")) << r;
  expect_nothing_left(before_c, before_t);

  std::string mdata = manifest.dump();
  auto crafted = [&](const std::string &name, std::vector<TarMember> upper_entries, bool trailer = true,
                     json m = json()) {
    std::vector<TarMember> all = {{"bulkhead-export.json", 'f', (m.is_null() ? manifest : m).dump()}};
    for (auto &e : upper_entries)
      all.push_back(e);
    if (trailer)
      all.push_back({"bulkhead-export.end", 'f', json{{"entries", all.size()}}.dump()});
    std::string f = dir_ + "/" + name + ".tar";
    write_tar(f, all);
    return f;
  };
  r = ctl({"import", crafted("notrailer", {{"upper", 'd'}, {"upper/x", 'f', "x"}}, false), "n1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "truncated")) << r;
  expect_nothing_left(before_c, before_t);

  fs::create_directories(dir_ + "/outside");
  struct Case {
    std::string name;
    std::vector<TarMember> entries;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"dotdot", {{"upper", 'd'}, {"upper/../../../outside/evil", 'f', "x"}}, "'..'"},
      {"absolute", {{"upper", 'd'}, {"/outside/evil", 'f', "x"}}, "absolute"},
      {"chardev", {{"upper", 'd'}, {"upper/null", 'c', "", makedev(1, 3)}}, "device nodes are refused"},
      {"blockdev", {{"upper", 'd'}, {"upper/sda", 'b', "", makedev(8, 0)}}, "device nodes are refused"},
      {"symlinkparent",
       {{"upper", 'd'}, {"upper/lnk", 'l', dir_ + "/outside"}, {"upper/lnk/evil", 'f', "x"}},
       "goes through a symlink"},
      {"hardlinkout", {{"upper", 'd'}, {"upper/h", 'h', "etc/shadow"}}, "outside upper/"},
      {"elsewhere", {{"upper", 'd'}, {"other/x", 'f', "x"}}, "unexpected entry"},
  };
  for (const auto &c : cases) {
    r = ctl({"import", crafted(c.name, c.entries), "n1"});
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_TRUE(contains(r.err, c.expect)) << c.name << ": " << r;
    expect_nothing_left(before_c, before_t);
  }
  EXPECT_TRUE(fs::is_empty(dir_ + "/outside"));

  // No template here, none in the archive.
  json m = manifest;
  m["template"]["name"] = "nosuch";
  r = ctl({"import", crafted("notemplate", {{"upper", 'd'}}, true, m), "n1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "template \"nosuch\"") && contains(r.err, "does not exist here")) << r;
  expect_nothing_left(before_c, before_t);

  // Names from an archive or a request become path components: only valid names pass.
  m = manifest;
  m["template"]["name"] = "../../templates/busybox";
  r = ctl({"import", crafted("badtemplate", {{"upper", 'd'}}, true, m), "n1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "invalid template name")) << r;
  expect_nothing_left(before_c, before_t);
  auto h = http("POST", "/1.0/containers/c1/export",
                json{{"file", dir_ + "/x.tar"}, {"incremental_from", "../../c1"}}.dump());
  EXPECT_EQ(h.status, 400) << h.body.dump();
  EXPECT_FALSE(path_exists(dir_ + "/x.tar"));

  // Not an export at all.
  std::string plain = dir_ + "/plain.tar";
  write_tar(plain, {{"etc", 'd'}, {"etc/passwd", 'f', "root:x:0:0::/:/bin/sh\n"}});
  r = ctl({"import", plain, "n1"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.err, "not a bulkhead container export")) << r;
  expect_nothing_left(before_c, before_t);

  // The good one still imports.
  r = ctl({"import", good, "n1"});
  EXPECT_TRUE(r.ok()) << r;
  ASSERT_TRUE(ctl({"destroy", "n1"}).ok());
  ASSERT_TRUE(ctl({"destroy", "c1"}).ok());
}

} // namespace bh_test
