#!/usr/bin/env bash
# CSV import: `broadsheet subscriber import` of N generated readers into a
# fresh, migrated database.
#
#   bash bench/import.sh [N] [sqlite|postgres]     (defaults: 1000000 sqlite)
#
# Prints one Markdown table row: rows/s, CPU seconds, peak RSS. Fails unless
# the database holds N confirmed readers afterwards.
set -euo pipefail
N=${1:-1000000}
DB=${2:-sqlite}
source "$(dirname "$0")/lib.sh"
need_tools
broadsheet_bin
scratch
database "$DB"
export BROADSHEET_LOG__LEVEL=warn
readers_csv "$N" > "$WORK/readers.csv"
"$BIN" article list >/dev/null   # migrations, outside the timing
/usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" "$BIN" subscriber import "$WORK/readers.csv" >/dev/null 2>&1
stored=$(sql "SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
if [ "$stored" != "$N" ]; then
  echo "bench/import.sh: $stored readers stored, expected $N" >&2
  exit 1
fi
read -r elapsed user sys rss_kb < "$WORK/time.txt"
python3 -c "
n, e, u, s, r = $N, $elapsed, $user, $sys, $rss_kb
print(f'| $DB | {n:,} | {n / e:,.0f} | {u + s:.1f} s | {r / 1024:,.0f} MiB |')"
