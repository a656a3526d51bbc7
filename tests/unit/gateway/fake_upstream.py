#!/usr/bin/env python3
"""A fake provider behind the gateway, on 127.0.0.1 (stdlib only).

Prints "PORT <n>" once listening, then serves until killed.

  POST /api/v1/chat/completions  OpenRouter's chat completion with its usage
                                 object; with "stream": true in the body, an
                                 SSE stream whose last data message carries
                                 the usage
  POST|GET /search               a Serper-like answer
  ANY  /slow                     waits 3 s, then 200
  ANY  /reset                    reads the request, then resets the connection
  GET  /__last                   the headers, path and query of the last
                                 request above, as JSON (the key included:
                                 this is the provider's side)
  GET  /__release                lets a held stream ("hold": true in the
                                 body: the first message, then a wait for
                                 this call or 10 s) go on
  GET  /__held                   {"released": "by-client" | "by-timeout"}
"""
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAST = {}
LOCK = threading.Lock()
RELEASE = threading.Event()
HELD = {"released": None}
USAGE = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
         "cost": 0.000123456789}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, body, ctype="application/json", extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        path, _, query = self.path.partition("?")
        if path == "/__last":
            with LOCK:
                return self.answer(200, dict(LAST))
        if path == "/__release":
            RELEASE.set()
            return self.answer(200, {})
        if path == "/__held":
            return self.answer(200, dict(HELD))
        raw = self.body()
        with LOCK:
            LAST.clear()
            LAST.update({"method": self.command, "path": path, "query": query,
                         "headers": {k: v for k, v in self.headers.items()},
                         "body": raw.decode("utf-8", "replace")})
        if path == "/api/v1/chat/completions":
            req = json.loads(raw or b"{}")
            if req.get("stream"):
                msgs = [{"id": "gen-s", "model": "openai/gpt-4o-mini",
                         "choices": [{"delta": {"content": w}}]} for w in ("Hel", "lo")]
                msgs.append({"id": "gen-s", "model": "openai/gpt-4o-mini",
                             "choices": [{"delta": {}, "finish_reason": "stop"}],
                             "usage": dict(USAGE, cost=1.5e-05)})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                # armed before the first byte goes out: the client's release
                # answers that byte, so it can never come before this
                if req.get("hold"):
                    RELEASE.clear()
                parts = [": OPENROUTER PROCESSING"] + ["data: " + json.dumps(m) for m in msgs] \
                    + ["data: [DONE]"]
                for i, m in enumerate(parts):
                    data = (m + "\n\n").encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                    if i == 1 and req.get("hold"):
                        HELD["released"] = "by-client" if RELEASE.wait(10) else "by-timeout"
                self.wfile.write(b"0\r\n\r\n")
                return
            return self.answer(200, {"id": "gen-1", "model": "openai/gpt-4o-mini",
                                     "object": "chat.completion",
                                     "choices": [{"index": 0, "message": {
                                         "role": "assistant", "content": "hi"}}],
                                     "usage": USAGE})
        if path == "/search":
            return self.answer(200, {"organic": [{"title": "libexecengine"}]})
        if path == "/slow":
            time.sleep(3)
            return self.answer(200, {"ok": True})
        if path == "/reset":
            # linger 0: closing sends RST; every file object on the socket
            # must go for the descriptor to close
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
            return
        return self.answer(404, {"message": "no such route"})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
