"""HTTP tests of execengine-server (examples/server): started on a free
loopback port with a temporary SQLite store. argv[1]: the server binary."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

SERVER = None
CANARY = "canary-token-7f3a9c"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        tokens = os.path.join(cls.tmp.name, "tokens.json")
        with open(tokens, "w") as f:
            json.dump({"tokens": [
                {"token": CANARY, "workspaceId": "ws-a", "userId": "u-a",
                 "orgId": "org-a", "role": "user"},
                {"token": "admin-token-1", "workspaceId": "ws-b",
                 "userId": "u-b", "orgId": "org-b", "role": "admin"}]}, f)
        cls.port = free_port()
        env = dict(os.environ)
        env.update({
            "EE_SERVER_ADDR": "127.0.0.1:%d" % cls.port,
            "EE_SERVER_TOKENS": tokens,
            "EE_STORAGE_URI": "sqlite://%s/engine.db" % cls.tmp.name,
            "API_KEY_ENCRYPTION_SECRET": "x" * 48,
        })
        cls.log = open(os.path.join(cls.tmp.name, "server.log"), "w+")
        cls.proc = subprocess.Popen([SERVER], env=env, stdout=cls.log,
                                    stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                if cls.get("/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            cls.proc.kill()
            cls.log.seek(0)
            raise RuntimeError("server did not start: " + cls.log.read())

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(timeout=30)
        cls.log.seek(0)
        text = cls.log.read()
        cls.log.close()
        cls.tmp.cleanup()
        assert CANARY not in text, "token in the server log"

    @classmethod
    def get(cls, path, token=None, method="GET", body=None, headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (cls.port, path),
                                     method=method, data=body)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def test_healthz(self):
        code, body = self.get("/healthz")
        self.assertEqual(code, 200)
        self.assertEqual(body["status"], "ok")

    def test_no_token_401(self):
        code, body = self.get("/api/engines/catalog")
        self.assertEqual(code, 401)
        self.assertEqual(body["error"]["status"], "EE_EAUTH")

    def test_bad_token_401(self):
        code, body = self.get("/api/engines/catalog", token=CANARY + "x")
        self.assertEqual(code, 401)
        code, _ = self.get("/api/engines/catalog", token=CANARY[:-1])
        self.assertEqual(code, 401)
        self.assertNotIn(CANARY, json.dumps(body))

    def test_catalog_list(self):
        code, body = self.get("/api/engines/catalog", token=CANARY)
        self.assertEqual(code, 200, body)
        self.assertIsInstance(body["data"], list)
        self.assertIn("total", body)

    def test_catalog_search(self):
        code, body = self.get("/api/engines/catalog?q=summary", token=CANARY)
        self.assertEqual(code, 200, body)
        self.assertIsInstance(body["data"], list)

    def test_admin_route_needs_admin(self):
        code, body = self.get("/api/admin/engines/categories", token=CANARY)
        self.assertEqual(code, 403)
        self.assertEqual(body["error"]["status"], "EE_EPERM")

    def test_billing_501(self):
        code, body = self.get("/api/billing/plans", token=CANARY)
        self.assertEqual(code, 501)
        self.assertIn("issue #14", body["error"]["message"])

    def test_unknown_route_404(self):
        code, body = self.get("/api/engines/nope", token=CANARY)
        self.assertEqual(code, 404)

    def test_body_over_limit_413(self):
        # Announce a body over the 1 MiB limit: the answer comes before it is sent.
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(("POST /api/engines/catalog HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % (CANARY, 1024 * 1024 + 1)).encode())
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head)
        self.assertEqual(json.loads(body)["error"]["status"], "EE_ETOOBIG")

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

    def test_escaped_token_accepted(self):
        token = 'tok"with\\escapes\\n'
        doc = {"tokens": [{"role": "user", "userId": "u-e", "token": token,
                           "workspaceId": "ws-e"}]}
        proc, port = self.start(json.dumps(doc))
        try:
            code = None
            for _ in range(200):
                req = urllib.request.Request(
                    "http://127.0.0.1:%d/api/engines/catalog" % port,
                    headers={"Authorization": "Bearer " + token})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        code = r.status
                        break
                except urllib.error.HTTPError as e:
                    code = e.code
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.assertEqual(code, 200)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_exits_cleanly(self):
        with tempfile.TemporaryDirectory() as tmp:
            tokens = os.path.join(tmp, "tokens.json")
            with open(tokens, "w") as f:
                json.dump({"tokens": []}, f)
            port = free_port()
            env = dict(os.environ, EE_SERVER_ADDR="127.0.0.1:%d" % port,
                       EE_SERVER_TOKENS=tokens,
                       EE_STORAGE_URI="sqlite://%s/engine.db" % tmp,
                       API_KEY_ENCRYPTION_SECRET="y" * 48)
            proc = subprocess.Popen([SERVER], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                for _ in range(200):
                    try:
                        with urllib.request.urlopen(
                                "http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
                            if r.status == 200:
                                break
                    except OSError:
                        time.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=60), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    SERVER = sys.argv.pop(1)
    unittest.main()
