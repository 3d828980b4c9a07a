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
import urllib.error
import urllib.parse
import urllib.request

import served

BIN, WORK, DB = os.environ["BIN"], os.environ["WORK"], os.environ["DB"]
SECONDS = os.environ["BENCH_SECONDS"]
CONNECTIONS = 64
PORT = 18080
BASE = f"http://127.0.0.1:{PORT}"
os.environ.update(BROADSHEET_SERVER__BIND=f"127.0.0.1:{PORT}", BROADSHEET_SERVER__BASE_URL=BASE)
# What an article page shows a signed-in reader only (the story), and an
# anonymous visitor only (the gate), as templates/article.html has them.
SIGNED_IN, ANONYMOUS = '<div class="body">', '<aside class="gate">'


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


def check_article(who, path, cookies, shows, hides):
    """Fails unless the page answers 200 itself (no redirect), showing
    `shows` and not `hides`: a load run of it then measures what it says."""
    try:
        with urllib.request.urlopen(urllib.request.Request(BASE + path, headers=cookies)) as response:
            status, url, page = response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as error:
        status, url, page = error.code, error.filename, ""
    if (status, url) != (200, BASE + path) or shows not in page or hides in page:
        sys.exit(f"bench/web.py: the {who} reader's {path} answered {status} at {url}, "
                 f"not 200 with {shows!r} and without {hides!r}: the {who} run would not measure a {who} reader")


def wrk(path, script="report.lua", headers=(), marker=""):
    """wrk's figures; every answer but a 200, and with a marker every 200
    without it, counts among the errors (see report.lua)."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s", "--latency",
               "-s", f"{os.environ['BENCH_DIR']}/{script}"]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run(command + [BASE + path], check=True, capture_output=True, text=True,
                         env={**os.environ, "BENCH_MARKER": marker}).stdout
    result = json.loads(out.strip().splitlines()[-1])
    # wrk's "status" (over 399) is among the unexpected answers.
    errors = sum(result[k] for k in ("connect", "read", "write", "unexpected", "unmarked", "timeout"))
    result["errors"], result["marker"] = errors, marker
    result["rate"] = result["requests"] / result["seconds"]
    return result


def trouble(name, result):
    """What went wrong in a load run, in words; empty if nothing did."""
    found = [f"{result[k]} {k} errors" for k in ("connect", "read", "write", "timeout") if result[k]]
    found += [f"{n} answered {status}" for status, n in sorted(result["by_status"].items())]
    if result["unmarked"]:
        found.append(f"{result['unmarked']} answered 200 without {result['marker']!r}")
    return [f"{name}: {', '.join(found)}"] if found else []


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
        failed += trouble("healthz", result)

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
        answered = result["requests"] - result["unexpected"]
        # wrk stops counting with requests still in flight, which may be stored.
        whole = answered <= stored <= answered + CONNECTIONS and queued == stored
        row("POST /subscribe", result, f"{stored:,} readers stored, {queued:,} confirmation emails queued")
        failed += trouble("subscribe", result)
        failed += [] if whole else [f"subscribe: {stored} stored and {queued} queued for {answered} answered 200"]

        path = f"/articles/{slug}"
        for who, cookies, shows, hides in (("anonymous", {}, ANONYMOUS, SIGNED_IN),
                                           ("signed in", {"Cookie": cookie}, SIGNED_IN, ANONYMOUS)):
            check_article(who, path, cookies, shows, hides)
            result = wrk(path, headers=[f"{k}: {v}" for k, v in cookies.items()], marker=shows)
            row(f"GET /articles/{{slug}}, {who}", result)
            failed += trouble(who, result)
        if failed:
            sys.exit(f"bench/web.py: errors, unexpected answers or lost signups: {'; '.join(failed)}")
    finally:
        served.stop(server)


main()
