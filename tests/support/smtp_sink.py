#!/usr/bin/env python3
"""A real SMTP server for the e-mail tests (Debian python3-aiosmtpd).

    smtp_sink.py DIR [PORT] [--tls CERT KEY] [--auth USER PASS]

Listens on 127.0.0.1:PORT (0 or absent: a free port), writes each message it
accepts to DIR/<n>.eml (the DATA as received, after "X-Envelope-To: <rcpt>"
lines) and prints "PORT <port>" once it accepts connections. A message whose
file exists has been answered 250. A recipient whose address starts with
"reject-" is refused for good (550), one starting with "busy-" for now (450),
as a real server refuses an unknown or a full mailbox. Stops on SIGTERM.

--tls: STARTTLS is offered with that certificate and key (PEM), and required
before MAIL and AUTH. --auth: a login is required before MAIL, and only USER
with PASS is accepted; AUTH is offered in clear too unless --tls is given (a
server a client must not log in to without TLS). Each AUTH the server
receives is written to DIR/auth.log as "AUTH <mechanism> <login> tls=<0|1>
ok=<0|1>" (never the password).
"""
import os
import signal
import socket
import ssl
import sys
import logging
import threading
import warnings

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:  # a python3 other than Debian's (pyenv) on the PATH
    sys.path.append("/usr/lib/python3/dist-packages")
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword


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


class Authenticator:
    def __init__(self, directory, user, password):
        self.log = os.path.join(directory, "auth.log")
        self.user = user.encode()
        self.password = password.encode()
        self.lock = threading.Lock()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        login = auth_data.login.decode(errors="replace") if isinstance(
            auth_data, LoginPassword) else "?"
        with self.lock, open(self.log, "a") as f:
            f.write("AUTH %s %s tls=%d ok=%d\n"
                    % (mechanism, login, session.ssl is not None, ok))
        return AuthResult(success=ok, handled=False)


def main():
    # aiosmtpd 1.4 logs a warning of its own use of Session.login_data on
    # each AUTH: not the test's concern
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    # --auth without --tls is the point: a server a client must not log in to
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    args = sys.argv[1:]
    directory = args.pop(0)
    port = int(args.pop(0)) if args and not args[0].startswith("--") else 0
    kwargs = {}
    while args:
        opt = args.pop(0)
        if opt == "--tls":
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(args.pop(0), args.pop(0))
            kwargs.update(tls_context=ctx, require_starttls=True)
        elif opt == "--auth":
            user, password = args.pop(0), args.pop(0)
            kwargs.update(authenticator=Authenticator(directory, user, password),
                          auth_required=True)
        else:
            sys.exit("smtp_sink.py: unknown option %s" % opt)
    if "authenticator" in kwargs:
        kwargs["auth_require_tls"] = "tls_context" in kwargs
    if port == 0:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port, **kwargs)
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
