#!/usr/bin/env python3
"""A fake of OpenRouter's key-info endpoint on 127.0.0.1 (stdlib only).

Prints "PORT <n>" on stdout once listening, then serves until killed.
The first path segment picks the scenario; the rest must be "/key":

  GET /valid/key      200 with the documented shape of GET /api/v1/key
                      (data.{label, limit, usage, is_free_tier,
                      limit_remaining, limit_reset, rate_limit, ...}) when
                      the bearer token starts with "sk-or-", else 401
  GET /free/key       200, a free-tier key without a limit (limit null)
  GET /401/key        401 {"error": {"code": 401, "message": ...}}
  GET /403/key        403
  GET /429/key        429 with Retry-After
  GET /500/key        500
  GET /slow/key       waits 3 s, then 200
  GET /malformed/key  200, JSON content type, body cut short
  GET /badshape/key   200, valid JSON without "data"
  GET /echo/key       200, the documented shape with the bearer token echoed
                      in every string field (label, limit_reset, rate_limit,
                      expires_at, extra fields) and numbers left numbers
  GET /labeled/key    200, label "Team key (prod)"
  GET /longlabel/key  200, a label of 500 characters
  GET /echoall/key    200, the token in every field, numbers included
  GET /echo401/key    401 whose error message and extra fields echo the token

GET /__last answers the headers of the last /key request, with the
Authorization value replaced by whether it was a bearer token, so a test
can check what was sent without the key travelling back.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAST = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, payload, headers=None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["__last"]:
            with LOCK:
                return self.send(200, dict(LAST))
        if len(parts) != 2 or parts[1] != "key":
            return self.send(404, {"error": {"code": 404, "message": "Not Found"}})
        auth = self.headers.get("Authorization", "")
        with LOCK:
            LAST.clear()
            LAST.update({"bearer": auth.startswith("Bearer "),
                         "x-title": self.headers.get("X-Title"),
                         "http-referer": self.headers.get("HTTP-Referer")})
        scenario = parts[0]
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        unauthorized = {"error": {"code": 401, "message": "No auth credentials found"}}
        if scenario == "valid":
            if not token.startswith("sk-or-"):
                return self.send(401, unauthorized)
            return self.send(200, {"data": {
                "label": "sk-or-v1-au7...890", "limit": 100, "usage": 25.5,
                "usage_daily": 25.5, "usage_weekly": 25.5, "usage_monthly": 25.5,
                "byok_usage": 0, "is_free_tier": False, "is_provisioning_key": False,
                "limit_remaining": 74.5, "limit_reset": "monthly",
                "include_byok_in_limit": False, "expires_at": None,
                "rate_limit": {"requests": 1000, "interval": "1h",
                               "note": "This field is deprecated and safe to ignore."}}})
        if scenario == "echo":
            return self.send(200, {"data": {
                "label": token, "limit": 100, "usage": 1.5, "limit_remaining": 98.5,
                "is_free_tier": False, "limit_reset": token, "expires_at": token,
                "key": token, "name": "key " + token,
                "rate_limit": {"requests": 10, "interval": token, "note": token}},
                "echo": token})
        if scenario in ("labeled", "longlabel"):
            label = "Team key (prod)" if scenario == "labeled" else "x" * 500
            return self.send(200, {"data": {"label": label, "limit": None, "usage": 0,
                                            "is_free_tier": False, "limit_remaining": None}})
        if scenario == "echoall":
            return self.send(200, {"data": {k: token for k in (
                "label", "limit", "usage", "limit_remaining", "is_free_tier", "limit_reset",
                "expires_at", "rate_limit")}, "echo": token})
        if scenario == "echo401":
            return self.send(401, {"error": {"code": 401, "message": "bad key " + token,
                                             "metadata": {"key": token}}})
        if scenario == "free":
            return self.send(200, {"data": {"label": "sk-or-v1-fre...e00", "limit": None,
                                            "usage": 0, "is_free_tier": True,
                                            "limit_remaining": None,
                                            "rate_limit": {"requests": 20, "interval": "10s"}}})
        if scenario == "401":
            return self.send(401, unauthorized)
        if scenario == "403":
            return self.send(403, {"error": {"code": 403, "message": "Forbidden"}})
        if scenario == "429":
            return self.send(429, {"error": {"code": 429, "message": "Rate limit exceeded"}},
                             {"Retry-After": "1"})
        if scenario == "500":
            return self.send(500, {"error": {"code": 500, "message": "Internal Server Error"}})
        if scenario == "slow":
            time.sleep(3)
            return self.send(200, {"data": {"label": "x", "limit": None, "usage": 0,
                                            "is_free_tier": False, "limit_remaining": None}})
        if scenario == "malformed":
            return self.send(200, b'{"data": {"label": "sk-or-v1", "limit": ')
        if scenario == "badshape":
            return self.send(200, {"ok": True})
        return self.send(404, {"error": {"code": 404, "message": "Not Found"}})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
