"""Shared by the Python benchmark drivers: a `broadsheet serve` started and
stopped, a browser with a cookie jar, a form's CSRF token, a link from the
mail the server wrote as .eml files, and queries of the bench database
(WORK, DB and PG_NAME in the environment, as bench/lib.sh sets them)."""

import email
import email.policy
import glob
import http.client
import http.cookiejar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request


def ready(port):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def start(binary, port):
    """The server, and the seconds from spawning it to a ready /readyz."""
    began = time.monotonic()
    server = subprocess.Popen([binary, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not ready(port):
        if server.poll() is not None:
            sys.exit("bench: the server exited before it was ready")
        if time.monotonic() - began > 30:
            server.kill()
            sys.exit("bench: the server was not ready within 30 s")
        time.sleep(0.001)
    return server, time.monotonic() - began


def stop(server):
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def memory_mib(pid, field="VmRSS"):
    """A process's resident memory now (VmRSS) or at its peak (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    return kib / 1024


def browser():
    """An opener that keeps cookies, and its jar."""
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def csrf_form(opener, url):
    page = opener.open(url).read().decode()
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def newest_link(mail_dir, base, prefix):
    """The path of the newest `base/prefix/...` link in the mail, waiting up
    to 10 s for it to be written."""
    for _ in range(100):
        for path in sorted(glob.glob(f"{mail_dir}/*.eml"), key=os.path.getmtime, reverse=True):
            with open(path, "rb") as file:
                message = email.message_from_binary_file(file, policy=email.policy.default)
            text = message.get_body(("plain",)).get_content()
            found = re.search(re.escape(base) + rf"(/{prefix}/\S+)", text)
            if found:
                return found.group(1)
        time.sleep(0.1)
    sys.exit(f"bench: no /{prefix}/ link arrived in {mail_dir}")


def sql_rows(query):
    """Every row, each a tuple of text values."""
    if os.environ["DB"] == "sqlite":
        with sqlite3.connect(f"{os.environ['WORK']}/bench.db") as connection:
            return [tuple(map(str, row)) for row in connection.execute(query)]
    out = subprocess.check_output(
        ["psql", "-tA", "-F", "\t", "-h", "127.0.0.1", "-U", "postgres", "-c", query, os.environ["PG_NAME"]],
        text=True)
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def sql(query):
    """The first column of the first row, as text."""
    return sql_rows(query)[0][0]
