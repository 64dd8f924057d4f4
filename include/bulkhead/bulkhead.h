/* libbulkhead C ABI (docs/abi.md). Stable across 0.x releases of libbulkhead.so.0.
 *
 * Rules:
 * - Every call returns a bulkhead_status; on failure bulkhead_last_error() (per thread) says why.
 * - Handles are opaque and immutable after creation: one handle may be used from many threads.
 * - Options structs start with `size` = sizeof(the struct as the caller compiled it); fill it with
 *   BULKHEAD_INIT(var). A larger size than this library knows is accepted only when the extra bytes
 *   are zero (so a newer caller can run on an older library as long as it uses no newer field); a size
 *   below the first version's is BULKHEAD_E_VERSION. A NULL options pointer means the defaults.
 * - Strings the library returns (char **out) are freed with bulkhead_free().
 * - The container work runs in a helper process started with posix_spawn (the `bulkhead` binary):
 *   the library never forks the caller. Children are reaped by pid; a caller must not set SIGCHLD to
 *   SIG_IGN or reap with waitpid(-1). */
#ifndef BULKHEAD_BULKHEAD_H
#define BULKHEAD_BULKHEAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BULKHEAD_ABI_VERSION 1

typedef enum bulkhead_status {
  BULKHEAD_OK = 0,
  BULKHEAD_E_INVALID = 1, /* a NULL or malformed argument; nothing was done */
  BULKHEAD_E_VERSION = 2, /* an options struct of a size this library does not know */
  BULKHEAD_E_SPAWN = 3,   /* the helper process could not be started or talked to */
  BULKHEAD_E_FAILED = 4,  /* the operation failed; the message is the runtime's */
  BULKHEAD_E_DAEMON = 5,  /* bulkheadd unreachable or answered with an error */
  BULKHEAD_E_NOMEM = 6
} bulkhead_status;

/* The message of this thread's last failed call ("" after a success). Valid until the thread's next
 * libbulkhead call. */
const char *bulkhead_last_error(void);
/* BULKHEAD_ABI_VERSION of the loaded library, and its release string. */
int bulkhead_abi_version(void);
const char *bulkhead_version(void);
void bulkhead_free(void *p);

#define BULKHEAD_INIT(var)                                                                                   \
  do {                                                                                                       \
    memset(&(var), 0, sizeof(var));                                                                          \
    (var).size = sizeof(var);                                                                                \
  } while (0)

/* ---- runtime face (the OCI runtime, like the `bulkhead` CLI) ---- */

typedef struct bulkhead_runtime bulkhead_runtime;

typedef struct bulkhead_runtime_options {
  uint32_t size;
  const char *root;   /* state directory; NULL: /run/bulkhead, rootless $XDG_RUNTIME_DIR/bulkhead */
  const char *binary; /* the helper; NULL: $BULKHEAD_BINARY, else the installed bin/bulkhead */
  int systemd_cgroup;
} bulkhead_runtime_options;

typedef struct bulkhead_create_options {
  uint32_t size;
  const char *bundle; /* NULL: "." */
  const char *pid_file;
  const char *console_socket;
  int no_pivot;
  int no_new_keyring;
} bulkhead_create_options;

typedef struct bulkhead_run_options {
  uint32_t size;
  int detach; /* 0: wait for the container's process; exit_status is its status */
  int keep;   /* foreground: leave the stopped container for bulkhead_delete */
} bulkhead_run_options;

typedef struct bulkhead_exec_options {
  uint32_t size;
  const char *const *args; /* NULL-terminated, required */
  const char *const *env;  /* NULL-terminated KEY=VALUE, may be NULL */
  const char *cwd;
  const char *user; /* "uid[:gid]" */
  int detach;
} bulkhead_exec_options;

/* Limits for bulkhead_update; a field left 0 is not changed. */
typedef struct bulkhead_resources {
  uint32_t size;
  int64_t memory_limit; /* bytes; -1: unlimited */
  int64_t memory_swap;  /* bytes (memory + swap); -1: unlimited */
  int64_t pids_limit;   /* -1: unlimited */
  uint64_t cpu_quota_us;
  uint64_t cpu_period_us;
  uint64_t cpu_shares;
} bulkhead_resources;

typedef struct bulkhead_events_options {
  uint32_t size;
  uint32_t interval_ms; /* 0: 5000 */
} bulkhead_events_options;

/* Called with each event as one JSON object (runc's `events` form: {"type":"stats"|"oom",...}).
 * Return nonzero to go on, 0 to stop. */
typedef int (*bulkhead_event_fn)(const char *event_json, void *user);

bulkhead_status bulkhead_runtime_new(const bulkhead_runtime_options *options, bulkhead_runtime **out);
void bulkhead_runtime_free(bulkhead_runtime *rt);

bulkhead_status bulkhead_create(bulkhead_runtime *rt, const char *id, const bulkhead_create_options *options,
                                int *pid_out);
bulkhead_status bulkhead_start(bulkhead_runtime *rt, const char *id);
/* The OCI state document as JSON ({"ociVersion","id","status","pid","bundle",...}). */
bulkhead_status bulkhead_state(bulkhead_runtime *rt, const char *id, char **json_out);
bulkhead_status bulkhead_kill(bulkhead_runtime *rt, const char *id, int signal, int all);
bulkhead_status bulkhead_delete(bulkhead_runtime *rt, const char *id, int force);
bulkhead_status bulkhead_run(bulkhead_runtime *rt, const char *id, const bulkhead_create_options *create,
                             const bulkhead_run_options *run, int *exit_status);
bulkhead_status bulkhead_exec(bulkhead_runtime *rt, const char *id, const bulkhead_exec_options *options,
                              int *exit_status);
bulkhead_status bulkhead_pause(bulkhead_runtime *rt, const char *id);
bulkhead_status bulkhead_resume(bulkhead_runtime *rt, const char *id);
bulkhead_status bulkhead_update(bulkhead_runtime *rt, const char *id, const bulkhead_resources *resources);
/* One stats event as JSON ({"type":"stats","id",...,"data":{"memory":...}}). */
bulkhead_status bulkhead_stats(bulkhead_runtime *rt, const char *id, char **json_out);
/* Streams events until the container stops or fn returns 0 (both are BULKHEAD_OK). */
bulkhead_status bulkhead_events(bulkhead_runtime *rt, const char *id, const bulkhead_events_options *options,
                                bulkhead_event_fn fn, void *user);
/* A JSON array of the containers' states. */
bulkhead_status bulkhead_list(bulkhead_runtime *rt, char **json_out);

/* ---- client of the bulkheadd API (docs/api.md) ---- */

typedef struct bulkhead_client bulkhead_client;

typedef struct bulkhead_client_options {
  uint32_t size;
  const char *socket;     /* NULL: /run/bulkhead/bulkheadd.sock */
  const char *ctl_binary; /* for exec; NULL: $BULKHEADCTL_BINARY, else the installed bin/bulkheadctl */
} bulkhead_client_options;

bulkhead_status bulkhead_client_new(const bulkhead_client_options *options, bulkhead_client **out);
void bulkhead_client_free(bulkhead_client *c);
/* JSON answers as docs/api.md describes them ([Container...], Container). */
bulkhead_status bulkhead_client_list(bulkhead_client *c, char **json_out);
bulkhead_status bulkhead_client_info(bulkhead_client *c, const char *name, char **json_out);
/* request_json is a CreateRequest object; json_out (may be NULL) gets the Container. */
bulkhead_status bulkhead_client_create(bulkhead_client *c, const char *request_json, char **json_out);
bulkhead_status bulkhead_client_start(bulkhead_client *c, const char *name);
/* timeout_s 0: the daemon's default (30 s), then SIGKILL. */
bulkhead_status bulkhead_client_stop(bulkhead_client *c, const char *name, int timeout_s);
/* Runs args in the container (no terminal); exit_status is the process's. */
bulkhead_status bulkhead_client_exec(bulkhead_client *c, const char *name,
                                     const bulkhead_exec_options *options, int *exit_status);

#ifdef __cplusplus
}
#endif
#endif
