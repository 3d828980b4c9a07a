#!/usr/bin/env bash
# Digest delivery: import N readers, publish the example articles, send one
# digest to every reader into postfix's smtp-sink on loopback, and compare
# with smtp-source pushing N messages of the same size over the same number
# of connections into the same sink, in the same run.
#
#   bash bench/digest.sh [N] [sqlite|postgres]     (defaults: 10000 sqlite)
#   MESSAGE=minimal   a ~1 KB digest (bench/minimal templates), as listmonk
#                     was measured with; default: the real templates
#   CONNECTIONS=20    SMTP connections, for both senders
#   PIPELINING=off    the sink does not offer PIPELINING (RFC 2920), so
#                     Broadsheet waits for each reply, as smtp-source
#                     always does; default: offered
#   RELAYS=3          send through this many relays ([[smtp.relays]]), each
#                     a sink of its own with CONNECTIONS / RELAYS connections;
#                     the reference still goes to the first, over CONNECTIONS
#   FAIL=half         the last relay's sink is killed once it has taken half
#                     its share; its mail must reach the others, each once
#
# Prints one Markdown table row: message size, Broadsheet msg/s, smtp-source
# msg/s, the ratio, CPU seconds per 1,000 messages (user + system of the
# broadsheet process), peak RSS, import rows/s, and where the machine's CPU
# went during the send: the sink's and the PostgreSQL server's CPU seconds
# per 1,000 messages (on SQLite the database is inside broadsheet) and how
# busy both cores were. Fails unless the sinks took exactly N messages from
# Broadsheet and the campaign is done with N sent.
set -euo pipefail
N=${1:-10000}
DB=${2:-sqlite}
CONNECTIONS=${CONNECTIONS:-20}
PORT=${PORT:-2525}
MESSAGE=${MESSAGE:-full}
RELAYS=${RELAYS:-1}
case "${PIPELINING:-on}" in
  on) SINK_FLAGS=() ;;
  off) SINK_FLAGS=(-p) ;;
  *) echo "PIPELINING: on or off, not '$PIPELINING'" >&2; exit 2 ;;
esac
source "$(dirname "$0")/lib.sh"
need_tools
broadsheet_bin
scratch
cd "$WORK"
SINK_PIDS=()
for ((r = 0; r < RELAYS; r++)); do
  smtp-sink "${SINK_FLAGS[@]}" -u nobody -c "127.0.0.1:$((PORT + r))" 1000 >"sink$r.out" &
  SINK_PIDS+=($!)
  CLEANUP+=("kill ${SINK_PIDS[r]} 2>/dev/null && wait ${SINK_PIDS[r]}")
  wait_for_port "$((PORT + r))"
done
database "$DB"
export BROADSHEET_MAIL__TRANSPORT=smtp BROADSHEET_SMTP__PORT=$PORT
export BROADSHEET_SMTP__CONCURRENCY=$CONNECTIONS
if [ "$RELAYS" -gt 1 ]; then
  # Read from the working folder by every command below.
  for ((r = 0; r < RELAYS; r++)); do
    printf '[[smtp.relays]]\nname = "r%d"\nhost = "127.0.0.1"\nport = %d\nconcurrency = %d\n' \
      "$r" "$((PORT + r))" "$((CONNECTIONS / RELAYS))"
  done > config.toml
fi
# The messages a sink has taken so far.
taken() { tr '\r' '\n' < "sink$1.out" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }
export BROADSHEET_LOG__LEVEL=warn
case "$MESSAGE" in
  # One article's title and link: about 1.4 KB with every digest header.
  minimal) export BROADSHEET_MAIL__TEMPLATES_DIR=$ROOT/bench/minimal ARTICLES=winter-schedule.md ;;
  full) ARTICLES= ;;
  *) echo "MESSAGE: minimal or full, not '$MESSAGE'" >&2; exit 2 ;;
esac

readers_csv "$N" > readers.csv
import_start=$(now)
"$BIN" subscriber import readers.csv >/dev/null 2>&1
import_end=$(now)
import_example_articles $ARTICLES
# The size of one real digest, so the reference sends messages as large.
BROADSHEET_MAIL__TRANSPORT=file BROADSHEET_MAIL__FILE_DIR="$WORK/preview" \
  "$BIN" digest preview --to reader@example.com
size=$(stat -c %s "$WORK"/preview/*.eml)

# Reference: what this machine's SMTP path carries, same connections and size.
ref_start=$(now)
smtp-source -d -s "$CONNECTIONS" -m "$N" -l "$size" -f bench@localhost -t reader@example.com "127.0.0.1:$PORT" >/dev/null
ref_end=$(now)

# Its log is kept, and shown if the send fails (a deadlock once looked
# like a silent exit here).
cpu_before=$(cpu_ticks "${SINK_PIDS[@]}")
if [ "${FAIL:-}" = half ] && [ "$RELAYS" -gt 1 ]; then
  last=$((RELAYS - 1))
  (while [ "$(taken "$last" || echo 0)" -lt $((N / RELAYS / 2)) ]; do sleep 0.02; done
   kill "${SINK_PIDS[last]}") &
fi
if ! /usr/bin/time -f "%e %U %S %M" -o time.txt "$BIN" digest send --now --wait 2>send.log; then
  echo "bench/digest.sh: digest send failed:" >&2
  tail -5 send.log >&2
  exit 1
fi
# Every reader got exactly one digest: the sink took N messages after the
# reference's N, and the ledger has N sent rows in one finished campaign.
sleep 0.5
cpu_after=$(cpu_ticks "${SINK_PIDS[@]}")
received=0
for ((r = 0; r < RELAYS; r++)); do received=$((received + $(taken "$r" || echo 0))); done
recorded=$(sql "SELECT status || ' ' || sent FROM campaigns")
if [ "$received" != "$((2 * N))" ] || [ "$recorded" != "done $N" ]; then
  echo "bench/digest.sh: the sinks took $received messages (expected $((2 * N))); campaign: $recorded (expected: done $N)" >&2
  exit 1
fi
if [ "$RELAYS" -gt 1 ]; then
  agg=$([ "$DB" = postgres ] && echo string_agg || echo group_concat)
  echo "relays (sent/deferred): $(sql "SELECT $agg(name || ' ' || sent || '/' || deferred, ', ') FROM campaign_figures WHERE kind = 'relay'")" >&2
fi
read -r elapsed user sys rss_kb < time.txt
python3 - "$N" "$DB" "$elapsed" "$user" "$sys" "$rss_kb" "$ref_start" "$ref_end" "$import_start" "$import_end" "$size" \
  $cpu_before $cpu_after "$(getconf CLK_TCK)" <<'PY'
import sys
n, db = int(sys.argv[1]), sys.argv[2]
elapsed, user, sys_, rss_kb, ref_start, ref_end, imp_start, imp_end = map(float, sys.argv[3:11])
sink0, pg0, busy0, total0, sink1, pg1, busy1, total1, hz = map(int, sys.argv[12:21])
rate, ref = n / elapsed, n / (ref_end - ref_start)
per_k = lambda ticks: f"{ticks / hz / n * 1e3:.3f} s"
print(f"| {db} | {n:,} | {sys.argv[11]} B | {rate:,.0f} | {ref:,.0f} | {rate / ref:.0%} "
      f"| {(user + sys_) / n * 1e3:.3f} s | {rss_kb / 1024:,.0f} MiB | {n / (imp_end - imp_start):,.0f} "
      f"| {per_k(sink1 - sink0)} | {per_k(pg1 - pg0) if db == 'postgres' else '–'} "
      f"| {(busy1 - busy0) / (total1 - total0):.0%} |")
PY
