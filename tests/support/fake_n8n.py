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

With the argument --llm the list holds a second workflow, "LLM summary",
whose HTTP Request node uses the openRouterApi credential (so a run routes
an OpenRouter key and may call the gateway's openrouter provider). Its
webhook does what that workflow does in n8n: it calls the run's gateway,
POST <ee.gatewayUrl>/openrouter/api/v1/chat/completions with
"Authorization: Bearer <ee.gatewayToken>" and OpenRouter's body (the
parameters' "text" as the user message, usage included), then answers
  POST /webhook/ee-llm            {"summary": the answer's text, "model",
                                   "usage": the answer's usage}
or, when the gateway refused or failed, 500 {"message": "gateway answered
<status>", "gateway": <its body>}, as n8n fails the execution.
While the "holdLlm" knob is set (/__config) that webhook waits before it
calls the gateway, and GET /__gateways answers {"gateways": [{"url",
"token", "executionId"}, ...]} of the runs that reached it: a test may
call the gateway itself with a running execution's token.
"""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_upstream  # noqa: E402

COUNTS = {}
COUNT_LOCK = threading.Lock()
GATEWAYS = []

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

LLM_WORKFLOW = {
    "id": "llmSummary0001", "name": "LLM summary", "active": True, "isArchived": False,
    "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
    "versionId": "v1", "tags": [{"id": "t2", "name": "llm"}],
    "nodes": [
        {"id": "l1", "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
         "position": [0, 0],
         "parameters": {"httpMethod": "POST", "path": "ee-llm", "responseMode": "lastNode"},
         "webhookId": "ee-llm"},
        {"id": "l2", "name": "Chat completion", "type": "n8n-nodes-base.httpRequest",
         "typeVersion": 4.2, "position": [200, 0],
         "parameters": {"method": "POST", "url": "={{ $json.body.ee.gatewayUrl + "
                        "'/openrouter/api/v1/chat/completions' }}", "authentication": "none"},
         "credentials": {"openRouterApi": {"name": "openrouter"}}},
    ],
    "connections": {"Webhook": {"main": [[{"node": "Chat completion", "type": "main",
                                           "index": 0}]]}},
    "settings": {},
}
WORKFLOWS = [WORKFLOW] + ([LLM_WORKFLOW] if "--llm" in sys.argv[1:] else [])


class Handler(fake_upstream.Handler):
    def handle_any(self):
        # The hot path stays out of the shared recorder (no body kept).
        if self.path == "/webhook/ee-hosts" and self.command == "POST":
            return self.webhook(self.read_body())
        if self.path == "/webhook/ee-llm" and self.command == "POST" and \
                LLM_WORKFLOW in WORKFLOWS:
            return self.llm(self.read_body())
        if self.path == "/__gateways" and self.command == "GET":
            self.read_body()
            with COUNT_LOCK:
                return self.send(200, {"gateways": list(GATEWAYS)})
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

    def llm(self, body):
        try:
            doc = json.loads(body or b"{}")
            ee = doc["ee"]
            url, token, xid = ee["gatewayUrl"], ee["gatewayToken"], ee["executionId"]
        except (ValueError, KeyError, TypeError):
            return self.send(400, {"message": "no ee.gatewayUrl, gatewayToken, executionId"})
        with COUNT_LOCK:
            COUNTS[xid] = COUNTS.get(xid, 0) + 1
            GATEWAYS.append({"url": url, "token": token, "executionId": xid})
        while True:
            with fake_upstream.LOCK:
                if not fake_upstream.CONFIG.get("holdLlm"):
                    break
            time.sleep(0.02)
        call = json.dumps({"model": "openai/gpt-4o-mini", "usage": {"include": True},
                           "messages": [{"role": "user", "content": str(doc.get("text", ""))}]})
        req = urllib.request.Request(url + "/openrouter/api/v1/chat/completions",
                                     data=call.encode(), method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                answer = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                gw = json.loads(raw)
            except ValueError:
                gw = raw.decode("utf-8", "replace")
            return self.send(500, {"message": "gateway answered %d" % e.code, "gateway": gw})
        except (OSError, ValueError) as e:
            return self.send(500, {"message": "gateway call failed: %s" % e})
        return self.send(200, {"summary": answer["choices"][0]["message"]["content"],
                               "model": answer.get("model"), "usage": answer.get("usage")})

    # fake_upstream.Handler binds its own handle_any to the verbs: rebind
    # them, or the webhook and /__counts above are never reached.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def route(self, method, path, segments, query, body, knobs):
        if method == "GET" and segments[:3] == ["api", "v1", "workflows"]:
            if len(segments) == 3:
                return self.send(200, {"data": WORKFLOWS, "nextCursor": None})
            for wf in WORKFLOWS:
                if len(segments) == 4 and segments[3] == wf["id"]:
                    return self.send(200, wf)
        return False


if __name__ == "__main__":
    fake_upstream.serve(Handler)
