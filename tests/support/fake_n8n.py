#!/usr/bin/env python3
"""A fake n8n on 127.0.0.1 for tests with several host processes (stdlib
only): the public API's workflow list (one webhook workflow to sync) and
that workflow's webhook, which counts how many times each engine execution
(the trigger body's ee.executionId) reached it.

Prints "PORT <n>" once listening, serves until killed. Besides the control
endpoints of fake_upstream.py (/__requests is not fed: 300 bodies are not
worth keeping):
  GET  /api/v1/workflows          {"data": [the workflow], "nextCursor": null}
  GET  /api/v1/workflows/<id>     the workflow
  POST /webhook/ee-hosts          {"status": "completed", "echo": parameters.text,
                                   "eeExecutionId": ...} after the "delayMs" knob
  GET  /__counts                  {"<ee.executionId>": times triggered, ...}
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_upstream  # noqa: E402

COUNTS = {}
COUNT_LOCK = threading.Lock()

WORKFLOW = {
    "id": "hostsEcho000001", "name": "Hosts echo", "active": True, "isArchived": False,
    "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
    "versionId": "v1", "tags": [{"id": "t1", "name": "test"}],
    "nodes": [
        {"id": "n1", "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
         "position": [0, 0],
         "parameters": {"httpMethod": "POST", "path": "ee-hosts", "responseMode": "lastNode"},
         "webhookId": "ee-hosts"},
        {"id": "n2", "name": "Set", "type": "n8n-nodes-base.set", "typeVersion": 3,
         "position": [200, 0], "parameters": {}},
    ],
    "connections": {"Webhook": {"main": [[{"node": "Set", "type": "main", "index": 0}]]}},
    "settings": {},
}


class Handler(fake_upstream.Handler):
    def handle_any(self):
        # The hot path stays out of the shared recorder (no body kept).
        if self.path == "/webhook/ee-hosts" and self.command == "POST":
            return self.webhook(self.read_body())
        if self.path == "/__counts" and self.command == "GET":
            self.read_body()
            with COUNT_LOCK:
                return self.send(200, dict(COUNTS))
        return super().handle_any()

    def webhook(self, body):
        try:
            doc = json.loads(body or b"{}")
            ee = doc.get("ee") or {}
            xid = ee.get("executionId")
        except (ValueError, AttributeError):
            return self.send(400, {"message": "bad body"})
        if not isinstance(xid, str):
            return self.send(400, {"message": "no ee.executionId"})
        with COUNT_LOCK:
            COUNTS[xid] = COUNTS.get(xid, 0) + 1
        with fake_upstream.LOCK:
            delay = fake_upstream.CONFIG.get("delayMs", 0)
        if delay:
            time.sleep(delay / 1000.0)
        return self.send(200, {"status": "completed", "echo": doc.get("text"),
                               "eeExecutionId": xid})

    # fake_upstream.Handler binds its own handle_any to the verbs: rebind
    # them, or the webhook and /__counts above are never reached.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def route(self, method, path, segments, query, body, knobs):
        if method == "GET" and segments[:3] == ["api", "v1", "workflows"]:
            if len(segments) == 3:
                return self.send(200, {"data": [WORKFLOW], "nextCursor": None})
            if len(segments) == 4 and segments[3] == WORKFLOW["id"]:
                return self.send(200, WORKFLOW)
        return False


if __name__ == "__main__":
    fake_upstream.serve(Handler)
