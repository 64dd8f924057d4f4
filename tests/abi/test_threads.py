#!/usr/bin/env python3
"""libbulkhead from Python ctypes, from several threads at once: each thread runs its own busybox
container through the whole runtime face (run, state, exec, stats, events, pause/resume, kill,
delete) and checks that its last error is its own. Usage: test_threads.py LIBBULKHEAD [THREADS]
($BULKHEAD_BINARY names the helper). Exit 0 when every thread passed and nothing is left behind."""
import ctypes
import json
import os
import shutil
import sys
import tempfile
import threading

lib = ctypes.CDLL(sys.argv[1])
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 6
c_char_p, c_int, c_void_p, c_uint32 = ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32


class RuntimeOptions(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("root", c_char_p), ("binary", c_char_p), ("systemd_cgroup", c_int)]


class CreateOptions(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("bundle", c_char_p), ("pid_file", c_char_p),
                ("console_socket", c_char_p), ("no_pivot", c_int), ("no_new_keyring", c_int)]


class RunOptions(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("detach", c_int), ("keep", c_int)]


class ExecOptions(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("args", ctypes.POINTER(c_char_p)), ("env", ctypes.POINTER(c_char_p)),
                ("cwd", c_char_p), ("user", c_char_p), ("detach", c_int)]


class EventsOptions(ctypes.Structure):
    _fields_ = [("size", c_uint32), ("interval_ms", c_uint32)]


EVENT_FN = ctypes.CFUNCTYPE(c_int, c_char_p, c_void_p)
lib.bulkhead_last_error.restype = c_char_p
lib.bulkhead_runtime_new.argtypes = [ctypes.POINTER(RuntimeOptions), ctypes.POINTER(c_void_p)]
for name in ("start", "pause", "resume"):
    getattr(lib, "bulkhead_" + name).argtypes = [c_void_p, c_char_p]
lib.bulkhead_run.argtypes = [c_void_p, c_char_p, ctypes.POINTER(CreateOptions), ctypes.POINTER(RunOptions),
                             ctypes.POINTER(c_int)]
lib.bulkhead_state.argtypes = [c_void_p, c_char_p, ctypes.POINTER(c_void_p)]
lib.bulkhead_stats.argtypes = [c_void_p, c_char_p, ctypes.POINTER(c_void_p)]
lib.bulkhead_list.argtypes = [c_void_p, ctypes.POINTER(c_void_p)]
lib.bulkhead_exec.argtypes = [c_void_p, c_char_p, ctypes.POINTER(ExecOptions), ctypes.POINTER(c_int)]
lib.bulkhead_events.argtypes = [c_void_p, c_char_p, ctypes.POINTER(EventsOptions), EVENT_FN, c_void_p]
lib.bulkhead_kill.argtypes = [c_void_p, c_char_p, c_int, c_int]
lib.bulkhead_delete.argtypes = [c_void_p, c_char_p, c_int]
lib.bulkhead_free.argtypes = [c_void_p]
lib.bulkhead_runtime_free.argtypes = [c_void_p]

tmp = tempfile.mkdtemp(prefix="bulkhead-abi-py-")
bundle = os.path.join(tmp, "bundle")
os.makedirs(os.path.join(bundle, "rootfs", "bin"))
for d in ("proc", "dev"):
    os.makedirs(os.path.join(bundle, "rootfs", d))
shutil.copy("/bin/busybox", os.path.join(bundle, "rootfs", "bin", "busybox"))
for n in ("sh", "sleep", "echo"):
    os.symlink("busybox", os.path.join(bundle, "rootfs", "bin", n))
with open(os.path.join(bundle, "config.json"), "w") as f:
    json.dump({"ociVersion": "1.2.0",
               "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "while true; do sleep 1; done"],
                           "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": True},
               "root": {"path": "rootfs", "readonly": True},
               "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                          {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}],
               "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")]}}, f)

root = os.path.join(tmp, "state").encode()
opts = RuntimeOptions(ctypes.sizeof(RuntimeOptions), root, None, 0)
rt = c_void_p()
assert lib.bulkhead_runtime_new(ctypes.byref(opts), ctypes.byref(rt)) == 0, lib.bulkhead_last_error()
errors = []


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def take_string(p):
    s = ctypes.string_at(p.value).decode()
    lib.bulkhead_free(p)
    return s


def worker(i):
    cid = f"py-{i}".encode()
    try:
        co = CreateOptions(ctypes.sizeof(CreateOptions), bundle.encode(), None, None, 0, 0)
        ro = RunOptions(ctypes.sizeof(RunOptions), 1, 0)
        rc = lib.bulkhead_run(rt, cid, ctypes.byref(co), ctypes.byref(ro), None)
        check(rc == 0, f"run: {lib.bulkhead_last_error()}")
        out = c_void_p()
        check(lib.bulkhead_state(rt, cid, ctypes.byref(out)) == 0, f"state: {lib.bulkhead_last_error()}")
        state = json.loads(take_string(out))
        check(state["status"] == "running" and state["id"] == cid.decode(), f"state {state}")
        args = (c_char_p * 4)(b"/bin/sh", b"-c", f"exit {i}".encode(), None)
        eo = ExecOptions(ctypes.sizeof(ExecOptions), args, None, None, None, 0)
        status = c_int(-1)
        check(lib.bulkhead_exec(rt, cid, ctypes.byref(eo), ctypes.byref(status)) == 0,
              f"exec: {lib.bulkhead_last_error()}")
        check(status.value == i, f"exec status {status.value}, wanted {i}")
        check(lib.bulkhead_stats(rt, cid, ctypes.byref(out)) == 0, f"stats: {lib.bulkhead_last_error()}")
        check(json.loads(take_string(out))["type"] == "stats", "stats type")
        seen = []
        cb = EVENT_FN(lambda js, _: (seen.append(json.loads(js)), len(seen) < 2)[1])
        ev = EventsOptions(ctypes.sizeof(EventsOptions), 100)
        check(lib.bulkhead_events(rt, cid, ctypes.byref(ev), cb, None) == 0, f"events: {lib.bulkhead_last_error()}")
        check(len(seen) == 2 and all(e["id"] == cid.decode() for e in seen), f"events {len(seen)}")
        check(lib.bulkhead_pause(rt, cid) == 0, f"pause: {lib.bulkhead_last_error()}")
        check(lib.bulkhead_resume(rt, cid) == 0, f"resume: {lib.bulkhead_last_error()}")
        # This thread's error stays its own while the others work.
        missing = f"missing-{i}".encode()
        check(lib.bulkhead_start(rt, missing) == 4, "start of a missing container")
        check(f"missing-{i}" in lib.bulkhead_last_error().decode(), f"last error {lib.bulkhead_last_error()}")
        check(lib.bulkhead_kill(rt, cid, 9, 0) == 0, f"kill: {lib.bulkhead_last_error()}")
        check(lib.bulkhead_delete(rt, cid, 1) == 0, f"delete: {lib.bulkhead_last_error()}")
    except Exception as e:  # reported below, the container removed
        errors.append(f"thread {i}: {e}")
        lib.bulkhead_delete(rt, cid, 1)


ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
out = c_void_p()
assert lib.bulkhead_list(rt, ctypes.byref(out)) == 0, lib.bulkhead_last_error()
left = json.loads(take_string(out))
lib.bulkhead_runtime_free(rt)
shutil.rmtree(tmp)
for e in errors:
    print("FAILED", e)
if left:
    print("FAILED containers left:", [c["id"] for c in left])
print(f"{'FAIL' if errors or left else 'PASS'}: {threads} threads, {len(errors)} failed")
sys.exit(1 if errors or left else 0)
