// Hooks: each kind runs at its point of the lifecycle with the state JSON on stdin; failures and
// timeouts abort create cleanly.
#include "harness.hpp"

#include <thread>

using namespace bh_test;

namespace {

class HooksTest : public BulkheadTest {
protected:
  // A host script that saves its stdin to <tmp>/<name>.json.
  json recording_hook(const std::string &name) {
    std::string script = tmp() + "/" + name + ".sh";
    EXPECT_TRUE(write_file(script, "#!/bin/sh\n/bin/cat > " + output(name) + "\n", 0755));
    return {{"path", script}, {"args", {name + ".sh"}}};
  }
  std::string output(const std::string &name) const { return tmp() + "/" + name + ".json"; }

  // The saved state, parsed (null when the hook did not run or wrote no JSON).
  json recorded(const std::string &name) const {
    std::string text = read_file(output(name));
    if (text.empty())
      return nullptr;
    json j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json("unparsable: " + text) : j;
  }

  static bool wait_for(const std::function<bool()> &cond, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }
};

TEST_F(HooksTest, HooksReceiveStateAtEachStep) {
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["hooks"]["createRuntime"] = {recording_hook("createRuntime")};
    c["hooks"]["prestart"] = {recording_hook("prestart")};
    c["hooks"]["poststart"] = {recording_hook("poststart")};
    c["hooks"]["poststop"] = {recording_hook("poststop")};
  });
  pid_t pid = create(bundle, "hooked");
  ASSERT_GT(pid, 0);

  for (const char *name : {"createRuntime", "prestart"}) {
    json s = recorded(name);
    ASSERT_TRUE(s.is_object()) << name << " hook did not record the state: " << s;
    EXPECT_EQ(s.value("id", ""), "hooked") << name << ": " << s;
    // crun's "created" (what the runtime-spec's conformance tests expect), not runc's "creating".
    EXPECT_EQ(s.value("status", ""), "created") << name << ": " << s;
    EXPECT_EQ(s.value("pid", 0), pid) << name << ": " << s;
    EXPECT_EQ(s.value("bundle", ""), bundle) << name << ": " << s;
    EXPECT_TRUE(s.contains("ociVersion")) << name << ": " << s;
  }
  EXPECT_TRUE(recorded("poststart").is_null()) << "poststart ran at create";
  EXPECT_TRUE(recorded("poststop").is_null()) << "poststop ran at create";

  auto st = bh({"start", "hooked"});
  ASSERT_TRUE(st.ok()) << st;
  // poststart runs before start returns.
  json post = recorded("poststart");
  ASSERT_TRUE(post.is_object()) << "poststart hook did not record the state: " << post;
  EXPECT_EQ(post.value("id", ""), "hooked") << post;
  EXPECT_EQ(post.value("status", ""), "running") << post;
  EXPECT_EQ(post.value("pid", 0), pid) << post;
  EXPECT_TRUE(recorded("poststop").is_null()) << "poststop ran at start";

  auto k = bh({"kill", "hooked", "KILL"});
  ASSERT_TRUE(k.ok()) << k;
  ASSERT_EQ(wait_for_status("hooked", "stopped"), "stopped");
  EXPECT_TRUE(recorded("poststop").is_null()) << "poststop must run on delete, not when the process exits";
  auto d = bh({"delete", "hooked"});
  ASSERT_TRUE(d.ok()) << d;
  json stop = recorded("poststop");
  ASSERT_TRUE(stop.is_object()) << "poststop hook did not run on delete: " << stop;
  EXPECT_EQ(stop.value("id", ""), "hooked") << stop;
  EXPECT_EQ(stop.value("status", ""), "stopped") << stop;
  EXPECT_EQ(stop.value("bundle", ""), bundle) << stop;
}

TEST_F(HooksTest, PoststopRunsOnForceDelete) {
  std::string bundle =
      make_bundle({"sleep", "100"}, [&](json &c) { c["hooks"]["poststop"] = {recording_hook("poststop")}; });
  pid_t pid = create_and_start(bundle, "forced");
  ASSERT_GT(pid, 0);
  auto d = bh({"delete", "--force", "forced"});
  ASSERT_TRUE(d.ok()) << d;
  json stop = recorded("poststop");
  ASSERT_TRUE(stop.is_object()) << "poststop hook did not run on delete --force: " << stop;
  EXPECT_EQ(stop.value("id", ""), "forced") << stop;
}

TEST_F(HooksTest, HooksRunForForegroundRun) {
  std::string bundle = make_bundle({"echo", "hi"}, [&](json &c) {
    c["hooks"]["prestart"] = {recording_hook("prestart")};
    c["hooks"]["poststop"] = {recording_hook("poststop")};
  });
  auto r = bh({"run", "--bundle", bundle, "fg"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(recorded("prestart").value("id", ""), "fg") << recorded("prestart");
  EXPECT_EQ(recorded("poststop").value("id", ""), "fg") << recorded("poststop");
}

TEST_F(HooksTest, HookArgsAndEnv) {
  std::string out = tmp() + "/args.txt";
  std::string bundle = make_bundle({"true"}, [&](json &c) {
    c["hooks"]["createRuntime"] = {
        {{"path", "/bin/sh"},
         {"args",
          {"sh", "-c", "echo \"$0|$1\" > " + out + "; /usr/bin/tr '\\0' '\\n' < /proc/$$/environ >> " + out,
           "zero", "one"}},
         {"env", {"HOOKVAR=hello"}}}};
  });
  pid_t pid = create(bundle, "args");
  ASSERT_GT(pid, 0);
  // args[0] is argv[0]; the environment is exactly the configured one.
  EXPECT_EQ(read_file(out), "zero|one\nHOOKVAR=hello\n");
}

TEST_F(HooksTest, StartContainerHookRunsInsideTheContainer) {
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["hooks"]["startContainer"] = {{{"path", "/hook.sh"}}};
    c["hooks"]["createContainer"] = {
        {{"path", "/bin/sh"}, {"args", {"sh", "-c", "hostname > /tmp/created-in"}}}};
  });
  ASSERT_TRUE(write_file(rootfs(bundle) + "/hook.sh", "#!/bin/sh\n/bin/cat > /startcontainer.json\n", 0755));
  pid_t pid = create(bundle, "incontainer");
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(path_exists(rootfs(bundle) + "/startcontainer.json")) << "startContainer ran at create";
  auto s = bh({"start", "incontainer"});
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_TRUE(wait_for([&] { return !read_file(rootfs(bundle) + "/startcontainer.json").empty(); }))
      << "the startContainer hook did not run inside the container";
  json j = json::parse(read_file(rootfs(bundle) + "/startcontainer.json"), nullptr, false);
  ASSERT_TRUE(j.is_object()) << read_file(rootfs(bundle) + "/startcontainer.json");
  EXPECT_EQ(j.value("id", ""), "incontainer") << j;
}

TEST_F(HooksTest, EachHookKindRunsInRuncsWorkingDirectory) {
  // prestart/createRuntime: the bundle (runc chdirs there); createContainer: the rootfs as the
  // runtime sees it, so `touch ./etc/x` lands in the container's /etc; startContainer: the
  // process's cwd.
  auto pwd_hook = [&](const std::string &name) {
    return json{{"path", "/bin/sh"}, {"args", {"sh", "-c", "pwd > " + tmp() + "/" + name + ".cwd"}}};
  };
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["process"]["cwd"] = "/etc";
    c["hooks"]["prestart"] = {pwd_hook("prestart")};
    c["hooks"]["createRuntime"] = {pwd_hook("createRuntime")};
    c["hooks"]["createContainer"] = {
        pwd_hook("createContainer"),
        {{"path", "/bin/sh"}, {"args", {"sh", "-c", "touch ./etc/made-by-hook"}}}};
    c["hooks"]["startContainer"] = {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "pwd > /start.cwd"}}}};
  });
  ASSERT_GT(create(bundle, "cwd"), 0);
  EXPECT_EQ(trim(read_file(tmp() + "/prestart.cwd")), bundle);
  EXPECT_EQ(trim(read_file(tmp() + "/createRuntime.cwd")), bundle);
  EXPECT_EQ(trim(read_file(tmp() + "/createContainer.cwd")), rootfs(bundle));
  EXPECT_TRUE(path_exists(rootfs(bundle) + "/etc/made-by-hook"));
  ASSERT_TRUE(bh({"start", "cwd"}).ok());
  EXPECT_TRUE(wait_for([&] { return !read_file(rootfs(bundle) + "/start.cwd").empty(); }));
  EXPECT_EQ(trim(read_file(rootfs(bundle) + "/start.cwd")), "/etc");
}

TEST_F(HooksTest, FailingPrestartHookAbortsCreate) {
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["hooks"]["prestart"] = {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 3"}}}};
  });
  auto r = bh({"create", "--bundle", bundle, "prefail"});
  EXPECT_TRUE(failed_cleanly(r, "hook", "prefail"));
}

TEST_F(HooksTest, HookTimeoutAbortsCreate) {
  std::string script = tmp() + "/slow.sh";
  // exec: the hook process itself sleeps, so killing it at the timeout leaves nothing behind.
  ASSERT_TRUE(write_file(script, "#!/bin/sh\nexec /bin/sleep 10\n", 0755));
  std::string bundle = make_bundle({"sleep", "100"}, [&](json &c) {
    c["hooks"]["createRuntime"] = {{{"path", script}, {"timeout", 1}}};
  });
  auto r = bh({"create", "--bundle", bundle, "slow"});
  EXPECT_LT(r.seconds, 6.0) << "the hook timeout was not enforced: " << r;
  EXPECT_TRUE(failed_cleanly(r, "hook", "slow"));
}

TEST_F(HooksTest, PoststopFailureDoesNotBlockDelete) {
  std::string bundle = make_bundle({"true"}, [&](json &c) {
    c["hooks"]["poststop"] = {{{"path", "/bin/false"}}};
  });
  pid_t pid = create_and_start(bundle, "ps");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_for_status("ps", "stopped"), "stopped");
  auto d = bh({"delete", "ps"});
  // The spec: a failing poststop hook is logged as a warning, the remaining steps go on.
  EXPECT_TRUE(d.ok()) << d;
  EXPECT_FALSE(state_dir_exists("ps"));
}

} // namespace
