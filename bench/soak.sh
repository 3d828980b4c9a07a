#!/usr/bin/env bash
# Soak: mixed traffic (page views, signups, confirmations, passwords,
# sign-ins) against `broadsheet serve` for a bounded time while a digest
# goes to every imported reader through an SMTP server that keeps failing
# (bench/faulty_smtp.py: outages, 451, dropped connections, 550). Then
# checks that every reader and every acknowledged request is accounted for.
#
#   bash bench/soak.sh [sqlite|postgres] [seconds] [readers]   (defaults: sqlite 600 100000)
#
# Prints one Markdown table row (RELIABILITY.md) and fails if anything was
# lost, duplicated, or answered other than expected, or if the SMTP server
# injected no faults, or none of a kind the run should have seen.
set -euo pipefail
DB=${1:-sqlite}
export SOAK_SECONDS=${2:-600} SOAK_READERS=${3:-100000}
source "$(dirname "$0")/lib.sh"
broadsheet_bin
scratch
database "$DB"
cd "$WORK"
export WORK DB PG_NAME=${PG_NAME:-}
export BROADSHEET_LOG__LEVEL=error BROADSHEET_MAIL__TRANSPORT=smtp
export BROADSHEET_SMTP__PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BROADSHEET_SMTP__CONCURRENCY=8 BROADSHEET_SMTP__TIMEOUT_S=10
# Retries soon enough to be seen within the run: 5 s, doubling up to a minute.
export BROADSHEET_DELIVERY__RETRY_BASE_S=5 BROADSHEET_DELIVERY__RETRY_MAX_S=60
# The traffic is one client: the limits per IP and per account would stop it.
export BROADSHEET_SIGNUP__PER_IP_PER_HOUR=0 BROADSHEET_ACCOUNTS__LOGIN_PER_IP_PER_MINUTE=0 \
  BROADSHEET_ACCOUNTS__LOGIN_PER_ACCOUNT_PER_HOUR=0
# One load generator stands for many readers: no service-wide ceiling on
# signup emails (it would hold back every confirmation past the first
# thousand an hour) and no cap on one client's requests in flight.
export BROADSHEET_SIGNUP__EMAILS_PER_HOUR=0 BROADSHEET_SERVER__MAX_IN_FLIGHT_PER_CLIENT=0
# The editor starts the digest after a twentieth of the run; the first outage
# comes 10 s later, the next ones every two minutes (30 s in short runs).
export SOAK_DIGEST_AFTER=$((SOAK_SECONDS / 20)) SOAK_OUTAGE_FIRST=$((SOAK_SECONDS / 20 + 10)) SOAK_OUTAGE_S=$((SOAK_SECONDS >= 300 ? 15 : 5)) \
  SOAK_OUTAGE_PERIOD=$((SOAK_SECONDS >= 300 ? 120 : 30))
readers_csv "$SOAK_READERS" > readers.csv
"$BIN" subscriber import readers.csv >/dev/null 2>&1
import_example_articles
SOAK_TOKEN=$("$BIN" token create --name soak --role admin 2>/dev/null) python3 "$ROOT/bench/soak.py"
