"""Parameter rules shared by the runtime (_runtime.py) and the generator
(tools/gen.py): plain Python, no library needed."""

#: Size parameters filled in from another argument's length.
SIZE_OF = ("len", "body_len", "n", "count", "n_key", "n_inc")


def is_out(ptype):
    return (ptype.endswith("_out") or ptype.startswith("handle_out:") or ptype == "char_buf")


def is_auto(fname, params, i):
    """Whether parameter i is filled in by invoke(), not given by the caller."""
    p = params[i]
    if p["type"] == "ptr":
        return True
    if p["type"] == "size" and p["name"] in SIZE_OF and i > 0:
        prev = params[i - 1]["type"]
        return prev in ("bytes", "str") or prev.endswith("_array") or prev.startswith("ptr:")
    return False


def py_name(pname):
    """The Python name of a C parameter."""
    for suffix in ("_json",):
        if pname.endswith(suffix) and pname != suffix:
            pname = pname[: -len(suffix)]
    return {"from": "from_", "json": "document", "fn": "callback", "t": "transport",
            "lambda": "lambda_"}.get(pname, pname)


def out_name(pname):
    for suffix in ("_out",):
        if pname.endswith(suffix):
            return pname[: -len(suffix)]
    return {"out": "value", "out_report": "report", "out_json": "document",
            "out_len": "length"}.get(pname, pname)


