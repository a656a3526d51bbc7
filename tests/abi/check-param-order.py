#!/usr/bin/env python3
"""The parameter-order rule of the public API (shared/STYLE.md, "Names"):

  * a constructor takes the new handle first: ee_x_new(ee_x **out, ...),
    ee_engine_open(&engine, cfg). A constructor is a function that hands back
    a new handle of the type it is named after (ee_config_copy,
    ee_storage_open_uri, ee_schema_compile, ee_transport_curl_new ...);
  * every other function puts all of its outputs last (..., char **out).

An output is a parameter whose bindings/manifest.json type is an out type of
the vocabulary (str_out, int64_out, handle_out:<type> ...) or a pointer to a
public struct that the header declares without const (a ticket or a
counter result the call fills). The manifest is itself checked against the
headers by ctest bindings.manifest, so a new function is seen here.

    check-param-order.py [--root DIR]     exit 1 and list every outlier

Standard library only. test_param_order.py is its self-test.
"""
import argparse
import json
import os
import re
import sys

# In/out parameters that the rule does not move, each with its reason. An
# entry must still name an existing output parameter, or the check fails
# (a stale exception would hide nothing but mislead).
EXCEPTIONS = {
    # The admitted ticket is the object the call acts on (it is read, then
    # marked finished so that a second finish is refused): it stands where a
    # handle would, after the engine, not among the results.
    ("ee_quota_finish", "ticket"),
}


def is_output(param, nonconst_structs):
    t = param["type"]
    if t.startswith("handle_out:") or t.endswith("_out"):
        return True
    return t.startswith("ptr:") and param["name"] in nonconst_structs


def constructed_type(fn):
    """The handle type a constructor returns, or None."""
    for p in fn["params"]:
        if p["type"].startswith("handle_out:"):
            handle = p["type"].split(":", 1)[1]
            if fn["name"].startswith(handle + "_"):
                return handle
    return None


def prototype_params(header_text, name):
    """The C text of each parameter of `name` in a header, or None."""
    m = re.search(r"\bEE_API\b[^;(]*\b%s\s*\(([^;]*?)\)\s*;" % re.escape(name), header_text,
                  re.S)
    if m is None:
        return None
    return [" ".join(p.split()) for p in m.group(1).split(",")]


def nonconst_struct_params(header_text, fn):
    """Names of the ptr:<struct> parameters the header declares non-const,
    or None when the header has no prototype with that many parameters."""
    names = set()
    texts = prototype_params(header_text, fn["name"])
    if texts is None or len(texts) != max(len(fn["params"]), 1):
        return None
    for p, text in zip(fn["params"], texts):
        if p["type"].startswith("ptr:") and not re.match(r"^const\b", text):
            names.add(p["name"])
    return names


def outliers(functions, headers, exceptions=EXCEPTIONS):
    """Every violation of the rule, one message each."""
    problems = []
    used = set()
    for fn in functions:
        nonconst = nonconst_struct_params(headers.get(fn["header"], ""), fn)
        if nonconst is None:
            problems.append("%s: no EE_API prototype with %d parameters in %s"
                            % (fn["name"], len(fn["params"]), fn["header"]))
            continue
        params = fn["params"]
        outs = []
        for i, p in enumerate(params):
            if not is_output(p, nonconst):
                continue
            if (fn["name"], p["name"]) in exceptions:
                used.add((fn["name"], p["name"]))
                continue
            outs.append(i)
        if not outs:
            continue
        handle = constructed_type(fn)
        if handle is not None:
            first = params[0]
            if first["type"] != "handle_out:" + handle:
                problems.append("%s: a constructor takes its new %s ** first (has %s first)"
                                % (fn["name"], handle, first["name"]))
            outs = [i for i in outs if i != 0]
        # The outputs left must be the last parameters, in one run.
        want = list(range(len(params) - len(outs), len(params)))
        if outs != want:
            names = ", ".join(params[i]["name"] for i in outs)
            problems.append("%s: outputs (%s) must be its last parameters: (%s)"
                            % (fn["name"], names,
                               ", ".join(p["name"] for p in params)))
    for fn_name, param in sorted(set(exceptions) - used):
        problems.append("exception list: %s has no output parameter %s (remove the entry)"
                        % (fn_name, param))
    return problems


def load(root):
    with open(os.path.join(root, "bindings", "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    headers = {}
    inc = os.path.join(root, "include", "execengine")
    for name in os.listdir(inc):
        if name.endswith(".h"):
            with open(os.path.join(inc, name), encoding="utf-8") as f:
                headers[name] = f.read()
    return manifest["functions"], headers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    args = ap.parse_args(argv)
    functions, headers = load(args.root)
    problems = outliers(functions, headers)
    for p in problems:
        print("param-order: " + p)
    if problems:
        print("param-order: %d outlier(s); see shared/STYLE.md and tests/abi/check-param-order.py"
              % len(problems))
        return 1
    print("param-order: %d functions follow the rule" % len(functions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
