/* A small PaaS agent on libbulkhead's C ABI: runs a busybox container, streams its stats events,
 * updates its memory limit, execs a command in it and deletes it, reporting each step.
 *
 *   agent            builds its own bundle from /bin/busybox (busybox-static) in a temp directory
 *   agent BUNDLE     uses BUNDLE (a config.json whose process runs until killed)
 *
 * State goes to a temp directory too, so nothing is left behind. Exit status 0 only if every step
 * worked. Build: cc agent.c $(pkg-config --cflags --libs bulkhead) */
#define _GNU_SOURCE
#include <bulkhead/bulkhead.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

static void report(const char *step, bulkhead_status s) {
  if (s == BULKHEAD_OK) {
    printf("ok      %s\n", step);
  } else {
    printf("FAILED  %s: %s (status %d)\n", step, bulkhead_last_error(), (int)s);
    failures++;
  }
  fflush(stdout);
}

static void check(const char *step, int ok, const char *why) {
  printf(ok ? "ok      %s\n" : "FAILED  %s: %s\n", step, why);
  fflush(stdout);
  failures += !ok;
}

static const char config[] =
    "{\"ociVersion\":\"1.2.0\",\"process\":{\"user\":{\"uid\":0,\"gid\":0},"
    "\"args\":[\"/bin/sh\",\"-c\",\"while true; do sleep 1; done\"],"
    "\"env\":[\"PATH=/bin\"],\"cwd\":\"/\",\"noNewPrivileges\":true},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"agent\","
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/"
    "dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"mode=755\"]}],"
    "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"},{\"type\":\"ipc\"},"
    "{\"type\":\"uts\"},{\"type\":\"network\"}]}}";

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  int rc = fputs(text, f) < 0 ? -1 : 0;
  return fclose(f) == 0 ? rc : -1;
}

/* tmp/bundle/rootfs/bin/{busybox,sh,sleep} and tmp/bundle/config.json */
static int make_bundle(const char *tmp, char *bundle, size_t len) {
  char path[4096];
  snprintf(bundle, len, "%s/bundle", tmp);
  const char *dirs[] = {"bundle", "bundle/rootfs", "bundle/rootfs/bin", "bundle/rootfs/proc",
                        "bundle/rootfs/dev"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    snprintf(path, sizeof path, "%s/%s", tmp, dirs[i]);
    if (mkdir(path, 0755) != 0)
      return -1;
  }
  FILE *in = fopen("/bin/busybox", "rb");
  snprintf(path, sizeof path, "%s/rootfs/bin/busybox", bundle);
  FILE *out = in ? fopen(path, "wb") : NULL;
  if (!out) {
    if (in)
      fclose(in);
    return -1;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  if (fclose(out) != 0 || chmod(path, 0755) != 0)
    return -1;
  const char *links[] = {"sh", "sleep", "echo", "true"};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
    snprintf(path, sizeof path, "%s/rootfs/bin/%s", bundle, links[i]);
    if (symlink("busybox", path) != 0)
      return -1;
  }
  snprintf(path, sizeof path, "%s/config.json", bundle);
  return write_file(path, config);
}

struct stream {
  int seen;
};

static int on_event(const char *json, void *user) {
  struct stream *s = user;
  s->seen++;
  printf("        event %d: %.100s...\n", s->seen, json);
  return s->seen < 3; /* three stats events, then stop the stream */
}

int main(int argc, char **argv) {
  char tmp[] = "/tmp/bulkhead-agent-XXXXXX";
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  char bundle[4096], root[4096], cmd[8300];
  snprintf(root, sizeof root, "%s/state", tmp);
  if (argc > 1) {
    snprintf(bundle, sizeof bundle, "%s", argv[1]);
  } else {
    check("make busybox bundle", make_bundle(tmp, bundle, sizeof bundle) == 0, "cannot copy /bin/busybox");
  }
  printf("        libbulkhead %s (ABI %d), bundle %s\n", bulkhead_version(), bulkhead_abi_version(), bundle);

  bulkhead_runtime_options ro;
  BULKHEAD_INIT(ro);
  ro.root = root;
  bulkhead_runtime *rt = NULL;
  report("runtime handle", bulkhead_runtime_new(&ro, &rt));
  if (!rt)
    return 1;

  const char *id = "agent-demo";
  bulkhead_create_options co;
  BULKHEAD_INIT(co);
  co.bundle = bundle;
  bulkhead_run_options runo;
  BULKHEAD_INIT(runo);
  runo.detach = 1;
  bulkhead_status s = bulkhead_run(rt, id, &co, &runo, NULL);
  report("run (detached)", s);

  char *json = NULL;
  if (bulkhead_state(rt, id, &json) == BULKHEAD_OK) {
    check("state is running", strstr(json, "\"running\"") != NULL, json);
    bulkhead_free(json);
  } else {
    report("state", BULKHEAD_E_FAILED);
  }

  const char *echo[] = {"/bin/echo", "hello from exec", NULL};
  bulkhead_exec_options eo;
  BULKHEAD_INIT(eo);
  eo.args = echo;
  int status = -1;
  report("exec echo", bulkhead_exec(rt, id, &eo, &status));
  check("exec exit status 0", status == 0, "nonzero exit status");

  struct stream st = {0};
  bulkhead_events_options ev;
  BULKHEAD_INIT(ev);
  ev.interval_ms = 200;
  report("stream stats events", bulkhead_events(rt, id, &ev, on_event, &st));
  check("three stats events", st.seen == 3, "fewer events than asked for");

  bulkhead_resources res;
  BULKHEAD_INIT(res);
  res.memory_limit = 64 << 20;
  report("update memory limit to 64 MiB", bulkhead_update(rt, id, &res));
  if (bulkhead_stats(rt, id, &json) == BULKHEAD_OK) {
    check("stats show the 64 MiB limit", strstr(json, "\"limit\":67108864") != NULL, json);
    bulkhead_free(json);
  } else {
    report("stats after update", BULKHEAD_E_FAILED);
  }

  report("pause", bulkhead_pause(rt, id));
  report("resume", bulkhead_resume(rt, id));
  report("kill SIGKILL", bulkhead_kill(rt, id, SIGKILL, 0));
  report("delete", bulkhead_delete(rt, id, 1));
  if (bulkhead_list(rt, &json) == BULKHEAD_OK) {
    check("list is empty", strstr(json, id) == NULL, json);
    bulkhead_free(json);
  }
  bulkhead_runtime_free(rt);

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    check("remove temp dir", 0, tmp);
  printf("%s: %d step(s) failed\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
