#!/usr/bin/env bash
# What one request costs Candor: processor time (the whole server, its SQLite writer thread, and
# the load driver) and bytes written (by the server process, and by the store's disk device as a
# whole, which includes the file system's journal). Starts Candor on a fresh durable SQLite store
# in a temporary directory, runs one scenario of `candor bench`, prints one line. Usage:
#
#   bash bench/cost.sh [scenario] (default client-credentials)
#
# Environment knobs: C (concurrency, 16), D (measured seconds, 4), CANDOR_BIN (a built candor
# binary; default: build in release mode), PORT (18090), TMPDIR (where the store lives: put it
# on the disk to be measured). The device counter counts everything written to the device during
# the run, so keep the machine otherwise quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-client-credentials}
C=${C:-16}
D=${D:-4}
PORT=${PORT:-18090}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=$(candor_binary)
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

secret=$(bench_store "$bin" "$work" "$PORT" --scope openid --scope offline_access --scope api)
"$bin" serve --config "$work/candor.toml" > "$work/candor.log" 2>&1 &
server=$!
wait_for "http://127.0.0.1:$PORT/.well-known/openid-configuration"
device=$(basename "$(df --output=source "$work" | tail -1)")

case "$scenario" in
  refresh|userinfo) extra=(--flow-scope "openid offline_access" --authorize-param prompt=consent) ;;
  *) extra=(--flow-scope openid) ;;
esac
export CANDOR_BENCH_CLIENT_SECRET=$secret CANDOR_BENCH_PASSWORD=bench-password
common=(bench --json -s "$scenario" --issuer "http://127.0.0.1:$PORT" --client-id bench --username bench-user
  -c "$C" --warmup 0 "${extra[@]}")
# A short first run fills the caches and the store's first pages; the second one is measured.
"$bin" "${common[@]}" -d 2 > /dev/null
python3 - "$server" "$device" "$bin" "$D" "${common[@]}" <<'PY'
import json, os, resource, subprocess, sys
server, device, binary, seconds, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
tick = os.sysconf("SC_CLK_TCK")

def cpu(stat_path):  # utime + stime, in seconds
    fields = open(stat_path).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def writer_stat():
    for tid in os.listdir(f"/proc/{server}/task"):
        if open(f"/proc/{server}/task/{tid}/comm").read().strip() == "candor-sqlite-w":
            return f"/proc/{server}/task/{tid}/stat"
    return None

def written():  # (bytes written by the server process, bytes written to the device)
    io = dict(line.split(": ") for line in open(f"/proc/{server}/io").read().splitlines())
    dev = None
    try:
        dev = int(open(f"/sys/class/block/{device}/stat").read().split()[6]) * 512
    except OSError:
        pass
    return int(io["write_bytes"]), dev

writer = writer_stat()
before = (cpu(f"/proc/{server}/stat"), cpu(writer) if writer else 0.0, written())
out = subprocess.run([binary, *args, "-d", seconds], capture_output=True, text=True, check=True).stdout
after = (cpu(f"/proc/{server}/stat"), cpu(writer) if writer else 0.0, written())
driver = resource.getrusage(resource.RUSAGE_CHILDREN)
r = json.loads(out)
n = r["ok"] + r["errors"]
lat = r["latency"] or {}
us = lambda s: s * 1e6 / n
kib = lambda b: b / 1024 / n
device_kib = f"{kib(after[2][1] - before[2][1]):.1f} KiB" if before[2][1] is not None else "unknown"
print(
    f'{r["scenario"]} C={args[args.index("-c") + 1]}: {r["throughput"]:.0f}/s, p50 {lat.get("p50_ms", 0):.2f} ms, '
    f'p99 {lat.get("p99_ms", 0):.2f} ms, errors {r["errors"]} | processor per request: server '
    f'{us(after[0] - before[0]):.0f} µs (writer thread {us(after[1] - before[1]):.0f} µs), driver '
    f'{us(driver.ru_utime + driver.ru_stime):.0f} µs | written per request: server '
    f'{kib(after[2][0] - before[2][0]):.1f} KiB, device {device_kib}'
)
PY
