"""Hostile input at the binding's door: every value that cannot cross into C
as given is refused naming its argument, never cut, wrapped or coerced.

A C string ends at its first NUL byte, so ctypes' c_char_p handed the
library a prefix of the caller's text (a principal "ws-1\\0evil" acted as
"ws-1"); ctypes keeps the low bits of an int that does not fit its C type
(audit.purge(2**64) purged with before_ms 0, "now minus the retention").
"""
import os
import subprocess
import sys
import textwrap
import unittest

import execengine as ee

SECRET = "test-encryption-secret-0123456789abcdef0123"


def memory_engine():
    with ee.Config() as cfg:
        cfg.set("EE_STORAGE_URI", "memory:")
        cfg.set("EE_COUNTERS_URI", "memory:")
        cfg.set("API_KEY_ENCRYPTION_SECRET", SECRET)
        return ee.Engine.open(cfg)


class StringsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.engine = memory_engine()
        cls.me = ee.Principal("ws-1", "u-1", "org-1")

    @classmethod
    def tearDownClass(cls):
        cls.me.close()
        cls.engine.close()

    def refused(self, what, fn, *args, **kw):
        with self.assertRaises(ee.InvalidArgument) as cm:
            fn(*args, **kw)
        self.assertIn(what, cm.exception.message)
        return cm.exception

    def test_nul_in_a_principal_is_refused_not_cut(self):
        self.refused("workspace_id", ee.Principal, "ws-1\0evil", "u-1", None)
        self.refused("user_id", ee.Principal, "ws-1", "u\0x", None)

    def test_nul_in_a_string_argument_is_refused(self):
        e = self.refused("template_text", ee.templates.render, "Hi {{name}}\0 secret-tail",
                         name="x")
        self.assertNotIn("secret-tail", str(e))
        self.refused("id", self.engine.catalog.get, self.me, "0123456789abcdef01234567\0zz")

    def test_nul_after_json_text_is_refused(self):
        self.refused("query", self.engine.catalog.search, self.me, '{"q": "a"}\0{"q": "b"}')

    def test_text_that_is_not_utf8_is_refused(self):
        self.refused("template_text", ee.templates.render, b"Hi \xff{{name}}", name="x")
        self.refused("workspace_id", ee.Principal, "ws-\udc80", "u-1", None)

    def test_json_documents_must_be_json(self):
        self.refused("query", self.engine.catalog.search, self.me, {"limit": float("nan")})
        with self.assertRaises(TypeError) as cm:
            self.engine.catalog.search(self.me, {"limit": {1, 2}})
        self.assertIn("query", str(cm.exception))

    def test_valid_text_still_passes(self):
        self.assertEqual(ee.templates.render("Hi {{name}}", name="Ada"), "Hi Ada")
        self.assertEqual(ee.templates.render(b"Hi {{name}}", name="Ad\u00e9"), "Hi Ad\u00e9")
        with ee.Principal("ws-2", "u-1", None) as p:
            self.assertEqual(p.workspace(), "ws-2")

    def test_struct_strings(self):
        with ee.Counters.memory() as c:
            self.refused("request.key", c.reserve, {"key": "k\0other", "limit": 5}, 0, 1)
            self.refused("key", c.get, "k\0other", 1)
        with self.assertRaises(ee.InvalidArgument):
            self.engine.gateway.handle({"method": "GET", "path": "/x\0/y"})
        with self.assertRaises(ee.InvalidArgument):
            self.engine.gateway.handle({"method": "GET", "path": "/x",
                                        "headers": ["Authorization: Bearer a\0b"]})


class IntegersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.engine = memory_engine()

    @classmethod
    def tearDownClass(cls):
        cls.engine.close()

    def test_int_out_of_range_is_refused_not_wrapped(self):
        # 2**64 used to reach C as 0: "purge by the retention period"
        with self.assertRaises(ee.InvalidArgument) as cm:
            self.engine.audit.purge(2**64)
        self.assertIn("before_ms", cm.exception.message)
        with self.assertRaises(ee.InvalidArgument):
            self.engine.audit.purge(-2**63 - 1)
        with self.assertRaises(TypeError):
            self.engine.audit.purge(1.5)
        with self.assertRaises(TypeError):
            self.engine.audit.purge("1")
        self.assertEqual(self.engine.audit.purge(1), 0)

    def test_struct_ints_out_of_range(self):
        with ee.Counters.memory() as c:
            with self.assertRaises(ee.InvalidArgument) as cm:
                c.reserve({"key": "k", "limit": 2**64 + 5}, 0, 1)
            self.assertIn("request.limit", cm.exception.message)
            with self.assertRaises(ee.InvalidArgument):
                c.get("k", 2**63)

    def test_config_set_int_range(self):
        with ee.Config() as cfg:
            with self.assertRaises(ee.InvalidArgument) as cm:
                cfg.set_int("MAX_CONCURRENT_EXECUTIONS", 2**64 + 4)
            self.assertIn("MAX_CONCURRENT_EXECUTIONS", cm.exception.message)
            cfg.set_int("MAX_CONCURRENT_EXECUTIONS", 4)
            self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 4)


class ConfigTest(unittest.TestCase):
    def test_nul_in_option_values_and_keys(self):
        with ee.Config() as cfg:
            with self.assertRaises(ee.InvalidArgument) as cm:
                cfg.set("EE_STORAGE_URI", "memory:\0sqlite:///elsewhere")
            self.assertIn("EE_STORAGE_URI", cm.exception.message)
            with self.assertRaises(ee.InvalidArgument):
                cfg.set("EE_STORAGE_URI\0X", "memory:")
            with self.assertRaises(ee.InvalidArgument):
                cfg.set("N8N_API_KEY", "abc\udc80")
            self.assertFalse(cfg.is_set("EE_STORAGE_URI"))

    def test_log_level_is_an_int_in_range(self):
        with ee.Config() as cfg:
            with self.assertRaises(ee.InvalidArgument):
                cfg.set_log(print, 2**32 + 2)  # reached C as 2 (info)
            with self.assertRaises(TypeError):
                cfg.set_log(print, 2.9)  # was int(2.9)
            cfg.set_log(print, ee.LogLevel.WARN)
            cfg.set_log(print, "debug")

    def test_load_env_mapping(self):
        with ee.Config() as cfg:
            with self.assertRaises(ee.InvalidArgument):
                cfg.load_env({"EE_STORAGE_URI": "memory:\0x"})
            with self.assertRaises(TypeError) as cm:
                cfg.load_env({"EE_STORAGE_URI": None})  # was the text "None"
            self.assertIn("EE_STORAGE_URI", str(cm.exception))
            with self.assertRaises(ee.InvalidArgument):
                cfg.load_env({"EE_STORAGE_URI=memory:": "x"})
            self.assertFalse(cfg.is_set("EE_STORAGE_URI"))
            cfg.load_env({"EE_STORAGE_URI": "memory:"})
            self.assertEqual(cfg.get_string("EE_STORAGE_URI"), "memory:")

    def test_secret_values_are_not_echoed(self):
        canary = "canary-\0-0123456789abcdef0123456789abcdef"
        with ee.Config() as cfg:
            with self.assertRaises(ee.InvalidArgument) as cm:
                cfg.set("API_KEY_ENCRYPTION_SECRET", canary)
            self.assertNotIn("canary", str(cm.exception))


# A child process: a crash (SIGSEGV) must not take the test runner with it.
CLOSE_WHILE_RUNNING = textwrap.dedent("""
    import asyncio, socket, threading, time
    import execengine as ee
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns = []
    stop = threading.Event()

    def serve():
        while True:
            c = srv.accept()[0]
            if stop.is_set():
                c.close()  # from now on every request fails at once
            else:
                conns.append(c)

    threading.Thread(target=serve, daemon=True).start()
    cfg = ee.Config()
    cfg.set("EE_STORAGE_URI", "memory:")
    cfg.set("API_KEY_ENCRYPTION_SECRET", "x" * 40)
    cfg.set("N8N_BASE_URL", "http://127.0.0.1:%d" % srv.getsockname()[1])
    cfg.set("N8N_API_KEY", "n8n-key-0123456789")

    async def main():
        with ee.Engine.open(cfg) as engine:
            # n8n never answers: the sync stays inside C on an executor thread
            try:
                await asyncio.wait_for(engine.catalog.sync_async(), 0.3)
            except asyncio.TimeoutError:
                pass
        assert engine.closed
        try:
            engine.summary()
            raise SystemExit("a closed engine answered")
        except ValueError:
            pass
        # now let the running sync fail: the engine closes when it returns
        time.sleep(0.2)
        stop.set()
        for c in conns:
            c.close()
        end = time.monotonic() + 60
        while engine._ptr is not None and time.monotonic() < end:
            await asyncio.sleep(0.05)
        assert engine._ptr is None, "the deferred close did not happen"

    asyncio.run(main())
    print("survived")
""")


# The engine is closed while a done callback - on an engine worker thread -
# is inside a call on it: the deferred close must not run on that worker
# (ee_engine_close() would wait for the thread it runs on).
CLOSE_FROM_CALLBACK = textwrap.dedent("""
    import socket, sys, threading, time
    sys.path.insert(0, sys.argv[1])
    import execengine as ee
    from test_idiomatic import FakeN8n, N8N_KEY, SECRET
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    asked = threading.Event()  # key_validate is inside C, waiting for us

    def answer_late():
        c = srv.accept()[0]
        asked.set()
        time.sleep(0.5)
        c.sendall(b"HTTP/1.1 401 Unauthorized\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
        c.close()

    threading.Thread(target=answer_late, daemon=True).start()
    n8n = FakeN8n()
    cfg = ee.Config()
    for k, v in (("EE_STORAGE_URI", "memory:"), ("EE_COUNTERS_URI", "memory:"),
                 ("API_KEY_ENCRYPTION_SECRET", SECRET), ("N8N_BASE_URL", n8n.url),
                 ("N8N_API_KEY", N8N_KEY),
                 ("OPENROUTER_API_URL", "http://127.0.0.1:%d/api/v1" % srv.getsockname()[1])):
        cfg.set(k, v)
    engine = ee.Engine.open(cfg)
    p = ee.Principal("ws-cb", "u-cb", None)
    wf = {e["name"]: e["id"] for e in engine.catalog.sync()["added"]}["Hosts echo"]
    key = engine.credentials.key_add(p, keyName="k", provider="openrouter",
                                     apiKey="sk-or-v1-" + "a" * 40)
    inside, finished, out = threading.Event(), threading.Event(), []

    def on_done(xid, status, record):
        inside.set()
        try:
            out.append(engine.credentials.key_validate(p, key["id"])["status"])
        finally:
            finished.set()

    engine.executions.start(p, wf, {"parameters": {"text": "x"}}, on_done=on_done)
    assert inside.wait(60), "the run did not end"
    assert asked.wait(60), "the callback did not call key_validate"
    engine.close()  # the callback's key_validate is still waiting
    assert engine.closed
    assert finished.wait(60), "the callback's call did not return"
    assert out == ["invalid"], out
    # the deferred ee_engine_close() runs (and ends) on a thread of its own
    for t in threading.enumerate():
        if t.name == "execengine-close":
            t.join(60)
            assert not t.is_alive(), "ee_engine_close() did not return"
    assert engine._ptr is None
    n8n.stop()
    print("closed")
""")


class CloseWhileRunningTest(unittest.TestCase):
    def test_closing_an_engine_under_a_cancelled_async_call(self):
        """asyncio.wait_for() cancels the task but not the executor thread
        inside C; leaving the `with` closed the engine under it (SIGSEGV).
        close() now defers the ee_engine_close() to the call's return."""
        r = subprocess.run([sys.executable, "-c", CLOSE_WHILE_RUNNING], capture_output=True,
                           text=True, timeout=120, env=os.environ)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn("survived", r.stdout)

    def test_a_principal_closed_during_a_call_is_freed_after_it(self):
        """The call reads the principal again after the provider answered
        (it stores the validation on the principal's key): closing it from
        another thread meanwhile freed it under the call."""
        import socket
        import threading
        import time
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)

        def answer_late():
            c = srv.accept()[0]
            time.sleep(0.5)
            c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
            c.close()

        threading.Thread(target=answer_late, daemon=True).start()
        with ee.Config() as cfg:
            cfg.set("EE_STORAGE_URI", "memory:")
            cfg.set("API_KEY_ENCRYPTION_SECRET", SECRET)
            cfg.set("OPENROUTER_API_URL", "http://127.0.0.1:%d/api/v1" % srv.getsockname()[1])
            engine = ee.Engine.open(cfg)
        try:
            p = ee.Principal("ws-late", "u-late", None)
            key = engine.credentials.key_add(p, keyName="k", provider="openrouter",
                                             apiKey="sk-or-v1-" + "a" * 40)
            result = []

            def validate():
                try:
                    result.append(engine.credentials.key_validate(p, key["id"])["status"])
                except ee.ExecEngineError as e:
                    result.append(e.name)

            t = threading.Thread(target=validate)
            t.start()
            time.sleep(0.2)
            p.close()  # the call is waiting for the provider
            self.assertTrue(p.closed)
            with self.assertRaises(ValueError):
                p.workspace()
            for i in range(2000):
                ee.Principal(f"zz-{i}", f"uu-{i}", None).close()
            t.join()
            self.assertEqual(result, ["invalid"])
        finally:
            engine.close()
            srv.close()

    def test_closing_while_a_done_callback_calls_the_engine(self):
        r = subprocess.run([sys.executable, "-c", CLOSE_FROM_CALLBACK, os.path.dirname(__file__)],
                           capture_output=True, text=True, timeout=120, env=os.environ)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("closed", r.stdout)

    def test_close_refuses_new_calls_at_once_and_is_idempotent(self):
        engine = memory_engine()
        engine.close()
        engine.close()
        self.assertTrue(engine.closed)
        with self.assertRaises(ValueError):
            engine.catalog.search(None)
        p = ee.Principal("ws-1", "u-1", None)
        p.close()
        p.close()
        with self.assertRaises(ValueError):
            p.workspace()


# With CPython's own sys.unraisablehook (tests elsewhere install a Python one).
CLOCK_FAILS = textwrap.dedent("""
    import sys, time
    import execengine as ee
    assert sys.unraisablehook is sys.__unraisablehook__
    for clock in (lambda: 1 // 0, lambda: "soon", lambda: 2 ** 70, lambda: None):
        cfg = ee.Config()
        cfg.set("EE_STORAGE_URI", "memory:")
        cfg.set("API_KEY_ENCRYPTION_SECRET", "x" * 40)
        cfg.set_clock(clock)
        with ee.Engine.open(cfg) as engine:
            now = engine.now_ms()
        assert abs(now - time.time() * 1000) < 60000, now
        cfg.close()
    print("fell back")
""")


class CallbackFailuresTest(unittest.TestCase):
    def test_a_replaced_alert_callback_stays_alive_with_the_engine(self):
        """quota.h: 'a call in progress finishes with the callback it started
        with' - the old ctypes trampoline was dropped (freed) at once."""
        import gc
        import weakref
        engine = memory_engine()
        try:
            engine.quota.set_alert_callback(lambda alert: None)
            first = weakref.ref(engine._callbacks["ee_quota_set_alert_callback"])
            engine.quota.set_alert_callback(lambda alert: None)
            engine.quota.set_alert_callback(None)
            gc.collect()
            self.assertIsNotNone(first(), "the replaced trampoline was collected")
        finally:
            engine.close()

    def test_a_failing_clock_falls_back_to_the_system_clock(self):
        """The default hook refused the binding's stand-in for its argument
        (TypeError), the exception left the trampoline and ctypes returned 0:
        the engine read 1970. 2**70 was returned as its low bits (0)."""
        r = subprocess.run([sys.executable, "-c", CLOCK_FAILS], capture_output=True, text=True,
                           timeout=120, env=os.environ)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("fell back", r.stdout)
        self.assertIn("execengine clock callback", r.stderr)
        self.assertIn("ZeroDivisionError", r.stderr)
        self.assertNotIn("must be UnraisableHookArgs", r.stderr)


if __name__ == "__main__":
    unittest.main()
