#!/usr/bin/env bash
# Account enumeration by timing: sign-in with a wrong password for a reader
# who has one, against sign-in with an address nobody has, and the password
# reset form for both. Prints the median and spread of each, in one run.
# Fails if known and unknown addresses get different answers, or if any
# sample got other than 401 (sign-in) or 200 (reset): a 429, 403 or 503
# would time a refusal, not the check.
#
#   bash bench/enumeration.sh [sqlite|postgres] [attempts]   (defaults: sqlite 200)
#
# The sign-in limits are off for the run (one client makes every attempt);
# everything else is as served.
set -euo pipefail
DB=${1:-sqlite}
export BENCH_ATTEMPTS=${2:-200}
source "$(dirname "$0")/lib.sh"
need_tools
broadsheet_bin
scratch
database "$DB"
export WORK DB PG_NAME=${PG_NAME:-}
export BROADSHEET_LOG__LEVEL=warn BROADSHEET_MAIL__FILE_DIR=$WORK/mail
export BROADSHEET_ACCOUNTS__LOGIN_PER_IP_PER_MINUTE=0 BROADSHEET_ACCOUNTS__LOGIN_PER_ACCOUNT_PER_HOUR=0
export BROADSHEET_SIGNUP__PER_IP_PER_HOUR=0
# reader0 signs in; every reset sample asks for another known reader's link,
# so none takes the per-account throttle's shorter path.
readers_csv $((BENCH_ATTEMPTS + 1)) > "$WORK/reader.csv"
"$BIN" subscriber import "$WORK/reader.csv" >/dev/null 2>&1
python3 "$ROOT/bench/enumeration.py"
