#!/usr/bin/env python3
"""A fake of Serper's Google search API on 127.0.0.1 (stdlib only).

Prints "PORT <n>" on stdout once listening, then serves until killed.

  POST <anything>/search  {"q": "...", "num"?: 1..10 (default 3), "gl"?, "hl"?}
  with an "X-API-KEY" header (Serper's way) answers Serper's shape:
    {"searchParameters": {"q", "type": "search", "engine": "google",
                          "num", "gl"?, "hl"?},
     "organic": [{"title": "Result <i> for <q>",
                  "link": "https://example.com/<i>?q=<q>",
                  "snippet": "Snippet <i> about <q>.", "position": <i>}, ...],
     "relatedSearches": [{"query": "<q> explained"}],
     "credits": 1}
  No X-API-KEY (or an empty one): 403 {"message": "Unauthorized.",
  "statusCode": 403} - unless the knob "acceptBearer" (POST /__config
  {"acceptBearer": true}) lets an "Authorization: Bearer ..." stand for the
  key, for a test that points a workflow straight at this fake instead of
  the gateway; no "q": 400 {"message": "Missing query", "statusCode": 400}.
  (The error bodies follow what Serper is reported to answer; the tests
  only rely on the status codes.)

Knobs and the record of requests: see fake_upstream.py (GET /__requests,
POST /__reset, POST /__config; /delay-<ms>/..., /reset/..., /status-<n>/...,
/malformed/...; "/serper" or any other leading segment is ignored, so the
fake can stand in for "<gatewayUrl>/serper").
"""
import os
import sys
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_upstream  # noqa: E402
import json  # noqa: E402


class Handler(fake_upstream.Handler):
    def route(self, method, path, segments, query, body, knobs):
        if method != "POST" or segments[-1:] != ["search"]:
            return False
        if knobs.get("status"):
            code = knobs["status"]
            return self.send(code, {"message": "fake upstream error %d" % code, "statusCode": code})
        if knobs.get("malformed"):
            return self.send(200, b'{"searchParameters": {"q": ')
        bearer = self.headers.get("Authorization", "").startswith("Bearer ")
        if not self.headers.get("X-API-KEY") and not (knobs.get("acceptBearer") and bearer):
            return self.send(403, {"message": "Unauthorized.", "statusCode": 403})
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            return self.send(400, {"message": "Invalid JSON body", "statusCode": 400})
        q = req.get("q")
        if not isinstance(q, str) or not q:
            return self.send(400, {"message": "Missing query", "statusCode": 400})
        num = req.get("num", 3)
        num = num if isinstance(num, int) and 1 <= num <= 10 else 3
        params = {"q": q, "type": "search", "engine": "google", "num": num}
        for k in ("gl", "hl"):
            if isinstance(req.get(k), str):
                params[k] = req[k]
        answer = {
            "searchParameters": params,
            "organic": [{"title": "Result %d for %s" % (i, q),
                         "link": "https://example.com/%d?q=%s" % (i, quote(q)),
                         "snippet": "Snippet %d about %s." % (i, q), "position": i}
                        for i in range(1, num + 1)],
            "relatedSearches": [{"query": q + " explained"}],
            "credits": 1,
        }
        if knobs.get("reset"):
            return self.send_cut(200, answer)
        return self.send(200, answer)


def main():
    fake_upstream.serve(Handler)


if __name__ == "__main__":
    sys.exit(main())
