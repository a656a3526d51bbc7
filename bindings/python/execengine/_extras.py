"""Hand-written parts of the generated classes (mixins named by
tools/gen.py's EXTRAS): calls that need care beyond the table-driven path."""
import asyncio
import ctypes
import json
import sys
import threading

from . import _native as native
from ._runtime import _encode_str, _handle_arg, merge, to_json, unpin_all
from .errors import ExecEngineError

# Done callbacks of executions still running: the ctypes function pointer
# must live until the library has called it (once), whatever happens to the
# Python objects of the caller meanwhile.
_PENDING = {}
_PENDING_LOCK = threading.Lock()
_NEXT = [0]


class ExecutionsExtras:
    """engine.executions.start / run_async with the exec done callback."""

    def start(self, principal, workflow_id, request=None, on_done=None, **fields):
        """Queue an execution (ee_exec_submit()) and return its id at once.

        on_done(execution_id: str, status: int, record: dict), if given, is
        called once when the run ends, on an engine worker thread (status 0:
        completed; else the ee_status it failed with). Exceptions it raises
        go to sys.unraisablehook."""
        engine = self._engine
        req = to_json(merge(request, fields))
        idbuf = ctypes.create_string_buffer(25)  # EE_EXEC_ID_SIZE
        cbtype = native.callback_types["ee_exec_done_fn"]
        if on_done is None:
            cfunc, key = cbtype(), None
        else:
            with _PENDING_LOCK:
                _NEXT[0] += 1
                key = _NEXT[0]

            def trampoline(exec_id, status, record_json, _payload):
                try:
                    record = json.loads(record_json) if record_json else None
                    on_done(exec_id.decode("ascii"), status, record)
                except BaseException:
                    from . import _report_unraisable
                    _report_unraisable("execengine exec done callback", on_done)
                finally:
                    with _PENDING_LOCK:
                        _PENDING.pop(key, None)

            cfunc = cbtype(trampoline)
            with _PENDING_LOCK:
                _PENDING[key] = (cfunc, engine)
        pins = []
        try:
            st = native.fn.ee_exec_submit(_handle_arg(engine, "ee_engine", "engine", pins),
                                          _handle_arg(principal, "ee_principal", "principal",
                                                      pins),
                                          _encode_str(workflow_id, "workflow_id"),
                                          _encode_str(req, "request"), cfunc, None, idbuf)
        except BaseException:
            if key is not None:
                with _PENDING_LOCK:
                    _PENDING.pop(key, None)
            raise
        finally:
            unpin_all(pins)
        if st < 0:
            if key is not None:
                with _PENDING_LOCK:
                    _PENDING.pop(key, None)
            raise ExecEngineError.last(st)
        return idbuf.value.decode("ascii")

    async def start_async(self, principal, workflow_id, request=None, **fields):
        """Start an execution and await its final record, through the done
        callback (no thread waits): the record when it completed, else the
        ExecEngineError of the status it ended with (its .detail is the
        record)."""
        req = merge(request, fields)
        doc = json.loads(req) if isinstance(req, (str, bytes)) else req
        if isinstance(doc, dict) and doc.get("idempotencyKey") is not None:
            # A repeated idempotencyKey answers the first run's id and the
            # done callback is never called (exec.h): awaiting it hung
            # forever. Wait for the run by its id instead.
            xid = self.start(principal, workflow_id, req)
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(None, self.wait, principal, xid, -1)
            except ExecEngineError as e:
                if e.detail is None and e.name not in ("EE_ENOTFOUND", "EE_EINVAL"):
                    try:
                        e.detail = self.get(principal, xid)
                    except ExecEngineError:
                        pass
                raise

        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def settle(exec_id, status, record):
            if fut.done():
                return
            if status < 0:
                err = ExecEngineError.for_status(status, (record or {}).get("error") and
                                                 str(record.get("error")), 0, record)
                fut.set_exception(err)
            else:
                fut.set_result(record)

        def done(exec_id, status, record):
            # the loop may be gone (the task was cancelled, asyncio.run ended)
            if not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(settle, exec_id, status, record)
                except RuntimeError:
                    pass

        self.start(principal, workflow_id, req, on_done=done)
        return await fut


# ---- the C struct calls, with plain Python values (execengine/_structs.py) ----
# Each method also keeps the raw path it had before: given a ctypes object
# of the struct (byref(), an array ...), it passes it as is (_runtime.invoke).
from . import _structs as S  # noqa: E402
from ._runtime import invoke as _invoke  # noqa: E402
from .errors import check as _check  # noqa: E402

_fn = native.fn


def _reserve_many(st, results, n, granted):
    _check(st)
    return {"granted": granted.value != 0,
            "results": [S.counter_result(results[i]) for i in range(n)]}


class CountersExtras:
    """Counters.reserve / reserve_many / reserve_many_leased / get with dicts."""

    def reserve(self, req, lease_ms, now_ms, result=None):
        """ee_counters_reserve(): reserve({"key", "n": 1, "limit", "window_ms",
        "window_end_ms"}, lease_ms, now_ms) -> {"granted": bool, "resv_id",
        "value", "committed", "limit", "window_end_ms", "retry_at_ms", "fits"}.
        A refusal is not an error: granted False, retry_at_ms when it would
        fit. (Given a ctypes ee_counter_req and result: the raw call.)"""
        if S.is_ctypes(req):
            return _invoke("ee_counters_reserve", self, (self, req, lease_ms, now_ms, result))
        res = S.CounterResult()
        granted = ctypes.c_int()
        _check(_fn.ee_counters_reserve(self._handle(), ctypes.byref(S.counter_req(req)),
                                       S.int_arg(lease_ms, "lease_ms"), S.int_arg(now_ms, "now_ms"),
                                       ctypes.byref(res), ctypes.byref(granted)))
        return {"granted": granted.value != 0, **S.counter_result(res)}

    def reserve_many(self, reqs, lease_ms, now_ms, results=None):
        """ee_counters_reserve_many(): [request dict ...] -> {"granted",
        "results": [result dict ...]}: all granted or none."""
        if S.is_ctypes(reqs):
            return _invoke("ee_counters_reserve_many", self, (self, reqs, lease_ms, now_ms, results))
        arr, n = S.counter_reqs(reqs)
        out = (S.CounterResult * max(n, 1))()
        granted = ctypes.c_int()
        return _reserve_many(_fn.ee_counters_reserve_many(
            self._handle(), arr, n, S.int_arg(lease_ms, "lease_ms"), S.int_arg(now_ms, "now_ms"),
            out, ctypes.byref(granted)), out, n, granted)

    def reserve_many_leased(self, reqs, leases, now_ms, results=None):
        """ee_counters_reserve_many_leased(): as reserve_many, one lease per request."""
        if S.is_ctypes(reqs):
            return _invoke("ee_counters_reserve_many_leased", self, (self, reqs, leases, now_ms, results))
        arr, n = S.counter_reqs(reqs)
        leases = [S.int_arg(x, f"leases[{i}]") for i, x in enumerate(leases)]
        if len(leases) != n:
            raise ValueError("leases needs one lease per request")
        out = (S.CounterResult * max(n, 1))()
        granted = ctypes.c_int()
        return _reserve_many(_fn.ee_counters_reserve_many_leased(
            self._handle(), arr, (ctypes.c_int64 * max(n, 1))(*leases), n,
            S.int_arg(now_ms, "now_ms"), out, ctypes.byref(granted)), out, n, granted)

    def get(self, key, now_ms, result=None):
        """ee_counters_get() -> {"value", "committed", "window_end_ms", ...}
        (resv_id 0, limit 0)."""
        if result is not None:
            return _invoke("ee_counters_get", self, (self, key, now_ms, result))
        res = S.CounterResult()
        _check(_fn.ee_counters_get(self._handle(), _encode_str(key, "key"),
                                   S.int_arg(now_ms, "now_ms"), ctypes.byref(res)))
        return S.counter_result(res)


# ---- the quota ticket ---------------------------------------------------------
_REFUSALS = {"EE_EQUOTA", "EE_ESPEND", "EE_ERATELIMIT", "EE_ECONCURRENCY"}


class QuotaTicket:
    """An ee_quota_ticket: caller-owned memory (.struct, 1024 bytes) that
    engine.quota.admit_fast fills and finish_ticket / renew read. It holds
    no pointer: copy it (QuotaTicket(ticket.to_bytes())), keep it as JSON
    (to_json() / QuotaTicket.from_json()) and finish it elsewhere. It may be
    passed where a raw call expects an ee_quota_ticket * (_as_parameter_)."""
    SIZE = S.QUOTA_TICKET_SIZE

    def __init__(self, data=None):
        self.struct = S.QuotaTicketStruct()
        if data is not None:
            data = bytes(data)
            if len(data) != self.SIZE:
                raise ValueError(f"a ticket is {self.SIZE} bytes")
            ctypes.memmove(ctypes.byref(self.struct), data, self.SIZE)

    @property
    def _as_parameter_(self):
        return ctypes.byref(self.struct)

    def to_bytes(self):
        return ctypes.string_at(ctypes.byref(self.struct), self.SIZE)

    @classmethod
    def from_json(cls, document):
        """A ticket from its JSON document (a dict or the text)."""
        t = cls()
        _check(_fn.ee_quota_ticket_from_json(_encode_str(to_json(document), "document"),
                                             ctypes.byref(t.struct)))
        return t

    def to_json(self):
        """The ticket document, a dict (an admitted ticket only: else
        InvalidArgument); engine.quota.finish_json accepts it too."""
        out = ctypes.c_void_p()
        st = _fn.ee_quota_ticket_json(ctypes.byref(self.struct), ctypes.byref(out))
        text = native.take_string(out)
        if st < 0:
            raise ExecEngineError.from_document(text, st) or ExecEngineError.last(st)
        return json.loads(text)

    def refusal(self):
        """None for an admitted ticket; for a refused one {"status", "code",
        "quota", "usage", "limit", "resets_at", "retry_after_ms"} (quota:
        "predictions", "spend", "rate", "concurrency" or
        "concurrencyGlobal"). InvalidArgument for a ticket never filled."""
        quota = ctypes.c_char_p()
        v = [ctypes.c_int64() for _ in range(4)]
        st = _fn.ee_quota_ticket_refusal(ctypes.byref(self.struct), ctypes.byref(quota),
                                         *[ctypes.byref(x) for x in v])
        if st == 0:
            return None
        code = native.STATUS_NAMES.get(st)
        if code not in _REFUSALS:
            _check(st)
        return {"status": st, "code": code,
                "quota": quota.value.decode("ascii") if quota.value else None,
                "usage": v[0].value, "limit": v[1].value, "resets_at": v[2].value,
                "retry_after_ms": v[3].value}

    @property
    def admitted(self):
        return self.refusal() is None

    def __repr__(self):
        return f"<execengine.QuotaTicket {'admitted' if self.admitted else 'refused'}>"


def _ticket_arg(t):
    if isinstance(t, QuotaTicket):
        return ctypes.byref(t.struct)
    if isinstance(t, (dict, str)):
        return ctypes.byref(QuotaTicket.from_json(t).struct)
    if S.is_ctypes(t):
        return t
    raise TypeError(f"ticket must be a QuotaTicket, not {type(t).__name__}")


class QuotaExtras:
    """engine.quota.admit_fast / finish_ticket / renew with QuotaTicket objects."""

    def admit_fast(self, subject, est_cost_nano=0, ticket=None):
        """ee_quota_admit_fast() -> an admitted QuotaTicket. `subject` is a
        QuotaSubject (the hot path: make one per principal and reuse it) or
        a Principal (a subject is made for the call). A refusal raises its
        exception (QuotaExceeded, SpendLimitReached, RateLimited,
        ConcurrencyLimited) with the figures as .detail (retry_after) and
        the refused ticket as .ticket. (Given a ctypes ticket: the raw call.)"""
        from ._api import QuotaSubject, Principal
        engine = self._engine
        if ticket is not None:
            return _invoke("ee_quota_admit_fast", self, (engine, subject, est_cost_nano, ticket))
        if isinstance(subject, Principal):
            temp = QuotaSubject(engine, subject)
        elif isinstance(subject, QuotaSubject):
            temp = None
        else:
            raise TypeError(f"subject must be a QuotaSubject or a Principal, "
                            f"not {type(subject).__name__}")
        t = QuotaTicket()
        try:
            st = _fn.ee_quota_admit_fast(engine._handle(), (temp or subject)._handle(),
                                         S.int_arg(est_cost_nano, "est_cost_nano"),
                                         ctypes.byref(t.struct))
            if st >= 0:
                return t
            err = ExecEngineError.last(st)
            if native.STATUS_NAMES.get(st) in _REFUSALS:
                r = t.refusal()
                detail = {"allowed": False, "quota": r["quota"], "usage": r["usage"],
                          "limit": r["limit"], "resetsAt": r["resets_at"],
                          "retryAfterMs": r["retry_after_ms"]}
                if isinstance(err.detail, dict):
                    detail.update(err.detail)
                err = ExecEngineError.for_status(st, err.message, err.http_status, detail)
            err.ticket = t
            raise err
        finally:
            if temp is not None:
                temp.close()

    def finish_ticket(self, ticket, success, actual_cost_nano=0):
        """ee_quota_finish(): finish an admitted ticket (success: the
        prediction is committed; else released), with its actual cost."""
        _check(_fn.ee_quota_finish(self._engine._handle(), _ticket_arg(ticket),
                                   1 if success else 0,
                                   S.int_arg(actual_cost_nano, "actual_cost_nano")))

    #: the raw name (ee_quota_finish) of finish_ticket.
    finish = finish_ticket

    def renew(self, ticket):
        """ee_quota_renew(): extend the leases of an admitted ticket."""
        _check(_fn.ee_quota_renew(self._engine._handle(), _ticket_arg(ticket)))


class QuotaNamespaceExtras:
    """execengine.quota.ticket_*: the QuotaTicket methods by their C names."""

    def ticket_refusal(self, ticket):
        """ee_quota_ticket_refusal(): QuotaTicket.refusal()."""
        return ticket.refusal() if isinstance(ticket, QuotaTicket) \
            else _invoke("ee_quota_ticket_refusal", self, (ticket,))

    def ticket_to_json(self, ticket):
        """ee_quota_ticket_json(): QuotaTicket.to_json()."""
        return ticket.to_json() if isinstance(ticket, QuotaTicket) \
            else _invoke("ee_quota_ticket_json", self, (ticket,))

    def ticket_from_json(self, document, out=None):
        """ee_quota_ticket_from_json(): QuotaTicket.from_json()."""
        if out is not None:
            return _invoke("ee_quota_ticket_from_json", self, (document, out))
        return QuotaTicket.from_json(document)


# ---- storage ------------------------------------------------------------------
class StorageExtras:
    """Storage.query / count / increment with dicts."""

    def query(self, collection, workspace, query=None, callback=None):
        """ee_storage_query(): query(collection, workspace, {"eq": {field:
        value}, "time_from", "time_to", "order": "timeDesc"|"timeAsc"|
        "idAsc"|"idDesc", "limit", "cursor"}) -> {"rows": [{"id": hex str,
        "revision", "time", "data": BSON bytes}], "next_cursor": str or None
        (the last page)}. (Given a ctypes ee_storage_query_spec and a row
        callback: the raw call.)"""
        if S.is_ctypes(query):
            return _invoke("ee_storage_query", self, (self, collection, workspace, query, callback))
        spec, keep = S.query_spec(query)
        rows = []
        failure = []

        def on_row(ptr, _payload):
            try:
                rows.append(S.row_dict(ptr))
                return 0
            except BaseException as e:  # never unwind into C
                failure.append(e)
                return 1

        cb = native.callback_types["ee_storage_row_fn"](on_row)
        nxt = ctypes.c_void_p()
        st = _fn.ee_storage_query(self._handle(), _encode_str(collection, "collection"),
                                  _encode_str(workspace, "workspace"), ctypes.byref(spec),
                                  cb, None, ctypes.byref(nxt))
        cursor = native.take_string(nxt)
        del keep
        if failure:
            raise failure[0]
        _check(st)
        return {"rows": rows, "next_cursor": cursor}

    def count(self, collection, workspace, query=None):
        """ee_storage_count(): the number of documents matching {"eq",
        "time_from", "time_to"} (None: the whole workspace)."""
        if S.is_ctypes(query):
            return _invoke("ee_storage_count", self, (self, collection, workspace, query))
        spec, keep = (None, None) if query is None else S.query_spec(query)
        out = ctypes.c_uint64()
        _check(_fn.ee_storage_count(self._handle(), _encode_str(collection, "collection"),
                                    _encode_str(workspace, "workspace"),
                                    None if spec is None else ctypes.byref(spec),
                                    ctypes.byref(out)))
        return out.value

    def increment(self, collection, workspace, key, inc, now_ms):
        """ee_storage_increment(): increment(collection, workspace, {field:
        value} (every field of the collection's unique key), {field: delta},
        now_ms) -> {field: total after the increment}; the document is
        created if missing. (Given ctypes arrays: the raw call, totals as a list.)"""
        if S.is_ctypes(key) or S.is_ctypes(inc):
            return _invoke("ee_storage_increment", self,
                           (self, collection, workspace, key, inc, now_ms))
        karr, nk = S.eq_array(key, "key")
        S.mapping(inc, "inc")
        items = [(str(f), S.int_arg(d, f"inc.{f}")) for f, d in inc.items()]
        iarr = (S.StorageInc * max(len(items), 1))(
            *[S.StorageInc(_encode_str(f, f"inc.{f}"), d) for f, d in items])
        totals = (ctypes.c_int64 * max(len(items), 1))()
        _check(_fn.ee_storage_increment(self._handle(), _encode_str(collection, "collection"),
                                        _encode_str(workspace, "workspace"), karr, nk,
                                        iarr if items else None, len(items),
                                        S.int_arg(now_ms, "now_ms"), totals))
        return {f: totals[i] for i, (f, _d) in enumerate(items)}


# ---- the gateway --------------------------------------------------------------
class GatewayExtras:
    """engine.gateway.handle / handle_async: the credential gateway served
    from the host's own HTTP server."""

    def handle(self, request, on_head=None, on_chunk=None):
        """ee_gateway_handle(): one gateway request -> {"status", "headers":
        ["Name: value" ...], "body": bytes}. `request` is {"method", "path"
        (after the gateway prefix: "/openrouter/api/v1/chat/completions"),
        "query" (after '?', or None), "headers" (a dict or a list of "Name:
        value" lines: the workflow's Authorization: Bearer <token> among
        them), "body" (bytes or str)}. on_head(status, headers) is called
        once, on_chunk(bytes) per chunk as it comes (without on_chunk the
        chunks are collected into "body"); return False from either to stop
        the call (the client went away): it then raises Cancelled. An
        exception a callback raises stops the call and is re-raised. The
        gateway's own refusals (401, 402, 403, 404, 413 ...) are answers,
        not exceptions. Blocks until the answer is complete (handle_async
        does not). (Given a ctypes ee_gateway_request and sink: the raw call.)"""
        if S.is_ctypes(request):
            return _invoke("ee_gateway_handle", self, (self._engine, request, on_head))
        req, keep = S.gateway_request(request)
        answer = {"status": 0, "headers": [], "body": b""}
        chunks = []
        failure = []

        def head(status, hs, n, _payload):
            try:
                answer["status"] = status
                answer["headers"] = [hs[i].decode("utf-8", "replace") for i in range(n)]
                if on_head is not None and on_head(status, list(answer["headers"])) is False:
                    return 1
                return 0
            except BaseException as e:
                failure.append(e)
                return 1

        def body(data, n, _payload):
            try:
                b = ctypes.string_at(data, n) if data and n else b""
                if on_chunk is not None:
                    return 1 if on_chunk(b) is False else 0
                chunks.append(b)
                return 0
            except BaseException as e:
                failure.append(e)
                return 1

        sink = S.GatewaySink(S.GatewayHeadFn(head), S.GatewayBodyFn(body), None)
        st = self._engine._pinned_call(_fn.ee_gateway_handle, ctypes.byref(req),
                                       ctypes.byref(sink))
        del keep
        if failure:
            raise failure[0]
        if st < 0:
            if native.STATUS_NAMES.get(st) == "EE_ECANCELLED":
                raise ExecEngineError.for_status(
                    st, "gateway.handle: stopped by on_head or on_chunk (the provider call "
                        "was stopped and metered)")
            _check(st)
        answer["body"] = b"".join(chunks)
        return answer

    async def handle_async(self, request, on_head=None, on_chunk=None):
        """handle() on the loop's default executor; on_head and on_chunk run
        on the event loop's thread (they may be coroutine functions: the
        call waits for them, so a slow client slows the provider's stream)."""
        loop = asyncio.get_running_loop()

        def relay(cb):
            if cb is None:
                return None

            async def call(*args):
                r = cb(*args)
                if asyncio.iscoroutine(r) or isinstance(r, asyncio.Future):
                    r = await r
                return r

            return lambda *args: asyncio.run_coroutine_threadsafe(call(*args), loop).result()

        import functools
        return await loop.run_in_executor(
            None, functools.partial(self.handle, request, relay(on_head), relay(on_chunk)))
