"""The package installs offline with
`pip install --no-build-isolation bindings/python` and works from there."""
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINDINGS = os.path.dirname(PKG_ROOT)

# An interpreter that can build a wheel without the network: pip, setuptools
# and either the `wheel` package or a setuptools with bdist_wheel built in.
# (setuptools first: Debian's refuses to load after pip imported distutils.)
PROBE = ("import setuptools\n"
         "try:\n    import wheel\n"
         "except ImportError:\n    import setuptools.command.bdist_wheel\n"
         "import pip\n")


def builder():
    seen = []
    for exe in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if exe and os.path.exists(exe) and exe not in seen:
            seen.append(exe)
            if subprocess.run([exe, "-c", PROBE], capture_output=True).returncode == 0:
                return exe
    return None


class InstallTest(unittest.TestCase):
    def test_pip_install_offline_into_target(self):
        exe = builder()
        if exe is None:
            self.fail("no python3 with pip, setuptools and wheel support (scripts/setup installs "
                      "them: apt-get install python3-pip python3-setuptools python3-wheel)")
        with tempfile.TemporaryDirectory() as tmp:
            # Build from a copy: setuptools writes build/ and *.egg-info next
            # to the sources. The manifest link resolves inside the copy.
            src = os.path.join(tmp, "bindings")
            os.makedirs(src)
            shutil.copy(os.path.join(BINDINGS, "manifest.json"), src)
            shutil.copytree(PKG_ROOT, os.path.join(src, "python"), symlinks=True,
                            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            target = os.path.join(tmp, "site")
            r = subprocess.run([exe, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                                "--no-deps", "--disable-pip-version-check", "--quiet",
                                "--target", target, os.path.join(src, "python")],
                               capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            installed = os.path.join(target, "execengine", "manifest.json")
            self.assertFalse(os.path.islink(installed))
            self.assertTrue(filecmp.cmp(installed, os.path.join(BINDINGS, "manifest.json"),
                                        shallow=False))
            env = dict(os.environ, PYTHONPATH=target)
            env.pop("EE_MANIFEST_PATH", None)
            r = subprocess.run([exe, "-c", "import execengine as e, sys\n"
                                "print(e.__file__)\nprint(e.version())\n"
                                "print(e.Config().get_int('BILLING_CYCLE_DAY'))\n"
                                "print(e.templates.render('{{a}}', a='via-idiomatic'))"],
                               cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            where, version, day, rendered = r.stdout.split()
            self.assertTrue(where.startswith(target), where)
            self.assertRegex(version, r"^\d+\.\d+\.\d+$")
            self.assertEqual(day, "1")
            self.assertEqual(rendered, "via-idiomatic")
            for name in ("py.typed", "_api.py", "_runtime.py", "_rules.py", "_extras.py"):
                self.assertTrue(os.path.isfile(os.path.join(target, "execengine", name)), name)

    def test_pip_install_into_a_venv_of_debians_python3(self):
        exe = "/usr/bin/python3"
        if not os.path.exists(exe) or \
                subprocess.run([exe, "-c", PROBE], capture_output=True).returncode != 0:
            self.fail("no Debian python3 with pip, setuptools and wheel (scripts/setup installs "
                      "them: apt-get install python3-pip python3-setuptools python3-wheel)")
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "bindings")
            os.makedirs(src)
            shutil.copy(os.path.join(BINDINGS, "manifest.json"), src)
            shutil.copytree(PKG_ROOT, os.path.join(src, "python"), symlinks=True,
                            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            venv = os.path.join(tmp, "venv")
            r = subprocess.run([exe, "-m", "venv", "--system-site-packages", "--without-pip",
                                venv], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            py = os.path.join(venv, "bin", "python")
            # The system's pip (visible through --system-site-packages)
            # installs into the venv, without network or build isolation.
            r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                                "--no-deps", "--disable-pip-version-check", "--quiet",
                                os.path.join(src, "python")],
                               capture_output=True, text=True, timeout=300, cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "EE_MANIFEST_PATH")}
            code = ("import execengine as e\n"
                    "c = e.Config(); c.set('EE_STORAGE_URI', 'memory:')\n"
                    "c.set('API_KEY_ENCRYPTION_SECRET', 'x' * 40)\n"
                    "with e.Engine.open(c) as g, e.Principal('ws', 'u', 'o') as p:\n"
                    "    print(e.__file__, g.catalog.list(p)['total'], "
                    "g.quota.usage(p)['orgId'])\n")
            r = subprocess.run([py, "-c", code], cwd=tmp, env=env, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            where, total, org = r.stdout.split()
            self.assertTrue(where.startswith(venv), where)
            self.assertEqual((total, org), ("0", "o"))


if __name__ == "__main__":
    unittest.main()
