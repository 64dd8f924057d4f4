/* Bad input to the C ABI (issue 15 item 5): NULL arguments, options structs of unknown sizes, a
 * missing helper, an unknown container. Each must be a clear error that leaves nothing behind: no
 * state directory entry, no fd, no child process. Exit 0 when every check holds. */
#define _GNU_SOURCE
#include <bulkhead/bulkhead.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define EXPECT(call, want, needle)                                                                           \
  do {                                                                                                       \
    bulkhead_status got_ = (call);                                                                           \
    const char *msg_ = bulkhead_last_error();                                                                \
    int ok_ = got_ == (want) && strstr(msg_, (needle)) != NULL;                                              \
    printf("%s %s -> %d \"%s\"\n", ok_ ? "ok    " : "FAILED", #call, (int)got_, msg_);                       \
    failures += !ok_;                                                                                        \
  } while (0)

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* A struct from a "newer" caller: v1 plus one field this library does not know. */
typedef struct {
  bulkhead_create_options v1;
  uint64_t future_field;
} create_options_v2;

int main(void) {
  char root[] = "/tmp/bulkhead-abi-bad-XXXXXX";
  if (!mkdtemp(root))
    return 2;
  int fds_before = count_fds();

  bulkhead_runtime_options ro;
  BULKHEAD_INIT(ro);
  ro.root = root;
  bulkhead_runtime *rt = NULL;

  EXPECT(bulkhead_runtime_new(&ro, NULL), BULKHEAD_E_INVALID, "is NULL");
  bulkhead_runtime_options tiny = {.size = 4};
  EXPECT(bulkhead_runtime_new(&tiny, &rt), BULKHEAD_E_VERSION, "size 4 is smaller");
  ro.size = 0;
  EXPECT(bulkhead_runtime_new(&ro, &rt), BULKHEAD_E_VERSION, "size 0");
  ro.size = sizeof ro;
  bulkhead_runtime_options rel = ro;
  rel.binary = "bulkhead";
  EXPECT(bulkhead_runtime_new(&rel, &rt), BULKHEAD_E_INVALID, "not an absolute path");
  EXPECT(bulkhead_runtime_new(&ro, &rt), BULKHEAD_OK, "");
  if (rt == NULL)
    return 1;

  EXPECT(bulkhead_start(NULL, "x"), BULKHEAD_E_INVALID, "runtime handle is NULL");
  EXPECT(bulkhead_start(rt, NULL), BULKHEAD_E_INVALID, "container id is NULL");
  EXPECT(bulkhead_start(rt, ""), BULKHEAD_E_INVALID, "empty");
  EXPECT(bulkhead_state(rt, "x", NULL), BULKHEAD_E_INVALID, "json_out is NULL");
  EXPECT(bulkhead_list(rt, NULL), BULKHEAD_E_INVALID, "json_out is NULL");
  EXPECT(bulkhead_events(rt, "x", NULL, NULL, NULL), BULKHEAD_E_INVALID, "callback is NULL");
  EXPECT(bulkhead_update(rt, "x", NULL), BULKHEAD_E_INVALID, "resources are NULL");
  bulkhead_resources none;
  BULKHEAD_INIT(none);
  EXPECT(bulkhead_update(rt, "x", &none), BULKHEAD_E_INVALID, "nothing to change");
  EXPECT(bulkhead_exec(rt, "x", NULL, NULL), BULKHEAD_E_INVALID, "args are required");
  bulkhead_exec_options eo;
  BULKHEAD_INIT(eo);
  EXPECT(bulkhead_exec(rt, "x", &eo, NULL), BULKHEAD_E_INVALID, "args is NULL");
  EXPECT(bulkhead_kill(rt, "x", -1, 0), BULKHEAD_E_INVALID, "signal -1");

  /* Growing structs: zeroed unknown bytes are accepted, set ones are refused before any work. */
  create_options_v2 v2;
  memset(&v2, 0, sizeof v2);
  v2.v1.size = sizeof v2;
  v2.v1.bundle = "/nonexistent-bundle";
  v2.future_field = 1;
  EXPECT(bulkhead_create(rt, "c1", &v2.v1, NULL), BULKHEAD_E_VERSION, "does not know");
  v2.future_field = 0;
  EXPECT(bulkhead_create(rt, "c1", &v2.v1, NULL), BULKHEAD_E_FAILED, "nonexistent-bundle");
  bulkhead_create_options old = {.size = 2, .bundle = "/"};
  EXPECT(bulkhead_create(rt, "c1", &old, NULL), BULKHEAD_E_VERSION, "smaller than any version");

  EXPECT(bulkhead_state(rt, "no-such-container", &(char *){NULL}), BULKHEAD_E_FAILED, "no-such-container");
  EXPECT(bulkhead_delete(rt, "no-such-container", 0), BULKHEAD_E_FAILED, "no-such-container");
  bulkhead_runtime_free(rt);

  bulkhead_runtime_options missing = ro;
  missing.binary = "/nonexistent/bulkhead";
  rt = NULL;
  EXPECT(bulkhead_runtime_new(&missing, &rt), BULKHEAD_OK, "");
  EXPECT(bulkhead_start(rt, "x"), BULKHEAD_E_SPAWN, "/nonexistent/bulkhead");
  bulkhead_runtime_free(rt);

  bulkhead_client *c = NULL;
  bulkhead_client_options cop;
  BULKHEAD_INIT(cop);
  cop.socket = "/nonexistent/bulkheadd.sock";
  EXPECT(bulkhead_client_new(&cop, NULL), BULKHEAD_E_INVALID, "is NULL");
  EXPECT(bulkhead_client_new(&cop, &c), BULKHEAD_OK, "");
  EXPECT(bulkhead_client_list(c, &(char *){NULL}), BULKHEAD_E_DAEMON, "/nonexistent/bulkheadd.sock");
  EXPECT(bulkhead_client_start(c, NULL), BULKHEAD_E_INVALID, "name is NULL");
  EXPECT(bulkhead_client_create(c, "[1,2]", NULL), BULKHEAD_E_INVALID, "not a JSON object");
  EXPECT(bulkhead_client_stop(c, "x", -5), BULKHEAD_E_INVALID, "negative");
  bulkhead_client_free(c);

  /* Nothing left behind: the state root is empty, no fd and no child remains. */
  DIR *d = opendir(root);
  int entries = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    entries += e->d_name[0] != '.';
  if (d)
    closedir(d);
  int fds_after = count_fds();
  errno = 0;
  pid_t child = waitpid(-1, NULL, WNOHANG);
  printf("%s state root entries %d, fds %d -> %d, waitpid %d (%s)\n",
         entries == 0 && fds_after == fds_before && child < 0 && errno == ECHILD ? "ok    " : "FAILED",
         entries, fds_before, fds_after, (int)child, strerror(errno));
  failures += !(entries == 0 && fds_after == fds_before && child < 0 && errno == ECHILD);
  rmdir(root);
  printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
