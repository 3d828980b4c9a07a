"""Drives bench/hashflood.sh: gives the imported readers passwords through
the emailed reset links, signs reader0 in as the flooder, floods
`POST /account/delete` open-loop from 8 threads (connect, send, hang up),
and times the other readers' sign-ins meanwhile and after. Fails if the victim is refused or
waits more than a second (HASHFLOOD_MAX_S), or if any sign-in answers
anything but its redirect to the account page."""

import email
import email.policy
import glob
import os
import re
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import served

BIN, WORK = os.environ["BIN"], os.environ["WORK"]
SECONDS = float(os.environ["BENCH_SECONDS"])
PORT = 18083
BASE = f"http://127.0.0.1:{PORT}"
os.environ.update(BROADSHEET_SERVER__BIND=f"127.0.0.1:{PORT}", BROADSHEET_SERVER__BASE_URL=BASE)
PASSWORD = "the right password, long"
THREADS = 8
# A reader signs in every half second during the flood, each once from an
# address of their own (sign-in limits count per account and per network),
# and ten more after it.
VICTIMS = int(SECONDS * 2) + 12
# The longest a reader's sign-in may take: a second, or what bench/quick.sh
# allows its debug build on a loaded machine.
MAX_SECONDS = float(os.environ.get("HASHFLOOD_MAX_S", "1"))
FLOODER = "198.51.100.66"


def post(browser, path, fields, client="192.0.2.10"):
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(BASE + path, data, headers={"X-Forwarded-For": client})
    try:
        response = browser.open(request)
        return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def set_passwords(browser, count):
    """Asks a reset link for reader0 .. reader{count-1}, then sets each
    reader's password through the link emailed to them."""
    token = served.csrf_form(browser, BASE + "/login/reset")
    for n in range(count):
        post(browser, "/login/reset", {"email": f"reader{n}@example.com", "csrf": token}, f"192.0.2.{n}")
    links = {}
    for _ in range(300):
        for path in glob.glob(f"{WORK}/mail/*.eml"):
            with open(path, "rb") as file:
                message = email.message_from_binary_file(file, policy=email.policy.default)
            found = re.search(re.escape(BASE) + r"(/account/password/\S+)", message.get_body(("plain",)).get_content())
            if found:
                links[str(message["To"])] = found.group(1)
        if len(links) == count:
            break
        time.sleep(0.1)
    else:
        sys.exit(f"bench/hashflood.py: {len(links)} of {count} reset links arrived")
    for link in links.values():
        token = served.csrf_form(browser, BASE + link)
        status, _ = post(browser, link, {"password": PASSWORD, "csrf": token})
        if status not in (200, 303):
            sys.exit(f"bench/hashflood.py: setting a password answered {status}")


def sign_in(n):
    """Seconds reader n's sign-in took, from an address of their own, and its status."""
    browser, _ = served.browser()
    token = served.csrf_form(browser, BASE + "/login")
    began = time.perf_counter()
    fields = {"email": f"reader{n}@example.com", "password": PASSWORD, "csrf": token}
    status, _ = post(browser, "/login", fields, f"192.0.2.{n}")
    return time.perf_counter() - began, status


def flood_request(browser, jar):
    """The flooder's request as raw bytes: its session and CSRF cookies, a
    valid CSRF token and a 16 KB wrong password."""
    token = served.csrf_form(browser, BASE + "/account/delete")
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    body = urllib.parse.urlencode({"password": "x" * 16384, "csrf": token}).encode()
    head = (f"POST /account/delete HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nCookie: {cookies}\r\n"
            f"X-Forwarded-For: {FLOODER}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def flood(request, until, sent):
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", PORT)) as connection:
                connection.sendall(request)
            sent.append(1)
        except OSError:
            pass


def main():
    server, _ = served.start(BIN, PORT)
    try:
        browser, jar = served.browser()
        set_passwords(browser, VICTIMS + 1)
        token = served.csrf_form(browser, BASE + "/login")
        post(browser, "/login", {"email": "reader0@example.com", "password": PASSWORD, "csrf": token},
             client=FLOODER)
        request = flood_request(browser, jar)
        idle_mib = served.memory_mib(server.pid)
        sent, until = [], time.monotonic() + SECONDS
        threads = [threading.Thread(target=flood, args=(request, until, sent)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        during, after, statuses, victims = [], [], set(), iter(range(1, VICTIMS + 1))
        while time.monotonic() < until:
            seconds, status = sign_in(next(victims))
            during.append(seconds)
            statuses.add(status)
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        for n in victims:
            seconds, status = sign_in(n)
            after.append(seconds)
            statuses.add(status)
        peak_mib = served.memory_mib(server.pid, "VmHWM")
        ms = lambda values: f"{statistics.median(values) * 1000:.0f} ms (max {max(values) * 1000:.0f})"
        print(f"| {os.environ['DB']} | {SECONDS:.0f} s | {len(sent):,} | {ms(during)} | {ms(after)} "
              f"| {sorted(statuses)} | {idle_mib:.0f} MiB | {peak_mib:.0f} MiB |", flush=True)
        # 200: the sign-in's 303 to /account, followed.
        if statuses != {200} or max(during + after) > MAX_SECONDS:
            sys.exit(f"bench/hashflood.py: a reader was refused or waited more than {MAX_SECONDS} s")
    finally:
        served.stop(server)


main()
