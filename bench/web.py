"""Drives bench/web.sh: starts the server, measures start-up and idle RSS,
signs a reader in through the emailed sign-in link, and runs wrk.

Reads BIN, WORK, DB, PG_NAME, BENCH_DIR, BENCH_SECONDS and the BROADSHEET_*
settings from the environment that bench/web.sh prepared."""

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

import served

BIN, WORK, DB = os.environ["BIN"], os.environ["WORK"], os.environ["DB"]
SECONDS = os.environ["BENCH_SECONDS"]
CONNECTIONS = 64
PORT = 18080
BASE = f"http://127.0.0.1:{PORT}"
os.environ.update(BROADSHEET_SERVER__BIND=f"127.0.0.1:{PORT}", BROADSHEET_SERVER__BASE_URL=BASE)


def signed_in_cookie():
    """Signs the imported reader in with the emailed link, like a browser."""
    opener, jar = served.browser()
    token = served.csrf_form(opener, BASE + "/login/link")
    form = urllib.parse.urlencode({"email": "reader0@example.com", "csrf": token}).encode()
    opener.open(BASE + "/login/link", form).read()
    link = served.newest_link(f"{WORK}/mail", BASE, "login/link")
    token = served.csrf_form(opener, BASE + link)
    opener.open(BASE + link, urllib.parse.urlencode({"csrf": token}).encode()).read()
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    if "bs_session" not in cookies:
        sys.exit(f"bench/web.py: signing in set no session cookie ({cookies})")
    return cookies


def wrk(path, script="report.lua", headers=()):
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s", "--latency",
               "-s", f"{os.environ['BENCH_DIR']}/{script}"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(command + [BASE + path], check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    result["errors"] = errors
    result["rate"] = result["requests"] / result["seconds"]
    return result


def row(scenario, result, note=""):
    print(f"| {scenario} | {DB} | {result['rate']:,.0f} | {result['p50_ms']:.2f} ms "
          f"| {result['p99_ms']:.2f} ms | {result['errors']} | {note} |", flush=True)


def main():
    # Start-up, five times on the same (migrated) database: spawn to ready.
    startups, idle = [], []
    for _ in range(5):
        server, seconds = served.start(BIN, PORT)
        time.sleep(1)
        startups.append(seconds * 1000)
        idle.append(served.memory_mib(server.pid))
        served.stop(server)
    print(f"| start-up to ready /readyz | {DB} | median {statistics.median(startups):.0f} ms "
          f"(min {min(startups):.0f}, max {max(startups):.0f}) | idle RSS median {statistics.median(idle):.1f} MiB |")

    server, _ = served.start(BIN, PORT)
    try:
        cookie = signed_in_cookie()
        slug = served.sql("SELECT slug FROM articles ORDER BY slug LIMIT 1")
        failed = []

        result = wrk("/healthz")
        row("GET /healthz (reference)", result)
        failed += ["healthz"] if result["errors"] else []

        opener, jar = served.browser()
        token = served.csrf_form(opener, BASE + "/subscribe")
        run = str(int(time.time()))
        os.environ.update(BENCH_COOKIE="; ".join(f"{c.name}={c.value}" for c in jar),
                          BENCH_CSRF=token, BENCH_RUN=run)
        result = wrk("/subscribe", "subscribe.lua")
        time.sleep(0.5)
        # One statement, so a signup committing meanwhile cannot count in one figure only.
        counts = served.sql("SELECT COUNT(DISTINCT s.id) || ' ' || COUNT(o.id) FROM subscribers s "
                     "LEFT JOIN outbox o ON o.subscriber_id = s.id AND o.template = 'confirm' "
                     f"WHERE s.email LIKE 'r{run}-%' AND s.status = 'pending'")
        stored, queued = map(int, counts.split())
        answered = result["requests"] - result["status"]
        # wrk stops counting with requests still in flight, which may be stored.
        whole = answered <= stored <= answered + CONNECTIONS and queued == stored
        row("POST /subscribe", result, f"{stored:,} readers stored, {queued:,} confirmation emails queued")
        failed += [] if whole and not result["errors"] else ["subscribe"]

        for who, headers in (("anonymous", ()), ("signed in", (f"Cookie: {cookie}",))):
            result = wrk(f"/articles/{slug}", headers=headers)
            row(f"GET /articles/{{slug}}, {who}", result)
            failed += [who] if result["errors"] else []
        if failed:
            sys.exit(f"bench/web.py: errors or lost signups in: {', '.join(failed)}")
    finally:
        served.stop(server)


main()
