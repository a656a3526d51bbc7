#!/usr/bin/env python3
"""A real SMTP server for the e-mail tests (Debian python3-aiosmtpd).

    smtp_sink.py DIR [PORT]

Listens on 127.0.0.1:PORT (0 or absent: a free port), writes each message it
accepts to DIR/<n>.eml (the DATA as received, after "X-Envelope-To: <rcpt>"
lines) and prints "PORT <port>" once it accepts connections. A message whose
file exists has been answered 250. A recipient whose address starts with
"reject-" is refused for good (550), one starting with "busy-" for now (450),
as a real server refuses an unknown or a full mailbox. Stops on SIGTERM.
"""
import os
import signal
import socket
import sys
import threading

try:
    from aiosmtpd.controller import Controller
except ImportError:  # a python3 other than Debian's (pyenv) on the PATH
    sys.path.append("/usr/lib/python3/dist-packages")
    from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.count = len([f for f in os.listdir(directory) if f.endswith(".eml")])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject-"):
            return "550 5.1.1 no such mailbox here"
        if address.startswith("busy-"):
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        tmp = os.path.join(self.directory, "%d.tmp" % n)
        with open(tmp, "wb") as f:
            for rcpt in envelope.rcpt_tos:
                f.write(b"X-Envelope-To: " + rcpt.encode() + b"\r\n")
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, "%d.eml" % n))
        return "250 OK"


def main():
    directory = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if port == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    sys.stdout.write("PORT %d\n" % port)
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
