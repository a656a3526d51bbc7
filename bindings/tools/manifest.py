#!/usr/bin/env python3
"""Maintain and check bindings/manifest.json, the one description of the C API
that the Python (ctypes) and Node (koffi) bindings load at run time.

    manifest.py check  [--root DIR]   exit 1 unless the manifest is right
    manifest.py update [--root DIR]   rewrite the manifest from the headers

`check` verifies that
  * the manifest's function list equals the symbols of abi/exports.txt
    (a function exported without a manifest entry fails here);
  * every entry's return and parameter types equal what the public headers
    declare, mapped into the type vocabulary below (a changed signature
    fails here);
  * every type is in the vocabulary, every handle and callback named is
    described.

`update` derives every entry of exports.txt from include/execengine/*.h, so
adding a module's functions is one command followed by a review of the
diff. Standard library only.

Type vocabulary (the "vocabulary" member of the manifest repeats it):
  status           ee_status returned (negative = failure)
  void int uint int32 uint32 int64 uint64 size double   scalars
  str              const char * in (UTF-8, copied or borrowed for the call)
  borrowed_str     const char * returned, owned by the library, never freed
  str_out          char ** out, caller frees *out with ee_free()
  borrowed_str_out const char ** out, owned by the library
  str_array        const char *const * in: NULL-terminated array of strings
  char_buf         char * buffer the caller provides (size in the docs)
  bytes            const uint8_t * / const void * in, with a length param
  bytes_out        uint8_t ** out, caller frees with ee_free()
  ptr              void * (payloads, contexts)
  ptr:<struct>     pointer to a public struct (array or single; in or out)
  ptr_out          any other pointer-to-pointer out parameter (borrowed)
  int_out int64_out uint64_out size_out   scalar out parameters (one value, or
                   an array the caller sizes, as the header says)
  int_array int64_array uint64_array size_array   const scalar arrays in
  handle:<type>    pointer to an opaque handle
  handle_out:<type> <type> ** out: a new handle owned by the caller
  callback:<type>  function pointer of a callback typedef

A "str" parameter that carries a JSON document (named "json" or "*_json" in
the header, the library's naming rule) also has "json": true in its entry.
The bindings ignore the marker (it adds no type); tests use it to find every
function that parses caller JSON (tests/unit/core/json_inputs.c). `check`
verifies that the marker is present exactly where the rule says.
"""
import argparse
import json
import os
import re
import sys

SCALARS = {
    "void": "void", "int": "int", "unsigned": "uint", "unsigned int": "uint",
    "int32_t": "int32", "uint32_t": "uint32", "int64_t": "int64", "uint64_t": "uint64",
    "size_t": "size", "double": "double", "ee_status": "status",
}
SCALAR_OUTS = {"int": "int_out", "int64_t": "int64_out", "uint64_t": "uint64_out",
               "size_t": "size_out"}

VOCABULARY = {
    "status": "ee_status (int): 0 success, negative failure",
    "void": "no value", "int": "int", "uint": "unsigned int", "int32": "int32_t",
    "uint32": "uint32_t", "int64": "int64_t", "uint64": "uint64_t", "size": "size_t",
    "double": "double",
    "str": "const char * in: UTF-8 text, borrowed for the call",
    "borrowed_str": "const char * returned: owned by the library, never freed",
    "str_out": "char ** out: *out owned by the caller, freed with ee_free()",
    "borrowed_str_out": "const char ** out: owned by the library, never freed",
    "str_array": "const char *const * in: NULL-terminated array of strings, borrowed",
    "char_buf": "char * buffer provided by the caller (size in the header)",
    "bytes": "const void * / const uint8_t * in, length in another parameter",
    "bytes_out": "uint8_t ** out: owned by the caller, freed with ee_free()",
    "ptr": "void * (payload, backend context)",
    "ptr:<struct>": "pointer to a public struct (single or array, in or out)",
    "ptr_out": "other pointer-to-pointer out parameter (borrowed)",
    "int_out": "int * out (one value, or an array the caller sizes)",
    "int64_out": "int64_t * out (one value, or an array the caller sizes)",
    "uint64_out": "uint64_t * out (one value, or an array the caller sizes)",
    "size_out": "size_t * out (one value, or an array the caller sizes)",
    "int_array": "const int * in: array, length in another parameter",
    "int64_array": "const int64_t * in: array, length in another parameter",
    "uint64_array": "const uint64_t * in: array, length in another parameter",
    "size_array": "const size_t * in: array, length in another parameter",
    "handle:<type>": "pointer to an opaque handle",
    "handle_out:<type>": "<type> ** out: a new handle owned by the caller (see handles)",
    "callback:<type>": "function pointer of a callback described under callbacks",
}
FIXED_TYPES = {k for k in VOCABULARY if "<" not in k}


def is_json_param(name, vtype):
    """Whether a parameter carries a JSON document (marked "json": true)."""
    return vtype == "str" and (name == "json" or name.endswith("_json"))
PREFIXED = ("ptr:", "handle:", "handle_out:", "callback:")


class HeaderError(Exception):
    pass


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Preprocessor lines (macros spanning lines with backslashes included).
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    return text


class Headers:
    """What the public headers declare: opaque handles, structs, enums,
    callback typedefs, and EE_API functions (in header order)."""

    def __init__(self, include_dir):
        self.opaque, self.structs, self.enums = set(), set(), set()
        self.callbacks = {}     # name -> (ret, [(type, name)])
        self.functions = {}     # name -> (ret, [(type, name)], header)
        self.order = []
        names = sorted(n for n in os.listdir(include_dir) if n.endswith(".h"))
        texts = {}
        for n in names:
            with open(os.path.join(include_dir, n), encoding="utf-8") as f:
                texts[n] = strip_comments(f.read())
        for n, t in texts.items():
            for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{", t):
                self.structs.add(m.group(1))
            for m in re.finditer(r"typedef\s+enum\s+\w*\s*\{[^}]*\}\s*(\w+)\s*;", t):
                self.enums.add(m.group(1))
            for m in re.finditer(r"typedef\s+([^;(]*?)\(\s*\*\s*(\w+)\s*\)\s*\(([^;]*?)\)\s*;", t):
                self.callbacks[m.group(2)] = (m.group(1).strip(), split_params(m.group(3)))
        for n, t in texts.items():
            for m in re.finditer(r"typedef\s+struct\s+(\w+)\s+(\w+)\s*;", t):
                if m.group(1) not in self.structs:
                    self.opaque.add(m.group(2))
        for n in names:
            for m in re.finditer(r"\bEE_API\s+([^;(]*?)\b(ee_\w+)\s*\(([^;]*?)\)\s*;", texts[n]):
                ret, name, params = m.group(1).strip(), m.group(2), m.group(3)
                self.functions[name] = (ret, split_params(params), n)
                self.order.append(name)

    # -- mapping C types into the vocabulary --------------------------------
    def vocab(self, ctype, where, returned=False):
        c = " ".join(ctype.replace("*", " * ").split())
        stars = c.count("*")
        base_words = [w for w in c.replace("*", " ").split() if w != "const"]
        base = " ".join(base_words)
        const_base = c.startswith("const ")
        if base in self.enums:
            base = "int" if base != "ee_status" else "ee_status"
        if stars == 0:
            if base in SCALARS:
                return SCALARS[base]
            if base in self.callbacks:
                return "callback:" + base
        elif stars == 1:
            if base == "char":
                if returned:
                    if const_base:
                        return "borrowed_str"
                    raise HeaderError(f"{where}: char * returned (use an out-parameter)")
                return "str" if const_base else "char_buf"
            if base in ("void", "uint8_t"):
                if returned:
                    raise HeaderError(f"{where}: {c} returned")
                return "bytes" if const_base else "ptr" if base == "void" else "char_buf"
            if base in self.opaque:
                return "handle:" + base
            if base in self.structs:
                return "ptr:" + base
            if base in SCALAR_OUTS and not returned:
                return SCALARS[base] + "_array" if const_base else SCALAR_OUTS[base]
        elif stars >= 2 and not returned:
            if re.fullmatch(r"const char \* const \*", c):
                return "str_array"
            if stars == 2 and base == "char":
                return "borrowed_str_out" if const_base else "str_out"
            if stars == 2 and base == "uint8_t" and not const_base:
                return "bytes_out"
            if stars == 2 and base in self.opaque and not const_base:
                return "handle_out:" + base
            return "ptr_out"
        raise HeaderError(f"{where}: no vocabulary type for C type '{ctype.strip()}'")

    def entry(self, name):
        ret, params, header = self.functions[name]
        e = {"name": name, "header": header, "returns": self.vocab(ret, name, returned=True),
             "params": []}
        for i, (ptype, pname) in enumerate(params):
            p = {"name": pname or f"arg{i}", "type": self.vocab(ptype, f"{name}({pname})")}
            if is_json_param(p["name"], p["type"]):
                p["json"] = True
            e["params"].append(p)
        return e

    def callback_entry(self, name):
        ret, params = self.callbacks[name]
        return {"returns": self.vocab(ret, name, returned=True),
                "params": [{"name": pn, "type": self.vocab(pt, f"{name}({pn})")}
                           for pt, pn in params]}


def split_params(text):
    text = " ".join(text.split())
    if text in ("", "void"):
        return []
    out = []
    for p in text.split(","):
        p = p.strip()
        m = re.match(r"^(.*?)(\w+)\s*(\[\s*\w*\s*\])?$", p)
        # "const char" or "unsigned int" alone are unnamed; "unsigned flags" is named
        if (not m or not m.group(1).strip() or m.group(1).strip() == "const"
                or (m.group(1).strip() == "unsigned" and m.group(2) in ("int", "long", "short", "char"))):
            out.append((p, ""))  # unnamed parameter
            continue
        ctype = m.group(1) + ("*" if m.group(3) else "")
        out.append((ctype.strip(), m.group(2)))
    return out


def read_exports(path):
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ee_"):
                names.append(line.split()[0])
    return names


def free_function(handle, functions):
    stem = handle[len("ee_"):] if handle.startswith("ee_") else handle
    for suffix in ("_free", "_close"):
        if "ee_" + stem + suffix in functions:
            return "ee_" + stem + suffix
    return None


def build(root, previous):
    hdr = Headers(os.path.join(root, "include", "execengine"))
    exports = read_exports(os.path.join(root, "abi", "exports.txt"))
    missing = [n for n in exports if n not in hdr.functions]
    if missing:
        raise HeaderError("in abi/exports.txt but declared in no public header: "
                          + ", ".join(missing))
    exported = set(exports)
    funcs = [hdr.entry(n) for n in hdr.order if n in exported]
    used_handles, used_callbacks = set(), set()
    for f in funcs:
        for t in [f["returns"]] + [p["type"] for p in f["params"]]:
            if t.startswith(("handle:", "handle_out:")):
                used_handles.add(t.split(":", 1)[1])
            if t.startswith("callback:"):
                used_callbacks.add(t.split(":", 1)[1])
    names = {f["name"] for f in funcs}
    handles = {h: {"free": free_function(h, names)} for h in sorted(used_handles)}
    callbacks = {c: hdr.callback_entry(c) for c in sorted(used_callbacks)}
    doc = dict(previous) if previous else {}
    doc.update({
        "comment": "The C API of libexecengine for the bindings. Generated by "
                   "bindings/tools/manifest.py update from include/execengine/*.h and "
                   "abi/exports.txt; checked by ctest bindings.manifest. Status codes are "
                   "not listed: bindings read them with ee_status_name() at load time.",
        "library": {"name": "execengine", "soname": "libexecengine.so.0", "major": 0},
        "vocabulary": VOCABULARY,
        "handles": handles,
        "callbacks": callbacks,
        "functions": funcs,
    })
    return doc


def dump(doc):
    """JSON with one function per line, so that a diff shows one line per change."""
    out = ["{"]
    keys = ["comment", "library", "vocabulary", "handles", "callbacks", "functions"]
    keys += [k for k in doc if k not in keys]
    for i, k in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        v = doc[k]
        if k in ("functions",):
            out.append(f'  "{k}": [')
            for j, f in enumerate(v):
                sep = "," if j < len(v) - 1 else ""
                out.append("    " + json.dumps(f, ensure_ascii=False) + sep)
            out.append("  ]" + comma)
        elif isinstance(v, dict) and k in ("vocabulary", "handles", "callbacks"):
            out.append(f'  "{k}": {{')
            items = list(v.items())
            for j, (kk, vv) in enumerate(items):
                sep = "," if j < len(items) - 1 else ""
                out.append(f"    {json.dumps(kk)}: {json.dumps(vv, ensure_ascii=False)}{sep}")
            out.append("  }" + comma)
        else:
            out.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{comma}")
    out.append("}")
    return "\n".join(out) + "\n"


def valid_type(t, manifest):
    if t in FIXED_TYPES:
        return True
    for p in PREFIXED:
        if t.startswith(p) and len(t) > len(p):
            name = t[len(p):]
            if p in ("handle:", "handle_out:"):
                return name in manifest.get("handles", {})
            if p == "callback:":
                return name in manifest.get("callbacks", {})
            return True
    return False


def check(root, manifest_path):
    errors = []
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    exports = read_exports(os.path.join(root, "abi", "exports.txt"))
    listed = [f["name"] for f in manifest.get("functions", [])]
    dup = sorted({n for n in listed if listed.count(n) > 1})
    if dup:
        errors.append("listed twice in the manifest: " + ", ".join(dup))
    for n in sorted(set(exports) - set(listed)):
        errors.append(f"{n}: in abi/exports.txt but not in bindings/manifest.json "
                      "(run bindings/tools/manifest.py update)")
    for n in sorted(set(listed) - set(exports)):
        errors.append(f"{n}: in bindings/manifest.json but not in abi/exports.txt")

    hdr = Headers(os.path.join(root, "include", "execengine"))
    for f in manifest.get("functions", []):
        n = f["name"]
        for t in [f["returns"]] + [p["type"] for p in f["params"]]:
            if not valid_type(t, manifest):
                errors.append(f"{n}: type '{t}' is not in the vocabulary "
                              "(or its handle/callback is not described)")
        if n not in hdr.functions:
            errors.append(f"{n}: declared in no public header")
            continue
        try:
            want = hdr.entry(n)
        except HeaderError as e:
            errors.append(str(e))
            continue
        got_sig = (f["returns"], [p["type"] for p in f["params"]])
        want_sig = (want["returns"], [p["type"] for p in want["params"]])
        if got_sig != want_sig:
            errors.append(f"{n}: manifest says {got_sig[0]} ({', '.join(got_sig[1])}), "
                          f"header says {want_sig[0]} ({', '.join(want_sig[1])})")
        for p in f["params"]:
            if bool(p.get("json", False)) != is_json_param(p.get("name", ""), p["type"]):
                errors.append(f"{n}({p.get('name')}): \"json\": true must mark exactly the "
                              "str parameters named json or *_json (run "
                              "bindings/tools/manifest.py update)")
    for h, d in manifest.get("handles", {}).items():
        if d.get("free") and d["free"] not in listed:
            errors.append(f"handle {h}: free function {d['free']} is not in the manifest")
    for c, d in manifest.get("callbacks", {}).items():
        if c not in hdr.callbacks:
            errors.append(f"callback {c}: no such typedef in the public headers")
            continue
        want = hdr.callback_entry(c)
        if [p["type"] for p in d["params"]] != [p["type"] for p in want["params"]] \
                or d["returns"] != want["returns"]:
            errors.append(f"callback {c}: manifest and header disagree")
    major = manifest.get("library", {}).get("major")
    with open(os.path.join(root, "include", "execengine", "version.h"), encoding="utf-8") as f:
        m = re.search(r"#define EE_VERSION_MAJOR (\d+)", f.read())
    if m and int(m.group(1)) != major:
        errors.append(f"library.major is {major}, version.h says {m.group(1)}")
    for e in errors:
        print("manifest: " + e, file=sys.stderr)
    print(f"manifest: {len(listed)} functions, {len(exports)} exports, "
          f"{len(errors)} problem(s)")
    return 1 if errors else 0


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["check", "update"])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(here)),
                    help="source tree (default: this file's ../..)")
    ap.add_argument("--manifest", help="default: <root>/bindings/manifest.json")
    a = ap.parse_args(argv)
    path = a.manifest or os.path.join(a.root, "bindings", "manifest.json")
    if a.command == "check":
        return check(a.root, path)
    previous = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
    try:
        doc = build(a.root, previous)
    except HeaderError as e:
        print("manifest: " + str(e), file=sys.stderr)
        return 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump(doc))
    print(f"manifest: wrote {len(doc['functions'])} functions to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
