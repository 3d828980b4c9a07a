"""Drives bench/enumeration.sh: sets a password for the imported reader
through the emailed reset link, then times wrong-password sign-ins for that
reader against sign-ins for unknown addresses, interleaved, and the reset
form for both. Fails if the answers differ in status or page, or if any
is not the one a wrong password or a reset request gets (a 429, 403 or 503
would time an early refusal instead)."""

import collections
import os
import re
import statistics
import sys
import time
import urllib.error
import urllib.parse

import served

BIN, WORK = os.environ["BIN"], os.environ["WORK"]
ATTEMPTS = int(os.environ["BENCH_ATTEMPTS"])
PORT = 18081
BASE = f"http://127.0.0.1:{PORT}"
os.environ.update(BROADSHEET_SERVER__BIND=f"127.0.0.1:{PORT}", BROADSHEET_SERVER__BASE_URL=BASE)
KNOWN = "reader0@example.com"
# What src/web/accounts.rs answers known and unknown addresses alike: the
# sign-in form again for a wrong password (401), "check your inbox" for a
# reset (200). post() follows redirects, so a 303 shows as its target's.
EXPECTED = {"login": 401, "reset": 200}


def post(browser, path, fields):
    """Status, page without its CSRF token, and seconds taken."""
    data = urllib.parse.urlencode(fields).encode()
    began = time.perf_counter()
    try:
        response = browser.open(BASE + path, data)
        status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    seconds = time.perf_counter() - began
    page = re.sub(r'name="csrf" value="[0-9a-f]+"', "", body.decode())
    page = re.sub(r"[\w.+-]+@example\.(com|org)", "ADDRESS", page)
    return status, page, seconds


def set_password(browser):
    token = served.csrf_form(browser, BASE + "/login/reset")
    post(browser, "/login/reset", {"email": KNOWN, "csrf": token})
    link = served.newest_link(f"{WORK}/mail", BASE, "account/password")
    token = served.csrf_form(browser, BASE + link)
    status, _, _ = post(browser, link, {"password": "the right password, long", "csrf": token})
    if status not in (200, 303):
        sys.exit(f"bench/enumeration.py: setting the password answered {status}")


def compare(name, known, unknown):
    """One Markdown row: medians, spreads and the difference."""
    def ms(values):
        return [v * 1000 for v in values]
    k, u = ms(known), ms(unknown)
    kq, uq = statistics.quantiles(k, n=10), statistics.quantiles(u, n=10)
    print(f"| {name} | {os.environ['DB']} | {len(k)} + {len(u)} | {statistics.median(k):.1f} ms "
          f"({kq[0]:.1f}–{kq[-1]:.1f}) | {statistics.median(u):.1f} ms ({uq[0]:.1f}–{uq[-1]:.1f}) "
          f"| {statistics.median(k) - statistics.median(u):+.1f} ms |", flush=True)


def main():
    server, _ = served.start(BIN, PORT)
    try:
        browser, _ = served.browser()
        set_password(browser)
        token = served.csrf_form(browser, BASE + "/login")
        timings = {"login known": [], "login unknown": [], "reset known": [], "reset unknown": []}
        answers = {}
        statuses = collections.defaultdict(collections.Counter)   # "form who" -> status -> samples
        for attempt in range(ATTEMPTS):
            # Interleaved, so drift in the machine's speed falls on both.
            known_reset = f"reader{attempt + 1}@example.com"
            for who, address, reset_address in (
                ("known", KNOWN, known_reset),
                ("unknown", f"nobody{attempt}@example.org", f"nobody{attempt}@example.org"),
            ):
                for form, path, fields in (
                    ("login", "/login", {"email": address, "password": "a wrong password, long"}),
                    ("reset", "/login/reset", {"email": reset_address}),
                ):
                    status, page, seconds = post(browser, path, {**fields, "csrf": token})
                    timings[f"{form} {who}"].append(seconds)
                    answers.setdefault(f"{form} {who}", set()).add((status, page))
                    statuses[f"{form} {who}"][status] += 1
        wrong = [f"{name}: {n} of {ATTEMPTS} answered {status}" for name, counts in statuses.items()
                 for status, n in sorted(counts.items()) if status != EXPECTED[name.split()[0]]]
        if wrong:
            sys.exit(f"bench/enumeration.py: samples timed another answer than the check "
                     f"(login should answer {EXPECTED['login']}, reset {EXPECTED['reset']}): {'; '.join(wrong)}")
        for form in ("login", "reset"):
            if answers[f"{form} known"] != answers[f"{form} unknown"] or len(answers[f"{form} known"]) != 1:
                sys.exit(f"bench/enumeration.py: {form} answers known and unknown addresses differently")
            compare(f"POST /{form}" if form == "login" else "POST /login/reset",
                    timings[f"{form} known"], timings[f"{form} unknown"])
    finally:
        served.stop(server)


main()
