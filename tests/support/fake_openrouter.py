#!/usr/bin/env python3
"""A fake of OpenRouter's key-info endpoint on 127.0.0.1 (stdlib only).

Prints "PORT <n>" on stdout once listening, then serves until killed.
The first path segment picks the scenario; the rest must be "/key":

  GET /valid/key      200 with the documented shape of GET /api/v1/key
  GET /api/v1/key     the same as /valid/key: OpenRouter's own path, what a
                      key validation asks when OPENROUTER_API_URL is
                      <fake>/api/v1 (scripts/run)
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

Chat completions (what the "LLM summary" fixture workflow calls through the
gateway): POST <anything>/api/v1/chat/completions with OpenRouter's request
({"model", "messages", "stream"?, "usage": {"include": true}?}) answers
OpenRouter's documented shape:

  {"id": "gen-fake-<n>", "provider": "FakeProvider", "model": <the model
   asked, default "openai/gpt-4o-mini">, "object": "chat.completion",
   "created": 1767225600, "choices": [{"index": 0, "logprobs": null,
   "finish_reason": "stop", "native_finish_reason": "stop", "message":
   {"role": "assistant", "content": "Summary: <the first 12 words of the
   last user message>", "refusal": null, "reasoning": null}}],
   "usage": {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59,
             "cost": 0.000123, "is_byok": false, ...details}}

The usage figures are fixed (USAGE below) unless /__config sets "usage"
(members replace the defaults'); "content" in /__config replaces the
answer's text. With "stream": true the answer is SSE: a ": OPENROUTER
PROCESSING" comment, one "data:" chunk per word (choices[0].delta.content),
a chunk with finish_reason "stop", then a chunk with "choices": [] and the
usage (OpenRouter sends usage in the last data message), then
"data: [DONE]". No bearer token: 401 in OpenRouter's error shape.
Stream knobs (/__config): "hold": true stops every stream after its first
"data:" message until a later /__config sets "hold" false; "dripMs": n
waits n ms before each message after that; "pad": n adds n bytes to
each word's message (a "pad" member: a large stream). GET /__streams answers
{"held": streams waiting on "hold" now, "completed": streams sent to
their end, "aborted": streams whose connection went away mid-answer,
"written": bytes of the last stream written so far}.
Knobs (fake_upstream.py): delay, reset mid-answer (after half the body, or
after the first two SSE messages), status (OpenRouter's error shape),
malformed. Every request is recorded (GET /__requests).
"""
import itertools
import json
import socket
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_upstream  # noqa: E402

LAST = {}
LOCK = threading.Lock()
STREAMS = {"held": 0, "completed": 0, "aborted": 0, "written": 0}
GENERATION = itertools.count(1)

USAGE = {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59, "cost": 0.000123,
         "is_byok": False, "prompt_tokens_details": {"cached_tokens": 0},
         "cost_details": {"upstream_inference_cost": None},
         "completion_tokens_details": {"reasoning_tokens": 0}}
DEFAULT_MODEL = "openai/gpt-4o-mini"
CREATED = 1767225600


def summary_of(messages):
    """ "Summary: " + the first 12 words of the last user message. """
    text = ""
    for m in messages if isinstance(messages, list) else []:
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            text = m["content"]
    return "Summary: " + " ".join(text.split()[:12])


class Handler(fake_upstream.Handler):
    def send(self, code, payload, headers=None, ctype="application/json"):
        return super().send(code, payload, ctype, headers)

    def route(self, method, path, segments, query, body, knobs):
        if method == "POST" and segments[-4:] == ["api", "v1", "chat", "completions"]:
            return self.chat(body, knobs)
        if method == "GET":
            self.key_info()
            return True
        return False

    def chat(self, body, knobs):
        if knobs.get("status"):
            code = knobs["status"]
            return self.send(code, {"error": {"code": code, "message": "fake upstream error %d" % code}})
        if knobs.get("malformed"):
            return self.send(200, b'{"id": "gen-fake", "choices": [{"message": ')
        if not self.headers.get("Authorization", "").startswith("Bearer ") \
                or len(self.headers.get("Authorization", "")) <= len("Bearer "):
            return self.send(401, {"error": {"code": 401, "message": "No auth credentials found"}})
        try:
            req = json.loads(body or b"{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            return self.send(400, {"error": {"code": 400, "message": "Invalid JSON body"}})
        usage = dict(USAGE)
        usage.update(knobs.get("usage") or {})
        model = req.get("model") if isinstance(req.get("model"), str) else DEFAULT_MODEL
        content = knobs.get("content")
        if not isinstance(content, str):
            content = summary_of(req.get("messages"))
        gen = "gen-fake-%d" % next(GENERATION)
        if req.get("stream") is True:
            return self.chat_stream(gen, model, content, usage, knobs)
        answer = {"id": gen, "provider": "FakeProvider", "model": model,
                  "object": "chat.completion", "created": CREATED,
                  "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                               "native_finish_reason": "stop",
                               "message": {"role": "assistant", "content": content,
                                           "refusal": None, "reasoning": None}}],
                  "usage": usage}
        if knobs.get("reset"):
            return self.send_cut(200, answer)
        return self.send(200, answer)

    def chat_stream(self, gen, model, content, usage, knobs):
        def chunk(choices, extra=None):
            c = {"id": gen, "provider": "FakeProvider", "model": model,
                 "object": "chat.completion.chunk", "created": CREATED, "choices": choices}
            c.update(extra or {})
            return "data: " + json.dumps(c) + "\n\n"

        messages = [": OPENROUTER PROCESSING\n\n"]
        words = content.split(" ")
        pad = {"pad": "x" * int(knobs["pad"])} if knobs.get("pad") else None
        for i, w in enumerate(words):
            messages.append(chunk([{"index": 0, "delta": {"role": "assistant",
                                                          "content": w if i == 0 else " " + w},
                                    "finish_reason": None, "native_finish_reason": None}],
                                  pad))
        messages.append(chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                "finish_reason": "stop", "native_finish_reason": "stop"}]))
        messages.append(chunk([], {"usage": usage}))
        messages.append("data: [DONE]\n\n")
        with LOCK:
            STREAMS["written"] = 0
        if pad:  # a large stream: a small send buffer, so "written" is what was taken
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        try:
            self.stream_start()
            for i, m in enumerate(messages):
                if knobs.get("reset") and i == 2:
                    return self.reset_now()
                if i == 2:
                    self.hold()
                if i >= 2 and knobs.get("dripMs"):
                    time.sleep(knobs["dripMs"] / 1000.0)
                self.stream_write(m)
                with LOCK:
                    STREAMS["written"] += len(m)
            self.stream_end()
            outcome = "completed"
        except OSError:
            self.close_connection = True
            outcome = "aborted"
        with LOCK:
            STREAMS[outcome] += 1
        return True

    def hold(self):
        """Wait while the "hold" knob is set (read afresh: a test releases
        the held streams with /__config)."""
        with LOCK:
            STREAMS["held"] += 1
        try:
            while True:
                with fake_upstream.LOCK:
                    if not fake_upstream.CONFIG.get("hold"):
                        return
                time.sleep(0.02)
        finally:
            with LOCK:
                STREAMS["held"] -= 1

    def key_info(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["__last"]:
            with LOCK:
                return self.send(200, dict(LAST))
        if parts == ["__streams"]:
            with LOCK:
                return self.send(200, dict(STREAMS))
        if parts == ["api", "v1", "key"]:
            parts = ["valid", "key"]  # OpenRouter's own path: the demo's base URL
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


def main():
    fake_upstream.serve(Handler)


if __name__ == "__main__":
    sys.exit(main())
