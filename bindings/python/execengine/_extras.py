"""Hand-written parts of the generated classes (mixins named by
tools/gen.py's EXTRAS): calls that need care beyond the table-driven path."""
import asyncio
import ctypes
import json
import sys
import threading

from . import _native as native
from ._runtime import _encode_str, _handle_arg, merge, to_json
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
                    from . import _unraisable
                    sys.unraisablehook(_unraisable("execengine exec done callback", on_done))
                finally:
                    with _PENDING_LOCK:
                        _PENDING.pop(key, None)

            cfunc = cbtype(trampoline)
            with _PENDING_LOCK:
                _PENDING[key] = (cfunc, engine)
        st = native.fn.ee_exec_submit(engine._handle(),
                                      _handle_arg(principal, "ee_principal", "principal"),
                                      _encode_str(workflow_id, "workflow_id"),
                                      _encode_str(req, "request"), cfunc, None, idbuf)
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
            loop.call_soon_threadsafe(settle, exec_id, status, record)

        self.start(principal, workflow_id, request, on_done=done, **fields)
        return await fut
