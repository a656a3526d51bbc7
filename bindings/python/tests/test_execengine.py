"""Tests of the Python binding against the built library (EE_LIBRARY_PATH)."""
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import execengine as ee
from execengine import Config, Engine, ExecEngineError, native

SECRET = "sk-test-Zq8w7e6r5t4y3u2i1o0p"   # an API key long enough to show last4
HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)


# Every engine needs an encryption secret (credentials are sealed with it).
TEST_ENCRYPTION_SECRET = "test-encryption-secret-0123456789abcdef0123"


def memory_config():
    cfg = Config()
    cfg.set("EE_STORAGE_URI", "memory:")
    cfg.set("EE_COUNTERS_URI", "memory:")
    cfg.set("API_KEY_ENCRYPTION_SECRET", TEST_ENCRYPTION_SECRET)
    return cfg


class VersionTest(unittest.TestCase):
    def test_loaded_major_matches_binding(self):
        major, minor, patch = (int(x) for x in ee.version().split("."))
        self.assertEqual(major, ee.EXPECTED_MAJOR)
        self.assertEqual(ee.version_num(), (major << 16) | (minor << 8) | patch)
        self.assertEqual(ee.LIBRARY_VERSION, ee.version())

    def test_features_are_what_the_library_says(self):
        f = ee.features()
        self.assertEqual(f[:2], ["sqlite", "memory"])
        self.assertEqual(" ".join(f), ee.native.fn.ee_version_features().decode("ascii"))

    def _import_with_manifest(self, mutate):
        with open(os.path.join(PKG_ROOT, "execengine", "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        mutate(m)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "manifest.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(m, f)
            env = dict(os.environ, EE_MANIFEST_PATH=path, PYTHONPATH=PKG_ROOT)
            return subprocess.run(
                [sys.executable, "-c",
                 "import sys\ntry:\n    import execengine\nexcept ImportError as e:\n"
                 "    print(type(e).__name__ + ': ' + str(e))\n    sys.exit(3)\n"],
                env=env, capture_output=True, text=True, timeout=60)

    def test_other_major_refused_at_load(self):
        r = self._import_with_manifest(lambda m: m["library"].update(major=99))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("LibraryError", r.stdout)
        self.assertIn("needs major version 99", r.stdout)

    def test_function_missing_from_library_refused_at_load(self):
        def add(m):
            m["functions"].append({"name": "ee_no_such_function", "returns": "void",
                                   "params": []})
        r = self._import_with_manifest(add)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("lacks ee_no_such_function", r.stdout)

    def test_status_codes_come_from_the_library(self):
        self.assertEqual(ee.Status.EE_OK, 0)
        self.assertEqual(ee.Status.EE_EINVAL, -3)
        self.assertEqual(ee.Status.EE_EPERM, -16)
        codes = sorted(int(s) for s in ee.Status)
        self.assertEqual(codes, list(range(codes[0], 1)))  # contiguous 0..-N
        self.assertEqual(ee.status_name(codes[0] - 1), "EE_UNKNOWN_STATUS")
        self.assertEqual(ee.status_name(-3), "EE_EINVAL")
        self.assertTrue(issubclass(ee.errors.EE_EINVAL, ExecEngineError))

    def test_every_manifest_function_is_bound(self):
        for f in native.MANIFEST["functions"]:
            self.assertTrue(callable(getattr(native.fn, f["name"])), f["name"])


class ConfigTest(unittest.TestCase):
    def test_set_and_get(self):
        with Config() as cfg:
            self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 10)  # default
            self.assertFalse(cfg.is_set("MAX_CONCURRENT_EXECUTIONS"))
            cfg.set("MAX_CONCURRENT_EXECUTIONS", "4")
            self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 4)
            self.assertTrue(cfg.is_set("MAX_CONCURRENT_EXECUTIONS"))
            cfg.set_int("MAX_EXECUTIONS_PER_USER_PER_HOUR", 123)
            self.assertEqual(cfg.get_int("MAX_EXECUTIONS_PER_USER_PER_HOUR"), 123)
            cfg.set("FREE_TIER_MONTHLY_ALLOWANCE", "0.25")
            self.assertEqual(cfg.get_int("FREE_TIER_MONTHLY_ALLOWANCE"), 250_000_000)
            self.assertEqual(cfg.get_string("N8N_BASE_URL"), "http://127.0.0.1:5678")
            cfg.set("N8N_BASE_URL", "https://n8n.example.com")
            self.assertEqual(cfg.get_string("N8N_BASE_URL"), "https://n8n.example.com")
            self.assertIsNone(cfg.get_string("SMTP_HOST"))
            cfg.unset("MAX_CONCURRENT_EXECUTIONS")
            self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 10)

    def test_bad_value_raises_einval_naming_the_key(self):
        with Config() as cfg:
            cfg.set("MAX_CONCURRENT_EXECUTIONS", "4")
            with self.assertRaises(ExecEngineError) as cm:
                cfg.set("MAX_CONCURRENT_EXECUTIONS", "lots")
            e = cm.exception
            self.assertIsInstance(e, ee.errors.EE_EINVAL)
            self.assertEqual(e.code, -3)
            self.assertEqual(e.name, "EE_EINVAL")
            self.assertIn("MAX_CONCURRENT_EXECUTIONS", e.message)
            # Text that is not a number is not quoted back: it may be a
            # password set in the wrong variable. A number out of range is.
            self.assertNotIn("lots", e.message)
            self.assertEqual(e.http_status, 0)
            self.assertIsNone(e.detail)
            self.assertIn("EE_EINVAL (-3)", str(e))
            self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 4)  # unchanged
            with self.assertRaises(ExecEngineError) as cm:
                cfg.set("MAX_CONCURRENT_EXECUTIONS", "-3")
            self.assertIn('"-3"', cm.exception.message)

            with self.assertRaises(ee.errors.EE_EINVAL) as cm:
                cfg.set_int("MAX_CONCURRENT_EXECUTIONS", 0)  # below min 1
            self.assertIn("MAX_CONCURRENT_EXECUTIONS", cm.exception.message)

            with self.assertRaises(ee.errors.EE_EINVAL) as cm:
                cfg.set("NO_SUCH_OPTION", "1")
            self.assertIn("NO_SUCH_OPTION", cm.exception.message)

    def test_too_long_value_is_etoobig(self):
        with Config() as cfg, self.assertRaises(ExecEngineError) as cm:
            cfg.set("OPENROUTER_APP_NAME", "x" * 5000)
        self.assertEqual(cm.exception.name, "EE_ETOOBIG")
        self.assertIn("OPENROUTER_APP_NAME", cm.exception.message)

    def test_wrong_python_types(self):
        with Config() as cfg:
            with self.assertRaises(TypeError):
                cfg.set(1, "2")
            with self.assertRaises(TypeError):
                cfg.set_int("MAX_CONCURRENT_EXECUTIONS", "2")
            cfg.set("MAX_CONCURRENT_EXECUTIONS", 6)  # numbers become their text form
            self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 6)

    def test_load_env_names_the_variable(self):
        saved = os.environ.get("MAX_CONCURRENT_EXECUTIONS")
        try:
            os.environ["MAX_CONCURRENT_EXECUTIONS"] = "12"
            with Config() as cfg:
                cfg.load_env()
                self.assertEqual(cfg.get_int("MAX_CONCURRENT_EXECUTIONS"), 12)
            os.environ["MAX_CONCURRENT_EXECUTIONS"] = "twelve"
            with Config() as cfg, self.assertRaises(ee.errors.EE_EINVAL) as cm:
                cfg.load_env()
            self.assertIn("MAX_CONCURRENT_EXECUTIONS", cm.exception.message)
        finally:
            if saved is None:
                os.environ.pop("MAX_CONCURRENT_EXECUTIONS", None)
            else:
                os.environ["MAX_CONCURRENT_EXECUTIONS"] = saved

    def test_load_env_from_mapping(self):
        with Config() as cfg:
            cfg.load_env({"BILLING_CYCLE_DAY": "15", "UNRELATED": "x"})
            self.assertEqual(cfg.get_int("BILLING_CYCLE_DAY"), 15)
            with self.assertRaises(ee.errors.EE_EINVAL) as cm:
                cfg.load_env({"BILLING_CYCLE_DAY": "31"})
            self.assertIn("BILLING_CYCLE_DAY", cm.exception.message)

    def test_secrets_cannot_be_read_back(self):
        with Config() as cfg:
            cfg.set("N8N_API_KEY", SECRET)
            with self.assertRaises(ExecEngineError) as cm:
                cfg.get_string("N8N_API_KEY")
            self.assertEqual(cm.exception.code, -16)
            self.assertEqual(cm.exception.name, "EE_EPERM")
            self.assertIn("N8N_API_KEY", cm.exception.message)
            self.assertNotIn(SECRET, cm.exception.message)
            summary = cfg.summary()
            self.assertEqual(summary["N8N_API_KEY"], {"set": True, "last4": "\u2026" + SECRET[-4:]})
            self.assertNotIn(SECRET, json.dumps(summary))
            # A rejected secret is not echoed either.
            with self.assertRaises(ee.errors.EE_EINVAL) as cm:
                cfg.set("API_KEY_ENCRYPTION_SECRET", "short-secret-value")
            self.assertIn("API_KEY_ENCRYPTION_SECRET", cm.exception.message)
            self.assertNotIn("short-secret-value", cm.exception.message)

    def test_summary_and_options_are_parsed(self):
        with Config() as cfg:
            cfg.set("MAX_CONCURRENT_EXECUTIONS", "3")
            cfg.set("FREE_TIER_MONTHLY_ALLOWANCE", "12.5")
            s = cfg.summary()
            self.assertIsInstance(s, dict)
            self.assertEqual(s["MAX_CONCURRENT_EXECUTIONS"], 3)
            self.assertEqual(s["FREE_TIER_MONTHLY_ALLOWANCE"]["nanoUsd"], 12_500_000_000)
            self.assertEqual(s["N8N_API_KEY"], {"set": False})
            opts = Config.options()
            self.assertIsInstance(opts, list)
            names = {o["name"] for o in opts}
            self.assertEqual(names, set(s))
            mce = next(o for o in opts if o["name"] == "MAX_CONCURRENT_EXECUTIONS")
            self.assertEqual(mce["default"], "10")
            self.assertTrue(next(o for o in opts if o["name"] == "SMTP_PASS")["secret"])

    def test_copy_is_independent(self):
        with Config() as a:
            a.set("BILLING_CYCLE_DAY", "5")
            with a.copy() as b:
                b.set("BILLING_CYCLE_DAY", "6")
                self.assertEqual(a.get_int("BILLING_CYCLE_DAY"), 5)
                self.assertEqual(b.get_int("BILLING_CYCLE_DAY"), 6)

    def test_closed_config_refuses_calls(self):
        cfg = Config()
        cfg.close()
        cfg.close()  # idempotent
        self.assertTrue(cfg.closed)
        with self.assertRaises(ValueError):
            cfg.get_int("BILLING_CYCLE_DAY")

    def test_finaliser_frees_unclosed_configs(self):
        cfg = Config()
        fin = cfg._finalizer
        del cfg
        gc.collect()
        self.assertFalse(fin.alive)


class ErrorDetailTest(unittest.TestCase):
    def test_error_document_from_out_parameter(self):
        """A failing document call writes the error document to *out; the
        binding reads the detail from there, so it is right even when the
        call ran on another thread than the one that raises."""
        native.fn.ee_error_clear()
        result = {}

        def worker():
            out = ctypes.c_void_p()
            st = native.fn.ee_config_summary_json(None, ctypes.byref(out))
            result["status"], result["text"] = st, native.take_string(out)

        t = threading.Thread(target=worker)
        t.start()
        t.join()
        self.assertEqual(result["status"], -3)
        # This thread's own detail was not touched by the worker's failure.
        self.assertEqual(native.fn.ee_error_last_status(), 0)
        e = ExecEngineError.from_document(result["text"], result["status"])
        self.assertIsInstance(e, ee.errors.EE_EINVAL)
        self.assertEqual((e.code, e.name, e.http_status), (-3, "EE_EINVAL", 0))
        self.assertEqual(e.message, "ee_config_summary_json: cfg is NULL")

    def test_call_helper_raises_from_document(self):
        with self.assertRaises(ee.errors.EE_EINVAL) as cm:
            ee._call_json(native.fn.ee_config_summary_json, None)
        self.assertEqual(cm.exception.message, "ee_config_summary_json: cfg is NULL")

    def test_stale_thread_detail_is_not_reported(self):
        with Config() as cfg, self.assertRaises(ExecEngineError):
            cfg.set("BILLING_CYCLE_DAY", "99")
        # The detail on this thread belongs to EE_EINVAL; an EE_EIO with no
        # detail of its own must not borrow that message.
        e = ExecEngineError.last(-9)
        self.assertEqual(e.name, "EE_EIO")
        self.assertEqual(e.message, ee.strerror(-9))
        self.assertNotIn("BILLING_CYCLE_DAY", e.message)


class EngineTest(unittest.TestCase):
    def test_open_close_with_context_managers(self):
        with memory_config() as cfg:
            with Engine.open(cfg) as engine:
                s = engine.summary()
                self.assertEqual(s["version"], ee.version())
                self.assertEqual(s["storage"], {"uri": "memory:", "backend": "memory"})
                self.assertEqual(s["config"]["EE_STORAGE_URI"], "memory:")
                self.assertFalse(engine.closed)
            self.assertTrue(engine.closed)
            engine.close()  # idempotent
            with self.assertRaises(ValueError):
                engine.summary()

    def test_a_handle_is_closed_with_the_one_it_borrows(self):
        # ee_n8n_new() borrows its transport ("must outlive the client"):
        # transport.close() freed it under the client, whose next call used
        # freed memory (ASan: heap-use-after-free in ee_transport_http).
        # Closing the transport now closes the client first and frees the
        # transport after it; a client closed first leaves the transport
        # usable; dropping the transport alone keeps it alive for the client.
        with ee.TransportOptions() as opts:
            t = ee.Transport.curl(opts)
            client = ee.N8n(t, "http://127.0.0.1:9", "")
            t.close()
            self.assertTrue(client.closed)
            with self.assertRaises(ValueError):
                client.list_workflows()
            t = ee.Transport.curl(opts)
            client = ee.N8n(t, "http://127.0.0.1:9", "")
            client.close()
            self.assertFalse(t.closed)
            t.close()
            t = ee.Transport.curl(opts)
            client = ee.N8n(t, "http://127.0.0.1:9", "")
            del t
            gc.collect()
            with self.assertRaises(ee.ExecEngineError):  # nothing listens on :9
                client.list_workflows()
            client.close()
        # an engine's quota subject: closed with the engine
        with memory_config() as cfg:
            engine = Engine.open(cfg)
            with ee.Principal("ws-1", "u-1", "org-1") as p:
                subject = ee.QuotaSubject(engine, p)
                engine.close()
                self.assertTrue(subject.closed)
                self.assertTrue(engine.closed)

    def test_the_exit_finalizer_never_frees_under_a_call(self):
        # At interpreter exit weakref.finalize frees every engine still
        # alive - also one a daemon thread is inside a C call with (an
        # ee_exec_wait(), say): freed under that call, the process crashed
        # at exit (ASan: heap-use-after-free). The finalizer now leaves a
        # pinned object to the process's end; unpinned it frees once, and
        # no call starts after.
        from execengine import _runtime
        with memory_config() as cfg, Engine.open(cfg) as engine:
            freed = []
            fin = _runtime.pin_finalizer(engine, freed.append, "ptr")
            engine._enter()        # a call inside C
            fin()                  # what atexit does
            self.assertEqual(freed, [], "freed under a running call")
            self.assertFalse(fin.alive)
            engine._leave()
            other = Engine.open(cfg)
            fin = _runtime.pin_finalizer(other, freed.append, "ptr2")
            other._finalizer.detach()  # the test's free stands in for it
            fin()
            self.assertEqual(freed, ["ptr2"])
            with self.assertRaises(ValueError):
                other._enter()     # no call on a freed object
            _fn = native.fn
            _fn.ee_engine_close(other._ptr)  # the real one, once

    def test_open_failure_carries_detail_and_no_secret(self):
        password = "pw-Secret-4711"
        lines = []
        with Config() as cfg:
            cfg.set_log(lambda lvl, mod, msg: lines.append(msg), "debug")
            cfg.set("EE_STORAGE_URI", "sqlite:///proc/ee-no-such-dir/x.db")
            with self.assertRaises(ee.errors.EE_EIO) as cm:
                Engine.open(cfg)
            self.assertEqual(cm.exception.code, -9)
            self.assertIn("/proc/ee-no-such-dir", cm.exception.message)
            # Nothing listens on port 1 of the loopback: refused at once.
            cfg.set("EE_STORAGE_URI", f"postgres://ee:{password}@127.0.0.1:1/db")
            self.assertNotIn(password, json.dumps(cfg.summary()))
            with self.assertRaises(ExecEngineError) as cm:
                Engine.open(cfg)
            self.assertEqual(cm.exception.name, "EE_ENETWORK")
            self.assertIn("127.0.0.1", cm.exception.message)
            self.assertNotIn(password, cm.exception.message)
        self.assertTrue(lines)
        self.assertFalse([m for m in lines if password in m])

    def test_engine_outlives_its_config(self):
        lines = []
        cfg = memory_config()
        cfg.set_log(lambda lvl, mod, msg: lines.append(msg), "info")
        cfg.set_clock(lambda: 1234)
        engine = Engine.open(cfg)
        cfg.close()
        del cfg
        gc.collect()
        # The callbacks the engine copied are still alive.
        self.assertEqual(engine.now_ms(), 1234)
        self.assertEqual(engine.summary()["storage"]["backend"], "memory")
        engine.close()
        self.assertIn("engine closed", lines)

    def test_finaliser_closes_unclosed_engines(self):
        lines = []
        cfg = memory_config()
        cfg.set_log(lambda lvl, mod, msg: lines.append(msg), "info")
        Engine.open(cfg)  # never closed explicitly
        cfg.close()
        gc.collect()
        self.assertTrue(any(m.startswith("engine opened") for m in lines), lines)
        self.assertIn("engine closed", lines)

    def test_log_callback_receives_lines_without_secrets(self):
        lines = []
        with memory_config() as cfg:
            cfg.set("N8N_API_KEY", SECRET)
            cfg.set("SMTP_PASS", "hunter2-smtp-password")
            cfg.set_log(lambda lvl, mod, msg: lines.append((lvl, mod, msg)), ee.LogLevel.DEBUG)
            with Engine.open(cfg):
                pass
        self.assertTrue(lines, "no log line reached the callback")
        self.assertTrue(any("engine opened" in m for _, _, m in lines), lines)
        for lvl, mod, msg in lines:
            self.assertIsInstance(lvl, ee.LogLevel)
            self.assertIsInstance(mod, str)
            self.assertNotIn(SECRET, msg)
            self.assertNotIn("hunter2-smtp-password", msg)

    def test_log_level_filters_and_off(self):
        lines = []
        with memory_config() as cfg:
            cfg.set_log(lambda *a: lines.append(a), "error")
            with Engine.open(cfg):
                pass
            self.assertEqual(lines, [])  # "engine opened" is info
            cfg.set_log(lambda *a: lines.append(a), "info")
            cfg.set_log(None)
            with Engine.open(cfg):
                pass
            self.assertEqual(lines, [])
            with self.assertRaises(ValueError):
                cfg.set_log(print, "verbose")
            with self.assertRaises(ee.errors.EE_EINVAL):
                cfg.set_log(print, 7)

    def test_raising_log_callback_does_not_break_the_engine(self):
        seen = []
        old = sys.unraisablehook
        sys.unraisablehook = lambda args: seen.append(args.exc_value)
        try:
            with memory_config() as cfg:
                cfg.set_log(lambda *a: 1 / 0, "info")
                with Engine.open(cfg) as engine:
                    self.assertEqual(engine.summary()["version"], ee.version())
        finally:
            sys.unraisablehook = old
        self.assertTrue(seen)
        self.assertIsInstance(seen[0], ZeroDivisionError)

    def test_injected_clock_moves_now_ms(self):
        now = [1_700_000_000_000]
        with memory_config() as cfg:
            cfg.set_clock(lambda: now[0])
            with Engine.open(cfg) as engine:
                self.assertEqual(engine.now_ms(), 1_700_000_000_000)
                now[0] += 1500
                self.assertEqual(engine.now_ms(), 1_700_000_001_500)
            cfg.set_clock(None)
            with Engine.open(cfg) as engine:
                self.assertLess(abs(engine.now_ms() - time.time() * 1000), 60_000)

    def test_engine_shared_by_threads(self):
        with memory_config() as cfg:
            cfg.set_clock(lambda: 42)
            with Engine.open(cfg) as engine:
                results = []

                def work():
                    for _ in range(50):
                        results.append((engine.now_ms(), engine.summary()["version"]))

                threads = [threading.Thread(target=work) for _ in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        self.assertEqual(len(results), 200)
        self.assertTrue(all(r == (42, ee.version()) for r in results))



# A child process: worker threads make a failing call (its error detail is
# freed at thread exit) and a catalog search (its scratch likewise), then
# the interpreter exits. With "dlclose", one worker is still alive when the
# library is unloaded (_ctypes.dlclose, as a host that unloads it would do)
# and ends afterwards: its thread-exit destructors must still find their
# code (the library is linked with -z nodelete, docs/bindings.md).
_UNLOAD_CHILD = r"""
import ctypes, json, sys, threading, _ctypes
import execengine as ee
from execengine import native
unload = sys.argv[1] == "dlclose"
cfg = ee.Config()
cfg.set("EE_STORAGE_URI", "memory:")
cfg.set("EE_COUNTERS_URI", "memory:")
cfg.set("API_KEY_ENCRYPTION_SECRET", sys.argv[2])
engine = ee.Engine.open(cfg)
cfg.close()
h = engine._handle()
def call(name, *args):
    out = ctypes.c_void_p()
    st = getattr(native.fn, name)(h, *args, ctypes.byref(out))
    return st, native.take_string(out)
st, text = call("ee_catalog_create", json.dumps({"n8nWorkflowId": "w1", "name": "Alpha report",
                "inputSchema": {"type": "object", "required": ["topic"]}}).encode())
assert st == 0, text
wid = json.loads(text)["id"].encode()
nthreads = 3
done = threading.Barrier(nthreads + 1)
go = threading.Event()
seen = []
def work():
    seen.append(native.STATUS_NAMES[call("ee_catalog_validate_input", None, wid, b"{}")[0]])
    seen.append(json.loads(call("ee_catalog_search", None, b'{"q": "alpha"}')[1])["total"])
    if unload:
        done.wait()
        go.wait()
threads = [threading.Thread(target=work) for _ in range(nthreads)]
for t in threads:
    t.start()
if unload:
    done.wait()
    engine.close()
    _ctypes.dlclose(native.lib._handle)
    go.set()
for t in threads:
    t.join()
print(json.dumps(sorted(seen, key=str)))
"""


class UnloadTest(unittest.TestCase):
    def _child(self, mode):
        env = dict(os.environ, PYTHONPATH=PKG_ROOT)
        r = subprocess.run([sys.executable, "-c", _UNLOAD_CHILD, mode, TEST_ENCRYPTION_SECRET],
                           env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"child ended with {r.returncode}: {r.stderr}")
        self.assertEqual(json.loads(r.stdout), [1, 1, 1] + ["EE_EVALIDATION"] * 3)

    def test_worker_threads_then_interpreter_exit(self):
        self._child("exit")

    def test_unloaded_while_a_worker_thread_lives(self):
        self._child("dlclose")

if __name__ == "__main__":
    unittest.main()
