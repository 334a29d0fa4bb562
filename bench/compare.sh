#!/usr/bin/env bash
# Candor and a reference provider, side by side, with the same load driver (`candor bench`) on
# the same machine, one after the other. Usage:
#
#   PEER_DIR=/path/to/reference-provider bash bench/compare.sh [scenario ...]
#
# PEER_DIR holds the reference provider: panva's oidc-provider (npm) started by `node op.mjs`,
# with one confidential client bench/bench-secret (client_secret_basic, redirect URI
# http://127.0.0.1:9999/cb), PKCE required, an in-memory store and an interaction that logs a
# fixed account in without a form. Without PEER_DIR only Candor is measured.
#
# Scenarios: client-credentials code code-sso refresh userinfo (default: all five). `code` logs in
# with a fresh browser every flow (Candor checks the password with argon2id, the peer's interaction
# signs its fixed account in without one); `code-sso` is the same round trip by a signed-in user
# (one browser per worker), where neither side checks a password. Environment knobs:
# C (concurrency, 16), D (measured seconds, 10), W (warm-up seconds, 2), ALG (RS256 or ES256),
# OUT (results directory, default target/bench/<date>), CANDOR_BIN (a built candor binary).
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-16}
D=${D:-10}
W=${W:-2}
ALG=${ALG:-RS256}
OUT=${OUT:-target/bench/$(date +%Y%m%d-%H%M%S)}
CANDOR_PORT=${CANDOR_PORT:-18080}
PEER_PORT=${PEER_PORT:-13000}
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(client-credentials code code-sso refresh userinfo)
mkdir -p "$OUT"

# shellcheck source=bench/lib.sh
. bench/lib.sh
bin=$(candor_binary)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# --- Candor: durable SQLite store, one client and one user like the peer's -------------------
candor_secret=$(bench_store "$bin" "$work" "$CANDOR_PORT" --scope openid --scope profile --scope email \
  --scope offline_access --scope api --id-token-alg "$ALG")

run_candor() {
  "$bin" serve --config "$work/candor.toml" > "$work/candor.log" 2>&1 &
  candor_pid=$!
  pids+=("$candor_pid")
  wait_for "http://127.0.0.1:$CANDOR_PORT/.well-known/openid-configuration"
}

run_peer() {
  (cd "$PEER_DIR" && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error) >&2
  PORT=$PEER_PORT ID_TOKEN_ALG=$ALG AT_FORMAT=opaque node "$PEER_DIR/op.mjs" > "$work/peer.log" 2>&1 &
  peer_pid=$!
  pids+=("$peer_pid")
  wait_for "http://127.0.0.1:$PEER_PORT/.well-known/openid-configuration"
}

args_for() { # scenario: sets the array extra
  case "$1" in
    refresh|userinfo) extra=(--flow-scope "openid offline_access" --authorize-param prompt=consent) ;;
    *) extra=(--flow-scope openid) ;;
  esac
}

drive() { # name issuer pid client secret scenario
  local name=$1 issuer=$2 pid=$3 client=$4 secret=$5 scenario=$6
  args_for "$scenario"
  CANDOR_BENCH_CLIENT_SECRET=$secret CANDOR_BENCH_PASSWORD=bench-password "$bin" bench --json \
    -s "$scenario" --issuer "$issuer" --client-id "$client" --username bench-user \
    -c "$C" -d "$D" --warmup "$W" --pid "$pid" "${extra[@]}" > "$OUT/$name-$scenario.json"
  python3 - "$OUT/$name-$scenario.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); l = r["latency"] or {}
print(f'{sys.argv[2]:7} {r["scenario"]:19} {r["throughput"]:9.0f}/s  p50 {l.get("p50_ms",0):7.2f} ms  p99 {l.get("p99_ms",0):7.2f} ms  p99.9 {l.get("p999_ms",0):7.2f} ms  errors {r["errors"]}  rss {r["rss_peak_mib"] or 0:.1f} MiB')
PY
}

startup_line() { # name file
  python3 -c 'import json,sys; r=json.load(open(sys.argv[2])); print("%-7s startup to first answer: median %.1f ms, max %.1f ms" % (sys.argv[1], r["median_ms"], r["max_ms"]))' "$1" "$2"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); C=$C, $D s measured after $W s; id tokens $ALG; results in $OUT"
run_candor
for s in "${scenarios[@]}"; do
  # A little space between runs, so one run's backlog does not land in the next.
  drive candor "http://127.0.0.1:$CANDOR_PORT" "$candor_pid" bench "$candor_secret" "$s"
  sleep 1
done
echo "candor start-up:"
kill "$candor_pid"; wait "$candor_pid" 2>/dev/null || true
"$bin" bench -s startup --issuer "http://127.0.0.1:$CANDOR_PORT" --runs 20 --json -- \
  "$bin" serve --config "$work/candor.toml" > "$OUT/candor-startup.json"
startup_line candor "$OUT/candor-startup.json"

if [ -n "${PEER_DIR:-}" ]; then
  run_peer
  for s in "${scenarios[@]}"; do
    drive peer "http://127.0.0.1:$PEER_PORT" "$peer_pid" bench bench-secret "$s"
    sleep 1
  done
  kill "$peer_pid"; wait "$peer_pid" 2>/dev/null || true
  "$bin" bench -s startup --issuer "http://127.0.0.1:$PEER_PORT" --runs 5 --json -- \
    env PORT=$PEER_PORT ID_TOKEN_ALG=$ALG AT_FORMAT=opaque node "$PEER_DIR/op.mjs" > "$OUT/peer-startup.json"
  startup_line peer "$OUT/peer-startup.json"
fi
