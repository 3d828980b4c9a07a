#!/usr/bin/env bash
# A password form flooded open-loop: one signed-in reader fires
# `POST /account/delete` with a 16 KB wrong password from 8 threads, each
# request sent and the connection dropped at once, without waiting for an
# answer, while other readers sign in, one every half second. Prints their
# sign-in times during and after the flood and the server's peak memory.
#
#   bash bench/hashflood.sh [sqlite|postgres] [seconds]   (defaults: sqlite 10)
#
# Every limit is as configured by default.
set -euo pipefail
DB=${1:-sqlite}
export BENCH_SECONDS=${2:-10}
source "$(dirname "$0")/lib.sh"
need_tools
broadsheet_bin
scratch
database "$DB"
export WORK DB PG_NAME=${PG_NAME:-}
export BROADSHEET_LOG__LEVEL=warn BROADSHEET_MAIL__FILE_DIR=$WORK/mail
# The flooder and the victim are told apart by X-Forwarded-For, as behind a proxy.
export BROADSHEET_SERVER__TRUSTED_PROXIES='["127.0.0.1"]'
readers_csv $((BENCH_SECONDS * 2 + 13)) > "$WORK/readers.csv"
"$BIN" subscriber import "$WORK/readers.csv" >/dev/null 2>&1
python3 "$ROOT/bench/hashflood.py"
