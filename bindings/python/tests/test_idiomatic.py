"""The idiomatic layer (execengine/_api.py, generated from the manifest):
every exported function has a binding, the generated file is fresh, and every
module works through it against the built library - including executions
against a fake n8n, refusals mapped to their exception classes with detail,
and the asyncio variants."""
import asyncio
import json
import shutil
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import execengine as ee

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))
GEN = os.path.join(PKG_ROOT, "tools", "gen.py")
FAKE = os.path.join(HERE, "fake_n8n_gmail.py")
SECRET = "test-encryption-secret-0123456789abcdef0123"
N8N_KEY = "n8n-key-canary-7c1e"


def exports():
    names = []
    with open(os.path.join(REPO, "abi", "exports.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names


def resolve(path):
    obj = ee
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def memory_config(**extra):
    cfg = ee.Config()
    cfg.set("EE_STORAGE_URI", "memory:")
    cfg.set("EE_COUNTERS_URI", "memory:")
    cfg.set("API_KEY_ENCRYPTION_SECRET", SECRET)
    for k, v in extra.items():
        cfg.set(k, v)
    return cfg


def eventually(probe, timeout=30.0):
    """probe()'s first truthy value, polling up to `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


class CoverageTest(unittest.TestCase):
    def test_every_export_has_an_idiomatic_binding(self):
        manifest = {f["name"] for f in ee.native.MANIFEST["functions"]}
        missing = sorted((manifest | set(exports())) - set(ee.BINDINGS))
        self.assertEqual(missing, [], "exported functions without a Python binding")
        for name, path in ee.BINDINGS.items():
            with self.subTest(name=name):
                self.assertTrue(callable(resolve(path)) or isinstance(resolve(path), type), path)

    #: Calls whose struct is a table of C callbacks: ctypes only (docs/bindings.md).
    CTYPES_ONLY = {"ee_counters_new_custom", "ee_storage_new_custom", "ee_transport_new_custom",
                   "ee_engine_open_parts"}

    def test_every_struct_call_takes_plain_python_values(self):
        """Every exported function taking a pointer to a public C struct
        (manifest type ptr:<struct>) is reachable with dicts, lists, str and
        bytes: each is called here that way (a probe per function)."""
        struct_calls = {f["name"] for f in ee.native.MANIFEST["functions"]
                        if any(p["type"].startswith("ptr:") for p in f["params"])}
        with ee.Counters.memory() as c, ee.Storage.memory() as s, \
                memory_config() as cfg, ee.Engine.open(cfg) as engine, \
                ee.Principal("ws-cov", "u-cov", "org-cov") as p:
            state = {}

            def admit():
                state["t"] = engine.quota.admit_fast(p, 0)
                return state["t"]
            key = {"userId": "u", "workflowCatalogId": "w", "period": "2025-10"}
            probes = {
                "ee_counters_reserve": lambda: c.reserve({"key": "k", "limit": 5}, 1000, 1),
                "ee_counters_reserve_many": lambda: c.reserve_many([{"key": "k", "limit": 5}],
                                                                   1000, 1),
                "ee_counters_reserve_many_leased": lambda: c.reserve_many_leased(
                    [{"key": "k", "limit": 5}], [1000], 1),
                "ee_counters_get": lambda: c.get("k", 1),
                "ee_quota_admit_fast": admit,
                "ee_quota_ticket_refusal": lambda: state["t"].refusal() is None or None,
                "ee_quota_ticket_json": lambda: state["t"].to_json(),
                "ee_quota_ticket_from_json": lambda: ee.QuotaTicket.from_json(
                    state["t"].to_json()),
                "ee_quota_renew": lambda: engine.quota.renew(state["t"]) or True,
                "ee_quota_finish": lambda: engine.quota.finish_ticket(state["t"], True) or True,
                "ee_storage_increment": lambda: s.increment("userWorkflowUsage", "ws", key,
                                                            {"executionsCount": 1}, 1),
                "ee_storage_query": lambda: s.query("userWorkflowUsage", "ws",
                                                    {"eq": {"userId": "u"}, "limit": 1}),
                "ee_storage_count": lambda: s.count("userWorkflowUsage", "ws",
                                                    {"eq": {"userId": "u"}}),
                "ee_gateway_handle": lambda: engine.gateway.handle(
                    {"method": "GET", "path": "/openrouter/x"}),
            }
            self.assertEqual(sorted(struct_calls - self.CTYPES_ONLY), sorted(probes),
                             "a struct call without a plain-value probe (or binding)")
            for name, probe in probes.items():  # in order: the ticket calls need admit first
                with self.subTest(name=name):
                    self.assertTrue(probe(), name)

    def test_generated_file_is_fresh(self):
        r = subprocess.run([sys.executable, GEN, "--check"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_new_export_gets_a_binding_by_the_rule(self):
        sys.path.insert(0, os.path.dirname(GEN))
        try:
            import gen
        finally:
            sys.path.pop(0)
        manifest = json.loads(json.dumps(ee.native.MANIFEST))
        manifest["functions"].append({
            "name": "ee_catalog_frobnicate", "header": "catalog.h", "returns": "status",
            "params": [{"name": "engine", "type": "handle:ee_engine"},
                       {"name": "query_json", "type": "str", "json": True},
                       {"name": "out", "type": "str_out"}]})
        text = gen.generate(manifest)
        self.assertIn("'ee_catalog_frobnicate': 'Catalog.frobnicate'", text)
        self.assertIn("def frobnicate(self, query: Any = None, **fields: Any)", text)
        # ... and the checked-in file, without it, is not what the manifest gives
        with open(os.path.join(PKG_ROOT, "execengine", "_api.py"), encoding="utf-8") as f:
            self.assertNotEqual(text, f.read())


class LookupTest(unittest.TestCase):
    """EXECENGINE_LIBRARY, then EE_LIBRARY_PATH, then pkg-config's libdir,
    then the loader."""
    LIB = ee.native.lib._name

    def loaded(self, env):
        full = {k: v for k, v in os.environ.items()
                if k not in ("EXECENGINE_LIBRARY", "EE_LIBRARY_PATH", "PKG_CONFIG_PATH",
                             "LD_LIBRARY_PATH")}
        full.update(env)
        r = subprocess.run([sys.executable, "-c",
                            "import execengine as e; print(e.native.lib._name)"],
                           capture_output=True, text=True, env=full, timeout=60)
        return r.returncode, r.stdout.strip(), r.stderr

    def test_execengine_library_first_then_alias(self):
        code, name, err = self.loaded({"EXECENGINE_LIBRARY": self.LIB,
                                       "EE_LIBRARY_PATH": "/nonexistent/libexecengine.so"})
        self.assertEqual((code, name), (0, self.LIB), err)
        code, name, err = self.loaded({"EE_LIBRARY_PATH": self.LIB})
        self.assertEqual((code, name), (0, self.LIB), err)
        code, name, err = self.loaded({"EXECENGINE_LIBRARY": "/nonexistent/libexecengine.so"})
        self.assertNotEqual(code, 0)
        self.assertIn("EXECENGINE_LIBRARY", err)

    def test_pkg_config_libdir(self):
        import shutil
        if not (shutil.which("pkg-config") or shutil.which("pkgconf")):
            self.fail("no pkg-config (scripts/setup installs it)")
        with tempfile.TemporaryDirectory() as tmp:
            libdir = os.path.join(tmp, "lib")
            os.makedirs(libdir)
            soname = ee.native.MANIFEST["library"]["soname"]
            os.symlink(os.path.realpath(self.LIB), os.path.join(libdir, soname))
            with open(os.path.join(tmp, "execengine.pc"), "w") as f:
                f.write("prefix=%s\nlibdir=${prefix}/lib\n\nName: execengine\n"
                        "Description: x\nVersion: %s\nLibs: -L${libdir} -lexecengine\n"
                        % (tmp, ee.version()))
            code, name, err = self.loaded({"PKG_CONFIG_PATH": tmp})
            self.assertEqual((code, name), (0, os.path.join(libdir, soname)), err)


class ExceptionsTest(unittest.TestCase):
    def test_one_class_per_status_with_idiomatic_names(self):
        for code, name in ee.native.STATUS_NAMES.items():
            if code >= 0:
                continue
            cls = getattr(ee.errors, name)
            self.assertTrue(issubclass(cls, ee.ExecEngineError))
            self.assertIs(getattr(ee, cls.__name__), cls)
            self.assertIs(ee.ExecEngineError.for_status(code).__class__, cls)
        self.assertIs(ee.errors.EE_EQUOTA, ee.QuotaExceeded)
        self.assertIs(ee.errors.EE_ECREDENTIALS, ee.CredentialGap)
        self.assertIs(ee.errors.EE_EVALIDATION, ee.ValidationError)
        self.assertIs(ee.errors.EE_ESPEND, ee.BudgetExceeded)
        self.assertIs(ee.errors.EE_ENOTFOUND, ee.NotFound)
        self.assertIs(ee.errors.EE_ECONFLICT, ee.Conflict)
        self.assertIs(ee.errors.EE_ERATELIMIT, ee.RateLimited)

    def test_last_error_and_clear(self):
        with self.assertRaises(ee.ParseError):
            ee.templates.render("{{#if}}", {})
        err = ee.errors.last_error()
        self.assertIsInstance(err, ee.ParseError)
        self.assertIn("never closed", err.message)
        ee.errors.clear()
        self.assertIsNone(ee.errors.last_error())


class FreeFunctionsTest(unittest.TestCase):
    def test_templates(self):
        self.assertEqual(ee.templates.render("Hi {{name}}!", {"name": "Ada"}), "Hi Ada!")
        self.assertEqual(ee.templates.render("{{> p}}", {"x": 1}, {"p": "x={{x}}"}), "x=1")
        r = ee.templates.render_len("{{a}}", a="é")
        self.assertEqual((r.value, r.length), ("é", 2))  # bytes of UTF-8

    def test_cost(self):
        self.assertEqual(ee.cost.allocate(100, [1, 2, 3]), [17, 33, 50])
        self.assertEqual(sum(ee.cost.allocate(7, [1, 1, 1])), 7)
        self.assertEqual(ee.cost.schedule_runs("@daily", 0), 30)
        r = ee.cost.charge_calc(1000, 5000, 0, 0, 1)
        self.assertEqual(r.charged, 1500)
        self.assertEqual(ee.cost.charge(1000, 5000, 0, 0, 1)["charged"]["nanoUsd"], 1500)
        with self.assertRaises(ee.InvalidArgument):
            ee.cost.schedule_runs("not a schedule", 0)
        with ee.CostTable() as table:
            table.load_prices({"data": [{"id": "m/x", "pricing": {
                "prompt": "0.000001", "completion": "0.000002"}}]})
            self.assertIn("m/x", json.dumps(table.price("m/x")))
            with self.assertRaises(ee.PriceUnknown):
                table.price("m/unknown")

    def test_schema_validation_error_carries_pointers(self):
        with ee.Schema.compile({"type": "object", "properties": {
                "a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "string"}},
                "c": {"default": 7}}}) as schema:
            self.assertTrue(schema.validate({"a": 1})["valid"])
            with self.assertRaises(ee.ValidationError) as cm:
                schema.validate({"a": "x", "b": ["ok", 5]})
            self.assertEqual(sorted(cm.exception.pointers), ["/a", "/b/1"])
            self.assertEqual(schema.apply_defaults({"a": 1}), {"a": 1, "c": 7})
        self.assertTrue(schema.closed)
        with self.assertRaises(ValueError):
            schema.validate({})

    def test_n8n_and_storage_namespaces(self):
        self.assertEqual(ee.n8n.map_status("success"), "completed")
        self.assertEqual(ee.n8n.workflow_trigger({"nodes": [
            {"name": "W", "type": "n8n-nodes-base.webhook",
             "parameters": {"path": "p", "httpMethod": "POST"}}]})["path"], "p")
        ident = ee.storage.new_id()
        self.assertRegex(ident, "^[0-9a-f]{24}$")
        self.assertGreater(len(ee.storage.collection_list()), 0)


class HandlesTest(unittest.TestCase):
    def test_principal(self):
        with ee.Principal("ws-1", "u-1", None) as p:
            # no organisation: the workspace is its own
            self.assertEqual((p.workspace(), p.user(), p.org()), ("ws-1", "u-1", "ws-1"))
        with self.assertRaises(ee.InvalidArgument):
            ee.Principal("", "u", "o")
        with self.assertRaises(TypeError):
            ee.Principal("ws", 5, None)

    def test_storage_and_counters(self):
        with ee.Storage.memory() as st:
            self.assertEqual(st.backend_name(), "memory")
            self.assertEqual(st.delete_range("workflowExecutions", "ws-1", 0, 10**13), 0)
            with self.assertRaises(ee.NotFound):
                st.get("workflowExecutions", "ws-1", ee.storage.new_id())
        with ee.Counters.memory() as c:
            self.assertEqual(c.backend_name(), "memory")
        with tempfile.TemporaryDirectory() as tmp:
            with ee.Storage.open_uri("sqlite://%s/x.db" % tmp) as st:
                self.assertEqual(st.backend_name(), "sqlite")

    def test_http_request_and_mail(self):
        with ee.HttpRequest("POST", "http://127.0.0.1:1/x") as req:
            req.add_header("X-A", "1")
            req.set_body(b"\x00\x01body")
            req.set_limits(100, 200, 300)
            self.assertEqual((req.method(), req.url(), req.header_count()),
                             ("POST", "http://127.0.0.1:1/x", 1))
            self.assertEqual(tuple(req.header_at(0)), ("X-A", "1"))
            self.assertEqual(req.body(), b"\x00\x01body")
            self.assertEqual((req.connect_timeout_ms(), req.timeout_ms(),
                              req.max_response_bytes()), (100, 200, 300))
            with ee.TransportOptions() as opts, ee.Transport.curl(opts) as t:
                with self.assertRaises(ee.NetworkError):
                    t.http(req)
        with ee.Mail("smtp://127.0.0.1:1", "a@example.com") as m:
            m.add_recipient("b@example.com")
            m.set_message("Subject: x\r\n\r\nhi")
            self.assertEqual((m.sender(), m.recipient_count(), m.recipient_at(0)),
                             ("a@example.com", 1, "b@example.com"))
            self.assertEqual(m.message(), b"Subject: x\r\n\r\nhi")

    def test_http_round_trip_with_a_streaming_callback(self):
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                out = b"echo:\x00" + body  # a NUL byte: chunks are not C strings
                self.send_response(201)
                self.send_header("Content-Length", str(len(out)))
                self.send_header("X-Seen", self.headers.get("X-A", ""))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        srv = HTTPServer(("127.0.0.1", 0), H)
        th = threading.Thread(target=srv.handle_request)
        th.start()
        chunks = []
        try:
            with ee.TransportOptions() as opts, ee.Transport.curl(opts) as t, \
                    ee.HttpRequest("POST", "http://127.0.0.1:%d/" % srv.server_port) as req:
                req.add_header("X-A", "v")
                req.set_body(b"payload")
                req.set_stream(lambda resp, chunk: chunks.append((resp.status(), chunk)))
                with t.http(req) as resp:
                    self.assertEqual(resp.status(), 201)
                    self.assertEqual(resp.header("X-Seen"), "v")
                    self.assertEqual(resp.body(), b"echo:\x00payload")
                    self.assertGreaterEqual(resp.attempts(), 1)
        finally:
            th.join(30)
            srv.server_close()
        self.assertEqual(b"".join(c for _, c in chunks), b"echo:\x00payload")
        self.assertEqual({s for s, _ in chunks}, {201})

    def test_engine_module_objects(self):
        with memory_config() as cfg, ee.Engine.open(cfg) as engine:
            for attr, cls in (("catalog", ee.Catalog), ("credentials", ee.Credentials),
                              ("quota", ee.Quota), ("executions", ee.Executions),
                              ("billing", ee.Billing), ("audit", ee.Audit),
                              ("gateway", ee.Gateway), ("email", ee.Email)):
                self.assertIsInstance(getattr(engine, attr), cls)
        with self.assertRaises(ValueError):
            engine.catalog.list()


class FakeN8n:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("fake n8n did not start")
        self.url = "http://127.0.0.1:%d" % int(line.split()[1])

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


class EngineModulesTest(unittest.TestCase):
    """Every engine module against one engine on a fake n8n."""

    @classmethod
    def setUpClass(cls):
        cls.n8n = FakeN8n()
        cls.logs = []
        cls.cfg = memory_config(N8N_BASE_URL=cls.n8n.url, N8N_API_KEY=N8N_KEY,
                                MAX_EXECUTIONS_PER_USER_PER_HOUR="50")
        cls.cfg.set_log(lambda lvl, mod, msg: cls.logs.append(msg), "debug")
        cls.engine = ee.Engine.open(cls.cfg)
        cls.a = ee.Principal("ws-a", "u-a", "org-a")
        cls.report = cls.engine.catalog.sync()
        names = {e["name"]: e["id"] for e in cls.report["added"]}
        cls.wf, cls.gmail = names["Hosts echo"], names["Hosts gmail"]
        cls.engine.catalog.update(cls.wf, inputSchema={
            "type": "object", "required": ["text"],
            "properties": {"text": {"type": "string"}}})

    @classmethod
    def tearDownClass(cls):
        cls.engine.close()
        cls.cfg.close()
        cls.n8n.stop()
        for line in cls.logs:
            assert N8N_KEY not in line and SECRET not in line

    def test_catalog(self):
        page = self.engine.catalog.list(self.a)
        self.assertEqual(sorted(e["name"] for e in page["data"]), ["Hosts echo", "Hosts gmail"])
        hits = self.engine.catalog.search(self.a, q="echo")
        self.assertEqual([e["id"] for e in hits["data"]], [self.wf])
        self.assertEqual(self.engine.catalog.get(self.a, self.wf)["name"], "Hosts echo")
        with self.assertRaises(ee.NotFound):
            self.engine.catalog.get(self.a, "0" * 24)
        cats = self.engine.catalog.category_list(includeInactive=True)
        self.assertIsInstance(cats["data"], list)
        self.engine.catalog.validate_input(self.a, self.wf, text="x")  # no exception

    def test_validation_error_with_pointers(self):
        with self.assertRaises(ee.ValidationError) as cm:
            self.engine.catalog.validate_input(self.a, self.wf, {"text": 5})
        self.assertEqual(cm.exception.pointers, ["/text"])
        self.assertEqual(cm.exception.code, -20)
        with self.assertRaises(ee.ValidationError) as cm:
            self.engine.executions.run(self.a, self.wf, parameters={"text": ["no"]})
        self.assertEqual(cm.exception.pointers, ["/text"])

    def test_execution_run_get_results_cost_list(self):
        rec = self.engine.executions.run(self.a, self.wf, parameters={"text": "hello"})
        self.assertEqual(rec["status"], "completed")
        self.assertEqual(rec["outputData"]["echo"], "hello")
        xid = rec["_id"]
        ex = self.engine.executions
        self.assertEqual(ex.get(self.a, xid)["status"], "completed")
        self.assertEqual(ex.results(self.a, xid)["outputData"]["echo"], "hello")
        self.assertEqual(ex.cost(self.a, xid)["executionId"], xid)
        self.assertIn(xid, [r["_id"] for r in ex.list(self.a)["data"]])
        self.assertEqual(ex.wait(self.a, xid, 1000)["status"], "completed")
        with ee.Principal("ws-b", "u-b", "org-b") as b:
            with self.assertRaises(ee.NotFound):
                ex.get(b, xid)
        self.assertIn("workers", ex.stats())

    def test_execution_start_with_done_callback(self):
        done = threading.Event()
        seen = []

        def on_done(xid, status, record):
            seen.append((xid, status, record["status"]))
            done.set()

        xid = self.engine.executions.start(self.a, self.wf, {"parameters": {"text": "cb"}},
                                           on_done=on_done)
        self.assertTrue(done.wait(60))
        self.assertEqual(seen, [(xid, 0, "completed")])

    def test_async_variants_do_not_block_the_loop(self):
        async def main():
            ticks = 0
            stop = asyncio.Event()

            async def ticker():
                nonlocal ticks
                while not stop.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            t = asyncio.ensure_future(ticker())
            rec = await self.engine.executions.run_async(self.a, self.wf,
                                                         parameters={"text": "async"})
            rec2 = await self.engine.executions.start_async(self.a, self.wf,
                                                            parameters={"text": "cb"})
            waited = await self.engine.executions.wait_async(self.a, rec["_id"], 1000)
            report = await self.engine.catalog.sync_async()
            stop.set()
            await t
            return rec, rec2, waited, report, ticks

        rec, rec2, waited, report, ticks = asyncio.run(main())
        self.assertEqual((rec["status"], rec2["status"], waited["_id"]),
                         ("completed", "completed", rec["_id"]))
        self.assertIn("unchanged", report)
        self.assertGreater(ticks, 1)  # the loop ran while the calls waited

    def test_start_async_with_a_repeated_idempotency_key(self):
        """A repeated idempotencyKey answers the first run's id and its done
        callback is never called (exec.h): start_async awaited it forever."""
        async def main():
            first = await self.engine.executions.start_async(
                self.a, self.wf, parameters={"text": "once"}, idempotencyKey="py-idem-1")
            again = await asyncio.wait_for(self.engine.executions.start_async(
                self.a, self.wf, parameters={"text": "once"}, idempotencyKey="py-idem-1"), 30)
            return first, again

        first, again = asyncio.run(main())
        self.assertEqual(first["status"], "completed")
        self.assertEqual(again["_id"], first["_id"])
        self.assertEqual(again["status"], "completed")

    def test_credential_gap(self):
        route = self.engine.credentials.route(self.a, {"nodeNames": ["gmail"]}, {})
        self.assertEqual([g["credentialName"] for g in route["gaps"]], ["gmailOAuth2"])
        with self.assertRaises(ee.CredentialGap) as cm:
            self.engine.executions.run(self.a, self.gmail, parameters={"text": "x"})
        self.assertEqual([g["credentialName"] for g in cm.exception.gaps], ["gmailOAuth2"])
        self.assertEqual(cm.exception.name, "EE_ECREDENTIALS")

    def test_credentials_keys(self):
        key = "sk-or-v1-canary-" + "9" * 32
        with ee.Principal("ws-k", "u-k", "org-k") as p:
            added = self.engine.credentials.key_add(p, provider="openrouter", name="mine",
                                                    apiKey=key)
            self.assertNotIn(key, json.dumps(added))
            kid = added.get("id") or added.get("_id")
            keys = self.engine.credentials.key_list(p)
            self.assertNotIn(key, json.dumps(keys))
            self.assertEqual(self.engine.credentials.key_get(p, kid)["keyName"], "mine")
            self.engine.credentials.key_delete(p, kid)
            with self.assertRaises(ee.NotFound):
                self.engine.credentials.key_get(p, kid)
        self.assertIsInstance(self.engine.credentials.platform_list(), (list, dict))

    def test_quota_refusal_with_retry_after(self):
        self.engine.quota.plan_put(name="tiny", predictionsPerPeriod=1, storageBytes=-1,
                                   monthlySpendCapNanoUsd=-1, period="rolling30d")
        self.engine.quota.subscription_put(orgId="org-q", plan="tiny")
        with ee.Principal("ws-q", "u-q", "org-q") as q:
            ok = self.engine.quota.admit(q, estimatedCostNanoUsd=0)
            self.assertTrue(ok["allowed"])
            self.engine.quota.finish_json(ok["ticket"], 1, 0)
            with self.assertRaises(ee.QuotaExceeded) as cm:
                self.engine.quota.admit(q, estimatedCostNanoUsd=0)
            err = cm.exception
            self.assertEqual(err.detail["quota"], "predictions")
            self.assertIsInstance(err.retry_after, float)
            self.assertGreater(err.retry_after, 0)
            self.assertEqual(err.retry_after, err.retry_after_ms / 1000)
            self.assertEqual(self.engine.quota.usage(q)["predictions"]["usage"], 1)
            self.assertEqual(self.engine.quota.subscription_get("org-q")["plan"], "tiny")
        self.assertIn("tiny", [p["name"] for p in self.engine.quota.plan_list()["plans"]])

    def test_rate_limit_is_rate_limited_with_retry_after(self):
        with memory_config(MAX_EXECUTIONS_PER_USER_PER_HOUR="1") as cfg, \
                ee.Engine.open(cfg) as engine, ee.Principal("ws-r", "u-r", "org-r") as r:
            engine.quota.admit(r)
            with self.assertRaises(ee.RateLimited) as cm:
                engine.quota.admit(r)
            self.assertGreater(cm.exception.retry_after, 0)

    def test_billing_and_audit(self):
        before = self.engine.audit.stats()["appended"]
        rec = self.engine.executions.run(self.a, self.wf, parameters={"text": "bill"})
        # Accounting and the audit entry may trail the final record: wait
        # (bounded) instead of asserting at once.
        cur = eventually(lambda: (lambda c: c if c["usage"]["totalExecutions"] >= 1 else None)(
            self.engine.billing.current(self.a)))
        month = cur["month"]
        self.assertEqual(self.engine.billing.month(self.a, month)["month"], month)
        self.assertIn("data", self.engine.billing.history(self.a))
        self.assertIsInstance(self.engine.billing.usage(self.a), dict)
        with self.assertRaises(ee.InvalidState):  # the month is still open
            self.engine.billing.export(self.a, month, "csv")

        def finished():
            entries = self.engine.audit.query(self.a, limit=200)["data"]
            return [e for e in entries if e["action"] == "execution.finished"
                    and e["target"]["id"] == rec["_id"]] or None
        self.assertEqual(len(eventually(finished)), 1)
        self.assertGreater(self.engine.audit.stats()["appended"], before)

    def test_generic_callback_is_kept_and_cleared(self):
        seen = []
        self.engine.quota.set_alert_callback(seen.append)
        self.assertIn("ee_quota_set_alert_callback", self.engine._callbacks)
        self.engine.quota.set_alert_callback(None)
        self.assertNotIn("ee_quota_set_alert_callback", self.engine._callbacks)

    def test_gateway_listen(self):
        url = self.engine.gateway.listen("127.0.0.1:0")
        self.assertTrue(url.startswith("http://127.0.0.1:"), url)


class SmtpSink:
    """tests/support/smtp_sink.py: a real SMTP server (aiosmtpd) on loopback
    writing each accepted message to a file."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ee-py-smtp-")
        script = os.path.join(REPO, "tests", "support", "smtp_sink.py")
        self.proc = subprocess.Popen(["python3", script, self.dir], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("the SMTP sink did not start (python3-aiosmtpd installed?)")
        self.port = int(line.split()[1])

    def messages(self):
        names = sorted(f for f in os.listdir(self.dir) if f.endswith(".eml"))
        out = []
        for n in names:
            with open(os.path.join(self.dir, n), "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
        return out

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class EmailTest(unittest.TestCase):
    """engine.email: templates (admin), a results e-mail queued for a run and
    delivered through a real SMTP server by outbox_run (and its async form)."""

    @classmethod
    def setUpClass(cls):
        cls.n8n = FakeN8n()
        cls.smtp = SmtpSink()
        cls.cfg = memory_config(N8N_BASE_URL=cls.n8n.url, N8N_API_KEY=N8N_KEY,
                                SMTP_HOST="127.0.0.1", SMTP_PORT=str(cls.smtp.port),
                                PLATFORM_FROM_EMAIL="results@example.com", EMAIL_POLL_MS="0")
        cls.engine = ee.Engine.open(cls.cfg)
        cls.a = ee.Principal("ws-mail", "u-mail", "org-mail")
        names = {e["name"]: e["id"] for e in cls.engine.catalog.sync()["added"]}
        cls.wf = names["Hosts echo"]

    @classmethod
    def tearDownClass(cls):
        cls.engine.close()
        cls.cfg.close()
        cls.smtp.stop()
        cls.n8n.stop()

    def test_templates_are_admin_only_and_round_trip(self):
        mail = self.engine.email
        with self.assertRaises(ee.PermissionDenied):
            mail.template_put(self.a, workflowCatalogId=self.wf, subjectTemplate="x",
                              bodyTemplate="y")
        with self.assertRaises(ee.ParseError):
            mail.template_put(None, workflowCatalogId=self.wf, subjectTemplate="{{#if}}",
                              bodyTemplate="y")
        put = mail.template_put(None, workflowCatalogId=self.wf,
                                subjectTemplate="{{workflowName}} said {{results.echo}}",
                                bodyTemplate="<p>{{results.echo}}</p>", isActive=True)
        self.assertEqual(put["workflowCatalogId"], self.wf)
        self.assertEqual(mail.template_get(None, self.wf)["subjectTemplate"],
                         "{{workflowName}} said {{results.echo}}")
        self.assertIn(self.wf, [t["workflowCatalogId"] for t in mail.template_list(None)["data"]])

    def test_results_e_mail_is_delivered_by_the_outbox(self):
        mail = self.engine.email
        mail.template_put(None, workflowCatalogId=self.wf,
                          subjectTemplate="{{workflowName}} said {{results.echo}}",
                          bodyTemplate="<p>{{results.echo}}</p>", isActive=True)
        rec = self.engine.executions.run(self.a, self.wf, parameters={"text": "py-mail-1"})
        self.assertEqual(rec["status"], "completed")
        queued = mail.send_execution(self.a, rec["_id"], to="reader@example.com")
        self.assertEqual((queued["executionId"], queued["status"]), (rec["_id"], "queued"))
        self.assertGreaterEqual(mail.outbox_stats()["queued"], 1)
        sent = asyncio.run(mail.outbox_run_async(10))
        self.assertEqual(sent, 1)
        msgs = [m for m in self.smtp.messages() if "py-mail-1" in m]
        self.assertEqual(len(msgs), 1)
        self.assertIn("X-Envelope-To: reader@example.com", msgs[0])
        self.assertIn("Hosts echo said py-mail-1", msgs[0])
        got = self.engine.executions.get(self.a, rec["_id"])
        self.assertTrue(got["emailSent"])
        self.assertEqual(mail.outbox_run(10), 0)  # nothing sent twice
        with self.assertRaises(ee.InvalidArgument):
            mail.send_execution(self.a, rec["_id"], to="not-an-address")
        with ee.Principal("ws-other", "u-o", "org-o") as b:
            with self.assertRaises(ee.NotFound):
                mail.send_execution(b, rec["_id"], to="reader@example.com")
        mail.template_delete(None, self.wf)
        with self.assertRaises(ee.NotFound):
            mail.template_get(None, self.wf)


# A child: a daemon thread waits in ee_exec_wait() on a run nobody will
# work (EXEC_WORKERS=0) when the interpreter exits. The engine's finalizer
# must not free it under the wait: before, the wait was woken by the close
# and returned from freed memory ("wait ended", a heap-use-after-free under
# ASan, sometimes a crash).
_EXIT_CHILD = r"""
import sys, threading, time
import execengine as ee
cfg = ee.Config()
for k, v in {"EE_STORAGE_URI": "memory:", "EE_COUNTERS_URI": "memory:",
             "API_KEY_ENCRYPTION_SECRET": sys.argv[2], "N8N_BASE_URL": sys.argv[1],
             "N8N_API_KEY": "n8n-exit-key", "EXEC_WORKERS": "0"}.items():
    cfg.set(k, v)
engine = ee.Engine.open(cfg)
a = ee.Principal("ws-a", "u-a", "org-a")
wf = {e["name"]: e["id"] for e in engine.catalog.sync()["added"]}["Hosts echo"]
xid = engine.executions.start(a, wf, parameters={"text": "x"})
def waiter():
    try:
        engine.executions.wait(a, xid, 60000)
    except Exception as e:
        print("wait ended:", type(e).__name__, flush=True)
threading.Thread(target=waiter, daemon=True).start()
time.sleep(0.3)
print("exit", flush=True)
"""


class InterpreterExitTest(unittest.TestCase):
    def test_exit_while_a_daemon_thread_waits_in_c(self):
        n8n = FakeN8n()
        try:
            env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
            for _ in range(3):
                r = subprocess.run([sys.executable, "-c", _EXIT_CHILD, n8n.url, SECRET],
                                   env=env, capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.split(), ["exit"], r.stdout + r.stderr)
        finally:
            n8n.stop()


if __name__ == "__main__":
    unittest.main()
