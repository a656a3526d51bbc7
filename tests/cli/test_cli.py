"""Tests of the execengine CLI (examples/cli): the built binary is driven as an
operator would, against a temporary SQLite store and a fake n8n
(tests/support/fake_n8n.py). Every call checks that no canary secret reaches
stdout or stderr. argv[1]: the CLI binary."""
import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

CLI = None
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_N8N = os.path.join(HERE, "..", "support", "fake_n8n.py")

N8N_KEY = "n8n-key-canary-7a51c0"
SECRET = "enc-secret-canary-" + "s" * 32
NEW_SECRET = "enc-secret-canary-new-" + "n" * 32
SERPER_KEY = "serper-canary-key-93bd17e4"
CALLBACK_SECRET = "callback-secret-canary-" + "c" * 24
SERVER_TOKEN = "server-token-canary-4410"
SECRETS = (N8N_KEY, SECRET, NEW_SECRET, SERPER_KEY, CALLBACK_SECRET, SERVER_TOKEN)

COMMANDS = ["sync", "catalog list", "catalog search", "catalog import", "run", "show",
            "executions list", "usage", "quota", "provision", "rotate-secret", "purge",
            "billing close-month", "billing export", "billing history", "audit", "serve",
            "version", "config check", "help"]

# The environment variables the tests set themselves: inherited ones are dropped
# so that the machine's configuration cannot change an outcome.
OWN = ("N8N_", "EE_", "API_KEY_", "PLATFORM_", "EXEC_", "DATABASE_", "FLOWISE_",
       "MAX_", "RESULT_", "AUDIT_", "OPENROUTER_")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FakeN8n:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE_N8N], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("fake n8n did not start")
        self.url = "http://127.0.0.1:%d" % int(line.split()[1])

    def config(self, **knobs):
        req = urllib.request.Request(self.url + "/__config", method="POST",
                                     data=json.dumps(knobs).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


N8N = None


def setUpModule():
    global N8N
    N8N = FakeN8n()


def tearDownModule():
    N8N.stop()


class Store:
    """A temporary directory with its SQLite store and the base environment."""

    def __init__(self, **extra):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        env = {k: v for k, v in os.environ.items() if not k.startswith(OWN)}
        env.update({
            "EE_STORAGE_URI": "sqlite://%s/engine.db" % self.dir,
            "API_KEY_ENCRYPTION_SECRET": SECRET,
            "EXEC_CALLBACK_SECRET": CALLBACK_SECRET,
            "N8N_BASE_URL": N8N.url,
            "N8N_API_KEY": N8N_KEY,
            "OPENROUTER_API_URL": N8N.url + "/openrouter/api/v1",
        })
        env.update(extra)
        self.env = env

    def cleanup(self):
        self.tmp.cleanup()


class CliCase(unittest.TestCase):
    store = None

    def env_of(self, env=None, unset=()):
        full = dict(self.store.env if self.store else os.environ)
        full.update(env or {})
        for k in unset:
            full.pop(k, None)
        return full

    def cli(self, *args, env=None, unset=(), timeout=180, cwd=None):
        """(exit code, stdout, stderr) of one run; no secret in either."""
        p = subprocess.run([CLI] + list(args), env=self.env_of(env, unset), capture_output=True,
                           text=True, errors="replace", timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=cwd)
        for secret in SECRETS:
            self.assertNotIn(secret, p.stdout, "a secret on stdout of %s" % (args,))
            self.assertNotIn(secret, p.stderr, "a secret on stderr of %s" % (args,))
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        self.assertEqual(rc, 0, "%s: %s%s" % (args, out, err))
        return out

    def ok_json(self, *args, **kw):
        return json.loads(self.ok(*(args + ("--json",)), **kw))

    def fails(self, code, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        self.assertEqual(rc, code, "%s: %s%s" % (args, out, err))
        self.assertTrue(err.startswith("execengine: "), err)
        return out, err


class HelpAndUsage(CliCase):
    """No engine needed: help, usage errors, version."""

    @classmethod
    def setUpClass(cls):
        cls.store = Store()

    @classmethod
    def tearDownClass(cls):
        cls.store.cleanup()

    def test_overview_lists_every_command_and_exit_code(self):
        out = self.ok("--help")
        for cmd in COMMANDS:
            self.assertIn("  " + cmd + " ", out)
        for code in ("0", "1", "2", "3", "4", "5", "6", "7"):
            self.assertRegex(out, r"\n  %s  \w" % code)
        # no command at all: the overview on stderr, a usage error
        rc, out, err = self.cli()
        self.assertEqual(rc, 2)
        self.assertIn("usage: execengine", err)

    def test_help_of_every_command(self):
        for cmd in COMMANDS:
            out = self.ok(*(cmd.split() + ["--help"]))
            self.assertTrue(out.startswith("usage: execengine %s" % cmd), out)
            self.assertIn("Exit codes:", out)
            self.assertEqual(self.ok("help", *cmd.split()), out)
        out = self.ok("catalog", "--help")
        for sub in ("list", "search", "import"):
            self.assertIn("execengine catalog " + sub, out)

    def test_usage_errors_exit_2(self):
        with open(os.path.join(self.store.dir, "big.json"), "w") as f:
            f.write('{"text": "' + "a" * (1024 * 1024 + 10) + '"}')
        cases = [
            ("bogus",),
            ("catalog",),
            ("catalog", "bogus"),
            ("catalog", "list", "--bogus"),
            ("catalog", "search"),
            ("catalog", "list", "--limit", "abc"),
            ("catalog", "list", "--limit", "0"),
            ("catalog", "list", "--limit"),
            ("version", "extra"),
            # a secret given where none is taken is not echoed (cli() checks)
            ("rotate-secret", NEW_SECRET),
            ("config", "check", SECRET),
            ("run",),
            ("run", "wf"),  # no workspace
            ("run", "wf", "--workspace", "platform"),  # a workspace that cannot act
            ("run", "wf", "--workspace", "w", "--input", "not json"),
            ("run", "wf", "--workspace", "w", "--input", "[1]"),
            ("run", "wf", "--workspace", "w", "--input", "@" + self.store.dir + "/missing"),
            ("run", "wf", "--workspace", "w", "--input", "@" + self.store.dir + "/big.json"),
            ("run", "wf", "--workspace", "w", "--timeout", "-1"),
            ("run", "wf", "--workspace", "w", "--workers", "-1"),
            ("run", "wf", "--workspace", "w", "--workers", "1", "--no-wait"),
            ("show",),
            ("show", "x", "--workspace", "w", "--results", "--cost"),
            ("billing", "close-month", "2025-1", "--workspace", "w"),
            ("billing", "export", "May", "--workspace", "w"),
            ("billing", "close-month", "2025-01"),  # no workspace
            ("audit", "--from", "yesterday"),
            ("audit", "--role", "root"),
            ("purge", "--audit-before", "soon"),
            ("version", "--json=yes"),
            # text that is not UTF-8 cannot be a JSON string: json_string()
            # returned NULL and the filter or key was silently left out (a
            # list "filtered" by it listed everything, exit 0)
            ("executions", "list", "--workspace", "w", "--status", "compl\udcffeted"),
            ("audit", "--action", "execution.\udcff"),
            ("catalog", "list", "--cursor", "\udcff"),
            ("run", "wf", "--workspace", "w", "--idempotency-key", "k\udcff", "--no-wait"),
            ("run", "wf", "--workspace", "w", "--email", "\udcff@example.com", "--no-wait"),
            ("catalog", "search", "caf\udcff"),
            ("show", "\udcff", "--workspace", "w"),
            # dates that do not exist were moved by timegm() (to 2026-03-03)
            ("audit", "--from", "2026-02-31"),
            ("audit", "--to", "2025-02-29"),
            ("purge", "--audit-before", "2026-04-31"),
        ]
        for args in cases:
            with self.subTest(args=args):
                out, err = self.fails(2, *args)
                self.assertEqual(out, "")

    def test_empty_values_are_not_left_out_options(self):
        """--workspace "$W" with W unset acted for EE_CLI_WORKSPACE's workspace."""
        env = {"EE_CLI_WORKSPACE": "ws-from-env"}
        for args in (("usage", "--workspace", ""), ("--workspace=", "usage"),
                     ("usage", "--workspace", "ws-1", "--user", ""),
                     ("catalog", "list", "--db", "")):
            with self.subTest(args=args):
                out, err = self.fails(2, *args, env=env)
                self.assertIn("empty value", err)
                self.assertEqual(out, "")

    def test_not_utf8_is_named_and_paths_stay_raw(self):
        out, err = self.fails(2, "executions", "list", "--workspace", "w", "--status", "\udcff")
        self.assertIn("--status: the value is not UTF-8", err)
        out, err = self.fails(2, "catalog", "search", "\udcff")
        self.assertIn("argument 1 is not UTF-8", err)
        # a file path is any bytes: the file is looked for, and a directory says so
        out, err = self.fails(2, "catalog", "import", os.path.join(self.store.dir, "\udcff.json"))
        self.assertIn("No such file", err)
        out, err = self.fails(2, "catalog", "import", self.store.dir)
        self.assertIn("Is a directory", err)

    def test_unknown_words_are_quoted_printable_and_short(self):
        # a terminal escape, a line break, bytes that are not UTF-8, a long
        # word: the message names it without acting on the terminal
        for word, shown in (("\x1b[31mred\x1b[0m", '"?[31mred?[0m"'),
                            ("a\nb", '"a?b"'),
                            ("\udcff\udcfe", '"??"'),
                            ("\u00e9" * 40, '"' + "\u00e9" * 30 + '..."')):
            out, err = self.fails(2, word)
            self.assertIn("unknown command " + shown, err)
            self.assertNotIn("\x1b", err)
            out, err = self.fails(2, "catalog", word)
            self.assertIn('unknown command "catalog ' + shown[1:], err)
        out, err = self.fails(2, "--\x1b]0;title\x07")
        self.assertIn("unknown option --?]0;title?", err)
        self.assertNotIn("\x1b", err)

    def test_version(self):
        doc = self.ok_json("version")
        self.assertRegex(doc["version"], r"^\d+\.\d+\.\d+")
        self.assertIn("sqlite", doc["features"].split())
        self.assertIn(doc["version"], self.ok("version"))


class ConfigCheck(CliCase):
    @classmethod
    def setUpClass(cls):
        cls.store = Store()

    @classmethod
    def tearDownClass(cls):
        cls.store.cleanup()

    def test_valid_environment_masks_secrets(self):
        out = self.ok("config", "check")
        self.assertIn("N8N_API_KEY", out)
        self.assertIn(N8N_KEY[-4:], out)  # masked: the last four only
        self.assertIn("configuration OK", out)
        doc = self.ok_json("config", "check", "--verbose")
        self.assertTrue(doc["ok"])
        self.assertEqual(doc["engine"]["storage"]["backend"], "sqlite")
        self.assertIn("MAX_CONCURRENT_EXECUTIONS", doc["config"])

    def test_bad_value_exits_5_naming_the_variable(self):
        _, err = self.fails(5, "config", "check", env={"MAX_CONCURRENT_EXECUTIONS": "lots"})
        self.assertIn("MAX_CONCURRENT_EXECUTIONS", err)
        # a value that may be a secret set in the wrong variable is not echoed
        _, err = self.fails(5, "config", "check", env={"SMTP_PORT": SERPER_KEY})
        self.assertIn("SMTP_PORT", err)

    def test_engine_that_cannot_open_exits_5(self):
        # no encryption secret: the options load, the engine refuses to open
        unset = ("API_KEY_ENCRYPTION_SECRET",)
        _, err = self.fails(5, "config", "check", unset=unset)
        self.assertIn("API_KEY_ENCRYPTION_SECRET", err)
        # --no-open checks the options only
        self.assertIn("configuration OK", self.ok("config", "check", "--no-open", unset=unset))
        # a value the options refuse fails before any open
        self.fails(5, "config", "check", "--no-open",
                   env={"API_KEY_ENCRYPTION_SECRET": "short"})
        # every command that opens the engine reports the same way
        self.fails(5, "sync", unset=unset)
        self.fails(5, "usage", "--workspace", "w", unset=unset)
        self.fails(5, "run", "wf", "--workspace", "w", unset=unset)


    def test_db_and_data_dir_overrides(self):
        # a relative --db is a SQLite file under the working directory
        out = self.ok("config", "check", "--db", "other.db", cwd=self.store.dir,
                      unset=("EE_STORAGE_URI",))
        self.assertIn("sqlite://%s/other.db" % self.store.dir, out)
        self.assertTrue(os.path.exists(os.path.join(self.store.dir, "other.db")))
        # --data-dir reaches the engine: a directory without the data files fails the open
        empty = os.path.join(self.store.dir, "no-data")
        os.mkdir(empty)
        self.fails(5, "config", "check", "--data-dir", empty)
        self.ok("config", "check", "--no-open", "--data-dir", empty)


class Catalog(CliCase):
    """catalog import, list and search on a store without n8n."""

    @classmethod
    def setUpClass(cls):
        cls.store = Store()
        cls.long_name = "Quarterly revenue summariser " + "x" * 70
        entries = [
            {"n8nWorkflowId": "imp-alpha", "name": "Alpha report", "tags": ["finance"],
             "description": "monthly numbers"},
            {"n8nWorkflowId": "imp-beta", "name": "Beta mailer", "tags": ["email"]},
            {"n8nWorkflowId": "imp-long", "name": cls.long_name},
        ]
        path = os.path.join(cls.store.dir, "entries.json")
        with open(path, "w") as f:
            json.dump(entries, f)
        cls.path = path

    @classmethod
    def tearDownClass(cls):
        cls.store.cleanup()

    def test_1_import_then_list_and_search(self):
        out = self.ok("catalog", "import", self.path)
        self.assertIn("imp-alpha", out)
        self.assertIn("Beta mailer", out)
        # again: the entries exist (EE_EEXISTS is an operation failure: 1)
        _, err = self.fails(1, "catalog", "import", self.path)
        self.assertIn("EE_EEXISTS", err)

        doc = self.ok_json("catalog", "list")
        self.assertEqual(doc["total"], 3)
        names = sorted(e["name"] for e in doc["data"])
        self.assertEqual(names, sorted(["Alpha report", "Beta mailer", self.long_name]))

        table = self.ok("catalog", "list").splitlines()
        self.assertTrue(table[0].startswith("ID "), table)
        self.assertEqual(len(table), 1 + 3 + 1)  # header, rows, footer
        # aligned: every row has its NAME column where the header has it
        col = table[0].index("NAME")
        for row in table[1:4]:
            self.assertNotEqual(row[col], " ")
            self.assertEqual(row[col - 1], " ")
        # a long cell is cut, the JSON keeps it whole
        long_row = [r for r in table if "Quarterly" in r][0]
        self.assertNotIn(self.long_name, long_row)
        self.assertIn("...", long_row)

        found = self.ok_json("catalog", "search", "alpha")
        self.assertEqual([e["n8nWorkflowId"] for e in found["data"]], ["imp-alpha"])
        self.assertIn("Alpha report", self.ok("catalog", "search", "fin"))
        self.assertNotIn("Beta", self.ok("catalog", "search", "fin"))

        page = self.ok_json("catalog", "list", "--limit", "2")
        self.assertEqual(len(page["data"]), 2)
        rest = self.ok_json("catalog", "list", "--limit", "2", "--cursor", page["nextCursor"])
        self.assertEqual(len(rest["data"]), 1)

    def test_2_unknown_category_and_bad_file(self):
        self.fails(3, "catalog", "list", "--category", "No such category")
        bad = os.path.join(self.store.dir, "bad.json")
        with open(bad, "w") as f:
            f.write("{not json")
        self.fails(6, "catalog", "import", bad)
        with open(bad, "w") as f:
            json.dump({"name": "no n8n id"}, f)
        self.fails(6, "catalog", "import", bad)
        self.fails(2, "catalog", "import", bad + ".missing")


class Runs(CliCase):
    """sync, run, show, executions, usage, quota, billing, purge, audit on one store."""

    WS = ("--workspace", "ws-run", "--user", "u-run", "--org", "org-run")

    @classmethod
    def setUpClass(cls):
        cls.store = Store(MAX_EXECUTIONS_PER_USER_PER_HOUR="1000")

    @classmethod
    def tearDownClass(cls):
        cls.store.cleanup()

    def setUp(self):
        if not hasattr(Runs, "wf"):
            out = self.ok("sync")
            self.assertIn("Hosts echo", out)
            self.assertIn("added 1,", out)
            doc = self.ok_json("catalog", "list")
            Runs.wf = doc["data"][0]["id"]
            # synced again: nothing changed
            self.assertEqual(self.ok_json("sync")["added"], [])

    def run_ok(self, *extra, user="u-run"):
        ws = ("--workspace", "ws-run", "--user", user, "--org", "org-run")
        return self.ok_json("run", "hostsEcho000001", *(ws + extra))

    def test_run_end_to_end(self):
        rec = self.run_ok("--input", '{"text": "hello cli"}')
        self.assertEqual(rec["status"], "completed", rec)
        self.assertEqual(rec["outputData"]["echo"], "hello cli")
        self.assertEqual(rec["workspaceId"], "ws-run")
        xid = rec["_id"]

        # by catalog id, parameters from a file, table output
        path = os.path.join(self.store.dir, "input.json")
        with open(path, "w") as f:
            json.dump({"text": "from a file"}, f)
        out = self.ok("run", self.wf, "--input", "@" + path, *self.WS)
        self.assertRegex(out, r"status:\s+completed")
        self.assertIn('"echo": "from a file"', out)

        # show: table, JSON, results, cost
        self.assertRegex(self.ok("show", xid, *self.WS), r"status:\s+completed")
        self.assertEqual(self.ok_json("show", xid, *self.WS)["_id"], xid)
        res = self.ok_json("show", xid, "--results", *self.WS)
        self.assertEqual(res["outputData"]["echo"], "hello cli")
        self.assertEqual(self.ok_json("show", xid, "--cost", *self.WS)["executionId"], xid)
        # another workspace does not see it; an unknown id is not found
        self.fails(3, "show", xid, "--workspace", "ws-other")
        self.fails(3, "show", "0123456789abcdef01234567", *self.WS)

        listed = self.ok_json("executions", "list", *self.WS)
        self.assertIn(xid, [e["_id"] for e in listed["data"]])
        table = self.ok("executions", "list", "--status", "completed", *self.WS)
        self.assertIn(xid, table)

        usage = self.ok_json("usage", *self.WS)
        self.assertEqual(usage["orgId"], "org-run")
        self.assertGreaterEqual(usage["predictions"]["usage"], 2)
        self.assertRegex(self.ok("usage", *self.WS), r"predictions\s+\d+")
        quota = self.ok_json("quota", *self.WS)
        self.assertTrue(quota["allowed"])
        self.assertGreaterEqual(quota["usage"], 2)

    def test_unknown_workflow_and_invalid_input(self):
        self.fails(3, "run", "no-such-n8n-workflow", *self.WS)
        self.fails(3, "run", "0123456789abcdef01234567", *self.WS)
        # the library refuses a request member: exit 6 and the error document
        out, err = self.fails(6, "run", self.wf, "--email", "not an address", "--json", *self.WS)
        self.assertEqual(json.loads(out)["error"]["name"], "EE_EINVAL")

    def test_a_key_that_is_not_utf8_queues_nothing(self):
        """The idempotency key was dropped (json_string() NULL) and the run
        queued without it: a retry would run the workflow twice."""
        ws = ("--workspace", "ws-badkey")
        for _ in range(2):
            self.fails(2, "run", self.wf, "--no-wait", "--idempotency-key", "retry-\udcff", *ws)
        self.assertEqual(self.ok_json("executions", "list", *ws)["data"], [])

    def test_no_wait_queues(self):
        doc = self.ok_json("run", self.wf, "--no-wait", "--input", '{"text": "later"}',
                           "--workspace", "ws-queue")
        self.assertRegex(doc["executionId"], r"^[0-9a-f]{24}$")
        # no process with workers runs it: it waits in the queue
        rec = self.ok_json("show", doc["executionId"], "--workspace", "ws-queue")
        self.assertEqual(rec["status"], "pending")

    def test_quota_refusal_exits_4(self):
        limit = {"MAX_EXECUTIONS_PER_USER_PER_HOUR": "1"}
        self.ok("run", self.wf, *self.WS[:2], "--user", "u-limited", env=limit)
        out, err = self.fails(4, "run", self.wf, *self.WS[:2], "--user", "u-limited", env=limit)
        self.assertIn("EE_ERATELIMIT", err)
        out, err = self.fails(4, "run", self.wf, *self.WS[:2], "--user", "u-limited", "--json",
                              env=limit)
        self.assertEqual(json.loads(out)["error"]["name"], "EE_ERATELIMIT")

    def test_billing_close_month_twice(self):
        ws = ("--workspace", "ws-bill")
        first = self.ok_json("billing", "close-month", "2025-01", *ws)
        self.assertTrue(first["changed"])
        self.assertEqual(first["billing"]["billingStatus"], "billed")
        second = self.ok_json("billing", "close-month", "2025-01", *ws)
        self.assertFalse(second["changed"])
        self.assertEqual(second["billing"]["billedAt"], first["billing"]["billedAt"])
        self.assertIn("already closed", self.ok("billing", "close-month", "2025-01", *ws))

        hist = self.ok_json("billing", "history", *ws)
        self.assertEqual([(r["month"], r["billingStatus"]) for r in hist["data"]],
                         [("2025-01", "billed")])
        self.assertRegex(self.ok("billing", "history", *ws), r"2025-01\s+billed")
        csv = self.ok("billing", "export", "2025-01", "--csv", *ws)
        self.assertTrue(csv.startswith("workspaceId,month,billingStatus,workflowId"), csv)
        exp = self.ok_json("billing", "export", "2025-01", *ws)
        self.assertEqual(exp["month"], "2025-01")
        self.fails(3, "billing", "export", "2024-03", *ws)      # no record
        self.fails(1, "billing", "close-month", "2999-01", *ws)  # not ended: EE_ESTATE

    def age(self, xid, days):
        """Date execution xid `days` earlier in the store. The engine's clock
        is the system's (the CLI has no other), so the record moves back in
        time instead: the storage's time column, which holds its createdAt and
        which the purge's range delete reads."""
        db = sqlite3.connect(os.path.join(self.store.dir, "engine.db"), timeout=30)
        try:
            with db:
                n = db.execute('UPDATE "ee_workflowExecutions" SET t = t - ? WHERE id = ?',
                               (days * 86400000, bytes.fromhex(xid))).rowcount
        finally:
            db.close()
        self.assertEqual(n, 1, "no record %s in the store" % xid)

    def test_purge_and_audit(self):
        rec = self.run_ok("--input", '{"text": "kept"}', user="u-purge")
        # retention is 90 days: nothing this fresh is deleted, the result stays
        doc = self.ok_json("purge")
        self.assertEqual(doc, {"results": 0, "audit": 0})
        self.assertEqual(self.ok_json("show", rec["_id"], "--results", *self.WS)["outputData"]
                         ["echo"], "kept")
        # a run created 92 days ago (past the 90 days and the day a run may
        # last): purged, and only it
        old = self.run_ok("--input", '{"text": "old"}', user="u-purge")
        self.assertEqual(self.ok_json("show", old["_id"], *self.WS)["status"], "completed")
        self.age(old["_id"], 92)
        doc = self.ok_json("purge", "--results")
        self.assertEqual(doc, {"results": 1})
        self.fails(3, "show", old["_id"], *self.WS)
        self.fails(3, "show", old["_id"], "--results", *self.WS)
        self.assertEqual(self.ok_json("show", rec["_id"], "--results", *self.WS)["outputData"]
                         ["echo"], "kept")
        self.assertEqual(self.ok_json("purge", "--results"), {"results": 0})

        platform = self.ok_json("audit")
        self.assertIn("catalog.synced", [e["action"] for e in platform["data"]])
        mine = self.ok_json("audit", *self.WS, "--action", "execution.")
        self.assertIn(rec["_id"], [e["target"]["id"] for e in mine["data"]])
        self.assertIn("execution.requested", self.ok("audit", *self.WS))
        self.assertEqual(self.ok_json("audit", *self.WS, "--from", "2999-01-01")["data"], [])

        # audit entries before a date: every one so far
        doc = self.ok_json("purge", "--audit-before", "2999-01-01")
        self.assertNotIn("results", doc)
        self.assertGreater(doc["audit"], 0)
        self.assertEqual(self.ok_json("audit", *self.WS)["data"], [])


class Waiting(CliCase):
    """run's progress line on a terminal, and Ctrl-C while it waits."""

    @classmethod
    def setUpClass(cls):
        cls.store = Store()
        subprocess.run([CLI, "sync"], env=cls.store.env, capture_output=True, timeout=120,
                       check=True)

    @classmethod
    def tearDownClass(cls):
        N8N.config(delayMs=0)
        cls.store.cleanup()

    def test_progress_line_only_on_a_terminal(self):
        N8N.config(delayMs=1500)
        try:
            # stderr is a pipe: no progress line
            rc, out, err = self.cli("run", "hostsEcho000001", "--workspace", "ws-p1")
            self.assertEqual(rc, 0, err)
            self.assertNotRegex(err, r"(pending|running) +\d+\.\ds")  # (text mode turns \r into \n)
            # stderr is a terminal: a spinner line with the execution id
            master, slave = pty.openpty()
            proc = subprocess.Popen([CLI, "run", "hostsEcho000001", "--workspace", "ws-p2",
                                     "--json"], env=self.store.env, stdout=subprocess.PIPE,
                                    stderr=slave, stdin=subprocess.DEVNULL)
            os.close(slave)
            seen = b""
            while True:
                ready, _, _ = select.select([master], [], [], 120)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            out = proc.stdout.read()
            proc.stdout.close()
            self.assertEqual(proc.wait(timeout=120), 0)
            os.close(master)
        finally:
            N8N.config(delayMs=0)
        rec = json.loads(out)
        text = seen.decode("utf-8", "replace")
        self.assertIn("\r", text)
        self.assertIn(rec["_id"], text)
        self.assertRegex(text, r"(pending|running) +\d+\.\ds")
        for secret in SECRETS:
            self.assertNotIn(secret, text)

    def test_run_that_times_out_exits_1_with_its_record(self):
        N8N.config(delayMs=4000)
        try:
            rc, out, err = self.cli("run", "hostsEcho000001", "--workspace", "ws-slow",
                                    "--timeout", "1")
        finally:
            N8N.config(delayMs=0)
        self.assertEqual(rc, 1, err)
        self.assertRegex(out, r"status:\s+failed")
        self.assertIn("did not complete", err)
        self.assertIn("EE_ETIMEOUT", err)

    def test_ctrl_c_cancels_the_run(self):
        N8N.config(delayMs=5000)
        try:
            proc = subprocess.Popen([CLI, "run", "hostsEcho000001", "--workspace", "ws-int"],
                                    env=self.store.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            xid = None
            for _ in range(600):  # until the run is submitted
                listed = self.ok_json("executions", "list", "--workspace", "ws-int")
                if listed["data"]:
                    xid = listed["data"][0]["_id"]
                    break
                time.sleep(0.05)
            self.assertIsNotNone(xid)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            N8N.config(delayMs=0)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("interrupted: execution %s cancelled" % xid, err)
        self.assertEqual(self.ok_json("show", xid, "--workspace", "ws-int")["status"],
                         "cancelled")


class RotateSecret(CliCase):
    def setUp(self):
        self.store = Store(PLATFORM_SERPER_KEY=SERPER_KEY)

    def tearDown(self):
        self.store.cleanup()

    def test_rotate_then_read_with_the_new_secret(self):
        doc = self.ok_json("provision")
        self.assertGreaterEqual(doc["created"], 1)
        self.assertRegex(self.ok("provision"), r"unchanged [1-9]")

        rotating = {"API_KEY_ENCRYPTION_SECRET": NEW_SECRET,
                    "API_KEY_ENCRYPTION_PREVIOUS_SECRETS": SECRET}
        doc = self.ok_json("rotate-secret", env=rotating)
        self.assertGreaterEqual(doc["rotated"], 1)
        self.assertEqual(doc["failed"], 0)

        # the new secret alone reads everything: provisioning opens each stored
        # credential to compare it, a second rotation has nothing left to do
        new_only = {"API_KEY_ENCRYPTION_SECRET": NEW_SECRET}
        doc = self.ok_json("provision", env=new_only)
        self.assertGreaterEqual(doc["unchanged"], 1)
        self.assertEqual(doc["created"] + doc["updated"], 0)
        again = self.ok_json("rotate-secret", env=new_only)
        self.assertEqual((again["rotated"], again["failed"]), (0, 0))
        self.assertIn("may be dropped", self.ok("rotate-secret", env=new_only))
        # the old secret alone no longer opens the engine
        _, err = self.fails(5, "provision")
        self.assertIn("EE_ECRYPTO", err)


class Serve(CliCase):
    @classmethod
    def setUpClass(cls):
        cls.store = Store()

    @classmethod
    def tearDownClass(cls):
        cls.store.cleanup()

    def test_serve_answers_healthz_then_sigterm(self):
        self.ok("sync")
        tokens = os.path.join(self.store.dir, "tokens.json")
        with open(tokens, "w") as f:
            json.dump({"tokens": [{"token": SERVER_TOKEN, "workspaceId": "ws-s",
                                   "userId": "u-s", "role": "admin"}]}, f)
        port = free_port()
        log = open(os.path.join(self.store.dir, "serve.log"), "w+")
        proc = subprocess.Popen([CLI, "serve", "--addr", "127.0.0.1:%d" % port,
                                 "--tokens", tokens], env=self.store.env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            status = None
            for _ in range(400):
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port,
                                                timeout=5) as r:
                        status = r.status, json.loads(r.read())
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.assertEqual(status, (200, {"status": "ok"}))
            # the same store: the server reads the catalog the CLI synced
            req = urllib.request.Request("http://127.0.0.1:%d/api/engines/catalog" % port,
                                         headers={"Authorization": "Bearer " + SERVER_TOKEN})
            with urllib.request.urlopen(req, timeout=30) as r:
                self.assertEqual(r.status, 200)
                entries = json.loads(r.read())["data"]
            self.assertEqual([e["name"] for e in entries], ["Hosts echo"])
            # one run through the server starts its workers; then a run the CLI
            # submits with --workers 0 is run by the server while the CLI waits
            req = urllib.request.Request(
                "http://127.0.0.1:%d/api/engines/execute/%s" % (port, entries[0]["id"]),
                method="POST", data=json.dumps({"parameters": {"text": "via http"}}).encode(),
                headers={"Authorization": "Bearer " + SERVER_TOKEN,
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    self.assertEqual(r.status, 200)
            except urllib.error.HTTPError as e:
                self.fail("execute through the server: %d %s" % (e.code, e.read()))
            # (this process's n8n URL leads nowhere: had it run the workflow
            # itself, the run would have failed)
            rc, out, err = self.cli("run", "hostsEcho000001", "--workers", "0", "--json",
                                    "--workspace", "ws-s", "--input", '{"text": "by the server"}',
                                    env={"N8N_BASE_URL": "http://127.0.0.1:%d" % free_port()},
                                    timeout=120)
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["outputData"]["echo"], "by the server")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=120), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.seek(0)
            text = log.read()
            log.close()
        for secret in SECRETS:
            self.assertNotIn(secret, text)

    def test_serve_without_a_server_binary(self):
        # a copy of the CLI alone in a directory, with an empty PATH
        lonely = os.path.join(self.store.dir, "bin")
        os.mkdir(lonely)
        copy = os.path.join(lonely, "execengine")
        with open(CLI, "rb") as src, open(copy, "wb") as dst:
            dst.write(src.read())
        os.chmod(copy, 0o755)
        env = dict(self.store.env, PATH=lonely)
        p = subprocess.run([copy, "serve"], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("execengine-server", p.stderr)


if __name__ == "__main__":
    CLI = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
