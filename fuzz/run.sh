#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of the parsers a stranger's bytes reach:
# form and JSON bodies, Basic credentials, redirect-URI matching, and what a developer pastes into
# the client tools. Runs every target for the given seconds (default 10; CI runs the default, a
# longer run is e.g. `bash fuzz/run.sh 600`) and fails on the first crash, leaving its input in
# fuzz/artifacts/<target>/.
#
# cargo-fuzz passes compiler flags that only nightly accepts (-Zsanitizer=address and others);
# RUSTC_BOOTSTRAP=1 lets the stable compiler take them, for this build only. The candor binary
# is never built this way.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-10}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in $(cargo fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "corpus/$target"
  log="target/fuzz-$target.log"
  mkdir -p target
  status=0
  cargo fuzz run -O "$target" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|new_units_added)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz target $target failed (exit $status; the log above says why: a crash leaves its input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
done
