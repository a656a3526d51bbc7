"""ExecEngineError: a failing ee_status as a Python exception.

Every negative status becomes an instance of its per-status subclass of
ExecEngineError. The class has an idiomatic name (EE_EQUOTA -> QuotaExceeded,
EE_ECREDENTIALS -> CredentialGap: the IDIOMATIC table; a code not in it is
named by the rule EE_EFOO -> FooError) and is also reachable under the C
enumerator's name, so both spellings work:

    try:
        engine.quota.admit(principal, estimatedCostNanoUsd=10)
    except execengine.QuotaExceeded as e:         # == execengine.errors.EE_EQUOTA
        print(e.code, e.name, e.message, e.retry_after, e.detail)

The subclasses are made at import from the codes the loaded library reports
(ee_status_name()), so a code added to the library needs no binding change.
Every error has .detail (the error document's structured detail or None);
the subclasses whose detail has a known shape add properties for it:
QuotaExceeded/RateLimited/ConcurrencyLimited/Busy .retry_after (seconds)
and .retry_after_ms, CredentialGap .gaps, ValidationError .violations
(each with its JSON pointer "instancePath") and .pointers.
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

    def _detail(self, key, default=None):
        d = self.detail
        if isinstance(d, dict):
            if key in d:
                return d[key]
            for nested in ("report", "detail", "routing"):
                if isinstance(d.get(nested), dict) and key in d[nested]:
                    return d[nested][key]
        return default


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


class _RetryMixin:
    @property
    def retry_after_ms(self):
        """Milliseconds until a retry may succeed (the detail's retryAfterMs), or None."""
        v = self._detail("retryAfterMs")
        return None if v is None else int(v)

    @property
    def retry_after(self):
        """Seconds until a retry may succeed (float), or None."""
        ms = self.retry_after_ms
        return None if ms is None else ms / 1000.0


class _GapsMixin:
    @property
    def gaps(self):
        """The missing credentials: [{"field", "label", "type", "credentialName", ...}]."""
        return self._detail("gaps", [])


class _ViolationsMixin:
    @property
    def violations(self):
        """The violations: [{"instancePath", "schemaPath", "keyword", "message"}]."""
        v = self._detail("errors")
        if v is None:
            v = self._detail("violations", [])
        return v

    @property
    def pointers(self):
        """The JSON pointers (RFC 6901) of the violating values."""
        return [v.get("instancePath") for v in self.violations if isinstance(v, dict)]


#: C enumerator -> the idiomatic class name.
IDIOMATIC = {
    "EE_ERROR": "UnspecifiedError", "EE_ENOMEM": "OutOfMemory", "EE_EINVAL": "InvalidArgument",
    "EE_ENOTFOUND": "NotFound", "EE_EEXISTS": "AlreadyExists", "EE_ECONFLICT": "Conflict",
    "EE_ENOTSUPPORTED": "NotSupported", "EE_EVERSION": "VersionNotSupported",
    "EE_EIO": "StorageError", "EE_ECORRUPT": "CorruptData", "EE_EBUSY": "Busy",
    "EE_ETIMEOUT": "Timeout", "EE_ENETWORK": "NetworkError", "EE_EUPSTREAM": "UpstreamError",
    "EE_EAUTH": "AuthenticationError", "EE_EPERM": "PermissionDenied",
    "EE_EQUOTA": "QuotaExceeded", "EE_ERATELIMIT": "RateLimited",
    "EE_ECONCURRENCY": "ConcurrencyLimited", "EE_EVALIDATION": "ValidationError",
    "EE_ECREDENTIALS": "CredentialGap", "EE_ECRYPTO": "CryptoError", "EE_ETOOBIG": "TooBig",
    "EE_EPARSE": "ParseError", "EE_ESTATE": "InvalidState", "EE_ECANCELLED": "Cancelled",
    "EE_EPRICE": "PriceUnknown", "EE_ESPEND": "BudgetExceeded", "EE_EUNKNOWN": "OutcomeUnknown",
}
_MIXINS = {"EE_EQUOTA": _RetryMixin, "EE_ERATELIMIT": _RetryMixin,
           "EE_ECONCURRENCY": _RetryMixin, "EE_EBUSY": _RetryMixin, "EE_ESPEND": _RetryMixin,
           "EE_ECREDENTIALS": _GapsMixin, "EE_EVALIDATION": _ViolationsMixin}


def class_name(enumerator):
    """The Python name of a status's exception class."""
    if enumerator in IDIOMATIC:
        return IDIOMATIC[enumerator]
    word = enumerator[3:]
    if word.startswith("E") and len(word) > 1:
        word = word[1:]
    return word.capitalize() + "Error"


__all__ = ["ExecEngineError"]  # and the classes below (check, last_error, clear: errors.*)
_BY_CODE = {}
for _code, _name in _native.STATUS_NAMES.items():
    if _code < 0:
        _pyname = class_name(_name)
        _bases = ((_MIXINS[_name],) if _name in _MIXINS else ()) + (ExecEngineError,)
        _cls = type(_pyname, _bases, {
            "__doc__": f"{_name} ({_code}): {_native.fn.ee_strerror(_code).decode()}",
            "__module__": __name__, "__qualname__": _pyname})
        _BY_CODE[_code] = _cls
        globals()[_name] = _cls
        globals()[_pyname] = _cls
        __all__.append(_pyname)


def by_status(code):
    """The exception class of a negative status (ExecEngineError if unknown)."""
    return _BY_CODE.get(code, ExecEngineError)


def last_error():
    """This thread's last error (errors.h: ee_error_last_status, _message,
    _http_status and _json) as an ExecEngineError, or None if there is none."""
    status = _native.fn.ee_error_last_status()
    if status == 0:
        return None
    return ExecEngineError.last(status)


def clear():
    """Forget this thread's last error (ee_error_clear())."""
    _native.fn.ee_error_clear()


def check(status):
    """Raise the ExecEngineError for a negative status; return it otherwise."""
    if status < 0:
        raise ExecEngineError.last(status)
    return status
