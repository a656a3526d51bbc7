"""The public C structs of the library as ctypes Structures, and the
conversions between them and plain Python values.

Declared field by field as include/execengine/{counters,quota,storage,
gateway}.h declare them (tests/test_structs.py compares ctypes' sizes and
offsets with a C compiler's). The idiomatic methods (execengine/_extras.py)
take and return dicts, lists, str and bytes and build these for the call;
the C strings they point to are kept alive until the call returns.

Keys: Python (snake_case) names; the Node binding's camelCase names are
accepted too on input (window_ms / windowMs, time_from / timeFrom ...).
"""
import ctypes

from ._runtime import _encode_str, int_value

c_int64, c_uint64, c_size_t = ctypes.c_int64, ctypes.c_uint64, ctypes.c_size_t


class CounterReq(ctypes.Structure):
    """struct ee_counter_req (counters.h)."""
    _fields_ = [("key", ctypes.c_char_p), ("n", c_int64), ("limit", c_int64),
                ("window_ms", c_int64), ("window_end_ms", c_int64)]


class CounterResult(ctypes.Structure):
    """struct ee_counter_result (counters.h)."""
    _fields_ = [("resv_id", c_uint64), ("value", c_int64), ("committed", c_int64),
                ("limit", c_int64), ("window_end_ms", c_int64), ("retry_at_ms", c_int64),
                ("fits", ctypes.c_int32), ("reserved_", ctypes.c_int32)]


#: EE_QUOTA_TICKET_SIZE (quota.h)
QUOTA_TICKET_SIZE = 1024


class QuotaTicketStruct(ctypes.Structure):
    """struct ee_quota_ticket (quota.h): opaque, 1024 bytes."""
    _fields_ = [("opaque_", c_uint64 * (QUOTA_TICKET_SIZE // 8))]


class StorageEq(ctypes.Structure):
    """struct ee_storage_eq (storage.h)."""
    _fields_ = [("field", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class StorageInc(ctypes.Structure):
    """struct ee_storage_inc (storage.h)."""
    _fields_ = [("field", ctypes.c_char_p), ("delta", c_int64)]


class StorageQuerySpec(ctypes.Structure):
    """struct ee_storage_query_spec (storage.h)."""
    _fields_ = [("version", ctypes.c_uint), ("flags", ctypes.c_uint),
                ("eq", ctypes.POINTER(StorageEq)), ("n_eq", c_size_t),
                ("time_from", c_int64), ("time_to", c_int64), ("order", ctypes.c_int),
                ("limit", c_size_t), ("cursor", ctypes.c_char_p)]


class StorageRow(ctypes.Structure):
    """struct ee_storage_row (storage.h); pointers as void * (read by length)."""
    _fields_ = [("id", ctypes.c_void_p), ("revision", c_int64), ("time", c_int64),
                ("data", ctypes.c_void_p), ("len", c_size_t)]


#: int (*head)(int http_status, const char *const *headers, size_t n, void *payload)
GatewayHeadFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p),
                                 c_size_t, ctypes.c_void_p)
#: int (*body)(const char *chunk, size_t len, void *payload)
GatewayBodyFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, c_size_t, ctypes.c_void_p)


class GatewayRequest(ctypes.Structure):
    """struct ee_gateway_request (gateway.h)."""
    _fields_ = [("version", ctypes.c_uint), ("method", ctypes.c_char_p),
                ("path", ctypes.c_char_p), ("query", ctypes.c_char_p),
                ("headers", ctypes.POINTER(ctypes.c_char_p)), ("n_headers", c_size_t),
                ("body", ctypes.c_void_p), ("body_len", c_size_t)]


class GatewaySink(ctypes.Structure):
    """struct ee_gateway_sink (gateway.h)."""
    _fields_ = [("head", GatewayHeadFn), ("body", GatewayBodyFn), ("payload", ctypes.c_void_p)]


#: struct name (C) -> its Structure (the layout test walks this).
STRUCTS = {
    "ee_counter_req": CounterReq, "ee_counter_result": CounterResult,
    "ee_quota_ticket": QuotaTicketStruct, "ee_storage_eq": StorageEq,
    "ee_storage_inc": StorageInc, "ee_storage_query_spec": StorageQuerySpec,
    "ee_storage_row": StorageRow, "ee_gateway_request": GatewayRequest,
    "ee_gateway_sink": GatewaySink,
}

GATEWAY_REQUEST_VERSION = 1
STORAGE_QUERY_VERSION = 1
STORAGE_ORDERS = {"timeDesc": 0, "timeAsc": 1, "idAsc": 2, "idDesc": 3,
                  "time_desc": 0, "time_asc": 1, "id_asc": 2, "id_desc": 3}


def is_ctypes(value):
    """A ctypes object (or byref / pointer / array of one): the raw path."""
    return isinstance(value, (ctypes.Structure, ctypes.Array, ctypes._Pointer,
                              ctypes.c_void_p)) or type(value).__name__ == "CArgObject"


def pick(d, what, *names, default=None, required=False):
    """d[name] for the first of `names` present (None counts as absent)."""
    for n in names:
        v = d.get(n)
        if v is not None:
            return v
    if required:
        raise TypeError(f"{what}.{names[0]} is required")
    return default


def int_arg(v, what, ctype="int64"):
    """An int for a struct field or argument of C type `ctype`: TypeError
    for another type (bool too), InvalidArgument when it does not fit (a
    ctypes field would silently keep the low bits)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, not {type(v).__name__}")
    return int_value(v, what, ctype)


def mapping(v, what):
    if not isinstance(v, dict):
        raise TypeError(f"{what} must be a dict, not {type(v).__name__}")
    return v


# ---- counters -----------------------------------------------------------------
def counter_req(r, what="request"):
    mapping(r, what)
    key = pick(r, what, "key", required=True)
    if not isinstance(key, str):
        raise TypeError(f"{what}.key must be a str")
    return CounterReq(_encode_str(key, f"{what}.key"),
                      int_arg(pick(r, what, "n", default=1), f"{what}.n"),
                      int_arg(pick(r, what, "limit", required=True), f"{what}.limit"),
                      int_arg(pick(r, what, "window_ms", "windowMs", default=0), f"{what}.window_ms"),
                      int_arg(pick(r, what, "window_end_ms", "windowEndMs", default=0),
                              f"{what}.window_end_ms"))


def counter_reqs(reqs):
    if isinstance(reqs, (str, bytes, dict)) or not hasattr(reqs, "__iter__"):
        raise TypeError("requests must be a list of dicts")
    items = [counter_req(r, f"requests[{i}]") for i, r in enumerate(reqs)]
    return (CounterReq * max(len(items), 1))(*items), len(items)


def counter_result(r):
    return {"resv_id": r.resv_id, "value": r.value, "committed": r.committed, "limit": r.limit,
            "window_end_ms": r.window_end_ms, "retry_at_ms": r.retry_at_ms, "fits": r.fits != 0}


# ---- storage ------------------------------------------------------------------
def _text_value(v, what):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int, float)):
        return str(v)
    raise TypeError(f"{what} must be a str, int, float or bool, not {type(v).__name__}")


def eq_array(eq, what):
    """(array of StorageEq or None, n) of {field: value} (values compared as text)."""
    if eq is None:
        return None, 0
    mapping(eq, what)
    items = [StorageEq(_encode_str(str(k), what),
                       _encode_str(_text_value(v, f"{what}.{k}"), f"{what}.{k}"))
             for k, v in eq.items()]
    if not items:
        return None, 0
    return (StorageEq * len(items))(*items), len(items)


def query_spec(q):
    """A StorageQuerySpec of {eq, time_from, time_to, order, limit, cursor}
    (and the objects it points to, to keep alive)."""
    if q is None:
        q = {}
    mapping(q, "query")
    eq, n_eq = eq_array(q.get("eq"), "query.eq")
    spec = StorageQuerySpec()
    spec.version = STORAGE_QUERY_VERSION
    tf = pick(q, "query", "time_from", "timeFrom")
    tt = pick(q, "query", "time_to", "timeTo")
    if tf is not None:
        spec.flags |= 1
        spec.time_from = int_arg(tf, "query.time_from")
    if tt is not None:
        spec.flags |= 2
        spec.time_to = int_arg(tt, "query.time_to")
    if eq is not None:
        spec.eq = ctypes.cast(eq, ctypes.POINTER(StorageEq))
        spec.n_eq = n_eq
    order = q.get("order")
    if order is None:
        order = 0
    if isinstance(order, str):
        if order not in STORAGE_ORDERS:
            raise ValueError("query.order must be one of timeDesc, timeAsc, idAsc, idDesc")
        order = STORAGE_ORDERS[order]
    spec.order = int_arg(order, "query.order", "int")
    spec.limit = int_arg(q.get("limit") or 0, "query.limit", "size")
    cursor = q.get("cursor")
    spec.cursor = None if cursor is None else _encode_str(cursor, "query.cursor")
    return spec, eq


def row_dict(ptr):
    r = ctypes.cast(ptr, ctypes.POINTER(StorageRow)).contents
    return {"id": ctypes.string_at(r.id, 12).hex() if r.id else None,
            "revision": r.revision, "time": r.time,
            "data": ctypes.string_at(r.data, r.len) if r.data and r.len else b""}


# ---- gateway ------------------------------------------------------------------
def gateway_request(request):
    """A GatewayRequest of {method, path, query, headers, body} and what it
    points to (to keep alive)."""
    mapping(request, "request")
    for k in ("method", "path"):
        if not isinstance(request.get(k), str):
            raise TypeError(f"request.{k} must be a str")
    headers = request.get("headers") or []
    if isinstance(headers, dict):
        headers = [f"{k}: {v}" for k, v in headers.items()]
    lines = []
    for h in headers:
        if not isinstance(h, (str, bytes)):
            raise TypeError("each header must be a str (\"Name: value\")")
        lines.append(_encode_str(h, f"request.headers[{len(lines)}]"))
    body = request.get("body")
    if body is None:
        body = b""
    if isinstance(body, str):
        body = _encode_str(body, "request.body", nul_ok=True)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("request.body must be bytes or a str")
    body = bytes(body)
    query = request.get("query")
    harr = (ctypes.c_char_p * max(len(lines), 1))(*lines)
    bbuf = ctypes.create_string_buffer(body, len(body)) if body else None
    if query is not None and not isinstance(query, str):
        raise TypeError(f"request.query must be a str, not {type(query).__name__}")
    req = GatewayRequest(GATEWAY_REQUEST_VERSION, _encode_str(request["method"], "request.method"),
                         _encode_str(request["path"], "request.path"),
                         _encode_str(query, "request.query"),
                         ctypes.cast(harr, ctypes.POINTER(ctypes.c_char_p)) if lines else None,
                         len(lines), ctypes.cast(bbuf, ctypes.c_void_p) if bbuf else None,
                         len(body))
    return req, (harr, bbuf, lines)
