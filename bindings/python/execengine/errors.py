"""ExecEngineError: a failing ee_status as a Python exception.

Every negative status becomes an ExecEngineError, or rather an instance of
its per-status subclass named after the C enumerator, so both spellings work:

    try:
        cfg.set("MAX_CONCURRENT_EXECUTIONS", "lots")
    except execengine.errors.EE_EINVAL as e:      # or: except ExecEngineError
        print(e.code, e.name, e.message, e.http_status, e.detail)

The subclasses are made at import from the codes the loaded library reports
(ee_status_name()), so a code added to the library needs no binding change.
"""
import ctypes
import json

from . import _native


class ExecEngineError(Exception):
    """A libexecengine call failed.

    code        the negative ee_status (int)
    name        its enumerator, e.g. "EE_EINVAL"
    message     what was wrong, with which input (never a secret)
    http_status the HTTP status an upstream answered with, 0 if none
    detail      structured detail (validation violations ...) or None
    """

    def __init__(self, code, name, message, http_status=0, detail=None):
        super().__init__(code, name, message, http_status, detail)
        self.code = code
        self.name = name
        self.message = message
        self.http_status = http_status
        self.detail = detail

    def __str__(self):
        return f"{self.name} ({self.code}): {self.message}"

    @staticmethod
    def for_status(code, message=None, http_status=0, detail=None):
        """The exception for `code` (a subclass instance when the code is known)."""
        name = _native.STATUS_NAMES.get(code, "EE_UNKNOWN_STATUS")
        cls = _BY_CODE.get(code, ExecEngineError)
        if message is None:
            message = _native.fn.ee_strerror(code).decode("utf-8")
        return cls(code, name, message, http_status, detail)

    @staticmethod
    def from_document(text, status):
        """The exception described by an error document
        {"error": {"code", "name", "message", "httpStatus", "detail"}} that a
        failing document call wrote to its `char **out`; None when `text` is
        not such a document for `status`."""
        try:
            err = json.loads(text)["error"]
            code = int(err["code"])
        except (TypeError, ValueError, KeyError):
            return None
        if code != status:
            return None
        return ExecEngineError.for_status(code, err.get("message"), err.get("httpStatus", 0),
                                          err.get("detail"))

    @staticmethod
    def last(status):
        """The exception for a call that just returned `status` on this thread,
        from this thread's error detail (errors.h). ctypes runs a call on the
        calling thread, so the detail is there; it is used only when it
        belongs to this status, else the generic text for the code."""
        if _native.fn.ee_error_last_status() == status:
            out = ctypes.c_void_p()
            if _native.fn.ee_error_last_json(ctypes.byref(out)) == 0:
                err = ExecEngineError.from_document(_native.take_string(out), status)
                if err is not None:
                    return err
            return ExecEngineError.for_status(
                status, _native.fn.ee_error_last_message().decode("utf-8", "replace"),
                _native.fn.ee_error_last_http_status())
        return ExecEngineError.for_status(status)


_BY_CODE = {}
for _code, _name in _native.STATUS_NAMES.items():
    if _code < 0:
        _cls = type(_name, (ExecEngineError,), {
            "__doc__": f"{_name} ({_code}): {_native.fn.ee_strerror(_code).decode()}",
            "__module__": __name__})
        _BY_CODE[_code] = _cls
        globals()[_name] = _cls


def check(status):
    """Raise the ExecEngineError for a negative status; return it otherwise."""
    if status < 0:
        raise ExecEngineError.last(status)
    return status
