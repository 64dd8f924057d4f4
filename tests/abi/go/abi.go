// cgo wrappers of libbulkhead for threads_test.go (Go does not allow cgo in _test.go files).
package abitest

/*
#cgo LDFLAGS: -lbulkhead
#include <stdlib.h>
#include <string.h>
#include <bulkhead/bulkhead.h>

static bulkhead_status new_runtime(const char *root, bulkhead_runtime **rt) {
  bulkhead_runtime_options o;
  BULKHEAD_INIT(o);
  o.root = root;
  return bulkhead_runtime_new(&o, rt);
}

static bulkhead_status run_detached(bulkhead_runtime *rt, const char *id, const char *bundle) {
  bulkhead_create_options c;
  BULKHEAD_INIT(c);
  c.bundle = bundle;
  bulkhead_run_options r;
  BULKHEAD_INIT(r);
  r.detach = 1;
  return bulkhead_run(rt, id, &c, &r, NULL);
}

static bulkhead_status exec_sh(bulkhead_runtime *rt, const char *id, const char *script, int *status) {
  const char *args[] = {"/bin/sh", "-c", script, NULL};
  bulkhead_exec_options e;
  BULKHEAD_INIT(e);
  e.args = args;
  return bulkhead_exec(rt, id, &e, status);
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

type Runtime struct{ rt *C.bulkhead_runtime }

func lastError() error { return errors.New(C.GoString(C.bulkhead_last_error())) }

func NewRuntime(root string) (*Runtime, error) {
	croot := C.CString(root)
	defer C.free(unsafe.Pointer(croot))
	r := &Runtime{}
	if C.new_runtime(croot, &r.rt) != C.BULKHEAD_OK {
		return nil, lastError()
	}
	return r, nil
}

func (r *Runtime) Free() { C.bulkhead_runtime_free(r.rt) }

func (r *Runtime) RunDetached(id, bundle string) error {
	cid, cb := C.CString(id), C.CString(bundle)
	defer C.free(unsafe.Pointer(cid))
	defer C.free(unsafe.Pointer(cb))
	if C.run_detached(r.rt, cid, cb) != C.BULKHEAD_OK {
		return lastError()
	}
	return nil
}

// jsonCall runs one of the calls that answer a JSON string.
func jsonCall(call func(out **C.char) C.bulkhead_status) (string, error) {
	var out *C.char
	if call(&out) != C.BULKHEAD_OK {
		return "", lastError()
	}
	defer C.bulkhead_free(unsafe.Pointer(out))
	return C.GoString(out), nil
}

func (r *Runtime) State(id string) (string, error) {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	return jsonCall(func(out **C.char) C.bulkhead_status { return C.bulkhead_state(r.rt, cid, out) })
}

func (r *Runtime) Stats(id string) (string, error) {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	return jsonCall(func(out **C.char) C.bulkhead_status { return C.bulkhead_stats(r.rt, cid, out) })
}

func (r *Runtime) List() (string, error) {
	return jsonCall(func(out **C.char) C.bulkhead_status { return C.bulkhead_list(r.rt, out) })
}

func (r *Runtime) ExecSh(id, script string) (int, error) {
	cid, cs := C.CString(id), C.CString(script)
	defer C.free(unsafe.Pointer(cid))
	defer C.free(unsafe.Pointer(cs))
	var status C.int = -1
	if C.exec_sh(r.rt, cid, cs, &status) != C.BULKHEAD_OK {
		return -1, lastError()
	}
	return int(status), nil
}

func (r *Runtime) Kill(id string, sig int) error {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	if C.bulkhead_kill(r.rt, cid, C.int(sig), 0) != C.BULKHEAD_OK {
		return lastError()
	}
	return nil
}

func (r *Runtime) Delete(id string) error {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	if C.bulkhead_delete(r.rt, cid, 1) != C.BULKHEAD_OK {
		return lastError()
	}
	return nil
}
