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
#
# Prints one Markdown table row: message size, Broadsheet msg/s, smtp-source
# msg/s, the ratio, CPU seconds per 1,000 messages (user + system of the
# broadsheet process), peak RSS, import rows/s. Fails unless the sink took
# exactly N messages from Broadsheet and the campaign is done with N sent.
set -euo pipefail
N=${1:-10000}
DB=${2:-sqlite}
CONNECTIONS=${CONNECTIONS:-20}
PORT=${PORT:-2525}
MESSAGE=${MESSAGE:-full}
source "$(dirname "$0")/lib.sh"
need_tools
broadsheet_bin
scratch
cd "$WORK"
smtp-sink -u nobody -c "127.0.0.1:$PORT" 1000 >sink.out & CLEANUP+=("kill $! && wait $!")
wait_for_port "$PORT"
database "$DB"
export BROADSHEET_MAIL__TRANSPORT=smtp BROADSHEET_SMTP__PORT=$PORT
export BROADSHEET_SMTP__CONCURRENCY=$CONNECTIONS
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
if ! /usr/bin/time -f "%e %U %S %M" -o time.txt "$BIN" digest send --now --wait 2>send.log; then
  echo "bench/digest.sh: digest send failed:" >&2
  tail -5 send.log >&2
  exit 1
fi
# Every reader got exactly one digest: the sink took N messages after the
# reference's N, and the ledger has N sent rows in one finished campaign.
sleep 0.5
received=$(tr '\r' '\n' < sink.out | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
recorded=$(sql "SELECT status || ' ' || sent FROM campaigns")
if [ "$received" != "$((2 * N))" ] || [ "$recorded" != "done $N" ]; then
  echo "bench/digest.sh: the sink took $received messages (expected $((2 * N))); campaign: $recorded (expected: done $N)" >&2
  exit 1
fi
read -r elapsed user sys rss_kb < time.txt
python3 - "$N" "$DB" "$elapsed" "$user" "$sys" "$rss_kb" "$ref_start" "$ref_end" "$import_start" "$import_end" "$size" <<'PY'
import sys
n, db = int(sys.argv[1]), sys.argv[2]
elapsed, user, sys_, rss_kb, ref_start, ref_end, imp_start, imp_end = map(float, sys.argv[3:11])
rate, ref = n / elapsed, n / (ref_end - ref_start)
print(f"| {db} | {n:,} | {sys.argv[11]} B | {rate:,.0f} | {ref:,.0f} | {rate / ref:.0%} "
      f"| {(user + sys_) / n * 1e3:.3f} s | {rss_kb / 1024:,.0f} MiB | {n / (imp_end - imp_start):,.0f} |")
PY
