#!/usr/bin/env bash
# Replaces audit/advisory-db/ with the RustSec advisory database as it is now (needs GitHub), then
# runs the audit against it. Commit the result with the advisories it brings.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$work/db"
rm -rf advisory-db
mkdir advisory-db
(cd "$work/db" && git archive HEAD crates rust LICENSE.txt) | tar -x -C advisory-db
echo "rustsec/advisory-db $(git -C "$work/db" log -1 --format='%H %cs')" > advisory-db/SNAPSHOT
cd ..
cargo run --quiet -p candor-audit
