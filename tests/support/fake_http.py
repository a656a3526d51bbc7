#!/usr/bin/env python3
"""A small HTTP server on 127.0.0.1 for fault-injection tests (stdlib only).

Prints "PORT <n>" on stdout once listening, then serves until killed.
Every request is counted by path (query left out); the counts are read with
GET /__count?path=<path> and cleared with POST /__reset (neither counted).
GET /__connections tells how many TCP connections were accepted.

Generic routes (any method):
  /status/<code>[?retry_after=S]   answer <code> with {"message": ...}
  /slow/<ms>                       wait <ms>, then 200
  /big/<n>[?chunked=1]             200 with an <n>-byte body
  /reset                           read the request, then reset the connection
  /flaky/<n>/<reset|503>/<name>    fail the first <n> requests, then 200
  /echo                            200 {"method", "query", "body", "headers"}
  /malformed                       200, Content-Type JSON, body not JSON

A fake n8n under /n8n/<scenario> (API key "test-key"):
  scenarios: ok (a consistent instance), malformed (every API answer is
  broken JSON), badshape (valid JSON, wrong shape), loop (nextCursor never
  ends), deep (a workflow nested 10,000 deep), 500 (every call fails).
"""
import base64
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_upstream  # noqa: E402

COUNTS = {}
CONNECTIONS = [0]
LOCK = threading.Lock()


def workflow(i, name, tags, active, nodes):
    return {
        "id": "wf%d" % i, "name": name, "active": active, "isArchived": False,
        "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-02T00:00:00.000Z",
        "versionId": "v%d" % i, "nodes": nodes, "connections": {}, "settings": {},
        "tags": [{"id": "t-" + t, "name": t} for t in tags], "shared": [], "pinData": None,
    }


def webhook_node(path, method="POST", mode="lastNode"):
    return {"id": "n1", "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
            "position": [0, 0], "webhookId": "hook-" + path,
            "parameters": {"path": path, "httpMethod": method, "responseMode": mode}}


WORKFLOWS = [
    workflow(1, "Echo", ["ee"], True, [webhook_node("echo"),
             {"name": "Set", "type": "n8n-nodes-base.set", "parameters": {}}]),
    workflow(2, "Research", ["ee", "ai"], True, [webhook_node("research", "POST", "responseNode"),
             {"name": "HTTP", "type": "n8n-nodes-base.httpRequest", "parameters": {},
              "credentials": {"httpHeaderAuth": {"id": "c1", "name": "k"}}}]),
    workflow(3, "Weekly report", ["ee", "reporting"], False,
             [{"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}}]),
    workflow(4, "Status", ["ee"], True, [webhook_node("status", "GET")]),
    workflow(5, "Cron", [], True,
             [{"name": "Every day", "type": "n8n-nodes-base.scheduleTrigger", "parameters": {}}]),
]

EXECUTIONS = {
    "1": {"id": "1", "finished": True, "mode": "webhook", "status": "success",
          "startedAt": "2026-01-03T00:00:00.000Z", "stoppedAt": "2026-01-03T00:00:01.000Z",
          "workflowId": "wf1", "waitTill": None,
          "data": {"resultData": {"lastNodeExecuted": "Set", "runData": {
              "Set": [{"executionStatus": "success",
                       "data": {"main": [[{"json": {"answer": 42}}, {"json": {"answer": 43}}]]}}]}}}},
    "2": {"id": "2", "finished": False, "mode": "webhook", "status": "error",
          "startedAt": "2026-01-03T00:00:00.000Z", "stoppedAt": "2026-01-03T00:00:01.000Z",
          "workflowId": "wf2", "waitTill": None,
          "data": {"resultData": {"lastNodeExecuted": "HTTP", "error": {
              "message": "connect ECONNREFUSED", "description": "the search API is down",
              "node": {"name": "HTTP"}}, "runData": {}}}},
    "3": {"id": 3, "finished": False, "mode": "webhook", "status": "running",
          "startedAt": "2026-01-03T00:00:00.000Z", "stoppedAt": None, "workflowId": "wf1"},
    "4": {"id": "4", "finished": False, "mode": "webhook", "status": "waiting",
          "startedAt": "2026-01-03T00:00:00.000Z", "stoppedAt": None, "workflowId": "wf1",
          "waitTill": "3000-01-01T00:00:00.000Z"},
    "5": {"id": "5", "finished": False, "mode": "webhook", "status": "crashed",
          "startedAt": "2026-01-03T00:00:00.000Z", "stoppedAt": "2026-01-03T00:00:09.000Z",
          "workflowId": "wf1"},
    "6": {"id": "6", "finished": False, "mode": "manual", "status": "new",
          "startedAt": None, "stoppedAt": None, "workflowId": "wf1"},
}


def cursor_encode(offset, limit):
    return base64.b64encode(json.dumps({"offset": offset, "limit": limit}).encode()).decode()


def cursor_decode(text):
    return json.loads(base64.b64decode(text.encode()))["offset"]


class Handler(fake_upstream.Plumbing):
    def setup(self):
        super().setup()
        with LOCK:
            CONNECTIONS[0] += 1

    def handle_any(self):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        payload = self.read_body()
        if path == "/__count":
            with LOCK:
                return self.send(200, {"count": COUNTS.get(query.get("path", [""])[0], 0)})
        if path == "/__connections":
            with LOCK:
                return self.send(200, {"count": CONNECTIONS[0]})
        if path == "/__reset":
            with LOCK:
                COUNTS.clear()
            return self.send(200, {"ok": True})
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1
            seen = COUNTS[path]
        parts = [p for p in path.split("/") if p]
        if not parts:
            return self.send(404, {"message": "Not Found"})
        head = parts[0]
        if head == "status":
            code = int(parts[1])
            headers = {}
            if "retry_after" in query:
                headers["Retry-After"] = query["retry_after"][0]
            return self.send(code, {"message": "fake %d message" % code, "hint": "fake hint"},
                             headers=headers)
        if head == "slow":
            time.sleep(int(parts[1]) / 1000.0)
            return self.send(200, {"ok": True})
        if head == "big":
            n = int(parts[1])
            if query.get("chunked"):
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    left = n
                    while left > 0:
                        k = min(left, 65536)
                        self.wfile.write(b"%x\r\n" % k + b"x" * k + b"\r\n")
                        left -= k
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    self.close_connection = True
                return None
            return self.send(200, b"x" * n, "text/plain")
        if head == "reset":
            return self.reset_now()
        if head == "folded":  # the first header line is a continuation (obsolete folding)
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n folded: on\r\nContent-Length: 2\r\n"
                                 b"Connection: close\r\n\r\n{}")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return None
        if head == "nothttp":  # an answer without a status line (HTTP/0.9 to libcurl)
            try:
                self.wfile.write(b"garbage\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return None
        if head == "flaky":
            if seen <= int(parts[1]):
                if parts[2] == "reset":
                    return self.reset_now()
                return self.send(503, {"message": "try again"})
            return self.send(200, {"ok": True, "count": seen})
        if head == "echo":
            return self.send(200, {"method": self.command, "query": query,
                                   "body": payload.decode("utf-8", "replace"),
                                   "headers": {k.lower(): v for k, v in self.headers.items()
                                               if k.lower() in ("content-type", "accept")},
                                   "hasApiKey": "x-n8n-api-key" in (k.lower() for k in self.headers)})
        if head == "malformed":
            return self.send(200, b'{"data": [ {"id": "wf1", "name": ', "application/json")
        if head == "n8n" and len(parts) >= 2:
            return self.n8n(parts[1], parts[2:], query, payload)
        return self.send(404, {"message": "Not Found"})

    # ---- the fake n8n ----
    def n8n(self, scenario, rest, query, payload):
        if rest[:1] == ["webhook"]:
            return self.webhook("/".join(rest[1:]), query, payload)
        if rest[:2] != ["api", "v1"]:
            return self.send(404, {"message": "Not Found"})
        if self.headers.get("X-N8N-API-KEY") != "test-key":
            return self.send(401, {"message": "unauthorized"})
        rest = rest[2:]
        if scenario == "500":
            return self.send(500, {"message": "Internal error: SQLITE_BUSY: database is locked"})
        if scenario == "malformed":
            return self.send(200, b'{"data": [{"id": "wf1", "name": "Echo", "nodes": [', "application/json")
        if scenario == "badshape":
            return self.send(200, {"data": "not a list", "nextCursor": 7, "id": [5]})
        if scenario == "deep":
            return self.send(200, ("[" * 10000 + "]" * 10000).encode(), "application/json")
        if scenario == "loop" and rest == ["workflows"]:
            return self.send(200, {"data": [WORKFLOWS[0]], "nextCursor": "c2FtZQ=="})
        if rest == ["workflows"]:
            return self.list_workflows(query)
        if len(rest) == 2 and rest[0] == "workflows":
            for wf in WORKFLOWS:
                if wf["id"] == rest[1]:
                    return self.send(200, wf)
            return self.send(404, {"message": "Not Found"})
        if rest == ["executions"]:
            items = [e for e in EXECUTIONS.values()
                     if "workflowId" not in query or e["workflowId"] == query["workflowId"][0]]
            if "status" in query:
                items = [e for e in items if e["status"] == query["status"][0]]
            if "includeData" not in query:
                items = [{k: v for k, v in e.items() if k != "data"} for e in items]
            return self.page(items, query)
        if len(rest) == 2 and rest[0] == "executions":
            e = EXECUTIONS.get(rest[1])
            if e is None:
                return self.send(404, {"message": "Not Found"})
            if "includeData" not in query:
                e = {k: v for k, v in e.items() if k != "data"}
            return self.send(200, e)
        return self.send(404, {"message": "Not Found"})

    def list_workflows(self, query):
        items = WORKFLOWS
        if "active" in query:
            want = query["active"][0] == "true"
            items = [w for w in items if w["active"] == want]
        if "tags" in query:
            wanted = query["tags"][0].split(",")
            items = [w for w in items if all(t in [x["name"] for x in w["tags"]] for t in wanted)]
        return self.page(items, query)

    def page(self, items, query):
        limit = int(query.get("limit", ["100"])[0])
        offset = cursor_decode(query["cursor"][0]) if "cursor" in query else 0
        chunk = items[offset:offset + limit]
        nxt = cursor_encode(offset + limit, limit) if offset + limit < len(items) else None
        return self.send(200, {"data": chunk, "nextCursor": nxt})

    def webhook(self, path, query, payload):
        if path == "fail":
            return self.send(500, {"message": "Error in workflow"})
        if path == "missing":
            return self.send(404, {"message": 'The requested webhook "POST missing" is not registered.',
                                   "hint": "Activate the workflow first."})
        if path == "text":
            return self.send(200, b"hello \xff world", "text/plain")
        if path == "leak":
            return self.send(500, {"message": "bad key test-key rejected"})
        body = json.loads(payload) if payload else None
        return self.send(200, {"echo": body, "query": query, "method": self.command,
                               "executionId": 77})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    fake_upstream.serve(Handler)


if __name__ == "__main__":
    main()
