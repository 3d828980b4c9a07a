"""An SMTP server for bench/soak.py that injects faults on a fixed, seeded
schedule, and keeps what it accepted:

- down (every command and new connection answered 421, then closed) for
  OUTAGE seconds out of every PERIOD, the first outage starting at FIRST;
- 550 5.1.1 at RCPT for every recipient in the permanent set
  (reader<i>@example.com with i % 500 == 7);
- at the end of DATA: 451 for DEFER of messages, and the connection
  dropped without an answer for DROP of them.

A message counts as delivered only when it was answered 250. Messages to
readers of the imported list are counted per recipient; any other message
is written to MAIL_DIR as <recipient>.<n>.eml so the traffic can follow its
links. On SIGTERM it writes the counts and the faults it injected to STATS
(JSON) and exits.

Usage: python3 faulty_smtp.py PORT MAIL_DIR STATS
"""

import asyncio
import json
import os
import random
import re
import signal
import sys
import time

FIRST, OUTAGE, PERIOD = (float(os.environ.get(k, d)) for k, d in
                         (("SOAK_OUTAGE_FIRST", 45), ("SOAK_OUTAGE_S", 15), ("SOAK_OUTAGE_PERIOD", 120)))
DEFER, DROP = 0.01, 0.005
MAIL_DIR = "."      # where messages to others go; set from the command line
IMPORTED = re.compile(r"reader(\d+)@example\.com")

started = time.monotonic()
rng = random.Random(8)
digests = {}        # imported reader -> messages accepted
other = {}          # any other recipient -> messages accepted
faults = {"refused_while_down": 0, "rcpt_550": 0, "data_451": 0, "data_dropped": 0}


def permanent(address):
    found = IMPORTED.fullmatch(address)
    return bool(found) and int(found.group(1)) % 500 == 7


def down():
    t = time.monotonic() - started - FIRST
    return t >= 0 and t % PERIOD < OUTAGE


def accepted(recipients, data):
    for rcpt in recipients:
        if IMPORTED.fullmatch(rcpt):
            digests[rcpt] = digests.get(rcpt, 0) + 1
        else:
            n = other.get(rcpt, 0) + 1
            other[rcpt] = n
            with open(os.path.join(MAIL_DIR, f"{rcpt}.{n}.eml"), "wb") as file:
                file.write(data)


async def session(reader, writer):
    def send(line):
        writer.write(line.encode() + b"\r\n")

    try:
        if down():
            faults["refused_while_down"] += 1
            send("421 4.3.2 soak: down for a while")
            return
        send("220 soak ESMTP")
        recipients = []
        while True:
            line = (await reader.readline()).decode("ascii", "replace").strip()
            if not line:
                return
            verb = line[:4].upper()
            if down() and verb != "QUIT":
                faults["refused_while_down"] += 1
                send("421 4.3.2 soak: down for a while")
                return
            if verb in ("EHLO", "HELO"):
                writer.write(b"250-soak\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 10485760\r\n")
            elif verb == "MAIL":
                recipients = []
                send("250 2.1.0 ok")
            elif verb == "RCPT":
                address = line[line.index(":") + 1:].strip().strip("<>").lower()
                if permanent(address):
                    faults["rcpt_550"] += 1
                    send("550 5.1.1 soak: no such user")
                else:
                    recipients.append(address)
                    send("250 2.1.5 ok")
            elif verb == "DATA":
                send("354 go ahead")
                await writer.drain()
                data = await reader.readuntil(b"\r\n.\r\n")
                roll = rng.random()
                if roll < DROP:
                    faults["data_dropped"] += 1
                    return
                if roll < DROP + DEFER:
                    faults["data_451"] += 1
                    send("451 4.3.0 soak: try again later")
                else:
                    accepted(recipients, data)
                    send("250 2.0.0 queued")
                recipients = []
            elif verb in ("RSET", "NOOP"):
                recipients = [] if verb == "RSET" else recipients
                send("250 2.0.0 ok")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                return
            else:
                send("502 5.5.2 not here")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        try:
            await writer.drain()
            writer.close()
        except ConnectionError:
            pass


async def main(port, stats):
    os.makedirs(MAIL_DIR, exist_ok=True)
    server = await asyncio.start_server(session, "127.0.0.1", port, limit=16 << 20, backlog=256)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    with open(stats, "w") as file:
        json.dump({"digests": digests, "other": other, "faults": faults}, file)


if __name__ == "__main__":
    MAIL_DIR = sys.argv[2]
    asyncio.run(main(int(sys.argv[1]), sys.argv[3]))
