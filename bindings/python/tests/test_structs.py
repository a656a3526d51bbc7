"""The calls over C structs (#15): the ctypes Structures of execengine/_structs.py
have the C compiler's layouts, and counters, the quota ticket fast path,
storage queries and the gateway entry point work through plain Python
values (dicts, lists, str, bytes) against the built library."""
import asyncio
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import execengine as ee
from execengine import _structs

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SECRET = "test-encryption-secret-0123456789abcdef0123"
P = ("ws-structs", "user-s", "org-s")


def memory_engine():
    cfg = ee.Config()
    cfg.set("EE_STORAGE_URI", "memory:")
    cfg.set("EE_COUNTERS_URI", "memory:")
    cfg.set("API_KEY_ENCRYPTION_SECRET", SECRET)
    engine = ee.Engine.open(cfg)
    cfg.close()
    return engine


def compiler():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


class LayoutTest(unittest.TestCase):
    def test_sizes_alignments_offsets_and_member_sizes_equal_c(self):
        cc = compiler()
        if cc is None:
            self.skipTest("no C compiler")
        self.assertEqual(sorted(_structs.STRUCTS), [
            "ee_counter_req", "ee_counter_result", "ee_gateway_request", "ee_gateway_sink",
            "ee_quota_ticket", "ee_storage_eq", "ee_storage_inc", "ee_storage_query_spec",
            "ee_storage_row"])
        lines, expected = [], []
        for name, st in _structs.STRUCTS.items():
            lines.append(f'printf("%s %zu %zu\\n", "{name}", sizeof({name}), _Alignof({name}));')
            expected.append(f"{name} {ctypes.sizeof(st)} {ctypes.alignment(st)}")
            for field in st._fields_:
                m, t = field[0], field[1]
                integer = issubclass(t, (ctypes.c_int, ctypes.c_uint, ctypes.c_int32,
                                         ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t)) \
                    and not issubclass(t, ctypes.Array)
                sign = f"(int)((__typeof__((({name} *)0)->{m}))-1 < 0)" if integer else "2"
                lines.append(f'printf("%s.%s %zu %zu %d\\n", "{name}", "{m}", '
                             f"offsetof({name}, {m}), sizeof((({name} *)0)->{m}), {sign});")
                signed = 2
                if integer:
                    signed = 0 if t in (ctypes.c_uint, ctypes.c_uint64, ctypes.c_size_t) \
                        or t._type_ in "ILQ" else 1
                expected.append(f"{name}.{m} {getattr(st, m).offset} {ctypes.sizeof(t)} {signed}")
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "layout.c")
            with open(src, "w") as f:
                f.write("#include <stddef.h>\n#include <stdio.h>\n"
                        "#include <execengine/counters.h>\n#include <execengine/quota.h>\n"
                        "#include <execengine/storage.h>\n#include <execengine/gateway.h>\n"
                        "int main(void) {\n" + "\n".join("    " + ln for ln in lines)
                        + "\n    return 0;\n}\n")
            exe = os.path.join(tmp, "layout")
            c = subprocess.run([cc, "-std=gnu11", "-I", os.path.join(REPO, "include"), src,
                                "-o", exe], capture_output=True, text=True)
            self.assertEqual(c.returncode, 0, c.stderr)
            r = subprocess.run([exe], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip().split("\n"), expected)


class CountersTest(unittest.TestCase):
    def setUp(self):
        self.c = ee.Counters.memory()
        self.addCleanup(self.c.close)

    def test_reserve_get_round_trip_with_a_refusal(self):
        c, now = self.c, 1000
        req = {"key": "jobs", "n": 2, "limit": 3, "window_ms": 500}
        a = c.reserve(req, 10000, now)
        self.assertIs(a["granted"], True)
        self.assertIs(a["fits"], True)
        self.assertNotEqual(a["resv_id"], 0)
        self.assertEqual((a["value"], a["limit"], a["window_end_ms"]), (2, 3, now + 500))
        # 2 more do not fit under 3: refused, nothing reserved, retry at the window end
        b = c.reserve(req, 10000, now + 1)
        self.assertEqual(b, {"granted": False, "resv_id": 0, "value": 2, "committed": 0,
                             "limit": 3, "window_end_ms": now + 500, "retry_at_ms": now + 500,
                             "fits": False})
        c.commit("jobs", a["resv_id"], 2, now + 2)
        self.assertEqual(c.get("jobs", now + 3), {"resv_id": 0, "value": 2, "committed": 2,
                                                  "limit": 0, "window_end_ms": now + 500,
                                                  "retry_at_ms": 0, "fits": False})
        # the Node key names are accepted too; at the retry time a new window began
        d = c.reserve({"key": "jobs", "n": 2, "limit": 3, "windowMs": 500}, 10000, b["retry_at_ms"])
        self.assertTrue(d["granted"])
        self.assertEqual(d["window_end_ms"], b["retry_at_ms"] + 500)
        with self.assertRaises(TypeError):
            c.reserve({"n": 1, "limit": 1}, 10, now)
        with self.assertRaises(ee.InvalidArgument):
            c.reserve({"key": "x", "n": 0, "limit": 1}, 10, now)

    def test_the_raw_ctypes_path_still_works(self):
        req = _structs.CounterReq(b"raw", 1, 1, 0, 0)
        res = _structs.CounterResult()
        granted = self.c.reserve(ctypes.byref(req), 1000, 1, ctypes.byref(res))
        self.assertEqual((granted, res.value), (1, 1))
        res2 = _structs.CounterResult()
        self.c.get("raw", 2, ctypes.byref(res2))
        self.assertEqual(res2.value, 1)
        with ee.Storage.memory() as s:
            spec = _structs.StorageQuerySpec(version=1)
            self.assertEqual(s.count("userWorkflowUsage", "ws", ctypes.byref(spec)), 0)
        with memory_engine() as engine, ee.Principal(*P) as p, ee.QuotaSubject(engine, p) as sub:
            raw = _structs.QuotaTicketStruct()
            engine.quota.admit_fast(sub, 0, ctypes.byref(raw))
            self.assertIsNone(ee.quota.ticket_refusal(ctypes.byref(raw)).quota)  # raw: a named tuple
            engine.quota.finish(ctypes.byref(raw), 1, 0)

    def test_reserve_many_is_all_or_none_and_leases_per_counter(self):
        c, now = self.c, 5000
        c.reserve({"key": "full", "limit": 1}, 60000, now)
        r = c.reserve_many([{"key": "free", "limit": 5}, {"key": "full", "limit": 1}], 60000, now)
        self.assertFalse(r["granted"])
        self.assertEqual([(x["fits"], x["resv_id"]) for x in r["results"]], [(True, 0), (False, 0)])
        self.assertEqual(c.get("free", now)["value"], 0)
        ok = c.reserve_many([{"key": "free", "limit": 5}, {"key": "other", "n": 3, "limit": 5}],
                            60000, now)
        self.assertTrue(ok["granted"])
        self.assertTrue(all(x["fits"] and x["resv_id"] for x in ok["results"]))
        self.assertEqual([x["value"] for x in ok["results"]], [1, 3])
        lz = c.reserve_many_leased([{"key": "short", "limit": 1}, {"key": "long", "limit": 1}],
                                   [10, 60000], now)
        self.assertTrue(lz["granted"])
        self.assertEqual(c.get("short", now + 20)["value"], 0)
        self.assertEqual(c.get("long", now + 20)["value"], 1)
        with self.assertRaises(ValueError):
            c.reserve_many_leased([{"key": "a", "limit": 1}], [], now)
        with self.assertRaises(ee.InvalidArgument):
            c.reserve_many([{"key": "a", "limit": 1}, {"key": "a", "limit": 1}], 10, now)


class QuotaTicketTest(unittest.TestCase):
    def setUp(self):
        self.engine = memory_engine()
        self.addCleanup(self.engine.close)
        self.p = ee.Principal(*P)
        self.addCleanup(self.p.close)

    def test_admit_fast_finish_and_a_refusal_with_its_ticket(self):
        engine, p = self.engine, self.p
        engine.quota.plan_put({"name": "one", "predictionsPerPeriod": 1})
        engine.quota.subscription_put({"orgId": P[2], "plan": "one"})
        with ee.QuotaSubject(engine, p) as subject:
            t = engine.quota.admit_fast(subject, 0)
            self.assertIsInstance(t, ee.QuotaTicket)
            self.assertTrue(t.admitted)
            self.assertIsNone(t.refusal())
            self.assertEqual(engine.quota.usage(p)["concurrency"]["usage"], 1)
            engine.quota.renew(t)
            with self.assertRaises(ee.QuotaExceeded) as cm:
                engine.quota.admit_fast(p)  # a principal: a subject for the call
            e = cm.exception
            self.assertEqual(e.detail["quota"], "predictions")
            self.assertEqual(e.detail["limit"], 1)
            self.assertGreater(e.retry_after_ms, 0)
            self.assertIsInstance(e.ticket, ee.QuotaTicket)
            self.assertFalse(e.ticket.admitted)
            self.assertEqual(e.ticket.refusal(), {
                "status": int(ee.Status.EE_EQUOTA), "code": "EE_EQUOTA", "quota": "predictions",
                "usage": 1, "limit": 1, "resets_at": e.detail["resetsAt"],
                "retry_after_ms": e.retry_after_ms})
            with self.assertRaises(ee.InvalidArgument):
                engine.quota.finish_ticket(e.ticket, True, 0)
            engine.quota.finish_ticket(t, True, 0)
            u = engine.quota.usage(p)
            self.assertEqual(u["predictions"]["usage"], 1)
            self.assertEqual(u["concurrency"]["usage"], 0)
            with self.assertRaises(ee.ExecEngineError):
                engine.quota.finish_ticket(t, True, 0)
            with self.assertRaises(TypeError):
                engine.quota.finish_ticket(42, True)

    def test_json_round_trip_finishes_the_run(self):
        engine, p = self.engine, self.p
        t = engine.quota.admit_fast(p, 5000)
        doc = t.to_json()
        self.assertEqual((doc["v"], doc["orgId"], doc["estimatedCostNano"]), (1, P[2], 5000))
        import json
        self.assertEqual(ee.QuotaTicket.from_json(doc).to_json(), doc)
        self.assertEqual(ee.QuotaTicket.from_json(json.dumps(doc)).to_json(), doc)
        self.assertEqual(ee.quota.ticket_from_json(doc).to_json(), doc)  # the C name
        self.assertEqual(ee.QuotaTicket(t.to_bytes()).to_json(), doc)
        self.assertEqual(engine.quota.usage(p)["concurrency"]["usage"], 1)
        engine.quota.finish_ticket(ee.QuotaTicket.from_json(doc), False, 1000)
        self.assertEqual(engine.quota.usage(p)["concurrency"]["usage"], 0)
        with self.assertRaises(ee.ParseError):
            ee.QuotaTicket.from_json('{"v": 2}')
        with self.assertRaises(ee.InvalidArgument):
            ee.QuotaTicket().to_json()
        with self.assertRaises(ee.InvalidArgument):
            ee.QuotaTicket().refusal()
        with self.assertRaises(ValueError):
            ee.QuotaTicket(b"abc")


class StorageTest(unittest.TestCase):
    def test_increment_count_query_paging(self):
        with ee.Storage.memory() as s:
            coll, ws = "userWorkflowUsage", "ws-q"
            for i in range(5):
                totals = s.increment(coll, ws, {"userId": "u1", "workflowCatalogId": f"wf{i}",
                                                "period": "2025-10"},
                                     {"executionsCount": 1, "tokensUsed": 100 * i}, 1000 + i)
                self.assertEqual(totals, {"executionsCount": 1, "tokensUsed": 100 * i})
            s.increment(coll, ws, {"userId": "u2", "workflowCatalogId": "wf0", "period": "2025-10"},
                        {"executionsCount": 1}, 2000)
            self.assertEqual(s.increment(coll, ws, {"userId": "u1", "workflowCatalogId": "wf4",
                                                    "period": "2025-10"},
                                         {"executionsCount": 2, "tokensUsed": 1}, 3000),
                             {"executionsCount": 3, "tokensUsed": 401})
            self.assertEqual(s.count(coll, ws), 6)
            self.assertEqual(s.count(coll, ws, {"eq": {"userId": "u1"}}), 5)
            self.assertEqual(s.count(coll, ws, {"eq": {"userId": "u1"}, "time_from": 1002}), 3)
            self.assertEqual(s.count(coll, ws, {"eq": {"userId": "u1"}, "timeFrom": 1001,
                                                "timeTo": 1003}), 2)
            self.assertEqual(s.count(coll, "other-ws", {"eq": {"userId": "u1"}}), 0)
            pages, cursor = [], None
            while True:
                page = s.query(coll, ws, {"eq": {"userId": "u1"}, "order": "timeAsc", "limit": 2,
                                          "cursor": cursor})
                pages.append(page["rows"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            self.assertEqual([len(x) for x in pages], [2, 2, 1])
            rows = [r for pg in pages for r in pg]
            self.assertEqual([r["time"] for r in rows], [1000, 1001, 1002, 1003, 1004])
            self.assertEqual(len({r["id"] for r in rows}), 5)
            for r in rows:
                self.assertRegex(r["id"], r"^[0-9a-f]{24}$")
                self.assertIsInstance(r["data"], bytes)
                self.assertEqual(int.from_bytes(r["data"][:4], "little"), len(r["data"]))
                self.assertIn(b"tokensUsed", r["data"])
            self.assertEqual(rows[4]["revision"], 2)
            self.assertEqual([r["time"] for r in s.query(coll, ws, {"eq": {"userId": "u1"},
                                                                    "limit": 1})["rows"]], [1004])
            with self.assertRaises(ee.InvalidArgument):
                s.query(coll, ws, {"eq": {"notIndexed": "x"}})
            with self.assertRaises(ValueError):
                s.query(coll, ws, {"order": "sideways"})
            with self.assertRaises(ee.InvalidArgument):
                s.increment(coll, ws, {"userId": "u1"}, {"executionsCount": 1}, 1)


class GatewayTest(unittest.TestCase):
    def test_handle_without_a_token_is_a_401_answer(self):
        with memory_engine() as engine:
            heads = []
            r = engine.gateway.handle({"method": "POST", "path": "/openrouter/api/v1/chat/completions",
                                       "headers": {"Content-Type": "application/json"},
                                       "body": '{"model": "x"}'},
                                      on_head=lambda st, hs: heads.append(st))
            self.assertEqual(r["status"], 401)
            self.assertEqual(heads, [401])
            self.assertIsInstance(r["body"], bytes)
            self.assertTrue(all(isinstance(h, str) and ":" in h for h in r["headers"]))
            # False from a callback stops the call: Cancelled
            with self.assertRaises(ee.Cancelled):
                engine.gateway.handle({"method": "GET", "path": "/openrouter/x"},
                                      on_head=lambda st, hs: False)
            # the asyncio variant, its callbacks on the loop's thread (coroutines too)
            chunks = []

            async def on_chunk(b):
                chunks.append(b)

            r2 = asyncio.run(engine.gateway.handle_async(
                {"method": "POST", "path": "/openrouter/api/v1/chat/completions",
                 "headers": ["Content-Type: application/json"], "body": b"{}"}, on_chunk=on_chunk))
            self.assertEqual(r2["status"], 401)
            self.assertEqual(b"".join(chunks), r["body"])
            with self.assertRaises(TypeError):
                engine.gateway.handle({"method": "GET"})


def start_script(script, *args):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "support", script), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"{script}: {line!r}")
    return proc, "http://127.0.0.1:%d" % int(line.split()[1])


def fetch_json(url, body=None):
    import urllib.request
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


class GatewayRunTest(unittest.TestCase):
    """engine.gateway.handle serves a run's gateway calls from the host's
    own server: metered, the customer's key upstream (never the token)."""

    def test_handle_serves_a_run(self):
        customer_key = "sk-or-v1-python-canary-4b1f"
        orr, orr_url = start_script("fake_openrouter.py")
        self.addCleanup(lambda: (orr.kill(), orr.wait(), orr.stdout.close()))
        n8n, n8n_url = start_script("fake_n8n.py", "--llm")
        self.addCleanup(lambda: (n8n.kill(), n8n.wait(), n8n.stdout.close()))
        data = tempfile.mkdtemp(prefix="ee-py-gw-")
        self.addCleanup(shutil.rmtree, data, True)
        for f in os.listdir(os.path.join(REPO, "data")):
            shutil.copyfile(os.path.join(REPO, "data", f), os.path.join(data, f))
        with open(os.path.join(data, "gateway.json")) as f:
            gw = json.load(f)
        for prov in gw["providers"]:
            if prov["provider"] == "openrouter":
                prov["baseUrl"] = orr_url
        with open(os.path.join(data, "gateway.json"), "w") as f:
            json.dump(gw, f)
        cfg = ee.Config()
        for k, v in {"EE_STORAGE_URI": "memory:", "EE_COUNTERS_URI": "memory:",
                     "API_KEY_ENCRYPTION_SECRET": SECRET, "N8N_BASE_URL": n8n_url,
                     "N8N_API_KEY": "n8n-key-canary-py-7c1e", "EE_DATA_DIR": data,
                     "EXEC_WORKERS": "1"}.items():
            cfg.set(k, v)
        engine = ee.Engine.open(cfg)
        cfg.close()
        p = ee.Principal(*P)
        try:
            engine.gateway.listen("127.0.0.1:0")
            ids = {a["name"]: a["id"] for a in engine.catalog.sync()["added"]}
            key = engine.credentials.key_add(p, {"keyName": "k", "provider": "openrouter",
                                                 "apiKey": customer_key})
            fetch_json(n8n_url + "/__config", {"holdLlm": True})
            engine.executions.workers_start()
            xid = engine.executions.start(p, ids["LLM summary"], {
                "parameters": {"text": "through the host"}, "useCustomApiKey": True,
                "apiKeyId": key["id"]})
            token = None
            for _ in range(600):
                g = [x for x in fetch_json(n8n_url + "/__gateways")["gateways"]
                     if x.get("executionId") == xid]
                if g:
                    token = g[0]["token"]
                    break
                time.sleep(0.05)
            self.assertTrue(token, "the run did not reach its webhook")

            def request(**extra):
                return {"method": "POST", "path": "/openrouter/api/v1/chat/completions",
                        "query": None,
                        "headers": {"Content-Type": "application/json",
                                    "Authorization": f"Bearer {token}"},
                        "body": json.dumps({"model": "openai/gpt-4o-mini",
                                            "usage": {"include": True},
                                            "messages": [{"role": "user", "content": "hello host"}],
                                            **extra})}
            a = engine.gateway.handle(request())
            self.assertEqual(a["status"], 200, a["body"])
            self.assertTrue(any(h.lower().startswith("x-litellm-response-cost: ")
                                for h in a["headers"]), a["headers"])
            self.assertEqual(json.loads(a["body"])["usage"]["total_tokens"], 59)
            sent = [r for r in fetch_json(orr_url + "/__requests")["requests"]
                    if "/chat/completions" in r["path"]]
            self.assertEqual(len(sent), 1)
            self.assertEqual(sent[0]["headers"]["authorization"], f"Bearer {customer_key}")
            # a stream, chunk by chunk, the head first
            order = []
            st = engine.gateway.handle(
                request(stream=True),
                on_head=lambda status, hs: order.append(
                    ("head", status, [h for h in hs if h.lower().startswith("content-type")])),
                on_chunk=lambda b: order.append(("chunk", b)))
            self.assertEqual((st["status"], st["body"]), (200, b""))
            self.assertEqual(order[0][0], "head")
            self.assertIn("text/event-stream", order[0][2][0])
            self.assertIn(b"data: [DONE]", b"".join(o[1] for o in order[1:]))
            # the asyncio form, the whole answer collected
            b = asyncio.run(engine.gateway.handle_async(request()))
            self.assertEqual(b["status"], 200)
            bad = engine.gateway.handle({**request(), "headers": ["Authorization: Bearer nope"]})
            self.assertEqual(bad["status"], 401)
            self.assertEqual(json.loads(bad["body"])["error"]["status"], "EE_EAUTH")
            with self.assertRaises(ee.Cancelled):
                engine.gateway.handle(request(stream=True), on_head=lambda s, h: False)
            fetch_json(n8n_url + "/__config", {"holdLlm": False})
            rec = engine.executions.wait(p, xid, 30000)
            self.assertEqual(rec["status"], "completed", rec)
            cost = engine.executions.cost(p, xid)
            self.assertGreaterEqual(len(cost["calls"]), 3, cost)
            self.assertNotIn(customer_key, json.dumps([rec, cost, a["headers"]]))
        finally:
            try:
                fetch_json(n8n_url + "/__config", {"holdLlm": False})
            except OSError:
                pass
            p.close()
            engine.close()


if __name__ == "__main__":
    unittest.main()
