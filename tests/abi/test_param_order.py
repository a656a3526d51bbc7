"""Self-test of check-param-order.py: it must catch each kind of outlier,
not only pass on today's headers. Run: python3 -m unittest test_param_order
(from tests/abi; ctest abi.param_order_tool)."""
import importlib.util
import os
import unittest

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("check_param_order",
                                               os.path.join(_here, "check-param-order.py"))
cpo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpo)


def fn(name, header_proto, *params):
    """A manifest entry and its header text: params are (name, type)."""
    entry = {"name": name, "header": "x.h", "returns": "status",
             "params": [{"name": n, "type": t} for n, t in params]}
    return entry, "EE_API ee_status %s(%s);\n" % (name, header_proto)


def check(*entries, exceptions=frozenset()):
    header = "".join(h for _, h in entries)
    return cpo.outliers([e for e, _ in entries], {"x.h": header}, exceptions)


class ParamOrder(unittest.TestCase):
    def test_well_ordered_functions_pass(self):
        self.assertEqual(check(
            fn("ee_thing_new", "ee_thing **out, const char *name",
               ("out", "handle_out:ee_thing"), ("name", "str")),
            fn("ee_thing_get", "ee_thing *t, const char *k, char **out",
               ("t", "handle:ee_thing"), ("k", "str"), ("out", "str_out")),
            fn("ee_thing_http", "ee_thing *t, ee_other **out",
               ("t", "handle:ee_thing"), ("out", "handle_out:ee_other")),
            fn("ee_thing_fill", "ee_thing *t, const ee_req *req, ee_result *res, int *ok",
               ("t", "handle:ee_thing"), ("req", "ptr:ee_req"), ("res", "ptr:ee_result"),
               ("ok", "int_out")),
        ), [])

    def test_constructor_with_its_handle_last_fails(self):
        p = check(fn("ee_thing_new", "ee_engine *e, ee_thing **out",
                     ("e", "handle:ee_engine"), ("out", "handle_out:ee_thing")))
        self.assertEqual(len(p), 1)
        self.assertIn("ee_thing_new: a constructor", p[0])

    def test_any_handle_constructor_counts_not_only_new(self):
        p = check(fn("ee_thing_open_uri", "const char *uri, ee_thing **out",
                     ("uri", "str"), ("out", "handle_out:ee_thing")))
        self.assertEqual(len(p), 1)

    def test_scalar_output_first_fails(self):
        p = check(fn("ee_thing_count", "int64_t *n_out, const char *s",
                     ("n_out", "int64_out"), ("s", "str")))
        self.assertEqual(len(p), 1)
        self.assertIn("n_out", p[0])

    def test_outputs_split_by_an_input_fail(self):
        p = check(fn("ee_thing_two", "char **a, int x, char **b",
                     ("a", "str_out"), ("x", "int"), ("b", "str_out")))
        self.assertEqual(len(p), 1)

    def test_nonconst_struct_output_first_fails_const_input_does_not(self):
        bad = fn("ee_thing_parse", "ee_ticket *t, const char *json",
                 ("t", "ptr:ee_ticket"), ("json", "str"))
        ok = fn("ee_thing_show", "const ee_ticket *t, char **out",
                ("t", "ptr:ee_ticket"), ("out", "str_out"))
        self.assertEqual(len(check(bad)), 1)
        self.assertEqual(check(ok), [])

    def test_exception_is_honoured_and_a_stale_one_fails(self):
        entry = fn("ee_thing_finish", "ee_engine *e, ee_ticket *t, int ok",
                   ("e", "handle:ee_engine"), ("t", "ptr:ee_ticket"), ("ok", "int"))
        self.assertEqual(len(check(entry)), 1)
        self.assertEqual(check(entry, exceptions={("ee_thing_finish", "t")}), [])
        stale = check(entry, exceptions={("ee_thing_finish", "t"), ("ee_gone", "x")})
        self.assertEqual(len(stale), 1)
        self.assertIn("ee_gone", stale[0])

    def test_a_function_missing_from_its_header_fails(self):
        entry, _ = fn("ee_thing_lost", "char **out", ("out", "str_out"))
        self.assertEqual(len(cpo.outliers([entry], {"x.h": ""}, frozenset())), 1)

    def test_the_tree_follows_the_rule(self):
        root = os.path.join(_here, "..", "..")
        functions, headers = cpo.load(root)
        self.assertGreater(len(functions), 100)
        self.assertEqual(cpo.outliers(functions, headers), [])


if __name__ == "__main__":
    unittest.main()
