#!/usr/bin/env python3
"""Generate bindings/python/execengine/_api.py from bindings/manifest.json.

    python3 bindings/python/tools/gen.py          # rewrite _api.py
    python3 bindings/python/tools/gen.py --check  # exit 1 if it is stale

Every exported function gets a Python home by one rule, with a small
override table where the rule reads badly:

  ee_<module>_<verb>(engine, ...)       engine.<module>.<verb>(...)
        modules: audit, billing, catalog, credentials (ee_cred_),
        email (ee_email_), executions (ee_exec_), gateway, quota
  ee_<type>_<verb>(<type> *h, ...)      <Type>.<verb>(...) on the handle class
        (Principal, Schema, CostTable - also ee_cost_estimate/actual -,
        Counters, Storage, N8n, QuotaSubject, Transport, TransportOptions,
        HttpRequest, HttpResponse, Mail)
  ee_<type>_new(<type> **out, ...)      <Type>(...)
  ee_<type>_<kind>_new / _open_uri ...  <Type>.<kind>(...) (a classmethod)
  ee_<type>_free / ee_engine_close      <Type>.close() (and `with`)
  other functions                       execengine.<module>.<verb>(...)
        (templates, cost, n8n, storage, quota, log namespaces)

Functions written by hand (config, engine, errors, version, the execution
start with its done callback, the calls over C data structs - plain Python
values in and out, execengine/_extras.py) are listed in HANDWRITTEN with
where they live.
The parameter conversions are table-driven (execengine/_runtime.py).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(os.path.dirname(HERE), "execengine")
MANIFEST = os.path.join(os.path.dirname(os.path.dirname(HERE)), "manifest.json")
OUT = os.path.join(PKG, "_api.py")

sys.path.insert(0, PKG)
import _rules as rules  # noqa: E402  (shared with the runtime, no library needed)

#: Hand-written bindings: C function -> its Python path (from the package).
HANDWRITTEN = {
    "ee_config_new": "Config.__init__", "ee_config_free": "Config.close",
    "ee_config_copy": "Config.copy", "ee_config_set": "Config.set",
    "ee_config_set_int64": "Config.set_int", "ee_config_unset": "Config.unset",
    "ee_config_load_env": "Config.load_env", "ee_config_load_envp": "Config.load_env",
    "ee_config_get_int64": "Config.get_int", "ee_config_get_string": "Config.get_string",
    "ee_config_is_set": "Config.is_set", "ee_config_options_json": "Config.options",
    "ee_config_summary_json": "Config.summary", "ee_config_set_clock": "Config.set_clock",
    "ee_config_set_log": "Config.set_log",
    "ee_engine_open": "Engine.open", "ee_engine_open_parts": "Engine.open_parts",
    "ee_engine_close": "Engine.close", "ee_engine_now_ms": "Engine.now_ms",
    "ee_engine_summary_json": "Engine.summary",
    "ee_strerror": "strerror", "ee_status_name": "status_name",
    "ee_error_last_status": "errors.last_error", "ee_error_last_message": "errors.last_error",
    "ee_error_last_http_status": "errors.last_error", "ee_error_last_json": "errors.last_error",
    "ee_error_clear": "errors.clear", "ee_free": "native.take_string",
    "ee_version": "version", "ee_version_num": "version_num",
    "ee_version_features": "features", "ee_log_level_name": "LogLevel",
    "ee_exec_submit": "Executions.start",
    # the calls taking C structs: plain Python values in and out
    # (execengine/_structs.py, the mixins of execengine/_extras.py)
    "ee_counters_reserve": "Counters.reserve", "ee_counters_reserve_many": "Counters.reserve_many",
    "ee_counters_reserve_many_leased": "Counters.reserve_many_leased",
    "ee_counters_get": "Counters.get",
    "ee_quota_admit_fast": "Quota.admit_fast", "ee_quota_finish": "Quota.finish_ticket",
    "ee_quota_renew": "Quota.renew", "ee_quota_ticket_refusal": "QuotaTicket.refusal",
    "ee_quota_ticket_json": "QuotaTicket.to_json",
    "ee_quota_ticket_from_json": "QuotaTicket.from_json",
    "ee_storage_query": "Storage.query", "ee_storage_count": "Storage.count",
    "ee_storage_increment": "Storage.increment", "ee_gateway_handle": "Gateway.handle",
}

#: Where the rule reads badly: C function -> Python method name.
NAMES = {
    "ee_cost_table_load_prices_json": "load_prices",
    "ee_cost_table_load_rules_json": "load_rules",
    "ee_cost_table_price_json": "price",
    "ee_quota_ticket_json": "ticket_to_json",
    "ee_storage_id_new": "new_id",
    "ee_transport_curl_new": "curl",
    "ee_counters_new_custom": "custom",
    "ee_storage_new_custom": "custom",
    "ee_transport_new_custom": "custom",
    "ee_mail_from": "sender",
}

#: Engine modules: header -> (attribute, class, prefix).  A header with two
#: families of engine functions names the second in PREFIX_MODULES.
ENGINE_MODULES = {
    "audit.h": ("audit", "Audit", "ee_audit_"),
    "billing.h": ("billing", "Billing", "ee_billing_"),
    "catalog.h": ("catalog", "Catalog", "ee_catalog_"),
    "credentials.h": ("credentials", "Credentials", "ee_cred_"),
    "exec.h": ("executions", "Executions", "ee_exec_"),
    "gateway.h": ("gateway", "Gateway", "ee_gateway_"),
    "quota.h": ("quota", "Quota", "ee_quota_"),
}
#: Engine modules chosen by prefix before the header's (notify.h holds the
#: templates, which take no engine, and the e-mail calls, which do).
PREFIX_MODULES = {
    "ee_email_": ("email", "Email", "ee_email_"),
}
#: Namespaces of functions without a handle: header -> (name, prefix).
NAMESPACES = {
    "notify.h": ("templates", "ee_template_"),
    "cost.h": ("cost", "ee_cost_"),
    "n8n.h": ("n8n", "ee_n8n_"),
    "storage.h": ("storage", "ee_storage_"),
    "quota.h": ("quota", "ee_quota_"),
}
#: Handle types -> method prefixes (the first that matches is cut).
HANDLE_PREFIXES = {
    "ee_cost_table": ("ee_cost_table_", "ee_cost_"),
    "ee_transport_options": ("ee_transport_options_",),
}
#: Classes with hand-written extras (mixins in execengine/_extras.py).
EXTRAS = {"Executions": "ExecutionsExtras", "Counters": "CountersExtras",
          "Quota": "QuotaExtras", "Storage": "StorageExtras", "Gateway": "GatewayExtras"}
#: Namespaces with hand-written extras (generated even when every function
#: of theirs is hand-written).
NS_EXTRAS = {"quota": "QuotaNamespaceExtras"}

#: Calls that wait (network, executions): they also get an `<name>_async`.
WAITS = {"ee_exec_run", "ee_exec_wait", "ee_exec_cancel", "ee_catalog_sync",
         "ee_cred_key_validate", "ee_email_outbox_run",
         "ee_cred_platform_provision", "ee_n8n_list_workflows", "ee_n8n_get_workflow",
         "ee_n8n_trigger_webhook", "ee_n8n_get_execution", "ee_n8n_list_executions",
         "ee_transport_http", "ee_transport_mail"}

DEFAULTS = {"flags": "0", "timeout_ms": "-1", "include_data": "0"}
#: Keyword fields (**fields) go into the last JSON parameter, or this one.
FIELDS_INTO = {"ee_template_render": "data_json", "ee_template_render_len": "data_json"}


HEADERS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))),
                       "include", "execengine")
_DOCS = {}


def header_doc(header, name):
    """The comment above `name`'s declaration in its header, as plain text."""
    import re
    if header not in _DOCS:
        try:
            with open(os.path.join(HEADERS, header), encoding="utf-8") as fh:
                _DOCS[header] = fh.read()
        except OSError:
            _DOCS[header] = ""
    text = _DOCS[header]
    m = re.search(r"/\*\*((?:(?!\*/).)*)\*/\s*EE_API[^;{]*?\b" + re.escape(name) + r"\s*\(",
                  text, re.S)
    if not m:
        return ""
    lines = [re.sub(r"^\s*\*? ?", "", ln).rstrip() for ln in m.group(1).splitlines()]
    doc = "\n".join(lines).strip()
    return doc.replace("\\", "\\\\").replace('"""', "'''")


def class_name(tname):
    return "".join(w.capitalize() for w in tname[3:].split("_"))


def prefixes(tname):
    return HANDLE_PREFIXES.get(tname, (tname + "_",))


def strip(name, prefs):
    for p in prefs:
        if name.startswith(p):
            return name[len(p):]
    return name[3:]


def place(f):
    """(kind, container, method) for one function."""
    name, params = f["name"], f["params"]
    first = params[0]["type"] if params else ""
    if first.startswith("handle_out:"):
        tname = first[11:]
        verb = NAMES.get(name) or strip(name, prefixes(tname))
        if verb == "new":
            return "init", class_name(tname), "__init__"
        verb = verb[:-4] if verb.endswith("_new") else verb
        return "ctor", class_name(tname), verb
    if first == "handle:ee_engine":
        for pref, (_attr, cls, _p) in PREFIX_MODULES.items():
            if name.startswith(pref):
                return "module", cls, NAMES.get(name) or strip(name, (pref,))
    if first == "handle:ee_engine" and f["header"] in ENGINE_MODULES:
        attr, cls, pref = ENGINE_MODULES[f["header"]]
        return "module", cls, NAMES.get(name) or strip(name, (pref,))
    if first.startswith("handle:") and first != "handle:ee_engine":
        tname = first[7:]
        if f["returns"] == "void" and name == f"{tname}_free":
            return "free", class_name(tname), "close"
        return "method", class_name(tname), NAMES.get(name) or strip(name, prefixes(tname))
    ns, pref = NAMESPACES[f["header"]]
    return "namespace", ns, NAMES.get(name) or strip(name, (pref,))


#: Module class -> its engine attribute.
MODULE_ATTRS = {cls: attr for attr, cls, _p in
                list(ENGINE_MODULES.values()) + list(PREFIX_MODULES.values())}


def hint(p, classes):
    t = p["type"]
    if t == "str":
        return "Any" if p.get("json") else "Optional[str]"
    if t == "bytes":
        return "Union[bytes, str, None]"
    if t.startswith("handle:"):
        c = class_name(t[7:])
        return f"Optional[{c!r}]" if c in classes else "Any"
    if t.startswith("callback:"):
        return "Optional[Callable[..., Any]]"
    if t.endswith("_array"):
        return "Sequence[Any]"
    if t == "double":
        return "float"
    if t.startswith("ptr:"):
        return "Any"
    return "int"


def signature(f, skip_first, classes):
    """(parameter list source, argument tuple source)."""
    params = f["params"]
    users = [(i, p) for i, p in enumerate(params)
             if not rules.is_out(p["type"]) and not rules.is_auto(f["name"], params, i)]
    if skip_first:
        users = users[1:]
    # defaults for a suffix of defaultable parameters
    n_def = 0
    for i, p in reversed(users):
        t = p["type"]
        if (t == "str" and p.get("json")) or t == "handle:ee_principal" or p["name"] in DEFAULTS \
                or t.startswith("callback:"):
            n_def += 1
        else:
            break
    last_json = bool(users) and users[-1][1]["type"] == "str" and users[-1][1].get("json")
    into = FIELDS_INTO.get(f["name"]) or (users[-1][1]["name"] if last_json else None)
    src, args = [], []
    for k, (i, p) in enumerate(users):
        pn = rules.py_name(p["name"])
        h = hint(p, classes)
        if k >= len(users) - n_def:
            d = DEFAULTS.get(p["name"], "None")
            src.append(f"{pn}: {h} = {d}")
        else:
            src.append(f"{pn}: {h}")
        args.append(f"_merge({pn}, fields)" if (last_json and p["name"] == into) else pn)
    if last_json:
        src.append("**fields: Any")
    return src, args


def generate(manifest):
    funcs = manifest["functions"]
    classes = {}      # class -> list of (kind, method, f)
    namespaces = {}   # ns -> list of (method, f)
    where = {}
    handle_classes = {class_name(t): t for t in manifest["handles"]}
    for f in funcs:
        if f["name"] in HANDWRITTEN:
            where[f["name"]] = HANDWRITTEN[f["name"]]
            continue
        kind, cont, meth = place(f)
        if kind == "namespace":
            namespaces.setdefault(cont, []).append((meth, f))
            where[f["name"]] = f"{cont}.{meth}"
        else:
            classes.setdefault(cont, []).append((kind, meth, f))
            where[f["name"]] = f"{cont}.{meth}"
    out = []
    w = out.append
    w('"""GENERATED by bindings/python/tools/gen.py from bindings/manifest.json: do not edit.\n\n'
      'The idiomatic layer: per-module objects of an engine, handle classes and\n'
      'namespaces. Each method passes its arguments to _runtime.invoke(), which\n'
      'converts them by the manifest\'s parameter types. Regenerate with\n'
      '`python3 bindings/python/tools/gen.py`; a test fails when this file is stale.\n"""')
    w("# flake8: noqa")
    w("import asyncio")
    w("import functools")
    w("from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union\n")
    w("from ._runtime import HANDLE_CLASSES, Handle, Module, Namespace, invoke as _invoke, "
      "merge as _merge")
    w("from . import _extras\n")
    w("if TYPE_CHECKING:  # hand-written handle classes (execengine/__init__.py)")
    w("    from . import Engine\n")
    w("\nasync def _in_thread(func, *args, **kwargs):")
    w("    \"\"\"Run a blocking call on the loop's default executor (the event loop")
    w("    keeps running; the error detail is read on the worker thread).\"\"\"")
    w("    loop = asyncio.get_running_loop()")
    w("    return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))\n")

    def method(kind, meth, f, selfexpr):
        src, args = signature(f, kind in ("module", "method", "free"), handle_classes)
        name = f["name"]
        first = ", ".join(["self"] + src) if kind != "ctor" else ", ".join(["cls"] + src)
        call_args = ([selfexpr] if kind in ("module", "method") else []) + args
        tup = "(" + ", ".join(call_args) + ("," if len(call_args) == 1 else "") + ")"
        body = header_doc(f["header"], name)
        if body:
            body = "\n".join(("        " + ln) if ln else "" for ln in body.splitlines())
            doc = f'"""{name}() ({f["header"]}):\n\n{body}\n        """'
        else:
            doc = f'"""{name}() ({f["header"]})."""'
        lines = []
        if kind == "ctor":
            lines.append("    @classmethod")
            lines.append(f"    def {meth}({first}) -> Any:")
            lines.append(f"        {doc}")
            lines.append(f"        return _invoke({name!r}, None, {tup})")
        elif kind == "init":
            lines.append(f"    def __init__({first}) -> None:")
            lines.append(f"        {doc}")
            lines.append(f"        _invoke({name!r}, None, {tup}, into=self)")
        else:
            lines.append(f"    def {meth}({first}) -> Any:")
            lines.append(f"        {doc}")
            lines.append(f"        return _invoke({name!r}, self, {tup})")
        if name in WAITS:
            plain = ", ".join(a.split(":")[0].split("=")[0].strip() if not a.startswith("**")
                              else "**fields" for a in src)
            lines.append("")
            lines.append(f"    async def {meth}_async({first}) -> Any:")
            lines.append(f'        """{name}() without blocking the event loop."""')
            lines.append(f"        return await _in_thread(self.{meth}"
                         + (", " + plain if plain else "") + ")")
        return lines

    for cls in sorted(classes):
        items = classes[cls]
        is_module = items[0][0] == "module"
        bases = ([f"_extras.{EXTRAS[cls]}"] if cls in EXTRAS else []) + \
            (["Module"] if is_module else ["Handle"])
        w(f"\nclass {cls}({', '.join(bases)}):")
        if is_module:
            hdr = items[0][2]["header"]
            attr = MODULE_ATTRS[cls]
            w(f'    """engine.{attr}: the functions of {hdr} that take an engine."""')
        else:
            tname = handle_classes[cls]
            w(f'    """{tname} (freed with {manifest["handles"][tname]["free"]}()): a handle;'
              ' close it with `with` or .close()."""')
            w(f"    _type = {tname!r}")
            w(f"    _free = {manifest['handles'][tname]['free']!r}")
            ctors = [m for k, m, f in items if k in ("ctor", "init")]
            w(f"    _constructors = {tuple(('%s()' % cls) if m == '__init__' else ('%s.%s()' % (cls, m)) for m in ctors)!r}")
        for kind, meth, f in items:
            if kind == "free":
                continue  # Handle.close
            w("")
            sel = "self._engine" if kind == "module" else "self"
            for line in method(kind, meth, f, sel):
                w(line)
        if not is_module:
            w(f"\n\nHANDLE_CLASSES[{handle_classes[cls]!r}] = {cls}")
    # free-function namespaces
    for ns in NS_EXTRAS:
        namespaces.setdefault(ns, [])
    for ns in sorted(namespaces):
        cls = "_" + ns.capitalize() + "Namespace"
        bases = ([f"_extras.{NS_EXTRAS[ns]}"] if ns in NS_EXTRAS else []) + ["Namespace"]
        w(f"\n\nclass {cls}({', '.join(bases)}):")
        w(f'    """execengine.{ns}: functions that take no handle."""')
        for meth, f in namespaces[ns]:
            w("")
            for line in method("namespace", meth, f, None):
                w(line)
        w(f"\n\n{ns} = {cls}()")
    # the engine's module properties
    w("\n\nclass EngineModules:")
    w('    """The per-module objects of an engine (engine.catalog ...)."""')
    mods = [(attr, cls, f"{hdr} functions") for hdr, (attr, cls, _p) in ENGINE_MODULES.items()]
    mods += [(attr, cls, f"{pref}* functions") for pref, (attr, cls, _p) in PREFIX_MODULES.items()]
    for attr, cls, what in sorted(mods):
        if cls not in classes:
            continue
        w("\n    @property")
        w(f"    def {attr}(self) -> {cls}:")
        w(f'        """The {what} of this engine."""')
        w(f"        return {cls}(self)")
    w("\n\n#: Every exported function -> where the binding has it (relative to the package).")
    w("BINDINGS = {")
    for name in sorted(where):
        w(f"    {name!r}: {where[name]!r},")
    w("}")
    w("NAMESPACES = " + repr(sorted(namespaces)))
    w("CLASSES = " + repr(sorted(classes)))
    return "\n".join(out) + "\n"


def main(argv):
    with open(MANIFEST, encoding="utf-8") as fh:
        manifest = json.load(fh)
    text = generate(manifest)
    if "--check" in argv:
        with open(OUT, encoding="utf-8") as fh:
            if fh.read() != text:
                print(f"{OUT} is stale: run python3 bindings/python/tools/gen.py", file=sys.stderr)
                return 1
        return 0
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
