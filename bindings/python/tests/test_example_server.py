"""examples/python-server/server.py: started on a free loopback port with a
memory store and the fake n8n, it lists the catalog, runs an execution and
reads it back, and maps a refusal to its HTTP status."""
import json
import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
SERVER = os.path.join(REPO, "examples", "python-server", "server.py")
FAKE = os.path.join(HERE, "fake_n8n_gmail.py")
N8N_KEY = "n8n-key-canary-31aa"
WHO = {"X-Workspace-Id": "ws-1", "X-User-Id": "u-1", "X-Org-Id": "org-1"}


def start(cmd, env=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"{cmd[-1]} did not start: {proc.stderr.read()[-2000:]}")
    return proc, int(line.split()[1])


def stop(proc):
    proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


class ExampleServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n8n, n8n_port = start([sys.executable, FAKE])
        env = dict(os.environ, PORT="0", EE_STORAGE_URI="memory:", EE_COUNTERS_URI="memory:",
                   API_KEY_ENCRYPTION_SECRET="example-server-secret-0123456789abcdef",
                   N8N_BASE_URL="http://127.0.0.1:%d" % n8n_port, N8N_API_KEY=N8N_KEY,
                   PYTHONPATH=PKG_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        try:
            cls.srv, cls.port = start([sys.executable, SERVER], env)
        except Exception:
            stop(cls.n8n)
            raise

    @classmethod
    def tearDownClass(cls):
        stop(cls.srv)
        stop(cls.n8n)

    def call(self, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers=WHO, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                code, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, raw = e.code, e.read()
        self.assertNotIn(N8N_KEY, raw.decode())
        return code, json.loads(raw)

    def test_catalog_execute_get(self):
        code, page = self.call("/catalog")
        self.assertEqual(code, 200)
        wf = {e["name"]: e["id"] for e in page["data"]}["Hosts echo"]
        code, rec = self.call("/executions", {"workflowId": wf, "parameters": {"text": "hi"}})
        self.assertEqual((code, rec["status"], rec["outputData"]["echo"]),
                         (200, "completed", "hi"))
        code, got = self.call("/executions/" + rec["_id"])
        self.assertEqual((code, got["_id"], got["status"]), (200, rec["_id"], "completed"))

    def test_errors_map_to_http(self):
        code, body = self.call("/executions/" + "0" * 24)
        self.assertEqual((code, body["error"]["status"]), (404, "EE_ENOTFOUND"))
        code, page = self.call("/catalog")
        gmail = {e["name"]: e["id"] for e in page["data"]}["Hosts gmail"]
        code, body = self.call("/executions", {"workflowId": gmail, "parameters": {}})
        self.assertEqual((code, body["error"]["status"]), (422, "EE_ECREDENTIALS"))
        self.assertEqual([g["credentialName"] for g in body["error"]["detail"]["gaps"]],
                         ["gmailOAuth2"])


if __name__ == "__main__":
    unittest.main()
