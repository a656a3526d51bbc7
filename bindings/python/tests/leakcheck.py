#!/usr/bin/env python3
"""ctest bindings.python_leaks: 1,000 calls through the idiomatic layer under
valgrind, and no definite leak from libexecengine.

    leakcheck.py                 run the loop under valgrind and judge the report
    leakcheck.py --loop N [--leak]   the loop itself (what valgrind runs)

The loop covers the conversions that allocate: JSON documents out (freed
with ee_free), error documents of failing calls, handles made and freed,
bytes out, callbacks - and executions: a catalog sync and, every 50 calls,
a run to its end through the worker threads (against tests/support/
fake_n8n.py, a separate process outside valgrind) with its record, results
and cost read back. --leak drops one library string per call without
ee_free(): the judge must then report it (run first, so that a judge that
cannot see leaks fails the test).

Only leaks with a frame in libexecengine (an ee_ function) count: CPython keeps some memory
until exit by design (interned strings, type caches), and valgrind's
--errors-for-leak-kinds=definite reports it for the interpreter as well.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def loop(n, leak):
    sys.path.insert(0, os.path.dirname(HERE))
    import ctypes
    import execengine as ee
    fake = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "..", "..", "tests",
                                                          "support", "fake_n8n.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = fake.stdout.readline()
    if not line.startswith("PORT "):
        fake.kill()
        raise SystemExit("the fake n8n did not start")
    cfg = ee.Config()
    cfg.set("EE_STORAGE_URI", "memory:")
    cfg.set("EE_COUNTERS_URI", "memory:")
    cfg.set("API_KEY_ENCRYPTION_SECRET", "leak-test-encryption-secret-0123456789abcdef")
    cfg.set("N8N_BASE_URL", "http://127.0.0.1:%d" % int(line.split()[1]))
    cfg.set("N8N_API_KEY", "leak-test-n8n-key")
    cfg.set("MAX_EXECUTIONS_PER_USER_PER_HOUR", "1000")
    lines = []
    cfg.set_log(lambda lvl, mod, msg: lines.append(msg) if len(lines) < 10 else None, "warn")
    engine = ee.Engine.open(cfg)
    p = ee.Principal("ws-l", "u-l", "org-l")
    wf = engine.catalog.sync()["added"][0]["id"]
    runs = 0
    schema = ee.Schema.compile({"type": "object", "properties": {"a": {"type": "integer"}}})
    calls = 0
    while calls < n:
        engine.catalog.list(p, limit=5)
        engine.quota.usage(p)
        ee.templates.render("{{a}} {{b}}", {"a": calls, "b": "x"})
        try:
            schema.validate({"a": "no"})
        except ee.ValidationError as e:
            assert e.pointers == ["/a"]
        try:
            engine.catalog.get(p, "0" * 24)
        except ee.NotFound:
            pass
        with ee.HttpRequest("POST", "http://127.0.0.1:1/") as req:
            req.set_body(b"abc")
            assert req.body() == b"abc"
        ee.cost.allocate(10, [1, 2])
        engine.credentials.route(p, {"nodeNames": ["gmail"]}, {})
        engine.billing.current(p)
        engine.audit.stats()
        calls += 10
        if calls % 50 == 0:  # a run every fifth round: 20 in 1,000 calls
            rec = engine.executions.run(p, wf, parameters={"text": "leak %d" % calls})
            assert rec["status"] == "completed", rec
            engine.executions.results(p, rec["_id"])
            engine.executions.cost(p, rec["_id"])
            runs += 1
        if leak:
            out = ctypes.c_void_p()
            ee.native.fn.ee_quota_usage(engine._handle(), p._handle(), ctypes.byref(out))
            # not freed on purpose
    schema.close()
    p.close()
    engine.close()
    cfg.close()
    fake.kill()
    fake.wait()
    fake.stdout.close()
    print("calls", calls, "runs", runs)


def judge(log_text):
    """The definite-leak records with a libexecengine frame."""
    records = re.split(r"\n==\d+== \n", log_text)
    ours = re.compile(r"libexecengine|: ee_\w+ \(")
    return [r for r in records if "definitely lost in" in r and ours.search(r)]


def run(n, leak):
    valgrind = shutil.which("valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "vg.log")
        env = dict(os.environ, PYTHONMALLOC="malloc")
        cmd = [valgrind, "--leak-check=full", "--errors-for-leak-kinds=definite",
               "--show-leak-kinds=definite", "--num-callers=30", "--log-file=" + log,
               sys.executable, os.path.abspath(__file__), "--loop", str(n)] + \
            (["--leak"] if leak else [])
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
    if r.returncode != 0 and "calls" not in r.stdout:
        print(r.stdout, r.stderr, text[-4000:], sep="\n")
        raise SystemExit("the loop failed under valgrind")
    m = re.search(r"calls (\d+) runs (\d+)", r.stdout)
    if not m or int(m.group(2)) < n // 50:
        raise SystemExit("the loop did not run its executions: " + r.stdout[-400:])
    return judge(text)


def main(argv):
    if "--loop" in argv:
        loop(int(argv[argv.index("--loop") + 1]), "--leak" in argv)
        return 0
    if not shutil.which("valgrind"):
        # scripts/setup installs it: a missing tool fails the test, never skips it
        print("FAIL: valgrind not found (apt-get install valgrind; scripts/setup does)")
        return 1
    planted = run(20, True)
    if not planted:
        print("FAIL: a planted leak (a string not given to ee_free) was not reported")
        return 1
    print(f"self-check: the planted leak is reported ({len(planted)} record(s))")
    leaks = run(1000, False)
    for rec in leaks:
        print(rec)
    if leaks:
        print(f"FAIL: {len(leaks)} definite leak(s) from libexecengine in 1,000 calls")
        return 1
    print("OK: 1,000 calls (20 executions among them), no definite leak from libexecengine")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
