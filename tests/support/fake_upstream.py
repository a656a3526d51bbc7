"""What the fake upstreams (fake_openrouter.py, fake_serper.py) share: a
record of what they received, the knobs that shape their answers, and the
plumbing to answer, stream and reset (stdlib only; imported, not run).

Control endpoints (never recorded):
  GET  /__requests   {"requests": [{"method", "path", "query", "headers",
                     "body"}, ...]} oldest first; header names lower-case,
                     values as received (Authorization and X-API-KEY
                     included: a test checks the injected key arrived and
                     the gateway token did not)
  POST /__reset      forget the requests and the knobs
  POST /__config     set knobs for the following answers (a JSON object,
                     members replace the current ones):
                       "delayMs": n      wait n ms before answering
                       "reset": true     reset the connection mid-answer
                                         (after the head and part of the
                                         body)
                       "status": n       answer n with the provider's error
                                         shape instead
                       "malformed": true 200, JSON content type, body cut short
                       + what each fake documents ("usage", "content" ...)
The same knobs may be given per request as leading path segments, before
the provider's path: /delay-1500/..., /reset/..., /status-500/...,
/malformed/... (any other leading segment, e.g. "/openrouter" when a fake
stands in for the gateway, is ignored).
"""
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
REQUESTS = []
CONFIG = {}
MAX_RECORDED = 10000


def path_knobs(segments):
    """Knobs named by leading path segments (before the provider's path)."""
    knobs = {}
    for seg in segments:
        if seg.startswith("delay-") and seg[6:].isdigit():
            knobs["delayMs"] = int(seg[6:])
        elif seg.startswith("status-") and seg[7:].isdigit():
            knobs["status"] = int(seg[7:])
        elif seg == "reset":
            knobs["reset"] = True
        elif seg == "malformed":
            knobs["malformed"] = True
    return knobs


class Plumbing(BaseHTTPRequestHandler):
    """Answering, resetting and keeping quiet: what every fake server here
    shares (fake_http.py too), with none of the recording below."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, code, payload, ctype="application/json", headers=None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            self.close_connection = True
        return True

    def reset_now(self):
        try:
            self.wfile.flush()
        except OSError:
            pass
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        return True


class Handler(Plumbing):
    """Subclasses implement route(method, path, segments, query, body, knobs)
    and return True when they answered."""

    def send_cut(self, code, payload):
        """The head and half of the body, then a connection reset."""
        data = json.dumps(payload).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
        except OSError:
            pass
        return self.reset_now()

    def stream_start(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def stream_write(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        self.wfile.flush()

    def stream_end(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def handle_any(self):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        body = self.read_body()
        if path == "/__requests" and self.command == "GET":
            with LOCK:
                return self.send(200, {"requests": list(REQUESTS)})
        if path == "/__reset" and self.command == "POST":
            with LOCK:
                REQUESTS.clear()
                CONFIG.clear()
            return self.send(200, {"ok": True})
        if path == "/__config" and self.command == "POST":
            try:
                update = json.loads(body or b"{}")
                if not isinstance(update, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                return self.send(400, {"message": "bad config: %s" % e})
            with LOCK:
                CONFIG.update(update)
                return self.send(200, dict(CONFIG))
        with LOCK:
            if len(REQUESTS) < MAX_RECORDED:
                REQUESTS.append({
                    "method": self.command, "path": path,
                    "query": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace")})
            knobs = dict(CONFIG)
        segments = [p for p in path.split("/") if p]
        knobs.update(path_knobs(segments))
        if knobs.get("delayMs"):
            time.sleep(knobs["delayMs"] / 1000.0)
        if self.command == "POST" and segments[-1:] == ["callback"]:
            return self.send(200, {"received": True})
        if not self.route(self.command, path, segments, query, body, knobs):
            self.send(404, {"error": {"code": 404, "message": "Not Found"}})
        return None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # resets are what these servers are for


def serve(handler_class):
    """Listen on 127.0.0.1 (a free port), print "PORT <n>", serve until killed."""
    server = Server(("127.0.0.1", 0), handler_class)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()
