#!/usr/bin/env python3
"""A small HTTP server over libexecengine through its Python binding (standard
library only): how a host embeds the engine.

    GET  /catalog              the workflows the caller may run
    POST /executions           {"workflowId", "parameters"}: run and wait
    GET  /executions/<id>      one execution

The caller is named by the X-Workspace-Id, X-User-Id and X-Org-Id headers
(a real host derives them from its own authentication). The engine is
configured from the environment (EE_STORAGE_URI, N8N_BASE_URL, N8N_API_KEY,
API_KEY_ENCRYPTION_SECRET ...; see docs/configuration.md). Listens on
127.0.0.1:${PORT:-8090} and prints "PORT <n>" once it does (PORT=0: any).
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import execengine as ee

# Exception class -> HTTP status (anything else: 500).
# As execengine-server (docs/server.md): a credential gap is 422.
HTTP = {ee.InvalidArgument: 400, ee.ParseError: 400, ee.ValidationError: 400,
        ee.CredentialGap: 422, ee.NotFound: 404, ee.PermissionDenied: 403,
        ee.QuotaExceeded: 429, ee.RateLimited: 429, ee.ConcurrencyLimited: 429,
        ee.BudgetExceeded: 402, ee.UpstreamError: 502, ee.Timeout: 504}


class Handler(BaseHTTPRequestHandler):
    engine = None

    def send(self, code, body, headers=()):
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def principal(self):
        h = self.headers
        return ee.Principal(h.get("X-Workspace-Id", ""), h.get("X-User-Id", ""),
                            h.get("X-Org-Id"))

    def serve(self, work):
        try:
            with self.principal() as who:
                self.send(200, work(who))
        except ee.ExecEngineError as e:
            headers = []
            retry = getattr(e, "retry_after", None)
            if retry is not None:
                headers.append(("Retry-After", str(max(1, int(retry + 0.999)))))
            self.send(HTTP.get(type(e), 500),
                      {"error": {"status": e.name, "message": e.message, "detail": e.detail}},
                      headers)

    def do_GET(self):
        if self.path.split("?")[0] == "/catalog":
            return self.serve(lambda who: self.engine.catalog.list(who))
        if self.path.startswith("/executions/"):
            xid = self.path[len("/executions/"):]
            return self.serve(lambda who: self.engine.executions.get(who, xid))
        self.send(404, {"error": {"status": "EE_ENOTFOUND", "message": "no such route"}})

    def do_POST(self):
        if self.path != "/executions":
            return self.send(404, {"error": {"status": "EE_ENOTFOUND", "message": "no such route"}})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            wf, params = body["workflowId"], body.get("parameters", {})
        except (ValueError, KeyError, TypeError):
            return self.send(400, {"error": {"status": "EE_EPARSE", "message": "bad body"}})
        self.serve(lambda who: self.engine.executions.run(who, wf, parameters=params))

    def log_message(self, fmt, *args):  # quiet
        pass


def main():
    with ee.Config() as cfg:
        cfg.load_env()
        Handler.engine = ee.Engine.open(cfg)
    if os.environ.get("EE_PY_SERVER_SYNC", "1") == "1":
        Handler.engine.catalog.sync()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8090"))), Handler)
    print("PORT", server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        Handler.engine.close()


if __name__ == "__main__":
    sys.exit(main())
