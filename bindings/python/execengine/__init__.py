"""Python binding of libexecengine (ctypes, standard library only).

    import execengine

    with execengine.Config() as cfg:
        cfg.set("EE_STORAGE_URI", "memory:")
        cfg.set_int("MAX_CONCURRENT_EXECUTIONS", 4)
        cfg.set_log(lambda level, module, message: print(level.name, module, message))
        with execengine.Engine.open(cfg) as engine:
            print(engine.summary()["version"], engine.now_ms())

Importing loads the library (EE_LIBRARY_PATH, else the system's
libexecengine.so.<major>) and checks its major version; a mismatch raises
LibraryError (an ImportError). Failing calls raise ExecEngineError (see
execengine.errors). Handles are freed by `with`, by .close(), or at the
latest when garbage collected. Raw access to every C function declared in
the manifest: execengine.native.fn.ee_<name>.
"""
import ctypes
import enum
import json
import sys
import threading
import time
import weakref

from . import _native as native
from . import errors
from ._native import EXPECTED_MAJOR, LIBRARY_VERSION, LibraryError
from .errors import *  # noqa: F401,F403  (one exception class per status)
from .errors import ExecEngineError
from . import _runtime
from . import _api
from ._api import (Audit, Billing, Catalog, CostTable, Counters, Credentials, Email, Executions,  # noqa
                   Gateway, HttpRequest, HttpResponse, Mail, N8n, Principal, Quota, QuotaSubject,
                   Schema, Storage, Transport, TransportOptions, cost, n8n, quota, storage,
                   templates)
from ._extras import QuotaTicket  # noqa: E402  (engine.quota.admit_fast's tickets)

__all__ = ["Config", "Engine", "ExecEngineError", "LibraryError", "LogLevel", "Status",
           "EXPECTED_MAJOR", "version", "version_num", "features", "status_name", "strerror", "errors",
           "native", "BINDINGS", "QuotaTicket"] + _api.CLASSES + _api.NAMESPACES + errors.__all__
__version__ = "0.1.0"

_fn = native.fn

#: Every status the loaded library knows, as an IntEnum (Status.EE_EINVAL == -3).
Status = enum.IntEnum("Status", {name: code for code, name in native.STATUS_NAMES.items()},
                      module=__name__)
#: Log levels (LogLevel.ERROR == 0 ... LogLevel.DEBUG == 3), from ee_log_level_name().
LogLevel = enum.IntEnum("LogLevel", {name.upper(): lvl
                                     for lvl, name in native.LOG_LEVEL_NAMES.items()},
                        module=__name__)


def version():
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return _fn.ee_version().decode("ascii")


def version_num():
    """The loaded library's version as 0xMMmmpp."""
    return _fn.ee_version_num()


def features():
    """What the loaded library was built with, from ee_version_features():
    a list such as ["sqlite", "memory", "postgres", "redis", "idn", "curl"]
    (a backend left out answers Status.EE_ENOTSUPPORTED)."""
    return _fn.ee_version_features().decode("ascii").split()


def status_name(code):
    """"EE_EINVAL" for -3; "EE_UNKNOWN_STATUS" for a code the library does not know."""
    return _fn.ee_status_name(code).decode("ascii")


def strerror(code):
    """The library's English description of a status."""
    return _fn.ee_strerror(code).decode("utf-8")


def _b(text, what):
    """A str as C string bytes: TypeError for another type, InvalidArgument
    naming `what` for a NUL byte or a lone surrogate (_runtime._encode_str)."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    return _runtime._encode_str(text, what)


def _call_string(func, *args):
    """Call a function whose last parameter is `char **out`; return the text
    (None when *out is NULL). On failure, the error document the library
    wrote to *out gives the detail (it travels with the call's output, so
    it is right on whatever thread reads it); otherwise this thread's
    detail."""
    out = ctypes.c_void_p()
    status = func(*args, ctypes.byref(out))
    text = native.take_string(out)  # freed whatever the status
    if status < 0:
        raise ExecEngineError.from_document(text, status) or ExecEngineError.last(status)
    return text


def _call_json(func, *args):
    return json.loads(_call_string(func, *args))


def _NULL_FN(name):
    """A NULL function pointer of a callback type (ctypes refuses None there)."""
    return native.callback_types[name]()


def _level(level):
    if isinstance(level, str):
        try:
            return LogLevel[level.upper()]
        except KeyError:
            raise ValueError(f"unknown log level {level!r}; one of "
                             f"{', '.join(n.lower() for n in LogLevel.__members__)}") from None
    # an int (a LogLevel is one): int(2.9) was 2, and 2**32 + 2 reached C as 2
    return _runtime.int_value(level, "level", "int")


class Config:
    """An engine configuration (ee_config): options named by their environment
    variables, validated when set. Used by one thread at a time.

    Use as a context manager, or call .close(); the finaliser frees it
    otherwise. Engines opened from it copy it and stay valid after it is
    closed (they also keep its log and clock callbacks alive).
    """

    def __init__(self):
        ptr = ctypes.POINTER(native.handle_types["ee_config"])()
        errors.check(_fn.ee_config_new(ctypes.byref(ptr)))
        self._adopt(ptr)

    def _adopt(self, ptr):
        self._ptr = ptr
        # The ctypes callback objects must live as long as any C code may
        # call them: this config and every engine or copy made from it.
        self._callbacks = {}
        self._finalizer = weakref.finalize(self, _fn.ee_config_free, ptr)

    # -- lifetime -----------------------------------------------------------
    def close(self):
        """Free the config now (wiping secrets). Idempotent."""
        self._finalizer()
        self._ptr = None

    free = close

    @property
    def closed(self):
        return self._ptr is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._ptr is None:
            raise ValueError("operation on a closed Config")
        return self._ptr

    def copy(self):
        """An independent copy (values, clock and log callback)."""
        ptr = ctypes.POINTER(native.handle_types["ee_config"])()
        errors.check(_fn.ee_config_copy(ctypes.byref(ptr), self._handle()))
        new = Config.__new__(Config)
        new._adopt(ptr)
        new._callbacks = dict(self._callbacks)
        return new

    # -- values -------------------------------------------------------------
    def set(self, key, value):
        """Set an option from its text form ("50", "0.25", "true", a URL).
        Booleans and numbers are converted to that form. Raises
        ExecEngineError (EE_EINVAL naming the key for an unknown key or bad
        value, EE_ETOOBIG for a value over 4096 bytes)."""
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        errors.check(_fn.ee_config_set(self._handle(), _b(key, "key"),
                                       _b(value, f"value of {key}")))
        return self

    def set_int(self, key, value):
        """Set an integer-valued option (money in nano-USD, percentages in
        basis points, booleans as 0/1)."""
        if not isinstance(value, int):
            raise TypeError(f"value must be an int, not {type(value).__name__}")
        value = _runtime.int_value(value, f"value of {key}" if isinstance(key, str) else "value")
        errors.check(_fn.ee_config_set_int64(self._handle(), _b(key, "key"), value))
        return self

    def unset(self, key):
        """Restore an option to its default."""
        errors.check(_fn.ee_config_unset(self._handle(), _b(key, "key")))
        return self

    def load_env(self, environ=None):
        """Load every option set in the environment: the process's (getenv)
        when `environ` is None, else the given mapping of NAME -> value.
        A bad value raises EE_EINVAL naming the variable."""
        if environ is None:
            errors.check(_fn.ee_config_load_env(self._handle()))
            return self
        items = []
        for k, v in environ.items():
            if not isinstance(k, str):
                raise TypeError(f"environment names must be str, not {type(k).__name__}")
            if "=" in k or not k:
                raise _runtime._invalid("environment name", "empty or holding '='")
            if not isinstance(v, str):
                raise TypeError(f"environment variable {k}: the value must be a str, "
                                f"not {type(v).__name__}")
            items.append(_b(k, "environment name") + b"=" +
                         _b(v, f"environment variable {k}"))
        arr = (ctypes.c_char_p * (len(items) + 1))(*items, None)
        errors.check(_fn.ee_config_load_envp(self._handle(), arr))
        return self

    def get_int(self, key):
        """An integer-valued option (after defaults)."""
        out = ctypes.c_int64()
        errors.check(_fn.ee_config_get_int64(self._handle(), _b(key, "key"), ctypes.byref(out)))
        return out.value

    def get_string(self, key):
        """A text option (after defaults), or None when it has no value.
        Secrets cannot be read back: EE_EPERM."""
        return _call_string(_fn.ee_config_get_string, self._handle(), _b(key, "key"))

    def is_set(self, key):
        """Whether the option was set explicitly (not its default)."""
        out = ctypes.c_int()
        errors.check(_fn.ee_config_is_set(self._handle(), _b(key, "key"), ctypes.byref(out)))
        return bool(out.value)

    def summary(self):
        """The values as a dict keyed by option name; secrets only as
        {"set": bool[, "last4"]}."""
        return _call_json(_fn.ee_config_summary_json, self._handle())

    @staticmethod
    def options():
        """Every option: a list of {"name", "type", "default", "secret",
        "min", "max", "description"}."""
        return _call_json(_fn.ee_config_options_json)

    # -- callbacks ----------------------------------------------------------
    def set_log(self, callback, level=LogLevel.INFO):
        """Send log lines up to `level` (LogLevel or "error"/"warn"/"info"/
        "debug") to callback(level: LogLevel, module: str, message: str).
        None turns logging off. Secrets are redacted before the callback sees
        a line. The callback may run on any thread that uses an engine; an
        exception it raises is reported through sys.unraisablehook."""
        handle = self._handle()
        lvl = _level(level)
        if callback is None:
            errors.check(_fn.ee_config_set_log(handle, _NULL_FN("ee_log_fn"), lvl, None))
            self._callbacks.pop("log", None)
            return self

        def trampoline(level_, module, message, _payload):
            try:
                try:
                    level_ = LogLevel(level_)
                except ValueError:
                    pass
                callback(level_, module.decode("utf-8", "replace"),
                         message.decode("utf-8", "replace"))
            except BaseException:  # never unwind into C
                _report_unraisable("execengine log callback", callback)

        cfunc = native.callback_types["ee_log_fn"](trampoline)
        errors.check(_fn.ee_config_set_log(handle, cfunc, lvl, None))
        self._callbacks["log"] = cfunc
        return self

    def set_clock(self, clock):
        """Make engines read time from clock() -> int milliseconds since the
        Unix epoch (tests inject a fake clock this way). None restores the
        system clock. If clock() raises, the exception goes to
        sys.unraisablehook and that reading falls back to the system clock."""
        handle = self._handle()
        if clock is None:
            errors.check(_fn.ee_config_set_clock(handle, _NULL_FN("ee_clock_fn"), None))
            self._callbacks.pop("clock", None)
            return self

        def trampoline(_payload):
            try:
                ms = clock()
                # an int64 of ms: ctypes would return the low bits of a
                # bigger int (2**70 read as 0) and fail on anything else
                if isinstance(ms, bool) or not isinstance(ms, (int, float)):
                    raise TypeError(f"the clock returned {type(ms).__name__}, not int ms")
                ms = int(ms)
                if not -2**63 <= ms < 2**63:
                    raise ValueError(f"the clock returned {ms}, past int64 ms")
                return ms
            except BaseException:
                _report_unraisable("execengine clock callback", clock)
                return time.time_ns() // 1_000_000

        cfunc = native.callback_types["ee_clock_fn"](trampoline)
        errors.check(_fn.ee_config_set_clock(handle, cfunc, None))
        self._callbacks["clock"] = cfunc
        return self


def _unraisable_args_type():
    """The type sys.unraisablehook takes (UnraisableHookArgs): it has no
    public name, and CPython's default hook refuses any other object with
    TypeError - so a callback's exception was lost and, raised out of the
    trampoline, made ctypes return 0 (a clock that failed read 1970)."""
    captured = []

    class _Probe:
        def __del__(self):
            raise RuntimeError("execengine: probing sys.unraisablehook")

    old = sys.unraisablehook
    sys.unraisablehook = captured.append
    try:
        _Probe()
    finally:
        sys.unraisablehook = old
    return type(captured[0]) if captured else None


_UNRAISABLE_ARGS = _unraisable_args_type()


def _unraisable(what, obj):
    exc_type, exc, tb = sys.exc_info()
    if _UNRAISABLE_ARGS is not None:
        return _UNRAISABLE_ARGS((exc_type, exc, tb, what, obj))
    return _UnraisableArgs(exc_type, exc, tb, what, obj)


def _report_unraisable(what, obj):
    """Report the exception being handled through sys.unraisablehook, from a
    C callback: whatever the hook does, nothing is raised back into C."""
    try:
        sys.unraisablehook(_unraisable(what, obj))
    except BaseException:
        pass


class _UnraisableArgs:
    """What sys.unraisablehook expects, where its type cannot be found."""

    def __init__(self, exc_type, exc_value, exc_traceback, err_msg, obj):
        self.exc_type, self.exc_value, self.exc_traceback = exc_type, exc_value, exc_traceback
        self.err_msg, self.object = err_msg, obj


class Engine(_runtime.Pinned, _api.EngineModules):
    """An open engine (ee_engine), usable from many threads at once.

        with Engine.open(cfg) as engine:
            engine.catalog.search(q="email")
            engine.executions.run(principal, "wf-1", {"parameters": {...}})

Its per-module objects (catalog, credentials, quota, executions, billing,
audit, gateway) are generated from the manifest (execengine/_api.py).

    close() (or leaving the `with`) closes it; the finaliser does otherwise.
    A close() while calls made through the binding are still running on it
    (other threads, an asyncio variant whose task was cancelled or timed out)
    refuses new calls at once and closes the engine when the last running
    one returns.
    """

    def __init__(self, config):
        if not isinstance(config, Config):
            raise TypeError("Engine needs a Config")
        ptr = ctypes.POINTER(native.handle_types["ee_engine"])()
        errors.check(_fn.ee_engine_open(ctypes.byref(ptr), config._handle()))
        self._pin_init(ptr)
        # The engine copied the config, including the C pointers to its
        # callbacks: keep the Python objects behind them alive with it.
        self._callbacks = dict(config._callbacks)
        self._finalizer = _runtime.pin_finalizer(self, _fn.ee_engine_close, ptr)

    @classmethod
    def open(cls, config):
        """Open an engine from `config` (copied: the config may be closed after)."""
        return cls(config)

    @classmethod
    def open_parts(cls, config, parts):
        """ee_engine_open_parts(): open with host-provided parts. `parts` is a
        ctypes object of struct ee_engine_parts (engine.h), passed as is (a
        low-level call for hosts that build their own storage, counters or
        transport in C)."""
        if not isinstance(config, Config):
            raise TypeError("Engine needs a Config")
        self = cls.__new__(cls)
        ptr = ctypes.POINTER(native.handle_types["ee_engine"])()
        errors.check(_fn.ee_engine_open_parts(ctypes.byref(ptr), config._handle(), parts))
        self._pin_init(ptr)
        self._callbacks = dict(config._callbacks)
        self._finalizer = _runtime.pin_finalizer(self, _fn.ee_engine_close, ptr)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _deferred_free(self):
        # The last running call may be on one of the engine's own threads (a
        # done or alert callback calling back into the engine):
        # ee_engine_close() there would wait for that very thread. Close on
        # a thread of our own (not a daemon: the interpreter waits for it).
        threading.Thread(target=self._finalizer, name="execengine-close").start()

    def now_ms(self):
        """The engine's clock, milliseconds since the Unix epoch."""
        return self._pinned_call(_fn.ee_engine_now_ms)

    def summary(self):
        """{"version", "storage", "counters", "config"}; secrets masked."""
        return self._pinned_call(lambda ptr: _call_json(_fn.ee_engine_summary_json, ptr))


_runtime.HANDLE_CLASSES["ee_config"] = Config
_runtime.HANDLE_CLASSES["ee_engine"] = Engine

#: Every exported function -> where the binding has it, relative to this
#: package ("Catalog.search" is engine.catalog.search; "templates.render" is
#: execengine.templates.render). Generated rule + the hand-written ones.
BINDINGS = dict(_api.BINDINGS)
