# Shared by the benchmark scripts: tools, the binary, a scratch folder and
# a database of the chosen kind. Sourced, not run.
#
#   BIN=path   use this binary instead of building target/release/broadsheet
#              (the quick mode in .ci/run passes the debug build it has)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the benchmarks drive: postfix's smtp-sink and smtp-source,
# wrk, and GNU time for CPU and peak memory.
need_tools() {
  local missing=()
  command -v smtp-sink >/dev/null || missing+=(postfix)
  command -v wrk >/dev/null || missing+=(wrk)
  [ -x /usr/bin/time ] || missing+=(time)
  [ ${#missing[@]} -eq 0 ] && return
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
  postfix stop >/dev/null 2>&1 || true
}

broadsheet_bin() {
  if [ -z "${BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/broadsheet
  fi
  [ -x "$BIN" ] || { echo "no broadsheet binary at $BIN" >&2; exit 1; }
  export BIN
}

# A scratch folder, removed on exit with whatever `cleanup` lists.
CLEANUP=()
cleanup() {
  cd /   # the scratch folder may be the working directory
  # Last in, first out: the sink and the database go before the folder.
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[i]}" || true; done
}
trap cleanup EXIT
scratch() {
  WORK=$(mktemp -d)
  CLEANUP+=("rm -rf '$WORK'")
}

# Points BROADSHEET_DATABASE__URL at a fresh database: a file in $WORK, or
# a new PostgreSQL database dropped on exit. `sql QUERY` reads from it.
database() {
  DB=$1
  case "$DB" in
    sqlite) export BROADSHEET_DATABASE__URL="sqlite://$WORK/bench.db" ;;
    postgres)
      PG_NAME="bs_bench_$$"
      psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PG_NAME" -c "CREATE DATABASE $PG_NAME" postgres
      CLEANUP+=("psql -q -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS $PG_NAME' postgres")
      export BROADSHEET_DATABASE__URL="postgres://postgres@127.0.0.1:5432/$PG_NAME" ;;
    *) echo "database: sqlite or postgres, not '$DB'" >&2; exit 2 ;;
  esac
}
sql() {
  case "$DB" in
    sqlite) python3 -c "import sqlite3,sys; print(*sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())" "$WORK/bench.db" "$1" ;;
    postgres) psql -tA -h 127.0.0.1 -U postgres -c "$1" "$PG_NAME" ;;
  esac
}

# N readers as `subscriber import` takes them, each with the digest on.
readers_csv() {
  python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
out.write("email,name,topics,consented_at,source\n")
for i in range(n):
    out.write(f"reader{i}@example.com,Reader {i},,2025-01-01T00:00:00Z,bench\n")
PY
}

# The example articles (all, or the names given); they carry no date, so
# they are published at import and the next digest carries them.
import_example_articles() {
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=($(cd "$ROOT/examples/articles" && ls ./*.md))
  "$BIN" article import "${names[@]/#/$ROOT/examples/articles/}" 2>/dev/null
}

# CPU clock ticks so far, as "sink postgres busy total": the processes
# given (user + system; one that has exited counts 0), every PostgreSQL server process with the backends its
# postmaster has reaped (so a connection closed before the second reading
# still counts), and the whole machine's busy and total ticks.
cpu_ticks() {
  python3 - "$@" <<'PY'
import os, sys
def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()
sink, postgres = 0, 0
for pid in sys.argv[1:]:
    try:
        s = stat(pid)
        sink += int(s[11]) + int(s[12])
    except FileNotFoundError:
        pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if comm(pid) != "postgres":
            continue
        s = stat(pid)
        postgres += int(s[11]) + int(s[12])
        if comm(s[1]) != "postgres":   # the postmaster: add its reaped children
            postgres += int(s[13]) + int(s[14])
    except FileNotFoundError:
        pass
with open("/proc/stat") as f:
    cpu = [int(x) for x in f.readline().split()[1:]]
idle = cpu[3] + cpu[4]
print(sink, postgres, sum(cpu) - idle, sum(cpu))
PY
}

# Seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# Waits until something listens on 127.0.0.1:$1.
wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}
