#!/bin/bash
# Fuzzes the runtime's untrusted inputs with libFuzzer (issue 16 item 18): config.json parsing and
# validation, `exec --process` JSON, `update --resources` JSON and the state.json records.
# Not part of CI. Needs Debian's clang (libclang_rt.fuzzer, from the clang package).
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 300 s each, every target)
#   COVERAGE=1 tests/fuzz/run.sh ...   also replays each corpus through an llvm-cov build
#                                      (<build>-cov) and prints line coverage of the files it feeds
#
# Builds with ASan+UBSan into build-fuzz/ (BUILD_DIR overrides), seeds each corpus from
# tests/fuzz/seeds/<target>, runs the targets one after another for the given time each with a
# 10 s per-input timeout (a hang is a finding), and prints each one's executions and coverage.
# Findings land in $BUILD_DIR/fuzz-artifacts/<target>/ (crash-*, timeout-*, leak-*); every one
# fixed gets its input as a unit test (tests/unit/fuzz_regression_test.cpp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config process resources state)
build=${BUILD_DIR:-$src/build-fuzz}

CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBULKHEAD_TESTS=OFF -DBULKHEAD_SANITIZE=ON -DBULKHEAD_FUZZ=ON >/dev/null
ninja -C "$build" "${targets[@]/#/fuzz_}" >/dev/null

status=0
printf '%-10s %12s %8s %8s %8s  %s\n' target execs cov ft corpus findings
for t in "${targets[@]}"; do
  corpus=$build/fuzz-corpus/$t
  artifacts=$build/fuzz-artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  cp -n "$here/seeds/$t"/* "$corpus/" 2>/dev/null || true
  log=$build/fuzz-$t.log
  # halt_on_error: UBSan reports stop the run like ASan's; detect_leaks: a leak is a finding too.
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$build/tests/fuzz/fuzz_$t" "$corpus" -dict="$here/json.dict" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=1
  line=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$line")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$line")
  findings=$(find "$artifacts" -type f | wc -l)
  printf '%-10s %12s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$findings (log: $log)"
done

if [ "${COVERAGE:-0}" = 1 ]; then
  # The source files each target exists to exercise; the coverage below is of these only.
  declare -A files=(
    [config]="oci/parse.cpp oci/validate.cpp rootfs/mount_options.cpp cgroups/convert.cpp cgroups/device_filter.cpp security/seccomp.cpp"
    [process]="oci/parse.cpp oci/validate.cpp security/plan.cpp security/capabilities.cpp security/process_attrs.cpp"
    [resources]="oci/parse.cpp cgroups/convert.cpp cgroups/device_filter.cpp cgroups/resources.cpp"
    [state]="runtime/state_store.cpp oci/parse.cpp"
  )
  cov=$build-cov
  CC=clang CXX=clang++ cmake -S "$src" -B "$cov" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBULKHEAD_TESTS=OFF -DBULKHEAD_STATIC=OFF -DBULKHEAD_FUZZ=ON -DBULKHEAD_FUZZ_COVERAGE=ON >/dev/null
  ninja -C "$cov" "${targets[@]/#/fuzz_}" >/dev/null
  for t in "${targets[@]}"; do
    rm -f "$cov/$t".profraw
    LLVM_PROFILE_FILE="$cov/$t.profraw" "$cov/tests/fuzz/fuzz_$t" -runs=0 "$build/fuzz-corpus/$t" \
      >/dev/null 2>&1 || true
    llvm-profdata merge -o "$cov/$t.profdata" "$cov/$t.profraw"
    paths=()
    for f in ${files[$t]}; do paths+=("$src/$f"); done
    echo "== $t: line/region coverage of ${files[$t]}"
    llvm-cov report "$cov/tests/fuzz/fuzz_$t" -instr-profile="$cov/$t.profdata" "${paths[@]}" |
      awk 'NR == 1 || /^TOTAL/ || /\.cpp/ { print }'
  done
fi
exit $status
