"""Loading libexecengine and declaring its functions from manifest.json.

Nothing here is hand-written per function: every prototype comes from the
manifest (bindings/manifest.json, checked against abi/exports.txt and the
public headers by ctest bindings.manifest). The status codes are read from
the library itself with ee_status_name(), so they are never copied either.
"""
import ctypes
import ctypes.util
import json
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


class LibraryError(ImportError):
    """libexecengine could not be loaded, or is not the version this binding needs."""


def _read_manifest():
    path = os.environ.get("EE_MANIFEST_PATH") or os.path.join(_HERE, "manifest.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


MANIFEST = _read_manifest()
#: The library major this binding is written for (SONAME libexecengine.so.<major>).
EXPECTED_MAJOR = int(MANIFEST["library"]["major"])

_SCALARS = {
    "status": ctypes.c_int, "int": ctypes.c_int, "uint": ctypes.c_uint,
    "int32": ctypes.c_int32, "uint32": ctypes.c_uint32, "int64": ctypes.c_int64,
    "uint64": ctypes.c_uint64, "size": ctypes.c_size_t, "double": ctypes.c_double,
}
_FIXED = {
    "str": ctypes.c_char_p,
    "borrowed_str": ctypes.c_char_p,
    # Strings the library allocates come back as raw pointers: a c_char_p
    # would be copied to bytes and the pointer lost, so it could never be
    # handed to ee_free().
    "str_out": ctypes.POINTER(ctypes.c_void_p),
    "borrowed_str_out": ctypes.POINTER(ctypes.c_char_p),
    "str_array": ctypes.POINTER(ctypes.c_char_p),
    "char_buf": ctypes.POINTER(ctypes.c_char),
    "bytes": ctypes.c_char_p,
    "bytes_out": ctypes.POINTER(ctypes.c_void_p),
    "ptr": ctypes.c_void_p,
    "ptr_out": ctypes.POINTER(ctypes.c_void_p),
    "int_out": ctypes.POINTER(ctypes.c_int),
    "int64_out": ctypes.POINTER(ctypes.c_int64),
    "uint64_out": ctypes.POINTER(ctypes.c_uint64),
    "size_out": ctypes.POINTER(ctypes.c_size_t),
    "int_array": ctypes.POINTER(ctypes.c_int),
    "int64_array": ctypes.POINTER(ctypes.c_int64),
    "uint64_array": ctypes.POINTER(ctypes.c_uint64),
    "size_array": ctypes.POINTER(ctypes.c_size_t),
}

#: One opaque ctypes struct per handle type, so that passing an ee_engine
#: where an ee_config is expected fails in ctypes instead of in C.
handle_types = {name: type(name, (ctypes.Structure,), {}) for name in MANIFEST["handles"]}
callback_types = {}


def _ctype(t, ret=False):
    if t == "void":
        return None
    if t in _SCALARS:
        return _SCALARS[t]
    if t in _FIXED:
        return _FIXED[t]
    kind, _, name = t.partition(":")
    if kind == "handle":
        return ctypes.POINTER(handle_types[name])
    if kind == "handle_out":
        return ctypes.POINTER(ctypes.POINTER(handle_types[name]))
    if kind == "callback":
        return callback_types[name]
    if kind == "ptr":
        return ctypes.c_void_p
    raise LibraryError(f"manifest type {t!r} is unknown to this binding")


def _cb_ctype(t):
    # Data the library hands a callback is read by address and length: a
    # c_char_p would be copied up to the first NUL byte.
    return ctypes.c_void_p if t == "bytes" else _ctype(t)


for _name, _cb in MANIFEST["callbacks"].items():
    callback_types[_name] = ctypes.CFUNCTYPE(_ctype(_cb["returns"]),
                                             *[_cb_ctype(p["type"]) for p in _cb["params"]])


def _pkgconfig_libdir():
    """The libdir of the installed execengine.pc (pkg-config --variable=libdir
    execengine), or None when pkg-config or the .pc file is not there."""
    import shutil
    import subprocess
    exe = shutil.which("pkg-config") or shutil.which("pkgconf")
    if not exe:
        return None
    try:
        r = subprocess.run([exe, "--variable=libdir", MANIFEST["library"]["name"]],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = r.stdout.strip()
    return libdir if r.returncode == 0 and libdir else None


def _library_candidates():
    """Where the library is looked for, in order:
    1. EXECENGINE_LIBRARY (EE_LIBRARY_PATH is an alias): that file only;
    2. the install prefix: pkg-config's libdir of execengine;
    3. the loader (ldconfig's cache, LD_LIBRARY_PATH): libexecengine.so.<major>."""
    env = os.environ.get("EXECENGINE_LIBRARY") or os.environ.get("EE_LIBRARY_PATH")
    if env:
        return [env]
    soname = MANIFEST["library"].get("soname") or f"libexecengine.so.{EXPECTED_MAJOR}"
    names = []
    libdir = _pkgconfig_libdir()
    if libdir:
        names.append(os.path.join(libdir, soname))
    found = ctypes.util.find_library(MANIFEST["library"]["name"])
    if found:
        names.append(found)
    return names + [soname]


def _open():
    errors = []
    for cand in _library_candidates():
        try:
            return ctypes.CDLL(cand)
        except OSError as e:
            errors.append(f"{cand}: {e}")
    raise LibraryError("cannot load libexecengine (set EXECENGINE_LIBRARY to the .so): "
                       + "; ".join(errors))


lib = _open()

# The version is checked before anything else is declared, so that a
# library of another major reports that rather than a missing symbol.
lib.ee_version.restype = ctypes.c_char_p
lib.ee_version.argtypes = []
#: The loaded library's version, "MAJOR.MINOR.PATCH".
LIBRARY_VERSION = lib.ee_version().decode("ascii")
_major = int(LIBRARY_VERSION.split(".")[0])
if _major != EXPECTED_MAJOR:
    raise LibraryError(f"libexecengine {LIBRARY_VERSION} is loaded ({lib._name}) but this "
                       f"binding needs major version {EXPECTED_MAJOR}")


class _Functions:
    """The library's functions as ctypes callables, one attribute per name."""


fn = _Functions()
_missing = []
for _f in MANIFEST["functions"]:
    try:
        _c = getattr(lib, _f["name"])
    except AttributeError:
        _missing.append(_f["name"])
        continue
    _c.restype = _ctype(_f["returns"], ret=True)
    _c.argtypes = [_ctype(p["type"]) for p in _f["params"]]
    setattr(fn, _f["name"], _c)
if _missing:
    raise LibraryError(f"libexecengine {LIBRARY_VERSION} ({lib._name}) lacks "
                       f"{', '.join(_missing)}: it is older than this binding")


def _enumerate(name_fn, stop):
    """Values 0, -1, -2 ... (or 0, 1, 2 ...) until the library answers `stop`."""
    out = {}
    step = -1 if stop == "EE_UNKNOWN_STATUS" else 1
    for i in range(0, 1000 * step, step):
        name = name_fn(i).decode("ascii")
        if name == stop:
            break
        out[i] = name
    return out


#: code -> "EE_..." for every status the loaded library knows.
STATUS_NAMES = _enumerate(fn.ee_status_name, "EE_UNKNOWN_STATUS")
#: level -> "error"/"warn"/... for every log level the library knows.
LOG_LEVEL_NAMES = _enumerate(fn.ee_log_level_name, "unknown")


def take_string(ptr):
    """Copy a library-allocated string out of a c_void_p and ee_free() it."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8")
    finally:
        fn.ee_free(ptr)
        ptr.value = None
