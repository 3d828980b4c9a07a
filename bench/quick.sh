#!/usr/bin/env bash
# Every benchmark at a small N, on both databases, with the debug build:
# proves the benchmarks still run and their checks (every message
# delivered once, no request failed, every signup stored and its email
# queued, every row imported) still pass. Speed is not judged here.
# Run by .ci/run; the figures in BENCHMARKS.md come from the full runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export BIN=$target/debug/broadsheet
for db in sqlite postgres; do
  bash bench/digest.sh 300 "$db"
  MESSAGE=minimal bash bench/digest.sh 300 "$db"
  RELAYS=3 FAIL=half bash bench/digest.sh 300 "$db"
  bash bench/import.sh 3000 "$db"
  bash bench/web.sh "$db" 1
  bash bench/enumeration.sh "$db" 5
  HASHFLOOD_MAX_S=5 bash bench/hashflood.sh "$db" 3
  bash bench/soak.sh "$db" 40 2000
done
cargo bench --locked --profile dev --bench render -- 300
