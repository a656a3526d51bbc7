"""Self-test of manifest.py on a small synthetic source tree: the check must
fail when an export has no manifest entry or a signature changed."""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manifest  # noqa: E402

HEADER = """
#include "common.h"
typedef struct ee_thing ee_thing;
typedef struct ee_point { int x; int y; } ee_point;
typedef enum ee_mode { EE_MODE_A = 0 } ee_mode;
/* EE_API void ee_commented_out(void); */
typedef void (*ee_thing_fn)(const char *name, void *payload);
EE_API ee_status ee_thing_new(ee_thing **out, const char *name);
EE_API void ee_thing_free(ee_thing *t);
EE_API ee_status ee_thing_json(const ee_thing *t, char **out);
EE_API const char *ee_thing_name(const ee_thing *t);
EE_API ee_status ee_thing_each(ee_thing *t, ee_thing_fn fn, void *payload);
EE_API ee_status ee_thing_move(ee_thing *t, const ee_point *to, size_t n, ee_mode mode,
                               int64_t *moved);
EE_API ee_status ee_thing_load(ee_thing *t, const char *const *envp);
EE_API ee_status ee_thing_sum(int64_t *total, const int64_t *values, size_t n);
EE_API ee_status ee_thing_put(ee_thing *t, const char *doc_json, const char *label);
EE_API ee_status ee_unexported(void);
"""


class ManifestToolTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        inc = os.path.join(self.root, "include", "execengine")
        os.makedirs(inc)
        os.makedirs(os.path.join(self.root, "abi"))
        os.makedirs(os.path.join(self.root, "bindings"))
        with open(os.path.join(inc, "version.h"), "w") as f:
            f.write("#define EE_VERSION_MAJOR 0\n")
        self.header = os.path.join(inc, "thing.h")
        with open(self.header, "w") as f:
            f.write(HEADER)
        self.exports = os.path.join(self.root, "abi", "exports.txt")
        names = ["ee_thing_new", "ee_thing_free", "ee_thing_json", "ee_thing_name",
                 "ee_thing_each", "ee_thing_move", "ee_thing_load", "ee_thing_sum",
                 "ee_thing_put"]
        with open(self.exports, "w") as f:
            f.write("# comment\n" + "".join(f"{n} EE_0.1\n" for n in names))

    def tearDown(self):
        self.tmp.cleanup()

    def run_tool(self, *args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = manifest.main([*args, "--root", self.root])
        return rc, err.getvalue()

    def load(self):
        with open(os.path.join(self.root, "bindings", "manifest.json")) as f:
            return json.load(f)

    def test_update_then_check_passes(self):
        self.assertEqual(self.run_tool("update")[0], 0)
        self.assertEqual(self.run_tool("check"), (0, ""))
        m = self.load()
        f = {x["name"]: x for x in m["functions"]}
        self.assertNotIn("ee_unexported", f)
        self.assertNotIn("ee_commented_out", f)
        self.assertEqual([p["type"] for p in f["ee_thing_new"]["params"]],
                         ["handle_out:ee_thing", "str"])
        self.assertEqual(f["ee_thing_json"]["params"][1]["type"], "str_out")
        self.assertEqual(f["ee_thing_name"]["returns"], "borrowed_str")
        self.assertEqual([p["type"] for p in f["ee_thing_move"]["params"]],
                         ["handle:ee_thing", "ptr:ee_point", "size", "int", "int64_out"])
        self.assertEqual(f["ee_thing_load"]["params"][1]["type"], "str_array")
        self.assertEqual([p["type"] for p in f["ee_thing_sum"]["params"]],
                         ["int64_out", "int64_array", "size"])
        self.assertEqual(m["handles"], {"ee_thing": {"free": "ee_thing_free"}})
        self.assertEqual([p["type"] for p in m["callbacks"]["ee_thing_fn"]["params"]],
                         ["str", "ptr"])

    def test_json_parameters_are_marked(self):
        self.assertEqual(self.run_tool("update")[0], 0)
        f = {x["name"]: x for x in self.load()["functions"]}
        self.assertEqual([p.get("json", False) for p in f["ee_thing_put"]["params"]],
                         [False, True, False])
        self.assertNotIn("json", f["ee_thing_new"]["params"][1])
        # a marker removed by hand (or missing from an old manifest) fails the check
        path = os.path.join(self.root, "bindings", "manifest.json")
        m = self.load()
        for fn in m["functions"]:
            for p in fn["params"]:
                p.pop("json", None)
        with open(path, "w") as out:
            json.dump(m, out)
        rc, err = self.run_tool("check")
        self.assertEqual(rc, 1)
        self.assertIn('ee_thing_put(doc_json): "json": true must mark', err)

    def test_new_export_without_manifest_entry_fails(self):
        self.run_tool("update")
        with open(self.exports, "a") as f:
            f.write("ee_unexported EE_0.1\n")
        rc, err = self.run_tool("check")
        self.assertEqual(rc, 1)
        self.assertIn("ee_unexported: in abi/exports.txt but not in bindings/manifest.json", err)
        self.assertEqual(self.run_tool("update")[0], 0)
        self.assertEqual(self.run_tool("check")[0], 0)

    def test_changed_signature_fails(self):
        self.run_tool("update")
        with open(self.header) as f:
            text = f.read()
        with open(self.header, "w") as f:
            f.write(text.replace("const char *ee_thing_name(const ee_thing *t)",
                                 "int ee_thing_name(const ee_thing *t, int flags)"))
        rc, err = self.run_tool("check")
        self.assertEqual(rc, 1)
        self.assertIn("ee_thing_name: manifest says borrowed_str (handle:ee_thing), "
                      "header says int (handle:ee_thing, int)", err)

    def test_manifest_entry_not_exported_fails(self):
        self.run_tool("update")
        with open(self.exports, "w") as f:
            f.write("ee_thing_new EE_0.1\n")
        rc, err = self.run_tool("check")
        self.assertEqual(rc, 1)
        self.assertIn("ee_thing_free: in bindings/manifest.json but not in abi/exports.txt", err)

    def test_unknown_c_type_is_refused(self):
        with open(self.header, "a") as f:
            f.write("EE_API ee_status ee_thing_weird(float x);\n")
        with open(self.exports, "a") as f:
            f.write("ee_thing_weird EE_0.1\n")
        rc, err = self.run_tool("update")
        self.assertEqual(rc, 1)
        self.assertIn("no vocabulary type for C type 'float'", err)


if __name__ == "__main__":
    unittest.main()
