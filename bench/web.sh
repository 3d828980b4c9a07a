#!/usr/bin/env bash
# Web benchmarks: start-up time to a ready /readyz and idle RSS, then wrk at
# 64 connections against /healthz (the reference), POST /subscribe, and
# /articles/{slug} for anonymous and signed-in readers.
#
#   bash bench/web.sh [sqlite|postgres] [seconds per load run]   (defaults: sqlite 10)
#
# Prints Markdown table rows. Fails if any request got an error or an answer
# other than 200 (a redirect included), if an article run's pages lack what
# that reader should see (the story signed in, the gate anonymous), or if a
# signup wrk counted left no pending reader and queued confirmation email.
set -euo pipefail
DB=${1:-sqlite}
export BENCH_SECONDS=${2:-10}
source "$(dirname "$0")/lib.sh"
need_tools
broadsheet_bin
scratch
database "$DB"
export BENCH_DIR=$ROOT/bench WORK DB PG_NAME=${PG_NAME:-}
export BROADSHEET_LOG__LEVEL=warn BROADSHEET_MAIL__FILE_DIR=$WORK/mail
# The limits that stop one client from signing up thousands would stop the
# load generator, which is one client.
export BROADSHEET_SIGNUP__PER_IP_PER_HOUR=0 BROADSHEET_ACCOUNTS__LOGIN_PER_IP_PER_MINUTE=0
# wrk's connections stand for many readers, not one client's.
export BROADSHEET_SERVER__MAX_IN_FLIGHT_PER_CLIENT=0
import_example_articles
readers_csv 1 > "$WORK/reader.csv"
"$BIN" subscriber import "$WORK/reader.csv" >/dev/null 2>&1
python3 "$ROOT/bench/web.py"
