"""HTTP tests of execengine-server (examples/server): the server is started on
a free loopback port with a temporary SQLite store and a fake n8n
(tests/support/fake_n8n.py), and every route is driven with real HTTP.
argv[1]: the server binary."""
import hashlib
import hmac
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

SERVER = None
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_N8N = os.path.join(HERE, "..", "support", "fake_n8n.py")
FAKE_OPENROUTER = os.path.join(HERE, "..", "support", "fake_openrouter.py")
DATA_DIR = os.path.join(HERE, "..", "..", "data")

CANARY = "canary-token-7f3a9c"          # user A's bearer token
N8N_KEY = "n8n-key-canary-51d0"         # the engine's n8n API key
CUSTOMER_KEY = "sk-or-v1-canary-e2c4b19a77"  # a customer's OpenRouter key
PLATFORM_KEY = "sk-or-v1-canary-platform-5d0c81"  # the platform's OpenRouter key
CALLBACK_SECRET = "callback-secret-canary-" + "c" * 24
TOKENS = {
    "a": {"token": CANARY, "workspaceId": "ws-a", "userId": "u-a", "orgId": "org-a",
          "role": "user"},
    "b": {"token": "token-b-2", "workspaceId": "ws-b", "userId": "u-b", "orgId": "org-b",
          "role": "user"},
    "admin": {"token": "token-admin-3", "workspaceId": "ws-adm", "userId": "u-adm",
              "role": "admin"},
    "rate": {"token": "token-rate-4", "workspaceId": "ws-r", "userId": "u-r",
             "orgId": "org-r", "role": "user"},
    # The billing, usage and audit tests' own user (their runs do not eat
    # user a's hourly limit).
    "bill": {"token": "token-bill-5", "workspaceId": "ws-bill", "userId": "u-bill",
             "orgId": "org-bill", "role": "user"},
}
RATE_LIMIT = 8  # MAX_EXECUTIONS_PER_USER_PER_HOUR of the main server
SECRETS = (CANARY, N8N_KEY, CUSTOMER_KEY, PLATFORM_KEY, CALLBACK_SECRET)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, path, token=None, method="GET", body=None, headers=None, timeout=60):
    """(status, parsed JSON or text, headers) of one request."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=body)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            code, raw, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        code, raw, hdrs = e.code, e.read(), e.headers
    text = raw.decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in text, "a secret in an answer to %s %s" % (method, path)
    try:
        return code, json.loads(raw or b"null"), hdrs
    except ValueError:
        return code, text, hdrs


def parse_exposition(test, text):
    """Parse Prometheus text format 0.0.4 strictly: every sample belongs to a
    family announced by a TYPE line before it, names and label names are
    valid, label values use only the \\\\, \\" and \\n escapes. Returns
    {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    import re
    name_re = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
    label_re = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
    fams = {}
    test.assertTrue(text.endswith("\n"), "the exposition ends with a line feed")
    for line in text[:-1].split("\n"):
        if line.startswith("# "):
            kind, name, rest = (line[2:].split(" ", 2) + [""])[:3]
            test.assertIn(kind, ("HELP", "TYPE"), line)
            test.assertTrue(name_re.fullmatch(name), line)
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if kind == "TYPE":
                test.assertIsNone(fam["type"], "two TYPE lines: " + line)
                test.assertEqual(fam["samples"], [], "TYPE after samples: " + line)
                test.assertIn(rest, ("counter", "gauge", "histogram", "summary", "untyped"))
                fam["type"] = rest
            else:
                fam["help"] = rest
            continue
        m = name_re.match(line)
        test.assertIsNotNone(m, line)
        name, i, labels = m.group(0), m.end(), {}
        if line[i:i + 1] == "{":
            i += 1
            while line[i] != "}":
                lm = label_re.match(line, i)
                test.assertIsNotNone(lm, line)
                i = lm.end()
                test.assertEqual(line[i:i + 2], '="', line)
                i += 2
                value = ""
                while line[i] != '"':
                    if line[i] == "\\":
                        test.assertIn(line[i + 1], '\\"n', line)
                        value += {"n": "\n"}.get(line[i + 1], line[i + 1])
                        i += 2
                    else:
                        value += line[i]
                        i += 1
                i += 1
                test.assertNotIn(lm.group(0), labels, line)
                labels[lm.group(0)] = value
                if line[i] == ",":
                    i += 1
            i += 1
        test.assertEqual(line[i], " ", line)
        value = float(line[i + 1:])
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams and \
                    fams[name[:-len(suffix)]]["type"] == "histogram":
                base = name[:-len(suffix)]
        test.assertIn(base, fams, "a sample without TYPE: " + line)
        test.assertIsNotNone(fams[base]["type"], "a sample without TYPE: " + line)
        fams[base]["samples"].append((name, labels, value))
    return fams


def streams_settle(orr, name, want, timeout=5.0):
    """The fake OpenRouter's stream count `name` once it is `want` (or the
    last value read at the timeout): the fake counts a stream held just
    after it wrote the event before the hold, and completed just after its
    last byte, so a client can read either a moment before the count."""
    end = time.monotonic() + timeout
    while True:
        n = raw_json(orr.port, "/__streams")[name]
        if n == want or time.monotonic() > end:
            return n
        time.sleep(0.02)


def raw_json(port, path):
    """A fake's control endpoint, read without the secrets check of
    request(): /__requests holds the headers the fake received, keys
    included."""
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
        return json.loads(r.read())


class FakeN8n:
    """A fake upstream process (tests/support): fake_n8n.py by default
    (args: "--llm" adds the LLM summary workflow), or fake_openrouter.py."""

    def __init__(self, *args, script=FAKE_N8N):
        self.proc = subprocess.Popen([sys.executable, script] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("%s did not start" % os.path.basename(script))
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def config(self, **knobs):
        request(self.port, "/__config", method="POST", body=knobs)

    def counts(self):
        return request(self.port, "/__counts")[1]

    def requests(self, path_part=""):
        """The requests received whose path contains path_part, oldest first."""
        return [r for r in raw_json(self.port, "/__requests")["requests"]
                if path_part in r["path"]]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class Server:
    """One execengine-server process with its own store."""

    def __init__(self, tokens, extra_env=None, store=None):
        """`store`: a directory to keep the SQLite database in (the caller's,
        kept after stop()); by default one of the server's own."""
        self.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(self.tmp.name, "tokens.json")
        with open(path, "w") as f:
            json.dump({"tokens": list(tokens)}, f)
        self.port = free_port()
        env = dict(os.environ)
        env.update({
            "EE_SERVER_ADDR": "127.0.0.1:%d" % self.port,
            "EE_SERVER_TOKENS": path,
            "EE_STORAGE_URI": "sqlite://%s/engine.db" % (store or self.tmp.name),
            "API_KEY_ENCRYPTION_SECRET": "x" * 48,
            "EXEC_CALLBACK_SECRET": CALLBACK_SECRET,
        })
        env.update(extra_env or {})
        self.log = open(os.path.join(self.tmp.name, "server.log"), "w+")
        self.proc = subprocess.Popen([SERVER], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(400):
            try:
                if request(self.port, "/healthz", timeout=5)[0] == 200:
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("server did not start: " + self.log_text())

    def log_text(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        """SIGTERM; the exit status. The log must hold no secret."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        text = self.log_text()
        self.log.close()
        self.tmp.cleanup()
        for secret in SECRETS:
            assert secret not in text, "a secret in the server log"
        return rc


def setUpModule():
    global N8N
    N8N = FakeN8n()


def tearDownModule():
    N8N.stop()


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(TOKENS.values(), {
            "N8N_BASE_URL": N8N.url, "N8N_API_KEY": N8N_KEY,
            "OPENROUTER_API_URL": N8N.url + "/openrouter/api/v1",
            "MAX_EXECUTIONS_PER_USER_PER_HOUR": str(RATE_LIMIT)})
        cls.port = cls.srv.port
        code, report, _ = cls.call("/api/engines/sync-workflows", "admin")
        assert code == 200, report
        assert [a["name"] for a in report["added"]] == ["Hosts echo"], report
        cls.wf = report["added"][0]["id"]
        # An input schema, so that validation errors carry JSON pointers.
        code, body, _ = cls.call("/api/admin/engines/workflows/" + cls.wf, "admin", "PUT", {
            "inputSchema": {"type": "object", "required": ["text"],
                            "properties": {"text": {"type": "string"}}}})
        assert code == 200, body

    @classmethod
    def tearDownClass(cls):
        assert cls.srv.stop() == 0

    @classmethod
    def call(cls, path, who=None, method="GET", body=None, headers=None):
        token = TOKENS[who]["token"] if who else None
        return request(cls.port, path, token, method, body, headers)

    def run_sync(self, who="a", text="hi", **extra):
        req = dict({"parameters": {"text": text}}, **extra)
        return self.call("/api/engines/execute/" + self.wf, who, "POST", req)

    def wait_ended(self, xid, who="a"):
        for _ in range(600):
            code, rec, _ = self.call("/api/engines/executions/" + xid, who)
            self.assertEqual(code, 200, rec)
            if rec["status"] not in ("pending", "running"):
                return rec
            time.sleep(0.05)
        self.fail("execution %s did not end" % xid)

    def assert_error(self, resp, code, status):
        got, body, _ = resp
        self.assertEqual(got, code, body)
        self.assertEqual(body["error"]["status"], status, body)
        self.assertIsInstance(body["error"]["message"], str)
        return body["error"]

    # ---- basics ---------------------------------------------------------
    def test_healthz(self):
        code, body, _ = self.call("/healthz")
        self.assertEqual((code, body["status"]), (200, "ok"))

    def test_no_or_bad_token_401(self):
        self.assert_error(self.call("/api/engines/catalog"), 401, "EE_EAUTH")
        for bad in (CANARY + "x", CANARY[:-1], "", "token-admin-"):
            self.assert_error(request(self.port, "/api/engines/catalog", bad), 401, "EE_EAUTH")
        self.assert_error(self.call("/api/engines/catalog", headers={
            "Authorization": "Basic " + CANARY}), 401, "EE_EAUTH")

    def test_unknown_route_404(self):
        self.assert_error(self.call("/api/engines/nope", "a"), 404, "EE_ENOTFOUND")
        self.assert_error(self.call("/nope", "a"), 404, "EE_ENOTFOUND")

    def test_method_not_allowed_405_with_allow(self):
        # A known route asked with a method it does not take: 405 with
        # Allow (RFC 9110), not the 404 of a path that is no route; the
        # request does nothing (no run for a GET on execute).
        code, before, _ = self.call("/api/engines/executions?limit=100", "bill")
        self.assertEqual(code, 200, before)
        for path, method, who, allow in (
                ("/api/engines/catalog", "DELETE", "a", "GET, HEAD"),
                ("/api/engines/execute/" + self.wf, "GET", "bill", "POST"),
                ("/api/engines/workflows/%s/execute" % self.wf, "PUT", "bill", "POST"),
                ("/api/engines/api-keys/" + "a" * 24, "POST", "a",
                 "GET, HEAD, PUT, PATCH, DELETE"),
                ("/api/admin/engines/billing/2026-01/close", "GET", "admin", "POST"),
                ("/healthz", "POST", None, "GET, HEAD"),
                ("/_ee/callback", "GET", None, "POST"),
                ("/metrics", "DELETE", "admin", "GET, HEAD"),
                ("/api/engines/sync-workflows", "HEAD", "admin", "GET, POST")):
            code, body, hdrs = self.call(path, who, method)
            self.assertEqual(code, 405, (path, method, body))
            self.assertEqual(hdrs["Allow"], allow, path)
            if method == "HEAD":
                continue  # no body
            self.assertEqual(body["error"]["status"], "EE_EINVAL", body)
            self.assertIn(method, body["error"]["message"])
        self.assertEqual(self.call("/api/engines/executions?limit=100", "bill")[1], before)
        # HEAD where GET is allowed: GET's status and headers, no body
        code, body, hdrs = self.call("/api/engines/catalog", "a", "HEAD")
        self.assertEqual((code, body), (200, None))
        self.assertEqual(hdrs["Content-Type"], "application/json")
        # still 404: no such path; a path longer than any route's: 414
        self.assert_error(self.call("/api/engines/catalog/x", "a", "DELETE"), 404,
                          "EE_ENOTFOUND")
        self.assert_error(self.call("/api/engines/executions/" + "a" * 1100, "a"), 414,
                          "EE_ETOOBIG")

    def test_email_routes_need_a_mail_transport_and_admin(self):
        # This server has neither SMTP_HOST nor PLATFORM_RESEND_KEY: 501.
        code, rec, _ = self.run_sync("a")
        self.assertEqual(code, 200, rec)
        err = self.assert_error(self.call("/api/engines/executions/%s/email" % rec["_id"], "a",
                                          "POST", {"to": "someone@example.com"}),
                                501, "EE_ENOTSUPPORTED")
        self.assertNotIn(CANARY, err["message"])
        self.assert_error(self.call("/api/admin/engines/email-templates", "a"), 403, "EE_EPERM")
        self.assert_error(self.call("/api/email/templates", "a"), 404, "EE_ENOTFOUND")

    def test_body_over_limit_413(self):
        # Announced over 1 MiB: the answer comes before the body is sent.
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(("POST /api/engines/execute/%s HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % (self.wf, CANARY, 1024 * 1024 + 1)).encode())
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head)
        self.assertEqual(json.loads(body)["error"]["status"], "EE_ETOOBIG")

    def test_chunked_body_over_limit_413(self):
        # No Content-Length: the server stops keeping the body past the limit.
        big = b'{"parameters": {"text": "' + b"y" * (1024 * 1024) + b'"}}'
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            s.sendall(("POST /api/engines/execute/%s HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n" % (self.wf, CANARY)).encode())
            for i in range(0, len(big), 65536):
                part = big[i:i + 65536]
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            s.sendall(b"0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])

    def test_headers_over_limit_431(self):
        # Over the 64 KiB of connection memory: libmicrohttpd's own 431.
        data = self.raw_exchange(b"GET /api/engines/catalog HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                 b"a" * 100000 + b"\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 431"), data[:100])

    def raw_exchange(self, data):
        """Send raw bytes; everything the server answers until it closes."""
        out = b""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            try:
                s.sendall(data)
            except ConnectionError:
                pass  # the server may answer and close before reading it all
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionError:
                    break
                if not chunk:
                    break
                out += chunk
        return out

    def test_ambiguous_framing_400(self):
        # Two Content-Length headers, or one beside Transfer-Encoding: a
        # proxy in front may read another body end than libmicrohttpd
        # (request smuggling). Refused, the connection closed, nothing
        # stored; likewise HTTP/1.1 without Host (RFC 9112 3.2).
        code, before, _ = self.call("/api/engines/api-keys", "bill")
        body = json.dumps({"keyName": "smuggled", "provider": "openrouter",
                           "apiKey": "sk-or-v1-" + "s" * 32}).encode()
        head = ("POST /api/engines/api-keys HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                % TOKENS["bill"]["token"]).encode()
        for framing, words in (
                (b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(body),
                 "more than one Content-Length"),
                (b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(body),
                 "both Content-Length and Transfer-Encoding")):
            data = self.raw_exchange(head + framing + b"Connection: keep-alive\r\n\r\n" + body)
            status, _, rest = data.partition(b"\r\n")
            self.assertTrue(status.startswith(b"HTTP/1.1 400"), data[:200])
            self.assertIn(b"Connection: close", rest.split(b"\r\n\r\n")[0], data[:300])
            err = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
            self.assertEqual(err["status"], "EE_EINVAL")
            self.assertIn(words, err["message"])
        self.assertEqual(self.call("/api/engines/api-keys", "bill")[1], before)
        data = self.raw_exchange(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:200])
        self.assertIn(b"without Host", data)
        data = self.raw_exchange(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])

    def answer_to_head(self, line, extra, length):
        """The answer to a request's head announcing `length` bytes of body
        that never come (socket.timeout: the server waited for the body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(line + b" HTTP/1.1\r\nHost: x\r\n" + extra +
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % length)
            data = b""
            while b"}}" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data

    def test_no_token_401_before_the_body_is_read(self):
        # Without a valid token the answer comes with the head: the body
        # (up to 1 MiB per connection) is never read or kept for anyone.
        for auth in (b"", b"Authorization: Bearer nope\r\n"):
            data = self.answer_to_head(b"POST /api/engines/api-keys", auth, 1024 * 1024)
            self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:200])
            self.assertIn(b"EE_EAUTH", data)

    def test_public_routes_refuse_from_the_head_what_the_library_would(self):
        # A gateway call without a token, a callback without its signature
        # headers: refused in the library's words before a byte of the
        # announced body (up to 10 MiB on the gateway) is read.
        cases = (
            (b"POST /gateway/openrouter/api/v1/chat/completions", b"", 8 * 1024 * 1024,
             b"a gateway token is required"),
            (b"POST /gateway/openrouter/api/v1/chat/completions", b"Authorization: Basic eA==\r\n",
             8 * 1024 * 1024, b"a gateway token is required"),
            (b"POST /_ee/callback", b"", 512 * 1024, b"no X-EE-Timestamp header"),
            (b"POST /_ee/callback", b"X-EE-Timestamp: 1700000000\r\n", 512 * 1024,
             b"no X-EE-Signature header"),
        )
        for line, extra, length, words in cases:
            data = self.answer_to_head(line, extra, length)
            self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:200])
            self.assertIn(b"EE_EAUTH", data)
            self.assertIn(words, data)

    def test_slow_clients_hold_no_worker(self):
        # More half-sent requests than the server has threads: others are served.
        socks = []
        try:
            for _ in range(12):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                s.sendall(b"GET /api/engines/catalog HTTP/1.1\r\nHost: x\r\nAuthor")
                socks.append(s)
            code, body, _ = self.call("/api/engines/catalog", "a")
            self.assertEqual(code, 200, body)
        finally:
            for s in socks:
                s.close()

    # ---- catalog ----------------------------------------------------------
    def test_catalog_list_search_category(self):
        code, body, _ = self.call("/api/engines/catalog", "a")
        self.assertEqual(code, 200, body)
        self.assertEqual([e["id"] for e in body["data"]], [self.wf])
        self.assertEqual(body["total"], 1)
        code, body, _ = self.call("/api/engines/catalog?q=echo", "a")
        self.assertEqual(code, 200, body)
        self.assertEqual([e["id"] for e in body["data"]], [self.wf])
        code, body, _ = self.call("/api/engines/catalog?q=zzzunknown", "a")
        self.assertEqual((code, body["data"]), (200, []))
        cat = self.call("/api/engines/catalog", "a")[1]["data"][0]["category"]
        code, body, _ = self.call("/api/engines/catalog?category=" + cat, "a")
        self.assertEqual([e["id"] for e in body["data"]], [self.wf])
        self.assert_error(self.call("/api/engines/catalog?limit=0", "a"), 400, "EE_EINVAL")
        self.assert_error(self.call('/api/engines/catalog?category=%22%5C%01', "a"), 400,
                          "EE_EINVAL")
        err = self.assert_error(self.call('/api/engines/catalog?q=%FF%FE', "a"), 400,
                                "EE_EINVAL")
        self.assertIn("UTF-8", err["message"])

    def test_workflow_status(self):
        code, body, _ = self.call("/api/engines/workflows/%s/status" % self.wf, "a")
        self.assertEqual(code, 200, body)
        self.assertEqual((body["id"], body["isActive"]), (self.wf, True))
        self.assert_error(self.call("/api/engines/workflows/%s/status" % ("f" * 24), "a"),
                          404, "EE_ENOTFOUND")

    # ---- executions ---------------------------------------------------------
    def test_execute_sync_then_history_results_cost(self):
        code, rec, _ = self.run_sync(text="sync-run")
        self.assertEqual(code, 200, rec)
        self.assertEqual(rec["status"], "completed")
        self.assertEqual(rec["outputData"]["echo"], "sync-run")
        xid = rec["_id"]
        code, hist, _ = self.call("/api/engines/executions?workflowId=" + self.wf, "a")
        self.assertEqual(code, 200, hist)
        self.assertIn(xid, [r["_id"] for r in hist["data"]])
        code, one, _ = self.call("/api/engines/executions/" + xid, "a")
        self.assertEqual((code, one["_id"], one["workspaceId"]), (200, xid, "ws-a"))
        code, res, _ = self.call("/api/engines/executions/%s/results" % xid, "a")
        self.assertEqual(code, 200, res)
        self.assertEqual((res["executionId"], res["outputData"]["echo"]), (xid, "sync-run"))
        code, cost, _ = self.call("/api/engines/executions/%s/cost" % xid, "a")
        self.assertEqual(code, 200, cost)
        self.assertEqual((cost["executionId"], cost["totals"]["calls"]), (xid, 0))
        # Ended: cancelling it is a conflict.
        self.assert_error(self.call("/api/engines/executions/%s/cancel" % xid, "a", "POST"),
                          409, "EE_ESTATE")

    def test_execute_async_202(self):
        code, body, hdrs = self.call("/api/engines/execute/" + self.wf, "a", "POST",
                                     {"parameters": {"text": "async-run"}, "async": True})
        self.assertEqual(code, 202, body)
        xid = body["executionId"]
        self.assertEqual(hdrs["Location"], "/api/engines/executions/" + xid)
        rec = self.wait_ended(xid)
        self.assertEqual(rec["status"], "completed")
        code, res, _ = self.call("/api/engines/executions/%s/results" % xid, "a")
        self.assertEqual((code, res["outputData"]["echo"]), (200, "async-run"))

    def test_workflows_execute_route(self):
        code, body, _ = self.call("/api/engines/workflows/%s/execute" % self.wf, "b", "POST",
                                  {"parameters": {"text": "b-run"}, "async": True})
        self.assertEqual(code, 202, body)
        self.assertEqual(self.wait_ended(body["executionId"], "b")["status"], "completed")

    def test_workspace_isolation_404(self):
        code, rec, _ = self.run_sync(text="mine")
        self.assertEqual(code, 200, rec)
        xid = rec["_id"]
        for suffix in ("", "/results", "/cost"):
            self.assert_error(self.call("/api/engines/executions/" + xid + suffix, "b"), 404,
                              "EE_ENOTFOUND")
        self.assert_error(self.call("/api/engines/executions/%s/cancel" % xid, "b", "POST"),
                          404, "EE_ENOTFOUND")
        code, hist, _ = self.call("/api/engines/executions", "b")
        self.assertEqual(code, 200)
        self.assertNotIn(xid, [r["_id"] for r in hist["data"]])

    def test_execute_errors_400_404(self):
        self.assert_error(self.call("/api/engines/execute/" + "f" * 24, "a", "POST",
                                    {"parameters": {"text": "x"}}), 404, "EE_ENOTFOUND")
        self.assert_error(self.call("/api/engines/execute/" + self.wf, "a", "POST", "{nope"),
                          400, "EE_EPARSE")
        # Every 400 about a field names it the same way (docs/server.md,
        # Errors): "errors": [{"instancePath", "message", ...}].
        # The server's own check:
        err = self.assert_error(self.call("/api/engines/execute/" + self.wf, "a", "POST",
                                          {"parameters": {"text": "x"}, "async": "yes"}),
                                400, "EE_EINVAL")
        self.assert_field_errors(err, ["/async"])
        self.assertNotIn("violations", err)
        # The library's own refusal of the request: its message names the member.
        err = self.assert_error(self.call("/api/engines/execute/" + self.wf, "a", "POST",
                                          {"parameters": {"text": "x"}, "bogus": 1}), 400,
                                "EE_EINVAL")
        self.assertIn("bogus", err["message"])
        # The input schema's violations, with their JSON pointers.
        err = self.assert_error(self.call("/api/engines/execute/" + self.wf, "a", "POST",
                                          {"parameters": {"text": 5}}), 400, "EE_EVALIDATION")
        self.assert_field_errors(err, ["/text"])
        self.assertEqual((err["errors"][0]["keyword"], err["valid"]), ("type", False), err)

    def test_body_not_json_names_what_and_where(self):
        # The server's own parse of a body says why and at which byte
        # (never the text there); nesting past jansson's depth is 413.
        url = "/api/engines/execute/" + self.wf
        for body, code, status, words in (
                (b'{"parameters": {"text": "a"', 400, "EE_EPARSE", "at byte 27"),
                (b'{"parameters": {}, "parameters": {}}', 400, "EE_EPARSE", "duplicate"),
                (b'{"parameters": {"text": "\xff"}}', 400, "EE_EPARSE", "at byte"),
                (b'{"sk-or-v1-private": }', 400, "EE_EPARSE", "at byte"),
                (b'{"parameters": ' + b"[" * 100000 + b"]" * 100000 + b"}", 413, "EE_ETOOBIG",
                 "depth")):
            err = self.assert_error(self.call(url, "a", "POST", body), code, status)
            self.assertIn(words, err["message"], body[:40])
            self.assertNotIn("sk-or-v1-private", err["message"])

    def test_body_with_nul_byte_400(self):
        # A body reaches the library as C text: what follows a NUL byte
        # would be ignored, so a body holding one is refused, and nothing
        # is stored.
        code, before, _ = self.call("/api/engines/api-keys", "bill")
        self.assertEqual(code, 200, before)
        body = json.dumps({"keyName": "nul", "provider": "openrouter",
                           "apiKey": "sk-or-v1-" + "n" * 32}).encode() + b"\x00{garbage"
        err = self.assert_error(self.call("/api/engines/api-keys", "bill", "POST", body), 400,
                                "EE_EPARSE")
        self.assertIn("NUL byte (at byte %d)" % (len(body) - len(b"\x00{garbage")),
                      err["message"])
        self.assertEqual(self.call("/api/engines/api-keys", "bill")[1], before)

    def test_encoded_nul_in_url_400(self):
        # libmicrohttpd decodes %00 into a C string: "<id>%00junk" would
        # reach the route as "<id>". Refused instead, path or query, and
        # a DELETE so refused deletes nothing.
        code, key, _ = self.call("/api/engines/api-keys", "bill", "POST", {
            "keyName": "nul-url", "provider": "openrouter", "apiKey": "sk-or-v1-" + "u" * 32})
        self.assertEqual(code, 201, key)
        self.addCleanup(self.call, "/api/engines/api-keys/" + key["id"], "bill", "DELETE")
        for path, method in (("/api/engines/api-keys/%s%%00junk" % key["id"], "DELETE"),
                             ("/api/engines/api-keys/%s%%00" % key["id"], "GET"),
                             ("/api/engines/executions?workflowId=%s%%00x" % self.wf, "GET"),
                             ("/api/engines/executions?limit%00=5", "GET")):
            err = self.assert_error(self.call(path, "bill", method), 400, "EE_EINVAL")
            self.assertIn("%00", err["message"])
        code, got, _ = self.call("/api/engines/api-keys/" + key["id"], "bill")
        self.assertEqual(code, 200, got)
        # the connection's next request is read anew; "%2500" is text
        self.assertEqual(self.call("/api/engines/catalog?q=%2500", "bill")[0], 200)

    def test_query_numbers_out_of_range_400(self):
        # An integer past int64 is passed on as text (refused by name), not
        # clamped; analytics bounds its range without overflowing (a UBSan
        # abort of the server before).
        for q, words in (("to=99999999999999999999", "integers"),
                         ("from=-1&to=9223372036854775807", "\"from\""),
                         ("to=9223372036854775807", "\"to\"")):
            err = self.assert_error(self.call("/api/admin/engines/usage?workspaceId=ws-a&" + q,
                                              "admin"), 400, "EE_EINVAL")
            self.assertIn(words, err["message"], q)
        self.assertEqual(self.call("/healthz")[0], 200)

    def assert_field_errors(self, err, pointers):
        """The documented shape of a 400 naming fields."""
        self.assertIsInstance(err.get("errors"), list, err)
        self.assertEqual([e["instancePath"] for e in err["errors"]], pointers, err)
        for e in err["errors"]:
            self.assertIsInstance(e["message"], str, err)
            self.assertTrue(e["message"], err)

    def test_rate_limit_429_retry_after(self):
        for _ in range(RATE_LIMIT + 2):
            code, body, hdrs = self.call("/api/engines/execute/" + self.wf, "rate", "POST",
                                         {"parameters": {"text": "r"}, "async": True})
            if code != 202:
                break
        err = self.assert_error((code, body, hdrs), 429, "EE_ERATELIMIT")
        self.assertGreater(int(hdrs["Retry-After"]), 0)
        self.assertIn("retryAfterMs", err)

    # ---- api keys ----------------------------------------------------------
    def test_api_keys(self):
        code, key, _ = self.call("/api/engines/api-keys", "a", "POST", {
            "keyName": "mine", "provider": "openrouter", "apiKey": CUSTOMER_KEY})
        self.assertEqual(code, 201, key)
        kid = key["id"]
        code, lst, _ = self.call("/api/engines/api-keys", "a")
        self.assertEqual(code, 200)
        self.assertIn(kid, [k["id"] for k in lst["keys"]])
        code, one, _ = self.call("/api/engines/api-keys/" + kid, "a")
        self.assertEqual((code, one["keyName"]), (200, "mine"))
        code, one, _ = self.call("/api/engines/api-keys/" + kid, "a", "PUT", {"keyName": "new"})
        self.assertEqual((code, one["keyName"]), (200, "new"))
        # OPENROUTER_API_URL is the fake n8n, which answers 404 there: the
        # outcome is unknown (503), never "invalid".
        self.assert_error(self.call("/api/engines/api-keys/%s/validate" % kid, "a", "POST"),
                          503, "EE_EUNKNOWN")
        # Another workspace's key is not found.
        self.assert_error(self.call("/api/engines/api-keys/" + kid, "b"), 404, "EE_ENOTFOUND")
        self.assert_error(self.call("/api/engines/api-keys/" + kid, "b", "DELETE"), 404,
                          "EE_ENOTFOUND")
        self.assert_error(self.call("/api/engines/api-keys", "a", "POST", {"keyName": "x"}),
                          400, "EE_EINVAL")
        code, _, _ = self.call("/api/engines/api-keys/" + kid, "a", "DELETE")
        self.assertEqual(code, 200)
        self.assert_error(self.call("/api/engines/api-keys/" + kid, "a"), 404, "EE_ENOTFOUND")

    # ---- usage, quota, credentials (seed 004) ------------------------------------
    def test_usage_current(self):
        for path in ("/api/engines/usage/current", "/api/v1/usage/current"):
            code, body, _ = self.call(path, "a")
            self.assertEqual(code, 200, body)
            self.assertEqual(body["orgId"], "org-a")
            self.assertIn("limit", body["predictions"])
            self.assertIn("limit", body["storage"])

    # ---- billing, usage history, analytics, audit (#14's calls) ------------------
    def test_billing_and_usage(self):
        code, rec, _ = self.run_sync("bill", text="billed")
        self.assertEqual(code, 200, rec)
        code, cur, _ = self.call("/api/engines/billing/current", "bill")
        self.assertEqual(code, 200, cur)
        self.assertEqual((cur["workspaceId"], cur["billingStatus"]), ("ws-bill", "pending"))
        self.assertGreaterEqual(cur["usage"]["totalExecutions"], 1)
        self.assertIn(self.wf, [w["workflowId"] for w in cur["usage"]["byWorkflow"]])
        code, month, _ = self.call("/api/engines/billing/months/" + cur["month"], "bill")
        self.assertEqual((code, month["month"]), (200, cur["month"]), month)
        code, hist, _ = self.call("/api/engines/billing/history?status=pending&limit=5", "bill")
        self.assertEqual(code, 200, hist)
        self.assertIn(cur["month"], [r["month"] for r in hist["data"]])
        self.assert_error(self.call("/api/engines/billing/history?limit=0", "bill"), 400,
                          "EE_EINVAL")
        self.assert_error(self.call("/api/engines/billing/months/2020-13", "bill"), 400,
                          "EE_EINVAL")
        code, usage, _ = self.call("/api/engines/usage/history?period=" + cur["month"], "bill")
        self.assertEqual(code, 200, usage)
        rows = [r for r in usage["data"] if r["workflowCatalogId"] == self.wf]
        self.assertEqual([r["userId"] for r in rows], ["u-bill"], usage)
        self.assertGreaterEqual(rows[0]["totalExecutions"], 1)
        # all time: the same user x workflow, at least this month's runs
        code, ever, _ = self.call("/api/engines/usage/history?period=all", "bill")
        self.assertEqual(code, 200, ever)
        self.assertEqual(ever["period"], "all")
        [row] = [r for r in ever["data"] if r["workflowCatalogId"] == self.wf]
        self.assertEqual((row["userId"], row["period"]), ("u-bill", "all"), ever)
        self.assertGreaterEqual(row["totalExecutions"], rows[0]["totalExecutions"])
        code, now, _ = self.call("/api/engines/usage/current", "bill")
        self.assertEqual(code, 200, now)
        self.assertIn(self.wf, [r["workflowCatalogId"] for r in now["workflowUsage"]["data"]])
        self.assert_error(self.call("/api/engines/usage/history?period=nope", "bill"), 400,
                          "EE_EINVAL")

    def test_billing_and_usage_isolated(self):
        code, before, _ = self.call("/api/engines/billing/current", "b")
        self.assertEqual(code, 200, before)
        code, rec, _ = self.run_sync("bill", text="only-bill")
        self.assertEqual(code, 200, rec)
        code, cur, _ = self.call("/api/engines/billing/current", "b")
        self.assertEqual(code, 200, cur)
        self.assertEqual(cur["workspaceId"], "ws-b")
        self.assertEqual(cur["usage"]["totalExecutions"], before["usage"]["totalExecutions"])
        code, usage, _ = self.call("/api/engines/usage/history", "b")
        self.assertEqual(code, 200, usage)
        self.assertEqual([r for r in usage["data"] if r["userId"] == "u-bill"], [])
        # Another user's rows: the library scopes to the workspace, so none.
        code, usage, _ = self.call("/api/engines/usage/history?userId=u-bill", "b")
        self.assertEqual((code, usage["data"]), (200, []), usage)
        code, hist, _ = self.call("/api/engines/billing/history", "b")
        self.assertEqual(code, 200, hist)
        self.assertEqual({r["workspaceId"] for r in hist["data"]} - {"ws-b"}, set())

    def test_admin_billing_months(self):
        base = "/api/admin/engines/billing/"
        ws = "?workspaceId=ws-bill"
        # A month that has ended: close, export, mark paid; both repeat as no-ops.
        code, body, _ = self.call(base + "2020-01/close" + ws, "admin", "POST")
        self.assertEqual(code, 200, body)
        self.assertEqual((body["changed"], body["billing"]["billingStatus"]), (True, "billed"))
        code, body, _ = self.call(base + "2020-01/close" + ws, "admin", "POST")
        self.assertEqual((code, body["changed"]), (200, False), body)
        code, doc, _ = self.call(base + "2020-01/export" + ws, "admin")
        self.assertEqual(code, 200, doc)
        self.assertEqual((doc["workspaceId"], doc["month"], doc["currency"]),
                         ("ws-bill", "2020-01", "USD"))
        code, csv, hdrs = self.call(base + "2020-01/export" + ws + "&format=csv", "admin")
        self.assertEqual(code, 200, csv)
        self.assertTrue(hdrs["Content-Type"].startswith("text/csv"), hdrs["Content-Type"])
        self.assertTrue(csv.startswith("workspaceId,month,billingStatus,workflowId,"), csv)
        self.assertIn("attachment", hdrs["Content-Disposition"])
        self.assert_error(self.call(base + "2020-01/export" + ws + "&format=xml", "admin"), 400,
                          "EE_EINVAL")
        code, body, _ = self.call(base + "2020-01/paid" + ws, "admin", "POST")
        self.assertEqual((code, body["billing"]["billingStatus"]), (200, "paid"), body)
        code, body, _ = self.call(base + "2020-01/paid" + ws, "admin", "POST")
        self.assertEqual((code, body["changed"]), (200, False), body)
        code, hist, _ = self.call("/api/admin/engines/billing" + ws + "&status=paid", "admin")
        self.assertEqual(code, 200, hist)
        self.assertEqual([r["month"] for r in hist["data"]], ["2020-01"])
        # Errors: the current month has not ended (409), no record (404),
        # a pending month cannot be exported (409), bad month (400), no
        # workspace (400 with a pointer), the reserved workspace (400).
        code, cur, _ = self.call("/api/engines/billing/current", "bill")
        self.assert_error(self.call(base + cur["month"] + "/close" + ws, "admin", "POST"),
                          409, "EE_ESTATE")
        self.assert_error(self.call(base + "2019-01/paid" + ws, "admin", "POST"), 404,
                          "EE_ENOTFOUND")
        self.assert_error(self.call(base + "2019-01/export" + ws, "admin"), 404,
                          "EE_ENOTFOUND")
        self.run_sync("bill", text="pending-month")
        self.assert_error(self.call(base + cur["month"] + "/export" + ws, "admin"), 409,
                          "EE_ESTATE")
        self.assert_error(self.call(base + "2020-13/close" + ws, "admin", "POST"), 400,
                          "EE_EINVAL")
        err = self.assert_error(self.call(base + "2020-02/close", "admin", "POST"), 400,
                                "EE_EINVAL")
        self.assert_field_errors(err, ["/workspaceId"])
        self.assert_error(self.call(base + "2020-02/close?workspaceId=platform", "admin",
                                    "POST"), 400, "EE_EINVAL")
        # Closing ws-bill's month left ws-b's untouched.
        code, hist, _ = self.call("/api/engines/billing/history", "b")
        self.assertNotIn("2020-01", [r["month"] for r in hist["data"]])

    def test_admin_usage_analytics(self):
        code, rec, _ = self.run_sync("bill", text="analytics")
        self.assertEqual(code, 200, rec)
        code, body, _ = self.call("/api/admin/engines/usage?workspaceId=ws-bill&granularity=day",
                                  "admin")
        self.assertEqual(code, 200, body)
        self.assertGreaterEqual(body["totalExecutions"], 1)
        self.assertIn(self.wf, [w["workflowId"] for w in body["topWorkflows"]])
        code, other, _ = self.call("/api/admin/engines/usage?workspaceId=ws-none", "admin")
        self.assertEqual((code, other["totalExecutions"]), (200, 0), other)
        self.assert_error(self.call("/api/admin/engines/usage?workspaceId=ws-bill&granularity=hour",
                                    "admin"), 400, "EE_EINVAL")
        self.assert_error(self.call("/api/admin/engines/usage?workspaceId=ws-bill&from=10&to=5",
                                    "admin"), 400, "EE_EINVAL")

    def test_admin_audit(self):
        code, key, _ = self.call("/api/engines/api-keys", "bill", "POST", {
            "keyName": "audited", "provider": "openrouter", "apiKey": CUSTOMER_KEY})
        self.assertEqual(code, 201, key)
        code, _, _ = self.call("/api/engines/api-keys/" + key["id"], "bill", "DELETE")
        self.assertEqual(code, 200)
        code, page, _ = self.call("/api/admin/engines/audit?workspaceId=ws-bill"
                                  "&action=credentials.key.&limit=500", "admin")
        self.assertEqual(code, 200, page)
        self.assertTrue(page["data"], page)
        self.assertEqual({e["workspaceId"] for e in page["data"]}, {"ws-bill"})
        self.assertTrue(all(e["action"].startswith("credentials.key.") for e in page["data"]))
        # Pages of one entry follow nextCursor.
        code, first, _ = self.call("/api/admin/engines/audit?workspaceId=ws-bill&limit=1", "admin")
        self.assertEqual((code, len(first["data"])), (200, 1), first)
        self.assertIsNotNone(first["nextCursor"])
        code, second, _ = self.call("/api/admin/engines/audit?workspaceId=ws-bill&limit=1&cursor="
                                    + urllib.parse.quote(first["nextCursor"]), "admin")
        self.assertEqual(code, 200, second)
        self.assertNotEqual(first["data"][0]["id"], second["data"][0]["id"])
        # A time range: nothing before 1970 + 1 s.
        code, none, _ = self.call("/api/admin/engines/audit?workspaceId=ws-bill&from=0&to=1000",
                                  "admin")
        self.assertEqual((code, none["data"]), (200, []), none)
        # Without a workspace: the platform's own entries (the catalog sync).
        code, plat, _ = self.call("/api/admin/engines/audit", "admin")
        self.assertEqual(code, 200, plat)
        self.assertTrue(plat["data"], plat)
        self.assertEqual({e["workspaceId"] for e in plat["data"]}, {"platform"})
        self.assert_error(self.call("/api/admin/engines/audit?limit=0", "admin"), 400,
                          "EE_EINVAL")
        self.assert_error(self.call("/api/admin/engines/audit?workspaceId=ws-bill&cursor=bogus",
                                    "admin"), 400, "EE_EINVAL")

    def test_quota_check(self):
        code, body, _ = self.call("/api/v1/quota/check", "a", "POST", {"orgId": "org-a"})
        self.assertEqual(code, 200, body)
        self.assertIs(body["allowed"], True)
        self.assert_error(self.call("/api/v1/quota/check", "a", "POST", {"orgId": "org-b"}),
                          404, "EE_ENOTFOUND")
        self.assert_error(self.call("/api/v1/quota/check", "a", "POST", "[1]"), 400,
                          "EE_EINVAL")

    def test_v1_bodies_name_a_member_of_the_wrong_type(self):
        # {"orgId": 5} was taken as no orgId (the token's organisation
        # answered), {"workspaceId": 5} as no workspace: a 400 naming it.
        for path, body, pointer in (
                ("/api/v1/quota/check", {"orgId": 5}, "/orgId"),
                ("/api/v1/quota/check", {"orgId": None}, "/orgId"),
                ("/api/v1/copilot/validate-credentials", {"workspaceId": 5, "nodeNames": ["x"]},
                 "/workspaceId")):
            err = self.assert_error(self.call(path, "a", "POST", body), 400, "EE_EINVAL")
            self.assert_field_errors(err, [pointer])

    def test_credentials(self):
        code, body, _ = self.call("/api/v1/credentials?workspaceId=platform", "a")
        self.assertEqual(code, 200, body)
        self.assertIsInstance(body["credentials"], list)
        code, body, _ = self.call("/api/v1/credentials?workspaceId=ws-a", "a")
        self.assertEqual(code, 200, body)
        self.assert_error(self.call("/api/v1/credentials?workspaceId=ws-b", "a"), 404,
                          "EE_ENOTFOUND")

    def test_copilot_validate_credentials(self):
        code, body, _ = self.call("/api/v1/copilot/validate-credentials", "a", "POST",
                                  {"nodeNames": ["serper", "gmail"], "workspaceId": "ws-a"})
        self.assertEqual(code, 200, body)
        self.assertIn("credential:gmailOAuth2", [g["field"] for g in body["gaps"]])
        self.assert_error(self.call("/api/v1/copilot/validate-credentials", "a", "POST",
                                    {"nodeNames": ["serper"], "workspaceId": "ws-b"}), 404,
                          "EE_ENOTFOUND")

    # ---- admin ----------------------------------------------------------------
    def test_admin_routes_need_admin(self):
        for method, path in (("GET", "/api/admin/engines/workflows"),
                             ("GET", "/api/admin/engines/workflows/" + self.wf),
                             ("PUT", "/api/admin/engines/workflows/" + self.wf),
                             ("GET", "/api/admin/engines/categories"),
                             ("POST", "/api/admin/engines/categories"),
                             ("GET", "/api/admin/engines/usage?workspaceId=ws-a"),
                             ("GET", "/api/admin/engines/billing?workspaceId=ws-a"),
                             ("POST", "/api/admin/engines/billing/2020-01/close?workspaceId=ws-a"),
                             ("POST", "/api/admin/engines/billing/2020-01/paid?workspaceId=ws-a"),
                             ("GET", "/api/admin/engines/billing/2020-01/export?workspaceId=ws-a"),
                             ("GET", "/api/admin/engines/audit"),
                             ("GET", "/api/engines/sync-workflows"),
                             ("POST", "/api/engines/sync-workflows"),
                             ("GET", "/metrics")):
            self.assert_error(self.call(path, "a", method, {} if method != "GET" else None),
                              403, "EE_EPERM")

    def test_sync_workflows_post(self):
        # POST as well as GET: the catalog is already in step with n8n.
        code, report, _ = self.call("/api/engines/sync-workflows", "admin", "POST")
        self.assertEqual(code, 200, report)
        self.assertEqual((report["added"], report["unchanged"]), ([], 1), report)
        code, body, _ = self.call("/api/admin/engines/workflows/" + self.wf, "admin")
        self.assertEqual((code, body["id"]), (200, self.wf), body)

    def test_admin_routes(self):
        code, body, _ = self.call("/api/admin/engines/workflows", "admin")
        self.assertEqual(code, 200, body)
        self.assertIn("access", body["data"][0])  # the admin's view
        code, body, _ = self.call("/api/admin/engines/workflows/" + self.wf, "admin")
        self.assertEqual((code, body["id"]), (200, self.wf))
        code, cat, _ = self.call("/api/admin/engines/categories", "admin", "POST",
                                 {"name": "Server tests"})
        self.assertEqual(code, 201, cat)
        code, cats, _ = self.call("/api/admin/engines/categories", "admin")
        self.assertIn("Server tests", [c["name"] for c in cats["data"]])
        self.assert_error(self.call("/api/admin/engines/categories", "admin", "POST",
                                    {"name": "Server tests"}), 409, "EE_EEXISTS")
        self.assert_error(self.call("/api/admin/engines/workflows/" + "f" * 24, "admin"), 404,
                          "EE_ENOTFOUND")

    def test_metrics(self):
        self.run_sync(text="for-metrics")
        self.call("/api/engines/catalog", "a")
        # A provider name that needs escaping in a label value.
        self.call("/gateway/we%22ird%5Cpro%0Avider/x", None, "POST", {},
                  {"Authorization": "Bearer nope"})
        code, text, hdrs = self.call("/metrics", "admin")
        self.assertEqual(code, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain"))
        fams = parse_exposition(self, text)
        samples = {}
        for fam in fams.values():
            for name, labels, value in fam["samples"]:
                samples[(name, tuple(sorted(labels.items())))] = value
        self.assertIn(("execengine_executions", (("status", "pending"),)), samples)
        self.assertIn(("execengine_executions", (("status", "running"),)), samples)
        self.assertGreaterEqual(samples[("execengine_server_answers_total", (("code", "200"),))], 1)
        self.assertGreaterEqual(
            samples[("execengine_server_execute_total", (("outcome", "completed"),))], 1)
        self.assertGreaterEqual(samples[("execengine_audit_entries_total",
                                         (("result", "appended"),))], 1)
        self.assertEqual(fams["execengine_server_request_duration_seconds"]["type"], "histogram")
        self.assertEqual(fams["execengine_server_gateway_requests_total"]["type"], "counter")
        providers = [labels["provider"] for _, labels, _ in
                     fams["execengine_server_gateway_requests_total"]["samples"]]
        self.assertIn('we"ird\\pro\nvider', providers)
        # Histograms: buckets cumulative, +Inf equals _count, one per family.
        for family in ("catalog", "execute", "healthz"):
            buckets = [(labels["le"], v) for n, labels, v in
                       fams["execengine_server_request_duration_seconds"]["samples"]
                       if n.endswith("_bucket") and labels["family"] == family]
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values), family)
            self.assertEqual(buckets[-1][0], "+Inf")
            count = samples[("execengine_server_request_duration_seconds_count",
                             (("family", family),))]
            self.assertEqual(buckets[-1][1], count)
        self.assertGreaterEqual(samples[("execengine_server_request_duration_seconds_count",
                                         (("family", "catalog"),))], 1)
        # The library's own counts: executions by final status, admissions,
        # the gateway's providers (every one of gateway.json, bounded).
        self.assertGreaterEqual(samples[("execengine_executions_ended_total",
                                         (("status", "completed"),))], 1)
        self.assertGreaterEqual(samples[("execengine_executions_submitted_total", ())],
                                samples[("execengine_executions_ended_total",
                                         (("status", "completed"),))])
        self.assertGreaterEqual(samples[("execengine_quota_admissions_total", ())], 1)
        self.assertEqual(fams["execengine_quota_refusals_total"]["type"], "counter")
        self.assertEqual({l["reason"] for _, l, _ in
                          fams["execengine_quota_refusals_total"]["samples"]},
                         {"predictions", "rate", "concurrency", "concurrencyGlobal", "spend"})
        self.assertEqual(fams["execengine_execution_duration_seconds"]["type"], "histogram")
        done = [(l["le"], v) for n, l, v in fams["execengine_execution_duration_seconds"]["samples"]
                if n.endswith("_bucket") and l["status"] == "completed"]
        self.assertEqual([v for _, v in done], sorted(v for _, v in done))
        self.assertEqual(done[-1], ("+Inf", samples[("execengine_execution_duration_seconds_count",
                                                     (("status", "completed"),))]))
        gw = {l["provider"] for _, l, _ in fams["execengine_gateway_calls_total"]["samples"]}
        self.assertIn("openrouter", gw)
        self.assertNotIn('we"ird\\pro\nvider', gw, "providers come from gateway.json only")
        for fam in ("execengine_gateway_cost_usd_total", "execengine_gateway_tokens_total",
                    "execengine_gateway_budget_refusals_total"):
            self.assertEqual(fams[fam]["type"], "counter", fam)
        self.assertEqual(fams["execengine_gateway_upstream_duration_seconds"]["type"],
                         "histogram")

    # ---- the gateway and the completion callback ---------------------------------
    def test_gateway_refuses_unknown_token(self):
        code, body, _ = self.call("/gateway/openrouter/api/v1/chat/completions", None, "POST",
                                  {"model": "x"}, {"Authorization": "Bearer nope"})
        self.assertEqual(code, 401, body)
        self.assertEqual(body["error"]["status"], "EE_EAUTH")

    def test_callback(self):
        code, rec, _ = self.run_sync(text="cb")
        self.assertEqual(code, 200, rec)
        xid = rec["_id"]
        body = json.dumps({"executionId": xid, "workspaceId": "ws-a", "status": "completed",
                           "output": {"late": True}})
        ts = str(int(time.time()))
        key = hmac.new(CALLBACK_SECRET.encode(), ("ee-callback-v1:" + xid).encode(),
                       hashlib.sha256).hexdigest()
        sig = "v1=" + hmac.new(key.encode(), (ts + "." + body).encode(),
                               hashlib.sha256).hexdigest()
        # Wrong signature: 401; the right one for an ended run: applied once, no change.
        self.assert_error(self.call("/_ee/callback", None, "POST", body, {
            "X-EE-Timestamp": ts, "X-EE-Signature": "v1=" + "0" * 64}), 401, "EE_EAUTH")
        code, out, _ = self.call("/_ee/callback", None, "POST", body, {
            "X-EE-Timestamp": ts, "X-EE-Signature": sig})
        self.assertEqual(code, 200, out)
        self.assertEqual(out["executionId"], xid)
        # a malformed body with the headers: the library's 400; without them
        # the server's 401 from the head (the body is never read)
        self.assert_error(self.call("/_ee/callback", None, "POST", "{}", {
            "X-EE-Timestamp": ts, "X-EE-Signature": sig}), 400, "EE_EINVAL")
        self.assert_error(self.call("/_ee/callback", None, "POST", "{}"), 401, "EE_EAUTH")


class OwnServerTest(unittest.TestCase):
    """Error codes that need a server of their own (its configuration or a
    catalog change would disturb the other tests)."""

    def synced(self, extra=None):
        env = {"N8N_BASE_URL": N8N.url, "N8N_API_KEY": N8N_KEY}
        env.update(extra or {})
        srv = Server([TOKENS["admin"], TOKENS["a"]], env)
        self.addCleanup(lambda: self.assertEqual(srv.stop(), 0))
        code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                  TOKENS["admin"]["token"])
        self.assertEqual(code, 200, report)
        return srv, report["added"][0]["id"]

    def test_metrics_count_refusals(self):
        srv, wf = self.synced({"MAX_EXECUTIONS_PER_USER_PER_HOUR": "1"})
        for _ in range(2):
            code, body, hdrs = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                       {"parameters": {}, "async": True})
        self.assertEqual(code, 429, body)
        code, text, _ = request(srv.port, "/metrics", TOKENS["admin"]["token"])
        self.assertEqual(code, 200)
        fams = parse_exposition(self, text)
        refusals = fams["execengine_server_refusals_total"]["samples"]
        self.assertEqual([(l["status"], v) for _, l, v in refusals], [("EE_ERATELIMIT", 1)])
        outcomes = {l["outcome"]: v for _, l, v in
                    fams["execengine_server_execute_total"]["samples"]}
        self.assertEqual(outcomes, {"accepted": 1, "EE_ERATELIMIT": 1})
        # the quota module's own count of the same: one admitted, one refused for the rate
        samples = {(n, tuple(sorted(l.items()))): v for fam in fams.values()
                   for n, l, v in fam["samples"]}
        self.assertEqual(samples[("execengine_quota_admissions_total", ())], 1)
        self.assertEqual(samples[("execengine_quota_refusals_total", (("reason", "rate"),))], 1)
        self.assertEqual(samples[("execengine_quota_refusals_total",
                                  (("reason", "predictions"),))], 0)
        self.assertEqual(samples[("execengine_executions_submitted_total", ())], 1)

    def test_metrics_labels_bounded(self):
        # Providers come from the path: past 63 distinct ones they count as
        # "other", so a client cannot grow the exposition.
        srv, _ = self.synced()
        for i in range(80):
            request(srv.port, "/gateway/p%d/x" % i, None, "POST", {},
                    {"Authorization": "Bearer nope"})
        code, text, _ = request(srv.port, "/metrics", TOKENS["admin"]["token"])
        self.assertEqual(code, 200)
        rows = parse_exposition(self, text)["execengine_server_gateway_requests_total"]["samples"]
        self.assertLessEqual(len(rows), 64)
        counts = {(l["provider"], l["code"]): v for _, l, v in rows}
        self.assertEqual(sum(counts.values()), 80)
        self.assertEqual(counts[("other", "other")], 80 - 63)

    def test_sync_runs_hold_no_worker(self):
        # More synchronous runs waiting for n8n than the server has pool
        # threads: the server still answers other requests.
        runs = 12
        srv, wf = self.synced({"MAX_CONCURRENT_EXECUTIONS": "20"})
        before = set(N8N.counts())
        N8N.config(delayMs=15000)
        results = []

        def run(i):
            results.append(request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                   {"parameters": {"text": "slow-%d" % i}}, timeout=120))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
        try:
            for t in threads:
                t.start()
            for _ in range(1200):  # until every run reached n8n
                if len(set(N8N.counts()) - before) == runs:
                    break
                time.sleep(0.05)
            self.assertEqual(len(set(N8N.counts()) - before), runs)
            self.assertEqual(request(srv.port, "/healthz", timeout=10)[0], 200)
            code, hist, _ = request(srv.port, "/api/engines/executions?status=running", CANARY,
                                    timeout=10)
            self.assertEqual(code, 200, hist)
            self.assertEqual(len(hist["data"]), runs)
        finally:
            N8N.config(delayMs=0)
            for t in threads:
                t.join(timeout=120)
        self.assertEqual(sorted(r[0] for r in results), [200] * runs)
        self.assertEqual(sorted(r[1]["outputData"]["echo"] for r in results),
                         sorted("slow-%d" % i for i in range(runs)))

    # ---- upstreams: a fake n8n with the LLM workflow, a fake OpenRouter ----
    def data_dir(self, openrouter_url=None, free_plan=None):
        """data/ copied for one server: the openrouter provider's base URL
        the fake's, the free plan's members replaced by free_plan."""
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        data = os.path.join(tmp, "data")
        shutil.copytree(DATA_DIR, data)
        if openrouter_url:
            path = os.path.join(data, "gateway.json")
            with open(path) as f:
                doc = json.load(f)
            for p in doc["providers"]:
                if p["provider"] == "openrouter":
                    p["baseUrl"] = openrouter_url
            with open(path, "w") as f:
                json.dump(doc, f)
        if free_plan:
            path = os.path.join(data, "plans.json")
            with open(path) as f:
                doc = json.load(f)
            for p in doc["plans"]:
                if p["name"] == "free":
                    p.update(free_plan)
            with open(path, "w") as f:
                json.dump(doc, f)
        return data

    def upstreams(self, extra=None, store=None):
        """A server of its own with a fake n8n that has the LLM workflow
        (which calls the gateway) and a fake OpenRouter behind both the
        gateway's openrouter provider and key validation (OPENROUTER_API_URL);
        user a has stored CUSTOMER_KEY, the only OpenRouter key (the platform
        has none). Returns (server, n8n, openrouter, {workflow name: catalog
        id}, the key's id)."""
        n8n = FakeN8n("--llm")
        self.addCleanup(n8n.stop)
        orr = FakeN8n(script=FAKE_OPENROUTER)
        self.addCleanup(orr.stop)
        env = {"N8N_BASE_URL": n8n.url, "N8N_API_KEY": N8N_KEY,
               "OPENROUTER_API_URL": orr.url + "/valid", "EE_DATA_DIR": self.data_dir(orr.url)}
        env.update(extra or {})
        self.upstream_env = env
        srv = Server([TOKENS["admin"], TOKENS["a"]], env, store=store)
        self.addCleanup(lambda: self.assertEqual(srv.stop(), 0))
        code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                  TOKENS["admin"]["token"], "POST")
        self.assertEqual(code, 200, report)
        ids = {a["name"]: a["id"] for a in report["added"]}
        self.assertEqual(set(ids), {"Hosts echo", "LLM summary"}, report)
        code, key, _ = request(srv.port, "/api/engines/api-keys", CANARY, "POST", {
            "keyName": "k", "provider": "openrouter", "apiKey": CUSTOMER_KEY})
        self.assertEqual(code, 201, key)
        return srv, n8n, orr, ids, key["id"]

    def assert_prompt(self, srv):
        """/healthz and a catalog page answer at once."""
        t = time.monotonic()
        self.assertEqual(request(srv.port, "/healthz", timeout=3)[0], 200)
        code, body, _ = request(srv.port, "/api/engines/catalog", CANARY, timeout=3)
        self.assertEqual(code, 200, body)
        self.assertLess(time.monotonic() - t, 2.0)

    def slow_calls(self, srv, calls, reached, release):
        """Start every call of `calls` (functions) at once, wait until
        reached() says each is waiting on its upstream, check that the
        server answers others at once, then release() the upstream and
        return the calls' answers."""
        results = [None] * len(calls)

        def run(i):
            results[i] = calls[i]()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        try:
            for t in threads:
                t.start()
            for _ in range(600):
                if reached() >= len(calls):
                    break
                time.sleep(0.05)
            self.assertEqual(reached(), len(calls), "the calls did not all reach the upstream")
            self.assert_prompt(srv)
        finally:
            release()
            for t in threads:
                t.join(timeout=120)
        return results

    def test_slow_upstream_calls_hold_no_worker(self):
        # More calls waiting on a stalled upstream than the server has pool
        # threads (4), for each route that waits on one: key validation
        # (OpenRouter), the gateway (every provider call of a workflow) and
        # the catalog sync (n8n). /healthz and the catalog answer at once
        # meanwhile, and every slow call gets its own answer.
        n = 6
        srv, n8n, orr, ids, key = self.upstreams({"MAX_CONCURRENT_EXECUTIONS": "20"})
        orr.config(delayMs=5000)
        validate = "/api/engines/api-keys/%s/validate" % key
        results = self.slow_calls(
            srv, [lambda: request(srv.port, validate, CANARY, "POST", timeout=120)] * n,
            lambda: len(orr.requests("/valid/key")), lambda: orr.config(delayMs=0))
        self.assertEqual([(r[0], r[1]["status"]) for r in results], [(200, "valid")] * n,
                         results)
        # Runs of the LLM workflow, each calling the gateway, which waits on
        # OpenRouter (the runs' own threads are not the pool's: the gateway
        # calls are what would hold it).
        orr.config(delayMs=5000)
        results = self.slow_calls(
            srv, [lambda i=i: request(srv.port, "/api/engines/execute/" + ids["LLM summary"],
                                      CANARY, "POST", {"parameters": {"text": "slow %d" % i},
                                                       "useCustomApiKey": True, "apiKeyId": key},
                                      timeout=120) for i in range(n)],
            lambda: len(orr.requests("/chat/completions")), lambda: orr.config(delayMs=0))
        self.assertEqual([(r[0], r[1]["status"]) for r in results], [(200, "completed")] * n,
                         results)
        self.assertEqual(sorted(r[1]["outputData"]["summary"] for r in results),
                         sorted("Summary: slow %d" % i for i in range(n)))
        # Catalog syncs waiting on n8n. The library runs one sync at a time:
        # the first waits on n8n, the others wait for it.
        n8n.config(delayMs=5000)
        before = len(n8n.requests("/api/v1/workflows"))

        def syncs_reached():
            if len(n8n.requests("/api/v1/workflows")) == before:
                return 0
            time.sleep(1.0)  # the others reach the server meanwhile
            return n

        results = self.slow_calls(
            srv, [lambda: request(srv.port, "/api/engines/sync-workflows",
                                  TOKENS["admin"]["token"], "POST", timeout=120)] * n,
            syncs_reached, lambda: n8n.config(delayMs=0))
        self.assertEqual([r[0] for r in results], [200] * n, results)

    def test_waiting_calls_bounded_503(self):
        # EE_SERVER_MAX_CALLS=2: two runs of the LLM workflow wait on n8n,
        # and their two gateway calls on a stalled OpenRouter. The gateway
        # calls have a bound of their own, so the runs filling theirs do not
        # keep their workflows' calls out. Further requests that would wait
        # (a validation, a synchronous run; a gateway call) are refused with
        # 503 and Retry-After, not run on a pool thread; other routes still
        # answer, and the two runs complete.
        srv, _, orr, ids, key = self.upstreams({"EE_SERVER_MAX_CALLS": "2",
                                                "MAX_CONCURRENT_EXECUTIONS": "20"})
        validate = "/api/engines/api-keys/%s/validate" % key
        orr.config(delayMs=4000)
        held = []
        threads = [threading.Thread(target=lambda i=i: held.append(request(
            srv.port, "/api/engines/execute/" + ids["LLM summary"], CANARY, "POST",
            {"parameters": {"text": "held %d" % i}, "useCustomApiKey": True, "apiKeyId": key},
            timeout=120))) for i in range(2)]
        for t in threads:
            t.start()
        try:
            for _ in range(600):
                if len(orr.requests("/chat/completions")) >= 2:
                    break
                time.sleep(0.05)
            self.assertEqual(len(orr.requests("/chat/completions")), 2)
            refused = [
                request(srv.port, validate, CANARY, "POST", timeout=3),
                request(srv.port, "/api/engines/execute/" + ids["Hosts echo"], CANARY, "POST",
                        {"parameters": {}}, timeout=3),
                # with a token (a call without one is refused from its head)
                request(srv.port, "/gateway/openrouter/api/v1/models", "eeg_not-a-run-token",
                        "GET", timeout=3)]
            self.assert_prompt(srv)
        finally:
            orr.config(delayMs=0)
            for t in threads:
                t.join(timeout=120)
        for code, body, hdrs in refused:
            self.assertEqual((code, body["error"]["status"]), (503, "EE_EBUSY"), body)
            self.assertEqual(hdrs["Retry-After"], "1")
        self.assertEqual(sorted((r[0], r[1]["status"], r[1]["outputData"]["summary"])
                                for r in held),
                         [(200, "completed", "Summary: held %d" % i) for i in range(2)], held)
        self.assertEqual(orr.requests("/valid/key"), [], "the refused validation went out")
        # The slots are free again: the same calls go through.
        code, body, _ = request(srv.port, validate, CANARY, "POST")
        self.assertEqual((code, body["status"]), (200, "valid"), body)
        code, rec, _ = request(srv.port, "/api/engines/execute/" + ids["Hosts echo"], CANARY,
                               "POST", {"parameters": {}})
        self.assertEqual((code, rec["status"]), (200, "completed"), rec)
        self.assertEqual(request(srv.port, "/gateway/openrouter/api/v1/models", None)[0], 401)

    def test_gateway_call_metered(self):
        # A workflow run that calls OpenRouter through the server's gateway
        # on the customer's own key: the provider gets that key (never the
        # run's token), the run completes with the provider's answer, its
        # cost lists the call, and /metrics counts the metered cost.
        srv, _, orr, ids, key = self.upstreams()
        code, rec, _ = request(srv.port, "/api/engines/execute/" + ids["LLM summary"], CANARY,
                               "POST", {"parameters": {"text": "the quick brown fox"},
                                        "useCustomApiKey": True, "apiKeyId": key})
        self.assertEqual(code, 200, rec)
        self.assertEqual(rec["status"], "completed", rec)
        self.assertEqual(rec["outputData"]["summary"], "Summary: the quick brown fox")
        [call] = orr.requests("/chat/completions")
        self.assertEqual(call["path"], "/api/v1/chat/completions")
        self.assertEqual(call["headers"]["authorization"], "Bearer " + CUSTOMER_KEY)
        code, cost, _ = request(srv.port, "/api/engines/executions/%s/cost" % rec["_id"], CANARY)
        self.assertEqual(code, 200, cost)
        self.assertEqual((cost["totals"]["calls"], cost["totals"]["tokens"],
                          cost["totals"]["cost"], cost["totals"]["costUsd"]),
                         (1, 59, 123000, "0.000123000"), cost)
        self.assertEqual(cost["apiKeyUsed"]["type"], "customer", cost)
        [c] = cost["calls"]
        self.assertEqual((c["provider"], c["status"], c["cost"], c["source"], c["totalTokens"]),
                         ("openrouter", 200, 123000, "customer", 59), cost)
        code, text, _ = request(srv.port, "/metrics", TOKENS["admin"]["token"])
        self.assertEqual(code, 200)
        samples = {(n, tuple(sorted(l.items()))): v
                   for fam in parse_exposition(self, text).values() for n, l, v in fam["samples"]}
        self.assertAlmostEqual(samples[("execengine_gateway_cost_usd_total",
                                        (("payer", "other"), ("provider", "openrouter")))],
                               0.000123, places=9)
        self.assertEqual(samples[("execengine_gateway_calls_total",
                                  (("class", "2xx"), ("provider", "openrouter")))], 1)
        self.assertEqual(samples[("execengine_server_gateway_requests_total",
                                  (("code", "200"), ("provider", "openrouter")))], 1)

    # ---- streamed gateway answers (SSE) ----------------------------------
    def held_run(self, srv, n8n, ids, key):
        """An asynchronous run of the LLM workflow held in its webhook (the
        fake n8n's holdLlm) before it calls the gateway: (execution id, the
        run's gateway token), for the test's own gateway calls. The caller
        releases n8n (holdLlm False) and waits for the run to end."""
        n8n.config(holdLlm=True)
        self.addCleanup(n8n.config, holdLlm=False)  # before the server stops
        code, rec, _ = request(srv.port, "/api/engines/execute/" + ids["LLM summary"], CANARY,
                               "POST", {"parameters": {"text": "held run"}, "async": True,
                                        "useCustomApiKey": True, "apiKeyId": key})
        self.assertEqual(code, 202, rec)
        for _ in range(600):
            gws = [g for g in raw_json(n8n.port, "/__gateways")["gateways"]
                   if g["executionId"] == rec["executionId"]]
            if gws:
                self.assertEqual(gws[0]["url"], "http://127.0.0.1:%d/gateway" % srv.port)
                return rec["executionId"], gws[0]["token"]
            time.sleep(0.05)
        self.fail("the run did not reach its webhook")

    def release_run(self, srv, n8n, xid):
        """Release the held run; its final record."""
        n8n.config(holdLlm=False)
        for _ in range(600):
            code, rec, _ = request(srv.port, "/api/engines/executions/" + xid, CANARY)
            self.assertEqual(code, 200, rec)
            if rec["status"] not in ("pending", "running"):
                return rec
            time.sleep(0.05)
        self.fail("execution %s did not end" % xid)

    class Stream:
        """A streamed gateway call on a socket of its own, read as it comes."""

        def __init__(self, port, token, text="one two three four", rcvbuf=None):
            body = json.dumps({"model": "openai/gpt-4o-mini", "stream": True,
                               "usage": {"include": True},
                               "messages": [{"role": "user", "content": text}]}).encode()
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:  # before connecting: the window the client offers
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(30)
            self.sock.connect(("127.0.0.1", port))
            self.sock.sendall(b"POST /gateway/openrouter/api/v1/chat/completions HTTP/1.1\r\n"
                              b"Host: 127.0.0.1\r\nAuthorization: Bearer " + token.encode() +
                              b"\r\nContent-Type: application/json\r\nContent-Length: " +
                              str(len(body)).encode() + b"\r\n\r\n" + body)
            self.raw = b""

        def read_until(self, what, timeout=20):
            """Read until `what` (bytes) is in what came; False at a timeout
            or the connection's end."""
            deadline = time.monotonic() + timeout
            buf = bytearray(self.raw)
            seen = 0  # `what` is not in buf[:seen] (a large stream is scanned once)
            try:
                while buf.find(what, seen) < 0:
                    seen = max(0, len(buf) - len(what) + 1)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.sock.settimeout(left)
                    try:
                        data = self.sock.recv(1 << 20)
                    except socket.timeout:
                        return False
                    if not data:
                        return False
                    buf += data
                return True
            finally:
                self.raw = bytes(buf)

        def head(self):
            return self.raw.split(b"\r\n\r\n", 1)[0].decode()

        def events(self):
            """The body, de-chunked, as its SSE data lines."""
            raw = self.raw
            at, parts = raw.index(b"\r\n\r\n") + 4, []
            while at < len(raw):
                eol = raw.index(b"\r\n", at)
                n = int(raw[at:eol], 16)
                if n == 0:
                    break
                parts.append(raw[eol + 2:eol + 2 + n])
                at = eol + 2 + n + 2
            return [line[6:] for line in b"".join(parts).decode().split("\n")
                    if line.startswith("data: ")]

        def close(self):
            self.sock.close()

    def open_streams(self, srv, token, n, rcvbuf=None):
        """n streamed calls, each read up to its first event (the fake
        OpenRouter holds the rest)."""
        streams = []
        for i in range(n):
            st = self.Stream(srv.port, token, "stream %d of many words" % i, rcvbuf)
            self.addCleanup(st.close)
            streams.append(st)
        for st in streams:
            self.assertTrue(st.read_until(b"data: {"),
                            "no first event before the provider's last: %r" % st.raw)
        return streams

    def gateway_calls_settle(self, srv, want, timeout=5.0):
        """The waiting gateway calls once they are `want` (or the last value
        read at the timeout): a stream's call thread lets its slot go just
        after the stream's end has been handed to its connection, so a
        client can read the end a moment before the count drops."""
        end = time.monotonic() + timeout
        while True:
            n = self.waiting_gateway_calls(srv)
            if n == want or time.monotonic() > end:
                return n
            time.sleep(0.02)

    def waiting_gateway_calls(self, srv):
        code, text, _ = request(srv.port, "/metrics", TOKENS["admin"]["token"])
        self.assertEqual(code, 200)
        for _, labels, v in parse_exposition(self, text)[
                "execengine_server_waiting_calls"]["samples"]:
            if labels["route"] == "gateway":
                return v
        self.fail("no waiting gateway calls in /metrics")

    def test_gateway_stream_relayed_as_it_comes(self):
        # A streamed completion ("stream": true) through the server's gateway
        # reaches the client as the provider sends it: the first event
        # arrives while the fake OpenRouter holds back the rest (its usage
        # message and [DONE] included), as chunked SSE with the provider's
        # head. Once released the rest follows, and the call is metered
        # from the usage of the stream's last message: the run's cost lists
        # it beside the workflow's own call, and /metrics counts both.
        srv, n8n, orr, ids, key = self.upstreams()
        xid, token = self.held_run(srv, n8n, ids, key)
        orr.config(hold=True, usage={"prompt_tokens": 300, "completion_tokens": 33,
                                     "total_tokens": 333, "cost": 0.002})
        try:
            [st] = self.open_streams(srv, token, 1)
            self.assertEqual(streams_settle(orr, "held", 1), 1)
            head = st.head()
            self.assertTrue(head.startswith("HTTP/1.1 200"), head)
            self.assertRegex(head, r"(?i)\r\ncontent-type: text/event-stream")
            self.assertRegex(head, r"(?i)\r\ntransfer-encoding: chunked")
            self.assertNotIn(b"[DONE]", st.raw)
            self.assertNotIn(b'"usage"', st.raw)
        finally:
            orr.config(hold=False)
        self.assertTrue(st.read_until(b"\r\n0\r\n\r\n"), st.raw)
        events = st.events()
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual(json.loads(events[-2])["usage"]["total_tokens"], 333)
        self.assertEqual("".join(json.loads(e)["choices"][0]["delta"]["content"]
                                 for e in events[:-3]), "Summary: stream 0 of many words")
        self.assertEqual(streams_settle(orr, "completed", 1), 1)
        orr.config(usage={})
        rec = self.release_run(srv, n8n, xid)
        self.assertEqual(rec["status"], "completed", rec)
        code, cost, _ = request(srv.port, "/api/engines/executions/%s/cost" % xid, CANARY)
        self.assertEqual(code, 200, cost)
        self.assertEqual((cost["totals"]["calls"], cost["totals"]["tokens"],
                          cost["totals"]["cost"]), (2, 333 + 59, 2000000 + 123000), cost)
        self.assertEqual(sorted((c["status"], c["totalTokens"], c["cost"])
                                for c in cost["calls"]),
                         [(200, 59, 123000), (200, 333, 2000000)], cost)
        code, text, _ = request(srv.port, "/metrics", TOKENS["admin"]["token"])
        samples = {(n, tuple(sorted(l.items()))): v
                   for fam in parse_exposition(self, text).values() for n, l, v in fam["samples"]}
        self.assertEqual(samples[("execengine_gateway_tokens_total",
                                  (("kind", "completion"), ("provider", "openrouter")))], 33 + 17)
        self.assertEqual(samples[("execengine_server_gateway_requests_total",
                                  (("code", "200"), ("provider", "openrouter")))], 2)
        self.assertEqual(samples[("execengine_server_waiting_calls",
                                  (("route", "gateway"),))], 0)

    def test_gateway_stream_to_a_slow_reader_is_bounded(self):
        # A provider that streams ~14 MiB at once (under the transport's
        # 16 MiB answer limit) to a client that does not read: the server
        # keeps at most a bounded buffer (1 MiB) and stops reading the
        # provider meanwhile, so the provider's writes stall (TCP
        # backpressure) instead of the server holding the whole stream. The
        # sockets' buffers hold ~4 MiB more (measured: 5.4 MiB written with
        # the bound, all 14 without). Once the client reads, every byte
        # arrives and the call is metered.
        srv, n8n, orr, ids, key = self.upstreams()
        xid, token = self.held_run(srv, n8n, ids, key)
        words = 450
        orr.config(hold=True, pad=32768, content=" ".join(["w"] * words),
                   usage={"prompt_tokens": 10, "completion_tokens": words, "total_tokens":
                          10 + words, "cost": 0.001})
        try:
            [st] = self.open_streams(srv, token, 1, rcvbuf=65536)
        finally:
            orr.config(hold=False)
        total = words * 32768
        time.sleep(3)  # the client reads nothing meanwhile
        written = raw_json(orr.port, "/__streams")["written"]
        self.assertLess(written, total // 2, "the provider wrote %d of %d bytes to a client "
                        "that read nothing: the server buffered it" % (written, total))
        self.assertTrue(st.read_until(b"\r\n0\r\n\r\n", timeout=120), st.raw[-200:])
        events = st.events()
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual(json.loads(events[-2])["usage"]["total_tokens"], 10 + words)
        self.assertEqual(sum(1 for e in events[:-3] if '"pad"' in e), words)
        orr.config(usage={}, pad=0, content=None)
        rec = self.release_run(srv, n8n, xid)
        self.assertEqual(rec["status"], "completed", rec)
        code, cost, _ = request(srv.port, "/api/engines/executions/%s/cost" % xid, CANARY)
        self.assertIn((200, 10 + words), [(c["status"], c["totalTokens"]) for c in cost["calls"]],
                      cost)

    def test_gateway_streams_hold_no_worker(self):
        # More streams held open mid-answer than the server has pool threads
        # (4): a stream waiting for the provider's next chunk holds its
        # connection, not a thread, so /healthz and the catalog answer at
        # once meanwhile, and every stream then runs to its end.
        n = 6
        srv, n8n, orr, ids, key = self.upstreams()
        xid, token = self.held_run(srv, n8n, ids, key)
        orr.config(hold=True)
        try:
            streams = self.open_streams(srv, token, n)
            self.assertEqual(streams_settle(orr, "held", n), n)
            self.assert_prompt(srv)
            self.assertEqual(self.waiting_gateway_calls(srv), n)
        finally:
            orr.config(hold=False)
        for i, st in enumerate(streams):
            self.assertTrue(st.read_until(b"\r\n0\r\n\r\n"), st.raw)
            self.assertEqual(st.events()[-1], "[DONE]")
            self.assertIn(b'"content": " words"', st.raw)
        self.assertEqual(streams_settle(orr, "completed", n), n)
        self.assertEqual(self.release_run(srv, n8n, xid)["status"], "completed")
        code, cost, _ = request(srv.port, "/api/engines/executions/%s/cost" % xid, CANARY)
        self.assertEqual(cost["totals"]["calls"], n + 1, cost)

    def test_gateway_stream_client_gone_frees_its_slot(self):
        # EE_SERVER_MAX_CALLS=2 and two streams held mid-answer: a third
        # gateway call is refused 503. The first stream's client goes away;
        # once the provider sends again the server sees it, the library
        # stops the provider's call (the fake sees its connection go, long
        # before the slow rest of the stream would have ended), the waiting
        # count comes back down and a new stream goes through, while the
        # other stream runs to its end.
        srv, n8n, orr, ids, key = self.upstreams({"EE_SERVER_MAX_CALLS": "2"})
        xid, token = self.held_run(srv, n8n, ids, key)
        words = " ".join("w%d" % i for i in range(80))
        orr.config(hold=True, dripMs=100, content=words)
        try:
            gone, kept = self.open_streams(srv, token, 2)
            self.assertEqual(self.waiting_gateway_calls(srv), 2)
            code, body, hdrs = request(srv.port, "/gateway/openrouter/api/v1/chat/completions",
                                       token, "POST", {"model": "m", "stream": True,
                                                       "messages": []}, timeout=5)
            self.assertEqual((code, body["error"]["status"]), (503, "EE_EBUSY"), body)
            gone.close()
            t = time.monotonic()
        finally:
            orr.config(hold=False)
        for _ in range(200):
            if raw_json(orr.port, "/__streams")["aborted"] == 1 and \
                    self.waiting_gateway_calls(srv) == 1:
                break
            time.sleep(0.05)
        self.assertEqual(raw_json(orr.port, "/__streams")["aborted"], 1)
        self.assertEqual(self.waiting_gateway_calls(srv), 1)
        self.assertLess(time.monotonic() - t, 5.0)  # the whole stream takes 8 s
        orr.config(dripMs=0, content="after")
        again = self.Stream(srv.port, token)
        self.addCleanup(again.close)
        self.assertTrue(again.read_until(b"\r\n0\r\n\r\n"), again.raw)
        self.assertEqual(again.events()[-1], "[DONE]")
        self.assertTrue(kept.read_until(b"\r\n0\r\n\r\n", timeout=30), kept.raw)
        self.assertIn(b'"content": " w79"', kept.raw)
        self.assertEqual(self.gateway_calls_settle(srv, 0), 0)
        self.assertEqual(self.release_run(srv, n8n, xid)["status"], "completed")

    def test_platform_run_zero_config(self):
        # PLATFORM_OPENROUTER_API_KEY in the server's environment is all a
        # platform-funded run needs: the server provisions the pool at
        # start, the LLM workflow's call goes out on the platform's key
        # (never the run's token or the customer's), and it is metered as
        # the platform's. A restart provisions again and changes nothing.
        store = tempfile.TemporaryDirectory()
        self.addCleanup(store.cleanup)
        srv, _, orr, ids, _ = self.upstreams({"PLATFORM_OPENROUTER_API_KEY": PLATFORM_KEY},
                                             store=store.name)
        made = re.search(r"platform credentials provisioned: (\d+) created, 0 updated, "
                         r"0 unchanged, 0 removed", srv.log_text())
        self.assertIsNotNone(made, srv.log_text())
        self.assertGreaterEqual(int(made.group(1)), 1)  # openRouterApi (and its aliases)
        code, rec, _ = request(srv.port, "/api/engines/execute/" + ids["LLM summary"], CANARY,
                               "POST", {"parameters": {"text": "zero config"}})
        self.assertEqual(code, 200, rec)
        self.assertEqual(rec["status"], "completed", rec)
        self.assertEqual(rec["apiKeyUsed"]["type"], "platform", rec)
        [call] = orr.requests("/chat/completions")
        self.assertEqual(call["headers"]["authorization"], "Bearer " + PLATFORM_KEY)
        code, cost, _ = request(srv.port, "/api/engines/executions/%s/cost" % rec["_id"], CANARY)
        self.assertEqual(code, 200, cost)
        [c] = cost["calls"]
        self.assertEqual((c["provider"], c["cost"], c["source"]), ("openrouter", 123000,
                                                                  "platform"), cost)
        code, text, _ = request(srv.port, "/metrics", TOKENS["admin"]["token"])
        samples = {(n, tuple(sorted(l.items()))): v
                   for fam in parse_exposition(self, text).values() for n, l, v in fam["samples"]}
        self.assertAlmostEqual(samples[("execengine_gateway_cost_usd_total",
                                        (("payer", "platform"), ("provider", "openrouter")))],
                               0.000123, places=9)
        self.assertNotIn(PLATFORM_KEY, json.dumps(rec) + json.dumps(cost) + text)
        # a second server on the same store with the same key: nothing to
        # change; one started without platform keys leaves the pool alone
        again = Server([TOKENS["admin"]], self.upstream_env, store=store.name)
        self.addCleanup(lambda: self.assertEqual(again.stop(), 0))
        self.assertIn("platform credentials provisioned: 0 created, 0 updated, %s unchanged, "
                      "0 removed" % made.group(1), again.log_text())
        bare = dict(self.upstream_env)
        del bare["PLATFORM_OPENROUTER_API_KEY"]
        third = Server([TOKENS["admin"]], bare, store=store.name)
        self.addCleanup(lambda: self.assertEqual(third.stop(), 0))
        self.assertNotIn("platform credentials provisioned", third.log_text())
        code, rec, _ = request(srv.port, "/api/engines/execute/" + ids["LLM summary"], CANARY,
                               "POST", {"parameters": {"text": "still platform"}})
        self.assertEqual((code, rec.get("status")), (200, "completed"), rec)

    def test_validate_key_200(self):
        # A customer's key that OpenRouter's key endpoint accepts.
        srv, _, orr, _, key = self.upstreams()
        code, body, _ = request(srv.port, "/api/engines/api-keys/%s/validate" % key, CANARY,
                                "POST")
        self.assertEqual(code, 200, body)
        self.assertEqual((body["status"], body["limit"], body["usage"], body["limitRemaining"]),
                         ("valid", 100, 25.5, 74.5), body)
        [sent] = orr.requests("/valid/key")
        self.assertEqual(sent["headers"]["authorization"], "Bearer " + CUSTOMER_KEY)

    def test_credential_gap_422(self):
        # No platform OpenRouter key, and the run does not ask for the
        # customer's: the LLM workflow cannot route its openRouterApi
        # credential, and the answer lists the gap.
        srv, n8n, _, ids, _ = self.upstreams()
        before = set(n8n.counts())
        code, body, hdrs = request(srv.port, "/api/engines/execute/" + ids["LLM summary"],
                                   CANARY, "POST", {"parameters": {"text": "x"}})
        self.assertEqual(code, 422, body)
        self.assertEqual(body["error"]["status"], "EE_ECREDENTIALS")
        gaps = body["error"]["gaps"]
        self.assertIsInstance(gaps, list)
        self.assertEqual([(g["kind"], g["credentialName"]) for g in gaps],
                         [("credential", "openRouterApi")], gaps)
        self.assertEqual(set(n8n.counts()), before, "a run with a gap reached n8n")

    def test_predictions_quota_429(self):
        # A plan of one prediction per period: the second run is refused.
        srv = Server([TOKENS["admin"], TOKENS["a"]], {
            "N8N_BASE_URL": N8N.url, "N8N_API_KEY": N8N_KEY,
            "EE_DATA_DIR": self.data_dir(free_plan={"predictionsPerPeriod": 1})})
        self.addCleanup(lambda: self.assertEqual(srv.stop(), 0))
        code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                  TOKENS["admin"]["token"])
        self.assertEqual(code, 200, report)
        wf = report["added"][0]["id"]
        code, rec, _ = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                               {"parameters": {}})
        self.assertEqual((code, rec["status"]), (200, "completed"), rec)
        code, body, hdrs = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                   {"parameters": {}})
        self.assertEqual(code, 429, body)
        self.assertEqual((body["error"]["status"], body["error"]["quota"]),
                         ("EE_EQUOTA", "predictions"), body)
        self.assertGreater(int(hdrs["Retry-After"]), 0)
        self.assertEqual(body["error"]["limit"], 1, body)

    def test_concurrency_429(self):
        # One execution at a time per workspace: a second while the first
        # waits on n8n is refused with Retry-After.
        own = FakeN8n()
        self.addCleanup(own.stop)
        srv = Server([TOKENS["admin"], TOKENS["a"]], {
            "N8N_BASE_URL": own.url, "N8N_API_KEY": N8N_KEY, "MAX_CONCURRENT_EXECUTIONS": "1"})
        self.addCleanup(lambda: self.assertEqual(srv.stop(), 0))
        code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                  TOKENS["admin"]["token"])
        self.assertEqual(code, 200, report)
        wf = report["added"][0]["id"]
        own.config(delayMs=3000)
        code, body, _ = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                {"parameters": {}, "async": True})
        self.assertEqual(code, 202, body)
        for _ in range(400):  # until it reached n8n: it is running
            if own.counts():
                break
            time.sleep(0.025)
        code, body, hdrs = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                   {"parameters": {}})
        self.assertEqual(code, 429, body)
        self.assertEqual(body["error"]["status"], "EE_ECONCURRENCY", body)
        self.assertGreater(int(hdrs["Retry-After"]), 0)

    def test_n8n_unreachable_502(self):
        srv = Server([TOKENS["admin"]], {"N8N_BASE_URL": "http://127.0.0.1:%d" % free_port(),
                                         "N8N_API_KEY": N8N_KEY})
        try:
            code, body, _ = request(srv.port, "/api/engines/sync-workflows",
                                    TOKENS["admin"]["token"])
            self.assertEqual(code, 502, body)
            self.assertEqual(body["error"]["status"], "EE_ENETWORK")
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_execute_n8n_gone_502(self):
        # n8n answered the sync, then went away: the run fails on its
        # trigger and the answer is 502 with the failed record.
        own = FakeN8n()
        stopped = False
        try:
            srv = Server([TOKENS["admin"], TOKENS["a"]],
                         {"N8N_BASE_URL": own.url, "N8N_API_KEY": N8N_KEY})
            self.addCleanup(lambda: self.assertEqual(srv.stop(), 0))
            code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                      TOKENS["admin"]["token"])
            self.assertEqual(code, 200, report)
            wf = report["added"][0]["id"]
            own.stop()
            stopped = True
            code, body, _ = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                    {"parameters": {}})
            self.assertEqual(code, 502, body)
            self.assertIn(body["error"]["status"], ("EE_ENETWORK", "EE_EUPSTREAM"))
            self.assertEqual(body["error"]["execution"]["status"], "failed", body)
        finally:
            if not stopped:
                own.stop()

    def test_spend_cap_402(self):
        srv, wf = self.synced()
        # An estimate over the free plan's monthly spend cap ($10).
        code, body, _ = request(srv.port, "/api/admin/engines/workflows/" + wf,
                                TOKENS["admin"]["token"], "PUT", {"estimatedCost": "50"})
        self.assertEqual(code, 200, body)
        code, body, _ = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                {"parameters": {}})
        self.assertEqual(code, 402, body)
        self.assertEqual((body["error"]["status"], body["error"]["quota"]),
                         ("EE_ESPEND", "spend"))

    def test_wait_timeout_504(self):
        # The run's timeoutMs bounds the wait for n8n's answer: n8n answers
        # later, the run fails with EE_ETIMEOUT and the answer is 504.
        srv, wf = self.synced({"EXEC_LEASE_MS": "1000"})
        N8N.config(delayMs=6000)
        try:
            code, body, _ = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                    {"parameters": {}, "timeoutMs": 1000})
        finally:
            N8N.config(delayMs=0)
        self.assertEqual(code, 504, body)
        self.assertEqual(body["error"]["status"], "EE_ETIMEOUT")
        self.assertEqual(body["error"]["execution"]["status"], "failed", body)
        self.assertIn("timeout", body["error"]["execution"]["errorMessage"], body)


SMTP_SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support",
                         "smtp_sink.py")


class EmailTest(unittest.TestCase):
    """E-mailed results over HTTP, delivered to a real SMTP server
    (python3-aiosmtpd, tests/support/smtp_sink.py) on loopback."""

    def setUp(self):
        self.mail = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.mail, True)
        self.sink = subprocess.Popen([sys.executable, SMTP_SINK, self.mail],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(self.sink.wait)
        self.addCleanup(self.sink.terminate)
        line = self.sink.stdout.readline()
        self.assertTrue(line.startswith("PORT "), "the SMTP sink did not start: %r" % line)
        self.sink.stdout.close()
        env = {"N8N_BASE_URL": N8N.url, "N8N_API_KEY": N8N_KEY, "SMTP_HOST": "127.0.0.1",
               "SMTP_PORT": line.split()[1], "PLATFORM_FROM_EMAIL": "results@example.com",
               "EMAIL_POLL_MS": "50"}
        self.srv = Server([TOKENS["admin"], TOKENS["a"], TOKENS["b"]], env)
        self.addCleanup(lambda: self.assertEqual(self.srv.stop(), 0))
        code, report, _ = request(self.srv.port, "/api/engines/sync-workflows",
                                  TOKENS["admin"]["token"])
        self.assertEqual(code, 200, report)
        self.wf = report["added"][0]["id"]

    def call(self, path, who, method="GET", body=None):
        return request(self.srv.port, path, TOKENS[who]["token"], method, body)

    def messages(self, n):
        """The first n messages the sink accepted (bounded wait)."""
        for _ in range(600):
            names = sorted(f for f in os.listdir(self.mail) if f.endswith(".eml"))
            if len(names) >= n:
                out = []
                for name in names:
                    with open(os.path.join(self.mail, name), "rb") as f:
                        out.append(email.message_from_bytes(f.read(),
                                                            policy=email.policy.default))
                return out
            time.sleep(0.05)
        self.fail("%d message(s) expected, %d arrived" % (n, len(os.listdir(self.mail))))

    def test_templates_and_send_results(self):
        base = "/api/admin/engines/email-templates"
        tpl = {"subjectTemplate": "{{workflowName}}: {{execution.status}}",
               "bodyTemplate": "<p>Total for {{execution.userId}}: {{results.echo}}</p>"}
        code, body, _ = self.call("%s/%s" % (base, self.wf), "admin", "PUT", tpl)
        self.assertEqual(code, 200, body)
        self.assertEqual(body["workflowCatalogId"], self.wf)
        code, page, _ = self.call(base + "?isActive=true", "admin")
        self.assertEqual((code, [t["workflowCatalogId"] for t in page["data"]]), (200, [self.wf]))
        # malformed Handlebars: 400 naming where
        code, body, _ = self.call("%s/%s" % (base, self.wf), "admin", "PUT",
                                  dict(tpl, bodyTemplate="{{#if x}}open"))
        self.assertEqual((code, body["error"]["status"]), (400, "EE_EPARSE"), body)
        # a run, then its results by e-mail: 202 queued, delivered once
        code, rec, _ = self.call("/api/engines/execute/" + self.wf, "a", "POST",
                                 {"parameters": {"text": "<b>hi</b>"}})
        self.assertEqual(code, 200, rec)
        code, queued, _ = self.call("/api/engines/executions/%s/email" % rec["_id"], "a", "POST",
                                    {"to": "owner@example.com"})
        self.assertEqual(code, 202, queued)
        self.assertEqual((queued["status"], queued["to"]), ("queued", "owner@example.com"))
        [msg] = self.messages(1)
        self.assertEqual(msg["To"], "owner@example.com")
        self.assertEqual(msg["From"], "results@example.com")
        self.assertEqual(msg["Subject"], "Hosts echo: completed")
        html = msg.get_body(("html",)).get_content()
        self.assertIn("Total for u-a", html)
        self.assertIn("&lt;b&gt;hi&lt;/b&gt;", html, "a parameter's HTML was not escaped")
        for _ in range(600):
            code, got, _ = self.call("/api/engines/executions/" + rec["_id"], "a")
            if got.get("emailSent"):
                break
            time.sleep(0.05)
        self.assertTrue(got.get("emailSent"), got)
        self.assertIn("emailSentAt", got)
        # another workspace's execution: 404, nothing sent
        code, body, _ = self.call("/api/engines/executions/%s/email" % rec["_id"], "b", "POST",
                                  {"to": "thief@example.com"})
        self.assertEqual((code, body["error"]["status"]), (404, "EE_ENOTFOUND"), body)
        # a header injection through the address: 400, nothing sent
        code, body, _ = self.call("/api/engines/executions/%s/email" % rec["_id"], "a", "POST",
                                  {"to": "x@example.com\r\nBcc: all@example.com"})
        self.assertEqual((code, body["error"]["status"]), (400, "EE_EINVAL"), body)
        # a run started with an e-mail request sends by itself
        code, rec2, _ = self.call("/api/engines/execute/" + self.wf, "a", "POST",
                                  {"parameters": {"text": "auto"}, "email": {"to": "me@example.com"}})
        self.assertEqual(code, 200, rec2)
        msgs = self.messages(2)
        self.assertEqual(msgs[1]["To"], "me@example.com")
        time.sleep(0.3)
        self.assertEqual(len([f for f in os.listdir(self.mail) if f.endswith(".eml")]), 2,
                         "a message was sent twice")
        code, text, _ = request(self.srv.port, "/metrics", TOKENS["admin"]["token"])
        self.assertEqual(code, 200)
        outbox = {l["status"]: v for _, l, v in
                  parse_exposition(self, text)["execengine_email_outbox"]["samples"]}
        self.assertEqual((outbox["sent"], outbox["queued"], outbox["failed"]), (2, 0, 0), outbox)
        # the template deleted: the default one is used; outbox depth in /metrics
        code, body, _ = self.call("%s/%s" % (base, self.wf), "admin", "DELETE")
        self.assertEqual((code, body.get("deleted")), (200, True), body)
        self.assertEqual(self.call("%s/%s" % (base, self.wf), "admin")[0], 404)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_lets_a_running_execution_finish(self):
        srv = Server([TOKENS["admin"], TOKENS["a"]],
                     {"N8N_BASE_URL": N8N.url, "N8N_API_KEY": N8N_KEY})
        result = {}
        try:
            code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                      TOKENS["admin"]["token"])
            self.assertEqual(code, 200, report)
            wf = report["added"][0]["id"]
            before = set(N8N.counts())
            N8N.config(delayMs=1500)

            def run():
                result["resp"] = request(srv.port, "/api/engines/execute/" + wf, CANARY,
                                         "POST", {"parameters": {"text": "last"}})

            t = threading.Thread(target=run)
            t.start()
            for _ in range(400):  # until n8n was reached: the request is running
                if set(N8N.counts()) - before:
                    break
                time.sleep(0.025)
            else:
                self.fail("the execution never reached n8n")
            srv.proc.send_signal(signal.SIGTERM)
            t.join(timeout=120)
            self.assertFalse(t.is_alive())
            code, rec, _ = result["resp"]
            self.assertEqual(code, 200, rec)
            self.assertEqual((rec["status"], rec["outputData"]["echo"]), ("completed", "last"))
            self.assertEqual(srv.proc.wait(timeout=120), 0)
            # The listener is closed.
            with self.assertRaises(OSError):
                request(srv.port, "/healthz", timeout=5)
        finally:
            N8N.config(delayMs=0)
            srv.stop()


    def test_sigterm_records_queued_runs_and_cuts_no_answer(self):
        # Two workers, six asynchronous runs that n8n answers slowly, one
        # synchronous run, and a client asking the catalog in a loop; then
        # SIGTERM. The server exits 0 in bounded time, the synchronous run
        # gets its whole answer, every catalog answer is either whole or
        # absent (refused or closed before its first byte), and a server
        # restarted on the same database ends every asynchronous run.
        store = tempfile.TemporaryDirectory()
        self.addCleanup(store.cleanup)
        env = {"N8N_BASE_URL": N8N.url, "N8N_API_KEY": N8N_KEY, "EXEC_WORKERS": "2",
               "EXEC_LEASE_MS": "1000"}
        srv = Server([TOKENS["admin"], TOKENS["a"]], env, store.name)
        stopped = False
        try:
            code, report, _ = request(srv.port, "/api/engines/sync-workflows",
                                      TOKENS["admin"]["token"])
            self.assertEqual(code, 200, report)
            wf = report["added"][0]["id"]
            before = set(N8N.counts())
            N8N.config(delayMs=1500)
            ids = []
            for i in range(6):
                code, body, _ = request(srv.port, "/api/engines/execute/" + wf, CANARY, "POST",
                                        {"parameters": {"text": "q%d" % i}, "async": True})
                self.assertEqual(code, 202, body)
                ids.append(body["executionId"])
            result = {}

            def run():
                result["sync"] = request(srv.port, "/api/engines/execute/" + wf, CANARY,
                                         "POST", {"parameters": {"text": "sync-last"}})

            answers = []
            done = threading.Event()

            def hammer():
                raw = ("GET /api/engines/catalog HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % CANARY)
                while not done.is_set():
                    data = b""
                    try:
                        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
                            s.sendall(raw.encode())
                            while True:
                                chunk = s.recv(65536)
                                if not chunk:
                                    break
                                data += chunk
                    except ConnectionRefusedError:
                        answers.append("refused")
                        return
                    except ConnectionResetError:
                        pass  # data says how much of an answer came
                    answers.append(data)

            runner = threading.Thread(target=run)
            runner.start()
            hammers = [threading.Thread(target=hammer) for _ in range(2)]
            for h in hammers:
                h.start()
            for _ in range(400):  # until n8n was reached: runs are in flight
                if len(set(N8N.counts()) - before) >= 2:
                    break
                time.sleep(0.025)
            else:
                self.fail("the executions never reached n8n")
            time.sleep(0.1)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(timeout=60), 0)
            done.set()
            runner.join(timeout=60)
            for h in hammers:
                h.join(timeout=60)
            code, rec, _ = result["sync"]
            self.assertEqual((code, rec["status"], rec["outputData"]["echo"]),
                             (200, "completed", "sync-last"), rec)
            whole = 0
            for a in answers:
                if a in ("refused", b""):
                    continue
                head, sep, body = a.partition(b"\r\n\r\n")
                self.assertTrue(sep and head.startswith(b"HTTP/1.1 200"), a[:200])
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                self.assertEqual(length, [len(body)], "an answer cut short")
                self.assertIn("data", json.loads(body))
                whole += 1
            self.assertGreater(whole, 0)
            srv.stop()
            stopped = True
            N8N.config(delayMs=0)
            # Restarted on the same database: the runs left queued (and any
            # interrupted one) are recovered and end.
            srv = Server([TOKENS["a"]], env, store.name)
            stopped = False
            for xid in ids:
                for _ in range(600):
                    code, rec, _ = request(srv.port, "/api/engines/executions/" + xid, CANARY)
                    self.assertEqual(code, 200, rec)
                    if rec["status"] not in ("pending", "running"):
                        break
                    time.sleep(0.05)
                self.assertIn(rec["status"], ("completed", "failed"), rec)
                if rec["status"] == "failed":
                    self.assertIn("interrupted", rec["errorMessage"], rec)
            texts = {request(srv.port, "/api/engines/executions/" + x, CANARY)[1]["status"]
                     for x in ids}
            self.assertIn("completed", texts)
        finally:
            N8N.config(delayMs=0)
            if not stopped:
                srv.stop()


class TokensFileTest(unittest.TestCase):
    """The tokens file is read as JSON: escapes work, a malformed file is
    refused at start with exit status 2 and a message naming the problem."""

    def start(self, text):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        tokens = os.path.join(tmp.name, "tokens.json")
        with open(tokens, "w") as f:
            f.write(text)
        port = free_port()
        env = dict(os.environ, EE_SERVER_ADDR="127.0.0.1:%d" % port,
                   EE_SERVER_TOKENS=tokens,
                   EE_STORAGE_URI="sqlite://%s/engine.db" % tmp.name,
                   API_KEY_ENCRYPTION_SECRET="z" * 48)
        proc = subprocess.Popen([SERVER], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        return proc, port

    def refused(self, text, words):
        proc, _ = self.start(text)
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 2, err)
        self.assertIn(words, err.decode())
        self.assertNotIn("s3cret-canary", err.decode())

    def test_malformed_file_refused(self):
        # Unclosed: not JSON at all.
        self.refused('{"tokens": [{"token": "s3cret-canary", "workspaceId": "w", '
                     '"userId": "u"}', "EE_SERVER_TOKENS")

    def test_bad_entry_refused(self):
        self.refused('{"tokens": [{"token": "s3cret-canary", "workspaceId": "w", '
                     '"userId": "u", "role": "root"}]}', "/tokens/0/role")
        self.refused('{"tokens": [{"token": "s3cret-canary", "workspaceId": 7, '
                     '"userId": "u"}]}', "/tokens/0/workspaceId")
        self.refused('{"tokens": {}}', "/tokens")
        # A good entry before the bad one: still refused as a whole.
        self.refused('{"tokens": [{"token": "t1", "workspaceId": "w", "userId": "u"}, '
                     '{"token": "s3cret-canary", "workspaceId": "w", "userId": "u", '
                     '"role": "root"}]}', "/tokens/1/role")
        self.refused('{"tokens": [{"token": "t1", "token": "t2", "workspaceId": "w", '
                     '"userId": "u"}]}', "duplicate")
        # The library refuses the reserved workspace "platform" as a principal.
        self.refused('{"tokens": [{"token": "s3cret-canary", "workspaceId": "platform", '
                     '"userId": "u"}]}', "/tokens/0")

    def test_escaped_token_accepted(self):
        token = 'tok"with\\escapes\\n'
        doc = {"tokens": [{"role": "user", "userId": "u-e", "token": token,
                           "workspaceId": "ws-e"}]}
        proc, port = self.start(json.dumps(doc))
        try:
            code = None
            for _ in range(200):
                try:
                    code = request(port, "/api/engines/catalog", token, timeout=10)[0]
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.assertEqual(code, 200)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            proc.stderr.close()


if __name__ == "__main__":
    SERVER = sys.argv.pop(1)
    unittest.main()
