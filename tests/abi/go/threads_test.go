// libbulkhead from Go through cgo, from many goroutines (so many OS threads) at once: each runs its
// own busybox container through run, state, exec, stats, kill and delete. The Go runtime is the
// multithreaded caller the C ABI is made for: the library must not fork it.
// Run: CGO_CFLAGS=-I.../include CGO_LDFLAGS=-L.../lib BULKHEAD_BINARY=... go test
package abitest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func makeBundle(t *testing.T, dir string) string {
	bundle := filepath.Join(dir, "bundle")
	for _, d := range []string{"rootfs/bin", "rootfs/proc", "rootfs/dev"} {
		if err := os.MkdirAll(filepath.Join(bundle, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "rootfs/bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(bundle, "rootfs/bin", n)); err != nil {
			t.Fatal(err)
		}
	}
	config := `{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},
"args":["/bin/sh","-c","while true; do sleep 1; done"],"env":["PATH=/bin"],"cwd":"/","noNewPrivileges":true},
"root":{"path":"rootfs","readonly":true},
"mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs"}],
"linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"ipc"},{"type":"uts"},{"type":"network"}]}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

func TestManyGoroutines(t *testing.T) {
	dir := t.TempDir()
	bundle := makeBundle(t, dir)
	rt, err := NewRuntime(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Free()

	const n = 8
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("go-%d", i)
			defer rt.Delete(id)
			if err := rt.RunDetached(id, bundle); err != nil {
				t.Errorf("run %s: %v", id, err)
				return
			}
			out, err := rt.State(id)
			var st struct{ ID, Status string }
			if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Status != "running" || st.ID != id {
				t.Errorf("state %s: %q %v", id, out, err)
			}
			if status, err := rt.ExecSh(id, fmt.Sprintf("exit %d", i)); err != nil || status != i {
				t.Errorf("exec %s: status %d, %v", id, status, err)
			}
			out, err = rt.Stats(id)
			var ev struct{ Type, ID string }
			if err != nil || json.Unmarshal([]byte(out), &ev) != nil || ev.Type != "stats" || ev.ID != id {
				t.Errorf("stats %s: %q %v", id, out, err)
			}
			if err := rt.Kill(id, 9); err != nil {
				t.Errorf("kill %s: %v", id, err)
			}
			if err := rt.Delete(id); err != nil {
				t.Errorf("delete %s: %v", id, err)
			}
		}(i)
	}
	wg.Wait()
	out, err := rt.List()
	var left []struct{ ID string }
	if err != nil || json.Unmarshal([]byte(out), &left) != nil || len(left) != 0 {
		t.Errorf("list after delete: %q %v", out, err)
	}
}
