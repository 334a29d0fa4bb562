# Shared by the scripts of bench/ (sourced from the repository's root, not run).

# Prints the candor binary to measure: $CANDOR_BIN, or a release build of this checkout.
candor_binary() {
  if [ -n "${CANDOR_BIN:-}" ]; then
    echo "$CANDOR_BIN"
  else
    cargo build --release --locked -p candor >&2
    echo "$PWD/target/release/candor"
  fi
}

# Waits up to 10 s for URL to answer, or says it did not.
wait_for() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no answer from $1" >&2; return 1
}

# Prepares a durable SQLite store in DIR for a Candor serving 127.0.0.1:PORT, as the peer is set
# up: DIR/candor.toml, a confidential client `bench` with every grant (its extra `client add`
# arguments follow), the user `bench-user` (password `bench-password`) and a signing key. Prints
# the client's secret.
bench_store() { # bin dir port [client add arguments...]
  local bin=$1 dir=$2 port=$3
  shift 3
  local store="sqlite://$dir/candor.db"
  printf 'issuer = "http://127.0.0.1:%s"\nlisten = "127.0.0.1:%s"\nstore = "%s"\n[log]\nlevel = "warn"\n' \
    "$port" "$port" "$store" > "$dir/candor.toml"
  "$bin" migrate --store "$store" >/dev/null
  "$bin" client add --store "$store" --id bench --name bench --redirect-uri http://127.0.0.1:9999/cb \
    --grant authorization_code --grant refresh_token --grant client_credentials "$@" > "$dir/client.txt"
  CANDOR_NEW_PASSWORD=bench-password "$bin" user add --store "$store" bench-user >/dev/null
  "$bin" key rotate --store "$store" >/dev/null
  awk '/client_secret:/{print $2}' "$dir/client.txt"
}
