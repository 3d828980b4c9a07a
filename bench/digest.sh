#!/usr/bin/env bash
# Digest delivery benchmark (issue 5): import N readers, publish articles,
# send one digest to every reader into postfix's smtp-sink on loopback, and
# compare with smtp-source pushing the same number of messages of the same
# size over the same number of connections into the same sink.
#
#   bash bench/digest.sh [N] [sqlite|postgres]     (defaults: 10000 sqlite)
#
# Prints one Markdown table row per run: messages/s, the ratio to
# smtp-source, CPU µs per message, peak RSS. Needs root for apt (postfix).
set -euo pipefail
N=${1:-10000}
DB=${2:-sqlite}
CONNECTIONS=${CONNECTIONS:-20}
PORT=${PORT:-2525}
cd "$(dirname "$0")/.."

if ! command -v smtp-sink >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postfix >/dev/null || { apt-get update -q && apt-get install -y -q postfix >/dev/null; }
  postfix stop >/dev/null 2>&1 || true
fi
command -v /usr/bin/time >/dev/null || apt-get install -y -q time >/dev/null
cargo build --release --quiet
BIN=$PWD/target/release/broadsheet

work=$(mktemp -d)
trap 'kill "$sink" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
smtp-sink -u nobody -c "127.0.0.1:$PORT" 1000 >sink.out & sink=$!
sleep 1

case "$DB" in
  sqlite) export BROADSHEET_DATABASE__URL="sqlite://$work/bench.db" ;;
  postgres)
    name="bs_bench_$$"
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" postgres
    export BROADSHEET_DATABASE__URL="postgres://postgres@127.0.0.1:5432/$name" ;;
esac
export BROADSHEET_MAIL__TRANSPORT=smtp BROADSHEET_SMTP__PORT=$PORT
export BROADSHEET_SMTP__CONCURRENCY=$CONNECTIONS
export BROADSHEET_LOG__LEVEL=warn

python3 - "$N" > readers.csv <<'PY'
import sys
n = int(sys.argv[1])
print("email,name,topics,consented_at,source")
for i in range(n):
    print(f"reader{i}@example.com,Reader {i},,2025-01-01T00:00:00Z,bench")
PY
import_start=$(date +%s.%N)
"$BIN" subscriber import readers.csv >/dev/null 2>&1
import_end=$(date +%s.%N)
"$BIN" article import "$OLDPWD"/examples/articles/*.md 2>/dev/null
# The size of one real digest, so the reference sends messages as large.
BROADSHEET_MAIL__TRANSPORT=file BROADSHEET_MAIL__FILE_DIR="$work/preview" \
  "$BIN" digest preview --to reader@example.com 2>/dev/null
size=$(stat -c %s "$work"/preview/*.eml)

# Reference: what this machine's SMTP path carries, same connections and size.
ref_start=$(date +%s.%N)
smtp-source -d -s "$CONNECTIONS" -m "$N" -l "$size" -f bench@localhost -t reader@example.com "127.0.0.1:$PORT" >/dev/null
ref_end=$(date +%s.%N)
ref_rate=$(python3 -c "print(round($N / ($ref_end - $ref_start)))")

/usr/bin/time -f "%e %U %S %M" -o time.txt "$BIN" digest send --now --wait 2>/dev/null
# Every reader got exactly one digest: the sink took N messages after the
# reference's N, and the ledger has N sent rows in one finished campaign.
sleep 0.5
received=$(tr '\r' '\n' < sink.out | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
ledger="SELECT status || ' ' || sent FROM campaigns"
case "$DB" in
  sqlite) recorded=$(python3 -c "import sqlite3,sys; print(*sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())" "$work/bench.db" "$ledger") ;;
  postgres) recorded=$(psql -tA -h 127.0.0.1 -U postgres -c "$ledger" "$name") ;;
esac
if [ "$received" != "$((2 * N))" ] || [ "$recorded" != "done $N" ]; then
  echo "bench/digest.sh: the sink took $received messages (expected $((2 * N))); campaign: $recorded (expected: done $N)" >&2
  exit 1
fi
read -r elapsed user sys rss_kb < time.txt
python3 - "$N" "$DB" "$elapsed" "$user" "$sys" "$rss_kb" "$ref_rate" "$import_start" "$import_end" "$size" <<'PY'
import sys
n, db = int(sys.argv[1]), sys.argv[2]
elapsed, user, sys_, rss_kb, ref = map(float, sys.argv[3:8])
imp = n / (float(sys.argv[9]) - float(sys.argv[8]))
rate = n / elapsed
size = sys.argv[10]
print(f"| {db} | {n:,} | {size} B | {rate:,.0f} | {ref:,.0f} | {rate / ref:.0%} | {(user + sys_) / n * 1e6:,.0f} | {rss_kb / 1024:,.0f} MiB | {imp:,.0f} |")
PY
if [ "$DB" = postgres ]; then psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $name" postgres; fi
