"""Drives bench/soak.sh: a `broadsheet serve` under mixed traffic for
SOAK_SECONDS while its SMTP server (bench/faulty_smtp.py) goes down and
answers 451, 550 and dropped connections; an editor starts a digest to
every imported reader through the API once the traffic is going. Then it
waits for every message to settle and checks that nothing was lost:

- every acknowledged signup is stored once and got one confirmation email;
  every acknowledged confirmation is confirmed and got one credentials
  email; every password set signs in;
- every reader of the digest is accounted for: accepted by the server
  exactly once, or refused with 550 and recorded failed (never both, never
  neither), and the campaign is done with those figures;
- no request got a 5xx or any answer other than the expected one; no
  account email is left pending or failed;
- the SMTP server injected faults: outages, 451s, drops and 550s, each
  kind wherever the run's length and readers make it expected.

Prints Markdown table rows and exits non-zero if any check fails.
Reads BIN, WORK, DB, PG_NAME, SOAK_* and BROADSHEET_* settings from the
environment that bench/soak.sh prepared."""

import collections
import datetime
import email
import email.policy
import http.cookiejar
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import faulty_smtp
import served

BIN, WORK = os.environ["BIN"], os.environ["WORK"]
SECONDS, READERS = int(os.environ["SOAK_SECONDS"]), int(os.environ["SOAK_READERS"])
TOKEN, MAIL_DIR = os.environ["SOAK_TOKEN"], f"{WORK}/smtp-mail"
DIGEST_AFTER, THREADS, SETTLE_S = int(os.environ["SOAK_DIGEST_AFTER"]), 6, 900
PORT = 18082
BASE = f"http://127.0.0.1:{PORT}"
os.environ.update(BROADSHEET_SERVER__BIND=f"127.0.0.1:{PORT}", BROADSHEET_SERVER__BASE_URL=BASE)
PASSWORD = "soak test passphrase"

lock = threading.Lock()
answers = collections.defaultdict(collections.Counter)   # action -> status -> count
latencies = collections.defaultdict(list)                 # action -> seconds
unexpected = []                                           # (action, status, path), first few
awaiting_confirmation, awaiting_credentials, readers = [], [], []
acknowledged = {"signup": set(), "confirm": set(), "password": set()}
stop = threading.Event()


def request(action, opener, path, fields=None, expect=200):
    """One request; its answer and time are counted. The body ("" for a
    redirect) if the answer was the expected one, else None."""
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    began = time.monotonic()
    try:
        response = opener.open(BASE + path, data, timeout=60)
        status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, body = error.code, ""
    except OSError as error:
        status, body = f"error: {error}", None
    with lock:
        answers[action][status] += 1
        latencies[action].append(time.monotonic() - began)
        if status != expect and len(unexpected) < 20:
            unexpected.append((action, status, path.split("/")[1]))
    return body if status == expect else None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


def browser():
    """A browser with cookies that shows redirects instead of following them."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                       NoRedirect)


def csrf(page):
    found = page and re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    return found.group(1) if found else None


def mail_link(address, nth, prefix):
    """The link in the nth message the SMTP server accepted for address, or
    None while it has not arrived."""
    path = f"{MAIL_DIR}/{address}.{nth}.eml"
    if not os.path.exists(path):
        return None
    with open(path, "rb") as file:
        text = email.message_from_binary_file(file, policy=email.policy.default) \
            .get_body(("plain",)).get_content()
    found = re.search(re.escape(BASE) + rf"(/{prefix}/\S+)", text)
    return found.group(1) if found else None


def take_ready(queue, nth, prefix):
    """The first queued address whose nth message has arrived, and its link."""
    with lock:
        for i, address in enumerate(queue):
            link = mail_link(address, nth, prefix)
            if link:
                del queue[i]
                return address, link
    return None, None


def view(slugs):
    path = random.choice(["/", "/articles", "/subscribe", "/privacy"] + [f"/articles/{s}" for s in slugs])
    request("view", browser(), path)


def sign_up(n):
    address = f"soak-{os.getpid()}-{n}@example.net"
    opener = browser()
    page = request("view", opener, "/subscribe")
    version = page and re.search(r'name="consent_version" value="([^"]*)"', page)
    if not (csrf(page) and version):
        return
    # No digest for these readers: the digest's accounting is the imported list's.
    fields = {"email": address, "csrf": csrf(page), "consent_version": version.group(1)}
    if request("signup", opener, "/subscribe", fields) is not None:
        with lock:
            acknowledged["signup"].add(address)
            awaiting_confirmation.append(address)


def follow(waiting, nth, prefix, action, fields, expect, then):
    """Follows the emailed link of the first address in `waiting` whose nth
    message has arrived: opens the page and submits its form. False if no
    such message has arrived yet."""
    address, link = take_ready(waiting, nth, prefix)
    if not address:
        return False
    opener = browser()
    token = csrf(request("view", opener, link))
    if token and request(action, opener, link, {**fields, "csrf": token}, expect) is not None:
        with lock:
            acknowledged[action].add(address)
            then.append(address)
    return True


def confirm():
    return follow(awaiting_confirmation, 1, "confirm", "confirm", {}, 200, awaiting_credentials)


def set_password():
    return follow(awaiting_credentials, 2, "account/password", "password", {"password": PASSWORD}, 303, readers)


def sign_in():
    with lock:
        address = random.choice(readers) if readers else None
    if not address:
        return False
    opener = browser()
    token = csrf(request("view", opener, "/login"))
    if token and request("sign-in", opener, "/login", {"email": address, "password": PASSWORD, "csrf": token}, 303) is not None:
        request("view", opener, "/account")
    return True


def traffic(worker, slugs):
    rng = random.Random(worker)
    n = 0
    while not stop.is_set():
        roll = rng.random()
        if roll < 0.15:
            n += 1
            sign_up(f"{worker}-{n}")
        elif roll < 0.25 and confirm():
            pass
        elif roll < 0.35 and set_password():
            pass
        elif roll < 0.50 and sign_in():
            pass
        else:
            view(slugs)


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    call = urllib.request.Request(BASE + path, data, headers, method=method)
    with urllib.request.urlopen(call, timeout=60) as response:
        return json.load(response)


def settle(campaign_id, deadline):
    """Follows the links already emailed to the end and waits for the
    campaign to finish and the account mail to leave; the campaign."""
    while time.monotonic() < deadline:
        while confirm() or set_password():
            pass
        campaign = api("GET", f"/api/v1/digests/{campaign_id}")
        pending_mail = int(served.sql("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"))
        if campaign["status"] == "done" and pending_mail == 0 \
                and not awaiting_confirmation and not awaiting_credentials:
            return campaign
        time.sleep(1)
    sys.exit(f"soak: not settled within {SETTLE_S} s: campaign {campaign['status']}, "
             f"{pending_mail} account emails pending, {len(awaiting_confirmation)} confirmations "
             f"and {len(awaiting_credentials)} credentials emails never arrived")


def main():
    os.makedirs(MAIL_DIR, exist_ok=True)
    stats = f"{WORK}/smtp-stats.json"
    smtp = subprocess.Popen([sys.executable, f"{os.path.dirname(__file__)}/faulty_smtp.py",
                             os.environ["BROADSHEET_SMTP__PORT"], MAIL_DIR, stats])
    server, _ = served.start(BIN, PORT)
    slugs = re.findall(r'href="/articles/([a-z0-9-]+)"', urllib.request.urlopen(BASE + "/articles").read().decode())
    began = time.monotonic()
    workers = [threading.Thread(target=traffic, args=(i, slugs)) for i in range(THREADS)]
    for worker in workers:
        worker.start()
    time.sleep(DIGEST_AFTER)
    campaign = api("POST", "/api/v1/digests", {"schedule": "daily"})
    time.sleep(max(0, SECONDS - (time.monotonic() - began)))
    stop.set()
    for worker in workers:
        worker.join()
    traffic_s = time.monotonic() - began
    campaign = settle(campaign["id"], time.monotonic() + SETTLE_S)
    peak_mib = served.memory_mib(server.pid, "VmHWM")
    served.stop(server)
    smtp.send_signal(signal.SIGTERM)
    smtp.wait(timeout=30)
    with open(stats) as file:
        sink = json.load(file)
    problems = check(campaign, sink)
    report(campaign, sink, traffic_s, peak_mib, problems)
    if problems:
        sys.exit("soak: " + "; ".join(problems))


def check(campaign, sink):
    """What went wrong, in words; empty if nothing did."""
    problems = []
    rows = served.sql_rows(
        "SELECT s.email_canonical, d.status FROM deliveries d "
        f"JOIN subscribers s ON s.id = d.subscriber_id WHERE d.campaign_id = '{campaign['id']}'")
    digests = sink["digests"]
    status = collections.Counter(st for _, st in rows)
    refused = {a for a, _ in rows if faulty_smtp.permanent(a)}
    if len(rows) != READERS:
        problems.append(f"{len(rows)} deliveries for {READERS} readers")
    lost = [a for a, st in rows if st == "sent" and digests.get(a, 0) == 0]
    wrongly_failed = [a for a, st in rows if st == "failed" and a not in refused]
    failed_but_accepted = [a for a, st in rows if st == "failed" and digests.get(a, 0)]
    unsettled = [a for a, st in rows if st not in ("sent", "failed")]
    duplicates = sum(n - 1 for n in digests.values() if n > 1)
    for name, found in (("sent but never accepted", lost), ("failed without a 550", wrongly_failed),
                        ("failed yet accepted", failed_but_accepted), ("neither sent nor failed", unsettled)):
        if found:
            problems.append(f"{len(found)} digests {name}, e.g. {found[0]}")
    if duplicates:
        problems.append(f"{duplicates} digests accepted twice")
    if (campaign["sent"], campaign["failed"]) != (status["sent"], status["failed"]) \
            or status["failed"] != len(refused):
        problems.append(f"campaign says {campaign['sent']} sent, {campaign['failed']} failed; "
                        f"rows {dict(status)}; {len(refused)} refused")

    other = sink["other"]
    stored = dict(served.sql_rows("SELECT email_canonical, status FROM subscribers "
                                  "WHERE email_canonical LIKE 'soak-%'"))
    # Emails: the confirmation, then the credentials, then "your password was set".
    wrong = []
    for address in acknowledged["signup"]:
        if address in acknowledged["password"]:
            expected = ("confirmed", 3)
        elif address in acknowledged["confirm"]:
            expected = ("confirmed", 2)
        else:
            expected = ("pending", 1)
        found = (stored.get(address), other.get(address, 0))
        if found != expected:
            wrong.append(f"{address}: (status, emails) {found}, expected {expected}")
    if wrong:
        problems.append(f"{len(wrong)} signups not as acknowledged, e.g. {wrong[0]}")
    outbox = dict(served.sql_rows("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    if set(outbox) - {"sent"}:
        problems.append(f"account mail not all sent: {outbox}")
    for action, statuses in answers.items():
        wrong = {s: n for s, n in statuses.items() if s not in (200, 303)}
        if wrong:
            problems.append(f"{action}: unexpected answers {wrong}")
    if unexpected:
        problems.append(f"first unexpected answers: {unexpected[:5]}")

    # A soak without faults proves nothing about them: some must have been
    # injected, and each kind this run's settings make certain or nearly so.
    # Outages: the first starts within the traffic, which queues account
    # mail the worker tries to send every second. 550s: an imported reader is
    # in the permanent set. 451s and drops: every reader accepted took one
    # DATA, each rolled; with 5 or more of a kind expected from the digest
    # alone, none has a chance under 1% (e^-5), and the roll is seeded anyway
    # (random.Random(8): of the first 1,996 DATA, 14 get 451 and 14 are
    # dropped, so quick.sh's 2,000 readers always see both).
    faults = sink["faults"]
    expected = {
        "refused_while_down": faulty_smtp.FIRST < SECONDS,
        "rcpt_550": any(faulty_smtp.permanent(f"reader{i}@example.com") for i in range(READERS)),
        "data_451": READERS * faulty_smtp.DEFER >= 5,
        "data_dropped": READERS * faulty_smtp.DROP >= 5,
    }
    missing = [kind for kind, wanted in expected.items() if wanted and not faults[kind]]
    if missing or not sum(faults.values()):
        problems.append(f"faults not injected: {', '.join(missing) or 'none at all'} (counts {faults})")
    return problems


def report(campaign, sink, traffic_s, peak_mib, problems):
    requests = sum(sum(c.values()) for c in answers.values())
    every = sorted(t for ts in latencies.values() for t in ts)
    p50, p99 = (every[int(len(every) * q)] * 1000 for q in (0.5, 0.99))
    kinds = " / ".join(f"{sum(answers[a].values()):,}" for a in ("view", "signup", "confirm", "password", "sign-in"))
    errors = sum(n for c in answers.values() for s, n in c.items() if s not in (200, 303))
    faults = sink["faults"]
    # The API's times are RFC 3339 (Python 3.11 reads the trailing Z).
    at = lambda key: datetime.datetime.fromisoformat(campaign[key])  # noqa: E731
    digest_s = (at("finished_at") - at("created_at")).total_seconds()
    print(f"| {os.environ['DB']} | {traffic_s:.0f} s | {kinds} | {requests / traffic_s:,.1f} "
          f"| {p50:.0f} / {p99:.0f} ms | {errors} "
          f"| {campaign['recipients']:,} in {digest_s:.0f} s ({campaign['sent'] / digest_s:,.0f} msg/s) "
          f"| {faults['refused_while_down']:,} / {faults['data_451']:,} / {faults['data_dropped']:,} / {faults['rcpt_550']:,} "
          f"| {campaign['retries']:,} | {campaign['sent']:,} / {campaign['failed']:,} | {peak_mib:,.0f} MiB "
          f"| {'none' if not problems else len(problems)} |")
    print(f"soak: {len(acknowledged['signup'])} signups, {len(acknowledged['confirm'])} confirmations and "
          f"{len(acknowledged['password'])} passwords acknowledged; "
          f"median latency per kind: " + ", ".join(
              f"{a} {statistics.median(ts) * 1000:.0f} ms" for a, ts in sorted(latencies.items())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
