#!/usr/bin/env bash
# selftest.sh - checks that run-in-vm.sh works: cgroup v2 in the guest,
# argument quoting, stdout/stderr separation, exit codes, cwd, environment,
# timeout. Boots about a dozen VMs (~1-2 min). Usage: tests/vm/selftest.sh
# shellcheck disable=SC2016  # single-quoted $ is meant for the guest
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
vm=("$here/run-in-vm.sh" --force-vm)
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # NAME EXPECTED ACTUAL
    if [[ $2 == "$3" ]]; then
        pass=$((pass + 1)); printf 'ok   %s\n' "$1"
    else
        fail=$((fail + 1)); printf 'FAIL %s\n  expected: %q\n  actual:   %q\n' "$1" "$2" "$3"
    fi
}

run() { # run the VM, capture stdout, stderr and status into $out $errout $rc
    rc=0
    "${vm[@]}" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out=$(cat "$tmp/out"; echo x); out=${out%x}
    errout=$(<"$tmp/err")
}

run -- sh -c 'cat /sys/fs/cgroup/cgroup.controllers
    mkdir /sys/fs/cgroup/t && echo 20M >/sys/fs/cgroup/t/memory.max && cat /sys/fs/cgroup/t/memory.max
    echo $$ >/sys/fs/cgroup/t/cgroup.procs && cat /proc/self/cgroup; exit 3'
check "exit status" 3 "$rc"
for c in cpuset cpu io memory pids; do
    check "controller $c" 1 "$(grep -cw "$c" <<<"${out%%$'\n'*}")"
done
check "memory.max" 20971520 "$(sed -n 2p <<<"$out")"
check "moved into cgroup" "0::/t" "$(sed -n 3p <<<"$out")"

run -- printf '[%s]\n' 'a b' '$HOME' "it's" $'x\ny' '' '*'
check "quoting" $'[a b]\n[$HOME]\n[it\'s]\n[x\ny]\n[]\n[*]\n' "$out"

run -- printf 'no newline'
check "output without trailing newline" "no newline" "$out"

run -- sh -c 'echo out; echo err >&2; echo out2'
check "stdout only" $'out\nout2\n' "$out"
check "stderr only" "err" "$errout"

run -- pwd
check "cwd" "$(pwd -P)"$'\n' "$out"

FOO_FROM_HOST='x y' run -e FOO_FROM_HOST -e BAR=baz -- sh -c 'echo "$HOME|$FOO_FROM_HOST|$BAR|$USER"'
check "environment" $'/root|x y|baz|root\n' "$out"

run -- false
check "exit 1" 1 "$rc"
run -- sh -c 'kill -9 $$'
check "killed by SIGKILL" 137 "$rc"
run -- /nonexistent/command
check "command not found" 127 "$rc"

run -- sh -c 'cat; seq 1 20000 | md5sum; [ -t 1 ] || echo notty'
check "stdin is /dev/null, output intact, not a tty" \
    "$(seq 1 20000 | md5sum)"$'\nnotty\n' "$out"

run -- sh -c "touch '$here/written-in-vm' && ls '$here/written-in-vm'"
check "write goes to the overlay" "$here/written-in-vm"$'\n' "$out"
check "host untouched" no "$([[ -e $here/written-in-vm ]] && echo yes || echo no)"

run -- unshare -Urmpf --mount-proc sh -c 'echo $$'
check "namespaces" $'1\n' "$out"

run --timeout 2 -- sleep 600
check "timeout" 124 "$rc"

printf '%d passed, %d failed\n' "$pass" "$fail"
((fail == 0))
