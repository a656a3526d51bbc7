'use strict';
/*
 * Node binding of libexecengine (koffi).
 *
 *   const ee = require('execengine');
 *   const cfg = new ee.Config();
 *   cfg.set('EE_STORAGE_URI', 'memory:');
 *   const engine = ee.Engine.open(cfg);
 *   console.log(engine.summary().version, engine.nowMs());
 *   engine.catalog.search({ workspaceId: 'ws', userId: 'u' }, { q: 'mail' });
 *   const record = await engine.executions.run(principal, workflowId, { parameters });
 *   engine.close(); cfg.free();
 *
 * Every C prototype comes from bindings/manifest.json (checked against
 * abi/exports.txt and the public headers by ctest bindings.manifest); the
 * status codes come from the library (ee_status_name()). Loading checks the
 * library's major version. On top of the raw functions (native.fn), a
 * layer generated from the manifest by lib/mapping.js gives every export a
 * method (engine modules, handle classes, module functions; README.md has
 * the rule). Failing calls throw a subclass of ExecEngineError per status.
 */
const fs = require('fs');
const path = require('path');
const koffi = require('koffi');
const { isUtf8 } = require('buffer');

class LibraryError extends Error {
    constructor(message) {
        super(message);
        this.name = 'LibraryError';
    }
}

function readManifest() {
    const candidates = process.env.EE_MANIFEST_PATH
        ? [process.env.EE_MANIFEST_PATH]
        : fs.existsSync(path.join(__dirname, '..', 'tools', 'manifest.py'))
            // In the source tree: the one manifest of every binding (a
            // packed copy next to index.js exists only while npm packs).
            ? [path.join(__dirname, '..', 'manifest.json')]
            // Installed: the copy npm pack put in the package.
            : [path.join(__dirname, 'manifest.json')];
    const found = candidates.find((p) => fs.existsSync(p));
    if (!found)
        throw new LibraryError(`execengine: manifest.json not found (looked at ${candidates.join(', ')})`);
    return JSON.parse(fs.readFileSync(found, 'utf8'));
}

const manifest = readManifest();
/** The library major this binding is written for (SONAME libexecengine.so.<major>). */
const EXPECTED_MAJOR = Number(manifest.library.major);

// ---- types from the manifest's vocabulary ---------------------------------
const handleTypes = {};
for (const name of Object.keys(manifest.handles))
    handleTypes[name] = koffi.opaque(name);

const SCALARS = {
    status: 'int', int: 'int', uint: 'unsigned int', int32: 'int32_t', uint32: 'uint32_t',
    int64: 'int64_t', uint64: 'uint64_t', size: 'size_t', double: 'double', void: 'void',
};
// Library-allocated strings come back as raw pointers (void **), so that
// they can be decoded and then handed to ee_free(); a char ** would be
// turned into a JS string and the pointer lost.
const FIXED = {
    str: 'const char *',
    borrowed_str: 'const char *',
    str_out: koffi.out(koffi.pointer('void *')),
    borrowed_str_out: koffi.out(koffi.pointer('const char *')),
    str_array: 'const char **',
    char_buf: 'char *',
    bytes: 'const void *',
    bytes_out: koffi.out(koffi.pointer('void *')),
    ptr: 'void *',
    ptr_out: koffi.out(koffi.pointer('void *')),
    int_out: koffi.out(koffi.pointer('int')),
    int64_out: koffi.out(koffi.pointer('int64_t')),
    uint64_out: koffi.out(koffi.pointer('uint64_t')),
    size_out: koffi.out(koffi.pointer('size_t')),
    int_array: 'const int *',
    int64_array: 'const int64_t *',
    uint64_array: 'const uint64_t *',
    size_array: 'const size_t *',
};
const callbackTypes = {};

function ktype(t) {
    if (t in SCALARS) return SCALARS[t];
    if (t in FIXED) return FIXED[t];
    const [kind, name] = t.split(/:(.*)/s);
    switch (kind) {
    case 'handle': return koffi.pointer(handleTypes[name]);
    case 'handle_out': return koffi.out(koffi.pointer(handleTypes[name], 2));
    case 'callback': return koffi.pointer(callbackTypes[name]);
    case 'ptr': return 'void *';
    default: throw new LibraryError(`execengine: manifest type '${t}' is unknown to this binding`);
    }
}

for (const [name, cb] of Object.entries(manifest.callbacks))
    callbackTypes[name] = koffi.proto(name, ktype(cb.returns), cb.params.map((p) => ktype(p.type)));

// ---- loading ----------------------------------------------------------------
/** The install prefix's libdir from pkg-config (execengine.pc), or null. */
function pkgConfigLibdir() {
    try {
        const r = require('child_process').spawnSync('pkg-config', ['--variable=libdir', 'execengine'],
                                                     { encoding: 'utf8', timeout: 10000 });
        const dir = r.status === 0 ? r.stdout.trim() : '';
        return dir || null;
    } catch (e) {
        return null;
    }
}

/**
 * Where the library is looked for, in order: EXECENGINE_LIBRARY (or its
 * older name EE_LIBRARY_PATH) alone when set; else the install prefix's
 * libdir (pkg-config execengine), then the dynamic loader's search for
 * libexecengine.so.<major>.
 */
function libraryCandidates(env = process.env) {
    const explicit = env.EXECENGINE_LIBRARY || env.EE_LIBRARY_PATH;
    if (explicit) return [explicit];
    const soname = `libexecengine.so.${EXPECTED_MAJOR}`;
    const out = [];
    const libdir = pkgConfigLibdir();
    if (libdir && fs.existsSync(path.join(libdir, soname))) out.push(path.join(libdir, soname));
    out.push(soname);
    return out;
}

function openLibrary() {
    const candidates = libraryCandidates();
    const errors = [];
    for (const c of candidates) {
        try {
            return { lib: koffi.load(c), where: c };
        } catch (e) {
            errors.push(`${c}: ${e.message}`);
        }
    }
    throw new LibraryError('execengine: cannot load libexecengine (set EXECENGINE_LIBRARY to the .so): '
                           + errors.join('; '));
}

const { lib, where: libraryPath } = openLibrary();

// The version is checked before anything else is declared, so that a
// library of another major reports that rather than a missing symbol.
const LIBRARY_VERSION = lib.func('ee_version', 'const char *', [])();
if (Number(LIBRARY_VERSION.split('.')[0]) !== EXPECTED_MAJOR)
    throw new LibraryError(`execengine: libexecengine ${LIBRARY_VERSION} is loaded (${libraryPath}) `
                           + `but this binding needs major version ${EXPECTED_MAJOR}`);

/** Every function of the manifest, callable synchronously; `.async` on each. */
const fn = {};
const missing = [];
for (const f of manifest.functions) {
    try {
        fn[f.name] = lib.func(f.name, ktype(f.returns), f.params.map((p) => ktype(p.type)));
    } catch (e) {
        missing.push(f.name);
    }
}
if (missing.length)
    throw new LibraryError(`execengine: libexecengine ${LIBRARY_VERSION} (${libraryPath}) lacks `
                           + `${missing.join(', ')}: it is older than this binding`);

function enumerate(nameFn, stop, step) {
    const out = new Map();
    for (let i = 0; Math.abs(i) < 1000; i += step) {
        const name = nameFn(i);
        if (name === stop) break;
        out.set(i, name);
    }
    return out;
}

/** code -> 'EE_...' for every status the loaded library knows. */
const statusNames = enumerate(fn.ee_status_name, 'EE_UNKNOWN_STATUS', -1);
/** { EE_OK: 0, EE_EINVAL: -3, ... } */
const Status = Object.freeze(Object.fromEntries([...statusNames].map(([c, n]) => [n, c])));
/** { ERROR: 0, WARN: 1, INFO: 2, DEBUG: 3 } from ee_log_level_name(). */
const LogLevel = Object.freeze(Object.fromEntries(
    [...enumerate(fn.ee_log_level_name, 'unknown', 1)].map(([l, n]) => [n.toUpperCase(), l])));

// ---- errors -------------------------------------------------------------------
/** The class of each status ('EE_EQUOTA' -> QuotaExceeded); a status this
 * table does not know gets a name derived from its enumerator. */
const ERROR_CLASS_NAMES = {
    EE_ERROR: 'UnspecifiedError', EE_ENOMEM: 'OutOfMemory', EE_EINVAL: 'InvalidArgument',
    EE_ENOTFOUND: 'NotFound', EE_EEXISTS: 'AlreadyExists', EE_ECONFLICT: 'Conflict',
    EE_ENOTSUPPORTED: 'NotSupported', EE_EVERSION: 'VersionNotSupported', EE_EIO: 'IoError',
    EE_ECORRUPT: 'CorruptData', EE_EBUSY: 'Busy', EE_ETIMEOUT: 'Timeout',
    EE_ENETWORK: 'NetworkError', EE_EUPSTREAM: 'UpstreamError', EE_EAUTH: 'AuthError',
    EE_EPERM: 'PermissionDenied', EE_EQUOTA: 'QuotaExceeded', EE_ERATELIMIT: 'RateLimited',
    EE_ECONCURRENCY: 'ConcurrencyLimited', EE_EVALIDATION: 'ValidationError',
    EE_ECREDENTIALS: 'CredentialGap', EE_ECRYPTO: 'CryptoError', EE_ETOOBIG: 'TooBig',
    EE_EPARSE: 'ParseError', EE_ESTATE: 'StateError', EE_ECANCELLED: 'Cancelled',
    EE_EPRICE: 'UnknownPrice', EE_ESPEND: 'SpendLimitReached', EE_EUNKNOWN: 'OutcomeUnknown',
};

/**
 * A failing libexecengine call; each status has its own subclass
 * (errors.QuotaExceeded ...). `code` is the status name ('EE_EQUOTA'),
 * `status` its negative number, `message` what was wrong with which input
 * (never a secret), `httpStatus` what an upstream answered (0 if none),
 * `detail` the structured detail or null. From the detail: `retryAfterMs`
 * and `retryAfter` (whole seconds, rounded up) on refusals, `gaps` on a
 * credential gap, `violations` ({pointer, message, keyword}) on a
 * validation error.
 */
class ExecEngineError extends Error {
    constructor(status, message, httpStatus = 0, detail = null) {
        super(message);
        this.status = status;
        this.code = statusNames.get(status) || 'EE_UNKNOWN_STATUS';
        this.httpStatus = httpStatus || 0;
        this.detail = detail == null ? null : detail;
        const d = this.detail;
        if (d && typeof d === 'object') {
            if (typeof d.retryAfterMs === 'number') {
                this.retryAfterMs = d.retryAfterMs;
                this.retryAfter = Math.ceil(d.retryAfterMs / 1000);
            }
            if (Array.isArray(d.gaps)) this.gaps = d.gaps;
            const v = Array.isArray(d.violations) ? d.violations : Array.isArray(d.errors) ? d.errors : null;
            if (v) {
                this.violations = v.map((e) => ({ ...e,
                    pointer: e.pointer !== undefined ? e.pointer : e.instancePath }));
            }
        }
    }

    static forStatus(status, message, httpStatus = 0, detail = null) {
        const Cls = errorClassByStatus.get(status) || ExecEngineError;
        return new Cls(status, message == null ? fn.ee_strerror(status) : message,
                       httpStatus || 0, detail);
    }

    /**
     * The error an error document {"error": {...}} describes, or null when
     * `text` is not one for `status`. Failing document calls write it to
     * their `char **out`, so it reaches whichever thread reads the output.
     */
    static fromDocument(text, status) {
        let err;
        try {
            err = JSON.parse(text).error;
        } catch (e) {
            return null;
        }
        if (!err || err.code !== status) return null;
        return ExecEngineError.forStatus(err.code, err.message, err.httpStatus, err.detail);
    }

    /**
     * The error of a call that just returned `status` on this (the main)
     * thread, from the library's per-thread detail. Only for synchronous
     * calls: an async call ran on a koffi worker whose detail is not here.
     */
    static last(status) {
        if (fn.ee_error_last_status() === status) {
            const out = [null];
            if (fn.ee_error_last_json(out) === 0) {
                const e = ExecEngineError.fromDocument(takeString(out[0]), status);
                if (e) return e;
            }
            return ExecEngineError.forStatus(status, fn.ee_error_last_message(),
                                             fn.ee_error_last_http_status());
        }
        return ExecEngineError.forStatus(status);
    }
}
Object.defineProperty(ExecEngineError.prototype, 'name', { value: 'ExecEngineError' });

/** 'EE_EQUOTA' -> class QuotaExceeded, for every status of the library. */
const errorClasses = {};
const errorClassByStatus = new Map();
for (const [status, sname] of statusNames) {
    if (status >= 0) continue;
    const cname = ERROR_CLASS_NAMES[sname]
        || sname.replace(/^EE_E?/, '').toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase()) + 'Error';
    const Cls = { [cname]: class extends ExecEngineError {} }[cname];
    Object.defineProperty(Cls.prototype, 'name', { value: cname });
    Object.defineProperty(Cls, 'code', { value: sname });
    errorClasses[cname] = Cls;
    errorClassByStatus.set(status, Cls);
}

function check(status) {
    if (status < 0) throw ExecEngineError.last(status);
    return status;
}

// ---- arguments on their way into C --------------------------------------------
// koffi hands C a string up to its first NUL (a C string ends there), turns a
// lone surrogate into U+FFFD and an integer that does not fit its C type
// into its low bits (2n ** 64n is 0), and Number() made 0 of NaN and
// undefined of a string. Each value is checked here instead: the wrong type
// is a TypeError, a value C cannot take as given is InvalidArgument
// (EE_EINVAL) naming the argument - never echoing it (it may be a secret).

function typeName(v) {
    return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** The InvalidArgument error of a value refused before the call. */
function invalidArg(what, why) {
    return ExecEngineError.forStatus(Status.EE_EINVAL, `${what}: ${why}`);
}

/** A JS string for a const char * (null/undefined: NULL). `nulOk`: the C
 * function takes the length as well, so a NUL does not cut it. */
function cstr(v, what, nulOk = false) {
    if (v === null || v === undefined) return null;
    if (typeof v !== 'string') throw new TypeError(`${what} must be a string, not ${typeName(v)}`);
    if (!v.isWellFormed()) throw invalidArg(what, 'not encodable as UTF-8 (a lone surrogate)');
    if (!nulOk) {
        const i = v.indexOf('\0');
        if (i >= 0) throw invalidArg(what, `contains a NUL character (at index ${i}): a C string would end there`);
    }
    return v;
}

const INT_RANGES = {
    int: [-(2n ** 31n), 2n ** 31n - 1n], int32: [-(2n ** 31n), 2n ** 31n - 1n],
    uint: [0n, 2n ** 32n - 1n], uint32: [0n, 2n ** 32n - 1n],
    int64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n],
    size: [0n, 2n ** 64n - 1n],
};

/** An integer (a Number or a BigInt) within the range of C type `ctype`. */
function intArg(v, what, ctype = 'int64') {
    let big;
    if (typeof v === 'bigint') big = v;
    else if (typeof v === 'number') {
        if (!Number.isInteger(v)) throw invalidArg(what, `${v} is not an integer`);
        big = BigInt(v);
    } else {
        throw new TypeError(`${what} must be an integer (a Number or a BigInt), not ${typeName(v)}`);
    }
    const [lo, hi] = INT_RANGES[ctype] || INT_RANGES.int64;
    if (big < lo || big > hi) throw invalidArg(what, `${v} is out of range for a C ${ctype} (${lo} to ${hi})`);
    return v;
}

/** A finite Number for a C double. */
function doubleArg(v, what) {
    if (typeof v !== 'number') throw new TypeError(`${what} must be a number, not ${typeName(v)}`);
    if (!Number.isFinite(v)) throw invalidArg(what, `${v} is not a finite number`);
    return v;
}

/** JSON text of an object / array / number / boolean (a string is JSON
 * text as is). NaN and infinities are refused: JSON.stringify would turn
 * them into null, which the library reads as an absent member. */
function jsonText(v, what) {
    if (v === undefined || v === null) return null;
    if (typeof v === 'string') return cstr(v, what);
    let text;
    try {
        text = JSON.stringify(v, (k, x) => {
            if (typeof x === 'number' && !Number.isFinite(x))
                throw invalidArg(what, `${k ? `member ${k}: ` : ''}${x} is not a JSON number`);
            return x;
        });
    } catch (e) {
        if (e instanceof ExecEngineError) throw e;
        throw new TypeError(`${what}: not JSON (${e.message})`);
    }
    if (text === undefined) throw new TypeError(`${what} must be JSON text or a JSON value, not ${typeName(v)}`);
    return cstr(text, what);
}

// strlen() of the C library the engine links (dlsym through the engine's
// handle reaches its dependencies).
const cStrlen = lib.func('strlen', 'size_t', ['void *']);

/**
 * Copy a library-allocated string and ee_free() it. Read through strlen()
 * and koffi.view() rather than koffi.decode(ptr, 'char', -1), which keeps
 * about ten bytes of native memory per call (koffi 3.3): a 1,000-call loop
 * showed it.
 */
function takeString(ptr) {
    if (ptr === null || ptr === undefined || ptr === 0n) return null;
    try {
        const n = Number(cStrlen(ptr));
        return n === 0 ? '' : Buffer.from(koffi.view(ptr, n)).toString('utf8');
    } finally {
        fn.ee_free(ptr);
    }
}

/** Call a function whose last parameter is `char **out`; return the text. */
function callString(name, ...args) {
    const out = [null];
    const status = fn[name](...args, out);
    const text = takeString(out[0]); // freed whatever the status
    if (status < 0)
        throw ExecEngineError.fromDocument(text, status) || ExecEngineError.last(status);
    return text;
}

/**
 * Run a koffi async call `asyncFn(...args, cb)`: resolve with done(err, st)
 * (which may throw: reject), and call settle() exactly once - after done,
 * or at once when koffi refuses the call before queueing it (more than its
 * max_async_calls in flight: nothing ran).
 */
function koffiAsync(asyncFn, args, done, settle, resolve, reject) {
    try {
        asyncFn(...args, (err, st) => {
            try {
                resolve(done(err, st));
            } catch (e) {
                reject(e);
            } finally {
                settle();
            }
        });
    } catch (e) {
        settle();
        reject(e);
    }
}

/**
 * The same on a koffi worker thread; resolves to the parsed JSON. The error
 * detail comes only from the error document in *out: the per-thread detail
 * stays on the worker, and the main thread's is not touched.
 */
function callDocAsync(name, ...args) {
    return new Promise((resolve, reject) => {
        const out = [null];
        fn[name].async(...args, out, (err, status) => {
            let text;
            try {
                text = takeString(out[0]);
            } catch (e) {
                reject(e);
                return;
            }
            if (err) {
                reject(err);
            } else if (status < 0) {
                reject(ExecEngineError.fromDocument(text, status) || ExecEngineError.forStatus(status));
            } else {
                try {
                    resolve(JSON.parse(text));
                } catch (e) {
                    reject(e);
                }
            }
        });
    });
}

function keyArg(key, what = 'key') {
    if (typeof key !== 'string') throw new TypeError(`${what} must be a string`);
    return cstr(key, what);
}

// ---- registered callbacks, shared by a config and the engines opened from it --
class SharedCallback {
    constructor(func, type) {
        this.ptr = koffi.register(func, koffi.pointer(callbackTypes[type]));
        this.refs = 1;
    }

    acquire() {
        this.refs++;
        return this;
    }

    release() {
        if (--this.refs === 0) {
            koffi.unregister(this.ptr);
            this.ptr = null;
        }
    }
}

// ---- object lifetimes ------------------------------------------------------------
/*
 * Each library object a wrapper (Config, Engine, a handle) stands for has a
 * Life, shared by the wrapper, its finalizer and the handles that borrow
 * it; a Life never references its wrapper, so the wrapper can be
 * collected. The rules:
 *   - close() marks it closed at once (every new call throws) and frees the
 *     C object when no call through the binding is inside C with it any
 *     more: each call pins the objects it passes for its duration (`pending`).
 *   - A handle made over one it borrows (an N8n client over its Transport: the
 *     header says the transport must outlive the client; a QuotaSubject
 *     over its Engine) is its `child`: closing the borrowed one closes its
 *     children, and frees it only after them. The child's wrapper keeps the
 *     borrowed one's alive (`_deps`), so a finalizer never closes it early.
 *   - The finalizer (FinalizationRegistry: a dropped wrapper) closes by the
 *     same rules.
 */
class Life {
    /** `release(ptr, done, life)` frees the C object and calls done() once
     * it is freed; null for an object the library owns (a callback's
     * argument). */
    constructor(what, ptr, release, closedWord = 'closed') {
        this.what = what;
        this.ptr = ptr;
        this.release = release;
        this.closedWord = closedWord;
        this.callbacks = new Map();   // SharedCallbacks C may call while it lives
        this.pending = 0;             // calls inside C with it
        this.closing = false;         // close() asked: no new call
        this.freed = false;           // its release started
        this.ended = false;           // its release done
        this.parent = null;           // the Life it borrows
        this.children = new Set();    // the Lives that borrow it
        this.waiters = [];            // resolve functions of whenEnded()
    }

    error() {
        return new Error(`execengine: operation on a ${this.closedWord} ${this.what}`);
    }

    /** The pointer for a call: throws once close() was asked. */
    live() {
        if (this.closing) throw this.error();
        return this.ptr;
    }

    /** This Life borrows `parent` (closed with it, freed before it). */
    borrow(parent) {
        this.parent = parent;
        parent.children.add(this);
    }
}

/** Close `life` and the Lives that borrow it; free what no call holds. */
function closeLife(life) {
    if (life.closing) return;
    life.closing = true;
    openEngines.delete(life);
    for (const child of [...life.children]) closeLife(child);
    settleLife(life);
}

/** Free a closing Life once no call and no borrower holds it. */
function settleLife(life) {
    if (!life.closing || life.freed || life.pending > 0 || life.children.size > 0) return;
    life.freed = true;
    const done = () => {
        for (const cb of life.callbacks.values()) cb.release();
        life.callbacks.clear();
        life.ended = true;
        for (const resolve of life.waiters.splice(0)) resolve();
        const parent = life.parent;
        if (parent) {
            parent.children.delete(life);
            settleLife(parent);
        }
    };
    if (life.release) life.release(life.ptr, done, life);
    else done();
}

/** A Promise that resolves once `life`'s C object is freed. */
function whenEnded(life) {
    return life.ended ? Promise.resolve() : new Promise((resolve) => life.waiters.push(resolve));
}

/** Pin the Lives of `objs` (wrappers) for a call; throws if one is closed. */
function pinLives(objs) {
    const lives = [...new Set(objs.map((o) => o._life))];
    for (const l of lives) l.live();
    for (const l of lives) l.pending++;
    return lives;
}

/** The call settled: a Life whose close() came meanwhile is freed now. */
function unpinLives(lives) {
    for (const l of lives) {
        l.pending--;
        settleLife(l);
    }
}

/** call() with `objs` pinned (their close() meanwhile waits for it). */
function withPinned(objs, call) {
    const lives = pinLives(objs);
    try {
        return call();
    } finally {
        unpinLives(lives);
    }
}

/** A sync release: free(ptr), then done. */
const freeWith = (free) => (ptr, done) => {
    free(ptr);
    done();
};

/**
 * ee_engine_close(): on a koffi worker when the engine holds JS callbacks
 * (log, clock, quota alerts). The engine's own threads (execution workers,
 * keeper, e-mail outbox) call them; koffi runs such a call on this thread's
 * event loop while the calling thread waits, and the close joins those
 * threads - on this thread it waited for them forever. Off it, the loop
 * runs their last calls, and the callbacks are released once it returned.
 */
function closeEngine(ptr, done, life) {
    if (life.callbacks.size === 0) {
        fn.ee_engine_close(ptr);
        done();
        return;
    }
    try {
        fn.ee_engine_close.async(ptr, () => done());
    } catch (e) {
        // koffi's queue is full (max_async_calls): again once calls ended
        setTimeout(() => closeEngine(ptr, done, life), 10);
    }
}

// Safety net: objects never closed explicitly are closed once collected.
const lifeRegistry = new FinalizationRegistry(closeLife);

// ---- engines left open at exit -------------------------------------------------
/*
 * Node runs no finalizer at exit, and an engine never closed kept its
 * threads running while the process ended: at the end of the event loop a
 * worker calling a JS callback called into the torn-down Node (SIGABRT in
 * napi_call_threadsafe_function), and at process.exit() the workers raced
 * exit()'s clean-up (SIGSEGV in OpenSSL, cleaned up at exit). So:
 *   - when the event loop is about to end ('beforeExit', once the other
 *     listeners scheduled nothing more), every engine still open is closed
 *     - one holding JS callbacks on a worker, the loop running their last
 *     calls, then ending;
 *   - at 'exit' (process.exit(), which runs no more of the loop), an engine
 *     still open without JS callbacks is closed. One that a call is inside
 *     (process.exit() waits for an async call in flight: libuv joins its
 *     threads) is never freed under it, and one holding JS callbacks could
 *     not be closed (a worker waiting for the loop to run a callback would
 *     wait forever): those are left to the process's end.
 */
const openEngines = new Set();  // the Lives of the engines not closed yet
let exitWatched = false;

function watchExit() {
    if (exitWatched) return;
    exitWatched = true;
    // First of the 'beforeExit' listeners: what is there before they run.
    process.prependListener('beforeExit', () => {
        if (openEngines.size === 0) return;
        const before = process.getActiveResourcesInfo();
        setImmediate(() => closeAtLoopEnd(before));
    });
    process.on('exit', closeAtExit);
}

function closeAtLoopEnd(before) {
    // After the other 'beforeExit' listeners and what they chained: one that
    // scheduled more work (a timer, I/O, a call on an engine) may still use
    // its engine, and 'beforeExit' comes again once that work is done.
    const added = process.getActiveResourcesInfo();
    for (const r of before) {
        const i = added.indexOf(r);
        if (i >= 0) added.splice(i, 1);
    }
    const lives = [...openEngines];
    if (added.length > 0 || lives.some((life) => life.pending > 0)) return;
    for (const life of lives) closeLife(life);
}

function closeAtExit() {
    for (const life of [...openEngines])
        if (life.pending === 0 && life.callbacks.size === 0) closeLife(life);
}

function levelArg(level) {
    if (typeof level === 'string') {
        const l = LogLevel[level.toUpperCase()];
        if (l === undefined) throw new RangeError(`unknown log level '${level}'`);
        return l;
    }
    // koffi made 2 of 2.9, 0 of NaN and 2 of 2 ** 32 + 2
    return intArg(level, 'level', 'int');
}

// Lets copy() hand an existing ee_config to the constructor; not exported.
const ADOPT = Symbol('adopt');

/**
 * An engine configuration (ee_config). Options are named by their
 * environment variables and validated when set. free() releases it (it is
 * also freed when garbage collected). Engines opened from it copy it.
 */
class Config {
    constructor(adopt, ptr) {
        if (adopt !== ADOPT) {
            const out = [null];
            check(fn.ee_config_new(out));
            ptr = out[0];
        }
        this._life = new Life('Config', ptr, freeWith(fn.ee_config_free), 'freed');
        lifeRegistry.register(this, this._life, this);
    }

    _handle() {
        return this._life.live();
    }

    /** Free the config (wiping secrets), or when the last summaryAsync()
     * on it settles. Idempotent. */
    free() {
        if (this._life.closing) return;
        lifeRegistry.unregister(this);
        closeLife(this._life);
    }

    close() { this.free(); }

    [Symbol.dispose]() { this.free(); }

    get freed() { return this._life.closing; }

    /** An independent copy (values, clock and log callback). */
    copy() {
        const out = [null];
        check(fn.ee_config_copy(out, this._handle()));
        const c = new Config(ADOPT, out[0]);
        for (const [k, cb] of this._life.callbacks)
            c._life.callbacks.set(k, cb.acquire());
        return c;
    }

    /** Set an option from its text form; booleans and numbers are converted. */
    set(key, value) {
        if (typeof value === 'boolean') value = value ? 'true' : 'false';
        else if (typeof value === 'number' || typeof value === 'bigint') value = String(value);
        if (typeof value !== 'string') throw new TypeError('value must be a string');
        check(fn.ee_config_set(this._handle(), keyArg(key),
                               cstr(value, typeof key === 'string' ? `value of ${key}` : 'value')));
        return this;
    }

    /** Set an integer-valued option (money in nano-USD, percentages in basis points). */
    setInt(key, value) {
        if (typeof value === 'number' && !Number.isSafeInteger(value))
            throw new TypeError('value must be an integer (use a BigInt beyond 2^53)');
        if (typeof value !== 'number' && typeof value !== 'bigint')
            throw new TypeError('value must be a number or a BigInt');
        check(fn.ee_config_set_int64(this._handle(), keyArg(key),
                                     intArg(value, typeof key === 'string' ? `value of ${key}` : 'value')));
        return this;
    }

    unset(key) {
        check(fn.ee_config_unset(this._handle(), keyArg(key)));
        return this;
    }

    /** Load options from process.env-like `env` (default: the process environment). */
    loadEnv(env) {
        if (env === undefined) {
            check(fn.ee_config_load_env(this._handle()));
        } else {
            if (env === null || typeof env !== 'object')
                throw new TypeError(`env must be an object of NAME: value, not ${typeName(env)}`);
            const entries = Object.entries(env).map(([k, v]) => {
                if (k === '' || k.includes('=')) throw invalidArg('environment name', "empty or holding '='");
                cstr(k, 'environment name');
                // as set(): text, numbers and booleans (undefined was "undefined")
                if (typeof v === 'boolean') v = v ? 'true' : 'false';
                else if (typeof v === 'number' || typeof v === 'bigint') v = String(v);
                if (typeof v !== 'string')
                    throw new TypeError(`environment variable ${k}: the value must be a string, not ${typeName(v)}`);
                return `${k}=${cstr(v, `environment variable ${k}`)}`;
            });
            check(fn.ee_config_load_envp(this._handle(), [...entries, null]));
        }
        return this;
    }

    getInt(key) {
        const out = [null];
        check(fn.ee_config_get_int64(this._handle(), keyArg(key), out));
        return out[0];
    }

    /** A text option, or null. Secrets cannot be read back (EE_EPERM). */
    getString(key) {
        return callString('ee_config_get_string', this._handle(), keyArg(key));
    }

    isSet(key) {
        const out = [null];
        check(fn.ee_config_is_set(this._handle(), keyArg(key), out));
        return out[0] !== 0;
    }

    summary() {
        return JSON.parse(callString('ee_config_summary_json', this._handle()));
    }

    /** summary() on a worker thread (free() meanwhile waits for it). */
    summaryAsync() {
        return pinnedDocAsync(this, 'ee_config_summary_json');
    }

    static options() {
        return JSON.parse(callString('ee_config_options_json'));
    }

    options() { return Config.options(); }

    _setCallback(slot, cb) {
        const callbacks = this._life.callbacks;
        const old = callbacks.get(slot);
        if (cb) callbacks.set(slot, cb);
        else callbacks.delete(slot);
        if (old) old.release();
    }

    /**
     * Send log lines up to `level` ('error'|'warn'|'info'|'debug' or a
     * LogLevel) to callback(level, module, message); null turns logging
     * off. Secrets are redacted first. Lines logged on other threads are
     * queued to the main thread by koffi (a synchronous call that waits for
     * such a thread would deadlock: see docs/bindings.md).
     */
    setLog(callback, level = 'info') {
        const handle = this._handle();
        const lvl = levelArg(level);
        if (callback === null || callback === undefined) {
            check(fn.ee_config_set_log(handle, null, lvl, null));
            this._setCallback('log', null);
            return this;
        }
        const cb = new SharedCallback((l, module, message) => {
            try {
                callback(l, module, message);
            } catch (e) {
                process.emitWarning(`execengine log callback threw: ${e && e.stack || e}`);
            }
        }, 'ee_log_fn');
        const st = fn.ee_config_set_log(handle, cb.ptr, lvl, null);
        if (st < 0) {
            const err = ExecEngineError.last(st);
            cb.release();
            throw err;
        }
        this._setCallback('log', cb);
        return this;
    }

    /**
     * Make engines read time from clock() -> integer milliseconds since the
     * Unix epoch (tests inject a fake clock). null restores the system clock.
     * If clock() throws, that reading falls back to Date.now().
     */
    setClock(clock) {
        const handle = this._handle();
        if (clock === null || clock === undefined) {
            check(fn.ee_config_set_clock(handle, null, null));
            this._setCallback('clock', null);
            return this;
        }
        const cb = new SharedCallback(() => {
            try {
                // koffi throws on a value that is not an int64 - out of the
                // callback, at the call that read the clock (Engine.open
                // failed with "Unexpected String value" and leaked the engine)
                const ms = clock();
                if (typeof ms === 'bigint' ? ms >= -(2n ** 63n) && ms < 2n ** 63n
                    : typeof ms === 'number' && Number.isFinite(ms) && Math.abs(ms) < 2 ** 63)
                    return typeof ms === 'number' ? Math.trunc(ms) : ms;
                throw new TypeError(`the clock returned ${typeName(ms)}${typeof ms === 'number' ? ` ${ms}` : ''}, not int64 ms`);
            } catch (e) {
                process.emitWarning(`execengine clock callback threw: ${e && e.stack || e}`);
                return Date.now();
            }
        }, 'ee_clock_fn');
        const st = fn.ee_config_set_clock(handle, cb.ptr, null);
        if (st < 0) {
            const err = ExecEngineError.last(st);
            cb.release();
            throw err;
        }
        this._setCallback('clock', cb);
        return this;
    }
}

/**
 * An open engine (ee_engine). close() closes it (it is also closed when
 * garbage collected); a close requested while async calls are in flight
 * happens when the last one settles.
 */
class Engine {
    constructor(config) {
        if (!(config instanceof Config)) throw new TypeError('Engine needs a Config');
        const out = [null];
        // The open calls the config's log and clock callbacks: a free()
        // there waits for it, and so the callbacks stay registered.
        withPinned([config], () => {
            check(fn.ee_engine_open(out, config._handle()));
            this._life = new Life('Engine', out[0], closeEngine);
            // The engine copied the config's callback pointers: hold them.
            for (const [k, cb] of config._life.callbacks) this._life.callbacks.set(k, cb.acquire());
        });
        lifeRegistry.register(this, this._life, this);
        openEngines.add(this._life);
        watchExit();
        attachEngineModules(this);
    }

    /**
     * engine.quota.onAlert(callback(alert)): quota alerts (parsed JSON) to
     * callback; null stops them. A replaced callback stays registered until
     * the engine closes (a worker may be about to call it). Like setLog,
     * alerts raised on a worker are run on the main thread.
     */
    _onAlert(callback) {
        const handle = this._handle();
        if (callback === null || callback === undefined) {
            withPinned([this], () => check(fn.ee_quota_set_alert_callback(handle, null, null)));
            return;
        }
        const cb = makeCallback('ee_quota_alert_fn', callback);
        const st = withPinned([this], () => fn.ee_quota_set_alert_callback(handle, cb.ptr, null));
        if (st < 0) {
            const err = ExecEngineError.last(st);
            cb.release();
            throw err;
        }
        this._life.callbacks.set(cb, cb);  // kept, the replaced ones too
    }

    static open(config) { return new Engine(config); }

    _handle() {
        return this._life.live();
    }

    /**
     * Close the engine and the handles that borrow it (QuotaSubjects), at
     * once for new calls, in C when the last call on it returned. Returns a
     * Promise that resolves once ee_engine_close() has returned: an engine
     * holding JS callbacks (setLog, setClock, quota.onAlert) is closed on a
     * worker thread, so its last log lines come after close() returned.
     * Idempotent.
     */
    close() {
        if (!this._life.closing) {
            lifeRegistry.unregister(this);
            closeLife(this._life);
        }
        return whenEnded(this._life);
    }

    [Symbol.dispose]() { this.close(); }

    get closed() { return this._life.closing; }

    /** The engine's clock, ms since the Unix epoch (Number, or BigInt if huge). */
    nowMs() {
        const handle = this._handle();
        return withPinned([this], () => fn.ee_engine_now_ms(handle));  // the clock callback may close it
    }

    summary() {
        const handle = this._handle();
        return JSON.parse(withPinned([this], () => callString('ee_engine_summary_json', handle)));
    }

    /** summary() on a koffi worker thread: a Promise of the parsed JSON. */
    summaryAsync() {
        return pinnedDocAsync(this, 'ee_engine_summary_json');
    }
}

// ---- the generated layer (lib/mapping.js) -------------------------------------
const mapping = require('./lib/mapping');
const descriptors = mapping.describe(manifest);

/**
 * A library handle other than Config and Engine (Principal, Storage,
 * CostTable ...): close() (alias free(), Symbol.dispose) frees it; one never
 * closed is freed when garbage collected. `_deps` keeps alive the handles it
 * was made from (a client keeps its transport); `borrowed`: the one of them
 * whose Life it borrows (closed with it).
 */
class NativeHandle {
    constructor(adopt, ptr, deps, owned = true, borrowed = null) {
        if (adopt !== ADOPT) {
            const create = this.constructor.create;
            if (typeof create !== 'function')
                throw new TypeError(`execengine: ${this.constructor.name} has no constructor; use its factories`);
            return create(...arguments);  // eslint-disable-line prefer-rest-params
        }
        const free = (manifest.handles[this.constructor.cName] || {}).free;
        this._life = new Life(this.constructor.name, ptr, owned && free ? freeWith(fn[free]) : null);
        this._deps = deps || [];
        if (owned) lifeRegistry.register(this, this._life, this);
        if (borrowed) {
            this._life.borrow(borrowed._life);
            // made while the borrowed one's close() waited for the call
            if (borrowed._life.closing) closeLife(this._life);
        }
    }

    _handle() {
        return this._life.live();
    }

    /** Close now (and the handles that borrow this one), or when the last
     * call on it settles. */
    close() {
        if (this._life.closing) return;
        lifeRegistry.unregister(this);
        closeLife(this._life);
    }

    free() { this.close(); }

    [Symbol.dispose]() { this.close(); }

    get closed() { return this._life.closing; }
}

/** One class per manifest handle (ee_http_request -> HttpRequest). */
const classes = { Config, Engine };
for (const h of Object.keys(manifest.handles)) {
    const name = mapping.className(h);
    if (classes[name]) continue;
    const Cls = { [name]: class extends NativeHandle {} }[name];
    Cls.cName = h;
    classes[name] = Cls;
}
const { Principal } = classes;
/** Principal.from({workspaceId, userId, orgId}) or an existing Principal. */
Principal.from = (p) => (p instanceof Principal ? p
    : Principal.create(p.workspaceId, p.userId == null ? null : p.userId, p.orgId == null ? null : p.orgId));
Principal.prototype.toJSON = function toJSON() {
    return { workspaceId: this.workspace(), userId: this.user(), orgId: this.org() };
};

function parseDoc(text) {
    return text === null ? null : JSON.parse(text);
}

function ownerHandle(v, h, what) {
    if (v === null || v === undefined) return null;
    const Cls = classes[mapping.className(h)];
    if (!(v instanceof Cls)) throw new TypeError(`${what} must be a ${Cls.name}`);
    return v._handle();
}

/** A registered JS function for a manifest callback type; arguments are
 * converted (bytes+len -> Buffer, *_json -> parsed, payload dropped). */
function makeCallback(type, jsfn) {
    const ps = manifest.callbacks[type].params;
    const ret = manifest.callbacks[type].returns;
    return new SharedCallback((...cargs) => {
        const a = [];
        const borrowed = [];
        for (let i = 0; i < ps.length; i++) {
            const p = ps[i];
            if (p.type === 'ptr' && p.name === 'payload') continue;
            if (p.type === 'bytes' && ps[i + 1] && ps[i + 1].type === 'size') {
                const n = Number(cargs[i + 1]);
                // a copy: the C bytes are borrowed for the call only, and
                // Buffer.from(ArrayBuffer) would share them
                a.push(n ? Buffer.from(new Uint8Array(koffi.view(cargs[i], n))) : Buffer.alloc(0));
                i++;
            } else if (p.type.startsWith('handle:')) {
                const C = classes[mapping.className(p.type.slice(7))];
                const h = new C(ADOPT, cargs[i], [], false);
                borrowed.push(h);
                a.push(h);
            } else if (p.type === 'str' && /_json$/.test(p.name)) {
                a.push(cargs[i] == null ? null : JSON.parse(cargs[i]));
            } else {
                a.push(cargs[i]);
            }
        }
        try {
            const r = jsfn(...a);
            if (r === undefined || r === null) return 0;
            // koffi would throw on another value out of the callback, at the
            // C call that made it
            if (ret !== 'void') intArg(r, `the result of the ${type} callback`, ret === 'status' ? 'int' : ret);
            return r;
        } catch (e) {
            process.emitWarning(`execengine ${type} callback threw: ${e && e.stack || e}`);
            return -1;
        } finally {
            // The library's object (a stream's response) is borrowed for
            // the call: kept and used later, it was freed memory.
            for (const h of borrowed) closeLife(h._life);
        }
    }, type);
}

/** C arguments of one call of descriptor d (self: the object's handle). */
function prepare(d, selfPtr, self, jsArgs) {
    const f = fnDesc.get(d.name);
    const c = new Array(f.params.length).fill(null);
    const temps = [];
    try {
        return prepareInto(d, f, c, temps, selfPtr, self, jsArgs);
    } catch (e) {
        for (const t of temps) t.close();
        throw e;
    }
}

function prepareInto(d, f, c, temps, selfPtr, self, jsArgs) {
    const deps = [];
    const outs = {};
    let borrowed = null;
    let j = 0;
    for (const a of d.args) {
        if (d.self === 0 && a.c === 0) {
            c[0] = selfPtr;
            continue;
        }
        if (a.role === 'null') {
            c[a.c] = null;
            continue;
        }
        const v = jsArgs[j++];
        switch (a.role) {
        case 'json': c[a.c] = jsonText(v, a.name); break;
        case 'str': c[a.c] = cstr(v, a.name); break;
        case 'principal':
            if (v === undefined || v === null) c[a.c] = null;
            else if (v instanceof Principal) { c[a.c] = v._handle(); deps.push(v); }
            else { const p = Principal.from(v); temps.push(p); c[a.c] = p._handle(); }
            break;
        case 'handle':
            c[a.c] = ownerHandle(v, a.handle, a.name);
            if (v) deps.push(v);
            if (v && a.name === d.borrows) borrowed = v;
            break;
        case 'bool':
            if (v === undefined || v === null) c[a.c] = 0;
            else if (typeof v === 'boolean') c[a.c] = v ? 1 : 0;
            else if (v === 0 || v === 1) c[a.c] = v;
            else throw new TypeError(`${a.name} must be a boolean, not ${typeName(v)}`);
            break;
        // undefined / null: the argument was left out, 0 as before
        case 'number':
            c[a.c] = v === undefined || v === null ? 0
                : a.ctype === 'double' ? doubleArg(v, a.name) : intArg(v, a.name, a.ctype);
            break;
        case 'int64': c[a.c] = v === undefined || v === null ? 0 : intArg(v, a.name, a.ctype); break;
        case 'bytes': {
            if (v === null || v === undefined) { c[a.c] = null; c[a.len] = 0; break; }
            if (typeof v !== 'string' && !Buffer.isBuffer(v))
                throw new TypeError(`${a.name} must be a Buffer or a string, not ${typeName(v)}`);
            if (f.params[a.c].type === 'str') {
                // text with its length: a NUL is kept, bytes that are not
                // UTF-8 are refused (toString() made U+FFFD of them)
                if (Buffer.isBuffer(v) && !isUtf8(v)) throw invalidArg(a.name, 'not UTF-8');
                const text = Buffer.isBuffer(v) ? v.toString('utf8') : cstr(v, a.name, true);
                c[a.c] = text;
                c[a.len] = Buffer.byteLength(text);
            } else {
                const buf = Buffer.isBuffer(v) ? v : Buffer.from(cstr(v, a.name, true), 'utf8');
                c[a.c] = buf;
                c[a.len] = buf.length;
            }
            break;
        }
        case 'array': {
            if (v !== undefined && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v))
                throw new TypeError(`${a.name} must be an array, not ${typeName(v)}`);
            const arr = Array.from(v || []);
            c[a.c] = BigInt64Array.from(arr.map((x, i) => BigInt(intArg(x, `${a.name}[${i}]`, a.elem))));
            c[a.len] = arr.length;
            outs.arrayLength = arr.length;
            break;
        }
        case 'callback': {
            if (!self || !self._life) throw new TypeError(`${d.path}: no object to hold the callback`);
            const cb = v === null || v === undefined ? null : makeCallback(a.callback, v);
            c[a.c] = cb ? cb.ptr : null;
            const callbacks = self._life.callbacks;
            const old = callbacks.get(d.name);
            if (cb) callbacks.set(d.name, cb);
            else callbacks.delete(d.name);
            if (old) old.release();
            break;
        }
        default: throw new Error(`execengine: unknown role ${a.role}`);
        }
    }
    for (const o of d.outs) {
        if (o.role === 'charbuf') c[o.c] = Buffer.alloc(o.size);
        else if (o.role === 'int64Array') c[o.c] = new BigInt64Array(outs.arrayLength || 0);
        else c[o.c] = [null];
        if (o.len !== undefined) c[o.len] = [null];
    }
    return { c, temps, deps, borrowed };
}

/** Results of a finished call; frees every library-owned output. Throws the
 * call's error when it failed (fromWorker: detail only from the document). */
function finish(d, st, c, deps, fromWorker, borrowed = null) {
    const values = {};
    let docText = null;
    let firstError = null;
    for (const o of d.outs) {
        try {
            switch (o.role) {
            case 'doc': case 'text':
                docText = takeString(c[o.c][0]);
                values[o.name] = docText;
                break;
            case 'borrowedText': values[o.name] = c[o.c][0]; break;
            case 'ownedBytes': case 'borrowedBytes': {
                const ptr = c[o.c][0];
                const n = Number(c[o.len][0] || 0);
                values[o.name] = ptr && n ? Buffer.from(new Uint8Array(koffi.view(ptr, n))) : Buffer.alloc(0);
                if (o.role === 'ownedBytes' && ptr) fn.ee_free(ptr);
                break;
            }
            case 'scalar': values[o.name] = c[o.c][0]; break;
            case 'int64Array': values[o.name] = Array.from(c[o.c], (x) => Number(x)); break;
            case 'charbuf': {
                const buf = c[o.c];
                const z = buf.indexOf(0);
                values[o.name] = buf.toString('utf8', 0, z < 0 ? buf.length : z);
                break;
            }
            case 'handle': {
                const ptr = c[o.c][0];
                if (ptr && st >= 0) {
                    const C = classes[mapping.className(o.handle)];
                    values[o.name] = new C(ADOPT, ptr, deps.slice(), true, borrowed);
                } else if (ptr) {
                    fn[manifest.handles[o.handle].free](ptr);
                }
                break;
            }
            default: break;
            }
        } catch (e) {
            firstError = firstError || e;
        }
    }
    if (d.returns === 'status' && st < 0) {
        throw (docText !== null && ExecEngineError.fromDocument(docText, st))
            || (fromWorker ? ExecEngineError.forStatus(st) : ExecEngineError.last(st));
    }
    if (firstError) throw firstError;
    for (const o of d.outs) {
        if (o.role === 'doc' && values[o.name] !== undefined) values[o.name] = parseDoc(values[o.name]);
    }
    if (d.returns !== 'status' && d.returns !== 'void') return st;
    if (d.outs.length === 0) return undefined;
    if (d.outs.length === 1) return values[d.outs[0].name];
    const r = {};
    for (const o of d.outs) r[mapping.outKey(o.name)] = values[o.name];
    return r;
}

const fnDesc = new Map(manifest.functions.map((f) => [f.name, f]));

/** Call descriptor d synchronously (or, for ASYNC ones, on a koffi worker:
 * a Promise). `self` is the Engine or handle object the call is on. */
function invoke(d, self, jsArgs) {
    const selfPtr = d.self === 0 ? self._handle() : null;
    const { c, temps, deps, borrowed } = prepare(d, selfPtr, self, jsArgs);  // closes its temps if it throws
    if (self && d.kind !== 'engine') deps.push(self);
    const releaseTemps = () => { for (const t of temps) t.close(); };
    // The object the call is on and every handle it passes (a Principal, a
    // Schema ...) are closed only once the call returns: close() meanwhile
    // defers the free - from a callback that runs inside a synchronous
    // call (log, clock, quota alert) as from this thread while a worker
    // runs an async one.
    let pinned;
    try {
        pinned = pinLives([self, ...deps].filter((o) => o && o._life));
    } catch (e) {
        releaseTemps();
        throw e;
    }
    if (!d.async) {
        try {
            return finish(d, fn[d.name](...c), c, deps, false, borrowed);
        } finally {
            unpinLives(pinned);
            releaseTemps();
        }
    }
    return new Promise((resolve, reject) => {
        let settled = false;
        const settle = () => {
            if (settled) return;
            settled = true;
            releaseTemps();
            // deps (Principal, handles, this object) stay referenced by
            // this closure until here, so none is collected mid-call.
            deps.length = 0;
            unpinLives(pinned);
        };
        koffiAsync(fn[d.name].async, c, (err, st) => {
            if (err) throw err;
            return finish(d, st, c, deps, true, borrowed);
        }, settle, resolve, reject);
    });
}

/** callDocAsync(name, obj's handle) with obj pinned until it settles. */
async function pinnedDocAsync(obj, name) {
    const pinned = pinLives([obj]);
    try {
        return await callDocAsync(name, obj._life.ptr);
    } finally {
        unpinLives(pinned);
    }
}

// Attach: class methods, static factories, module functions; engine modules
// are built per Engine (attachEngineModules).
const engineTree = {};
const modules = {};
for (const d of descriptors) {
    if (d.handwritten || d.kind === 'native') continue;
    if (d.kind === 'method') {
        const Cls = classes[d.owner];
        if (Object.prototype.hasOwnProperty.call(Cls.prototype, d.method))
            throw new LibraryError(`execengine: ${d.name} maps onto ${d.path}, which exists already`);
        Cls.prototype[d.method] = function generated(...a) { return invoke(d, this, a); };
    } else if (d.kind === 'static') {
        classes[d.owner][d.method] = (...a) => invoke(d, null, a);
    } else if (d.kind === 'engine') {
        let node = engineTree;
        for (const part of d.owner.split('.')) node = node[part] = node[part] || {};
        node[d.method] = d;
    } else if (d.kind === 'module') {
        let node = modules;
        for (const part of d.owner.split('.')) node = node[part] = node[part] || {};
        node[d.method] = (...a) => invoke(d, null, a);
    }
}

function buildEngineModule(engine, tree) {
    const obj = {};
    for (const [k, v] of Object.entries(tree)) {
        if (v && v.name && v.path) obj[k] = (...a) => invoke(v, engine, a);
        else obj[k] = buildEngineModule(engine, v);
    }
    return obj;
}

function attachEngineModules(engine) {
    for (const [k, sub] of Object.entries(engineTree))
        engine[k] = buildEngineModule(engine, sub);
    // Hand-written members of the modules.
    engine.quota.onAlert = (callback) => engine._onAlert(callback);
    // The quota ticket fast path (C structs, below).
    engine.quota.admitFast = (subject, estCostNano) => admitFast(engine, subject, estCostNano);
    engine.quota.finishTicket = (ticket, success, actualCostNano = 0) => {
        const args = [engine._handle(), ticketArg(ticket), success ? 1 : 0,
            int64Arg(actualCostNano, 'actualCostNano')];
        withPinned([engine], () => check(fn.ee_quota_finish(...args)));
    };
    engine.quota.renew = (ticket) => {
        const args = [engine._handle(), ticketArg(ticket)];
        withPinned([engine], () => check(fn.ee_quota_renew(...args)));
    };
    engine.gateway.handle = (request, sink) => gatewayHandle(engine, request, sink);
}

/**
 * engine.gateway.handle({method, path, query?, headers?, body?}, {onHead?, onChunk?}?)
 * -> Promise<{status, headers, body}>: one credential-gateway request
 * served from the host's own HTTP server (ee_gateway_handle()), on a
 * worker thread. `path` is what follows the gateway's prefix
 * ("/openrouter/api/v1/chat/completions"), `query` the text after '?'
 * (or null), `headers` an object {name: value} or an array of
 * "Name: value" lines (the workflow's Authorization: Bearer <token>
 * among them), `body` a Buffer or a string. The answer's head reaches
 * onHead(status, headers) and each chunk onChunk(Buffer) as it comes (a
 * streamed SSE answer as the provider sends it); return false from either
 * to stop the call (the client went away: the promise rejects with
 * Cancelled). Without onChunk the chunks are collected into the resolved
 * `body`. Every answer, the gateway's own refusals (401, 402, 403, 404,
 * 413 ...) included, resolves; otherwise the promise rejects with the
 * status's error (a callback's own exception as it was thrown).
 */
function gatewayHandle(engine, request, sink = {}) {
    if (request === null || typeof request !== 'object')
        throw new TypeError('gateway.handle: request must be an object');
    for (const k of ['method', 'path'])
        if (typeof request[k] !== 'string') throw new TypeError(`gateway.handle: request.${k} must be a string`);
    let lines = request.headers || [];
    if (!Array.isArray(lines))
        lines = Object.entries(lines).map(([k, v]) => `${k}: ${v}`);
    lines.forEach((l, i) => {
        if (typeof l !== 'string') throw new TypeError('gateway.handle: each header must be a string');
        cstr(l, `gateway.handle: request.headers[${i}]`);
    });
    cstr(request.method, 'gateway.handle: request.method');
    cstr(request.path, 'gateway.handle: request.path');
    if (request.query !== undefined && request.query !== null)
        cstr(request.query, 'gateway.handle: request.query');
    let body = request.body === undefined || request.body === null ? Buffer.alloc(0) : request.body;
    if (typeof body === 'string') body = Buffer.from(cstr(body, 'gateway.handle: request.body', true), 'utf8');
    if (!Buffer.isBuffer(body)) throw new TypeError('gateway.handle: request.body must be a Buffer or a string');
    const { onHead, onChunk } = sink || {};
    engine._handle();  // a closed engine throws before anything is registered
    const answer = { status: 0, headers: [], body: Buffer.alloc(0) };
    const chunks = [];
    let failure = null;
    const stop = (r) => (r === false ? 1 : 0);
    const head = koffi.register((status, hs, n) => {
        try {
            answer.status = status;
            answer.headers = Number(n) ? koffi.decode(hs, 'const char *', Number(n)) : [];
            return onHead ? stop(onHead(status, answer.headers)) : 0;
        } catch (e) {
            failure = failure || e;
            return 1;
        }
    }, koffi.pointer(gwHeadFn));
    const chunk = koffi.register((data, n) => {
        try {
            // a copy: the library's bytes are borrowed for the callback only
            const b = Number(n) ? Buffer.from(new Uint8Array(koffi.view(data, Number(n)))) : Buffer.alloc(0);
            if (onChunk) return stop(onChunk(b));
            chunks.push(b);
            return 0;
        } catch (e) {
            failure = failure || e;
            return 1;
        }
    }, koffi.pointer(gwBodyFn));
    const req = {
        version: 1, method: request.method, path: request.path,
        query: request.query === undefined || request.query === null ? null : request.query,
        headers: lines.length ? lines : null, n_headers: lines.length,
        body: body.length ? body : null, body_len: body.length,
    };
    const pinned = pinLives([engine]);
    let settled = false;
    const settle = () => {
        if (settled) return;
        settled = true;
        koffi.unregister(head);
        koffi.unregister(chunk);
        unpinLives(pinned);
    };
    return new Promise((resolve, reject) => {
        koffiAsync(sfn.ee_gateway_handle.async, [engine._life.ptr, req, { head, body: chunk, payload: null }], (err, st) => {
            if (err) throw err;
            if (failure) throw failure;
            // the worker's error detail stays on the worker: the
            // status's error, with a message for the one a caller causes
            if (st < 0)
                throw ExecEngineError.forStatus(st, st === Status.EE_ECANCELLED
                    ? 'gateway.handle: stopped by onHead or onChunk (the provider call was stopped and metered)'
                    : null);
            answer.body = Buffer.concat(chunks);
            return answer;
        }, settle, resolve, reject);
    });
}

/** Storage.collections(): the collections the library declares, as
 * [{name, flags, timeField}] (the leading members of ee_storage_collection). */
const collectionHead = koffi.struct('ee_storage_collection_head',
    { name: 'const char *', flags: 'unsigned int', time_field: 'const char *' });
classes.Storage.collections = () => {
    const list = [null];
    const count = [null];
    check(fn.ee_storage_collection_list(list, count));
    const n = Number(count[0]);
    if (!n) return [];
    return koffi.decode(list[0], koffi.array('void *', n)).map((p) => {
        const h = koffi.decode(p, collectionHead);
        return { name: h.name, flags: h.flags, timeField: h.time_field };
    });
};

// ---- C structs: counters, the quota ticket, storage queries -------------------
// Declared field by field as include/execengine/{counters,quota,storage}.h
// declare them (the test "struct layouts" compares koffi's sizes and
// offsets with a C compiler's). The idiomatic methods below take and return
// plain JS objects; koffi copies them into these structs for the call (the
// strings they point to live as long as the call). native.fn keeps the raw
// `void *` forms.
const structs = {
    ee_counter_req: koffi.struct('ee_counter_req', {
        key: 'const char *', n: 'int64_t', limit: 'int64_t', window_ms: 'int64_t', window_end_ms: 'int64_t',
    }),
    ee_counter_result: koffi.struct('ee_counter_result', {
        resv_id: 'uint64_t', value: 'int64_t', committed: 'int64_t', limit: 'int64_t',
        window_end_ms: 'int64_t', retry_at_ms: 'int64_t', fits: 'int32_t', reserved_: 'int32_t',
    }),
    ee_quota_ticket: koffi.struct('ee_quota_ticket', { opaque_: koffi.array('uint64_t', 1024 / 8) }),
    ee_storage_eq: koffi.struct('ee_storage_eq', { field: 'const char *', value: 'const char *' }),
    ee_storage_inc: koffi.struct('ee_storage_inc', { field: 'const char *', delta: 'int64_t' }),
};
structs.ee_storage_query_spec = koffi.struct('ee_storage_query_spec', {
    version: 'unsigned int', flags: 'unsigned int', eq: koffi.pointer(structs.ee_storage_eq),
    n_eq: 'size_t', time_from: 'int64_t', time_to: 'int64_t', order: 'int', limit: 'size_t',
    cursor: 'const char *',
});
// Pointers as void * so that the row callback copies the bytes it needs.
structs.ee_storage_row = koffi.struct('ee_storage_row', {
    id: 'void *', revision: 'int64_t', time: 'int64_t', data: 'void *', len: 'size_t',
});
// The gateway entry point (ee_gateway_handle): the request, and the sink
// whose two callbacks the library calls on the worker running the call
// (koffi relays them to the event loop's thread and waits for them).
const gwHeadFn = koffi.proto('ee_gateway_head_fn', 'int', ['int', 'const char **', 'size_t', 'void *']);
const gwBodyFn = koffi.proto('ee_gateway_body_fn', 'int', ['const uint8_t *', 'size_t', 'void *']);
structs.ee_gateway_request = koffi.struct('ee_gateway_request', {
    version: 'unsigned int', method: 'const char *', path: 'const char *', query: 'const char *',
    headers: 'const char **', n_headers: 'size_t', body: 'const uint8_t *', body_len: 'size_t',
});
structs.ee_gateway_sink = koffi.struct('ee_gateway_sink', {
    head: koffi.pointer(gwHeadFn), body: koffi.pointer(gwBodyFn), payload: 'void *',
});

/** Typed declarations of the struct calls (native.fn has them as void *). */
const sfn = (() => {
    const h = (name) => koffi.pointer(handleTypes[name]);
    const S = structs;
    const ptr = (t) => koffi.pointer(t);
    const out = (t) => koffi.out(koffi.pointer(t));
    const cbRow = koffi.pointer(callbackTypes.ee_storage_row_fn);
    return {
        ee_counters_reserve: lib.func('ee_counters_reserve', 'int', [h('ee_counters'), ptr(S.ee_counter_req),
            'int64_t', 'int64_t', out(S.ee_counter_result), out('int')]),
        ee_counters_reserve_many: lib.func('ee_counters_reserve_many', 'int', [h('ee_counters'),
            ptr(S.ee_counter_req), 'size_t', 'int64_t', 'int64_t', out(S.ee_counter_result), out('int')]),
        ee_counters_reserve_many_leased: lib.func('ee_counters_reserve_many_leased', 'int', [h('ee_counters'),
            ptr(S.ee_counter_req), 'const int64_t *', 'size_t', 'int64_t', out(S.ee_counter_result), out('int')]),
        ee_counters_get: lib.func('ee_counters_get', 'int', [h('ee_counters'), 'const char *', 'int64_t',
            out(S.ee_counter_result)]),
        ee_storage_query: lib.func('ee_storage_query', 'int', [h('ee_storage'), 'const char *', 'const char *',
            ptr(S.ee_storage_query_spec), cbRow, 'void *', koffi.out(koffi.pointer('void *'))]),
        ee_storage_count: lib.func('ee_storage_count', 'int', [h('ee_storage'), 'const char *', 'const char *',
            ptr(S.ee_storage_query_spec), out('uint64_t')]),
        ee_gateway_handle: lib.func('ee_gateway_handle', 'int', [h('ee_engine'), ptr(S.ee_gateway_request),
            ptr(S.ee_gateway_sink)]),
        ee_storage_increment: lib.func('ee_storage_increment', 'int', [h('ee_storage'), 'const char *',
            'const char *', ptr(S.ee_storage_eq), 'size_t', ptr(S.ee_storage_inc), 'size_t', 'int64_t',
            'int64_t *']),
    };
})();

function int64Arg(v, what) {
    if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v)))
        throw new TypeError(`${what} must be an integer (a Number, or a BigInt beyond 2^53)`);
    return intArg(v, what, 'int64');
}

/** An int64 read back: a Number when exact, else the BigInt (as koffi does). */
function int64Value(x) {
    if (typeof x !== 'bigint') return x;
    return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}

function plainObject(v, what) {
    if (v === null || typeof v !== 'object' || Array.isArray(v))
        throw new TypeError(`${what} must be an object`);
    return v;
}

// ---- counters ------------------------------------------------------------------
function counterReq(r, what = 'request') {
    plainObject(r, what);
    if (typeof r.key !== 'string') throw new TypeError(`${what}.key must be a string`);
    return {
        key: cstr(r.key, `${what}.key`),
        n: int64Arg(r.n === undefined ? 1 : r.n, `${what}.n`),
        limit: int64Arg(r.limit, `${what}.limit`),
        window_ms: int64Arg(r.windowMs === undefined ? 0 : r.windowMs, `${what}.windowMs`),
        window_end_ms: int64Arg(r.windowEndMs === undefined ? 0 : r.windowEndMs, `${what}.windowEndMs`),
    };
}

function counterReqs(reqs) {
    if (!Array.isArray(reqs)) throw new TypeError('requests must be an array');
    return reqs.map((r, i) => counterReq(r, `requests[${i}]`));
}

function counterResult(r) {
    return {
        resvId: r.resv_id, value: r.value, committed: r.committed, limit: r.limit,
        windowEndMs: r.window_end_ms, retryAtMs: r.retry_at_ms, fits: r.fits !== 0,
    };
}

const { Counters, Storage } = classes;

/**
 * counters.reserve({key, n = 1, limit, windowMs?, windowEndMs?}, leaseMs, nowMs)
 * -> {granted, resvId, value, committed, limit, windowEndMs, retryAtMs, fits}.
 * A refusal is not an error: granted false, retryAtMs when it would fit.
 */
Counters.prototype.reserve = function reserve(req, leaseMs, nowMs) {
    const res = {};
    const granted = [0];
    check(sfn.ee_counters_reserve(this._handle(), counterReq(req), int64Arg(leaseMs, 'leaseMs'),
                                  int64Arg(nowMs, 'nowMs'), res, granted));
    return { granted: granted[0] !== 0, ...counterResult(res) };
};

function reserveManyResult(st, results, granted) {
    check(st);
    return { granted: granted[0] !== 0, results: results.map(counterResult) };
}

/** counters.reserveMany([req...], leaseMs, nowMs) -> {granted, results: [...]}:
 * all granted or none. */
Counters.prototype.reserveMany = function reserveMany(reqs, leaseMs, nowMs) {
    const c = counterReqs(reqs);
    const results = c.map(() => ({}));
    const granted = [0];
    return reserveManyResult(sfn.ee_counters_reserve_many(this._handle(), c, c.length,
        int64Arg(leaseMs, 'leaseMs'), int64Arg(nowMs, 'nowMs'), results, granted), results, granted);
};

/** counters.reserveManyLeased([req...], [leaseMs...], nowMs): a lease per counter. */
Counters.prototype.reserveManyLeased = function reserveManyLeased(reqs, leases, nowMs) {
    const c = counterReqs(reqs);
    if (!Array.isArray(leases) || leases.length !== c.length)
        throw new TypeError('leases must be an array with one lease per request');
    const l = BigInt64Array.from(leases.map((x, i) => BigInt(int64Arg(x, `leases[${i}]`))));
    const results = c.map(() => ({}));
    const granted = [0];
    return reserveManyResult(sfn.ee_counters_reserve_many_leased(this._handle(), c, l, c.length,
        int64Arg(nowMs, 'nowMs'), results, granted), results, granted);
};

/** counters.get(key, nowMs) -> {value, committed, windowEndMs, ...} (resvId 0). */
Counters.prototype.get = function get(key, nowMs) {
    const res = {};
    check(sfn.ee_counters_get(this._handle(), keyArg(key), int64Arg(nowMs, 'nowMs'), res));
    return counterResult(res);
};

// ---- the quota ticket ------------------------------------------------------------
const TICKET_SIZE = koffi.sizeof(structs.ee_quota_ticket);
const REFUSALS = new Set(['EE_EQUOTA', 'EE_ESPEND', 'EE_ERATELIMIT', 'EE_ECONCURRENCY']);

/**
 * An ee_quota_ticket: caller-owned memory (a zeroed Buffer of the struct's
 * size, `.buffer`) that engine.quota.admitFast fills and finishTicket /
 * renew read. It holds no pointer, so it may be copied, kept as JSON
 * (toJson / QuotaTicket.fromJson) and finished elsewhere. JSON.stringify
 * gives the ticket document, which engine.quota.finish (JSON) accepts too.
 */
class QuotaTicket {
    /** An empty ticket, or a copy of one's bytes (a Buffer of TICKET_SIZE). */
    constructor(bytes) {
        this.buffer = Buffer.alloc(TICKET_SIZE);
        if (bytes !== undefined) {
            if (!Buffer.isBuffer(bytes) || bytes.length !== TICKET_SIZE)
                throw new TypeError(`a ticket is a Buffer of ${TICKET_SIZE} bytes`);
            bytes.copy(this.buffer);
        }
    }

    /** A ticket from its JSON document (an object or the text). */
    static fromJson(json) {
        const t = new QuotaTicket();
        check(fn.ee_quota_ticket_from_json(jsonText(json, 'document'), t.buffer));
        return t;
    }

    /** The ticket document (an admitted ticket only: else InvalidArgument). */
    toJson() {
        return JSON.parse(callString('ee_quota_ticket_json', this.buffer));
    }

    toJSON() { return this.toJson(); }

    /**
     * null for an admitted ticket; for a refused one {status, code, quota,
     * usage, limit, resetsAt, retryAfterMs} (quota: 'predictions', 'spend',
     * 'rate', 'concurrency' or 'concurrencyGlobal'). InvalidArgument for a
     * ticket the library did not fill.
     */
    refusal() {
        const quota = [null];
        const usage = [0];
        const limit = [0];
        const resets = [0];
        const retry = [0];
        const st = fn.ee_quota_ticket_refusal(this.buffer, quota, usage, limit, resets, retry);
        if (st === 0) return null;
        const code = statusNames.get(st);
        if (!REFUSALS.has(code)) check(st);
        return { status: st, code, quota: quota[0], usage: usage[0], limit: limit[0],
                 resetsAt: resets[0], retryAfterMs: retry[0] };
    }

    /** Whether the ticket was admitted (refusal() is null). */
    get admitted() { return this.refusal() === null; }
}
QuotaTicket.SIZE = TICKET_SIZE;

function ticketArg(t) {
    if (!(t instanceof QuotaTicket)) throw new TypeError('ticket must be a QuotaTicket');
    return t.buffer;
}

/**
 * engine.quota.admitFast(subject, estCostNano = 0) -> an admitted
 * QuotaTicket. `subject` is a QuotaSubject (the hot path: create one per
 * principal and reuse it) or a principal (a subject is made for the call).
 * A refusal throws its error (QuotaExceeded, SpendLimitReached,
 * RateLimited, ConcurrencyLimited) with the figures as detail and
 * retryAfterMs, and the refused ticket as `.ticket`.
 */
function admitFast(engine, subject, estCostNano = 0) {
    const QuotaSubject = classes.QuotaSubject;
    const ehandle = engine._handle();
    const temp = subject instanceof QuotaSubject ? null : QuotaSubject.create(engine, subject);
    const t = new QuotaTicket();
    let st;
    try {
        const args = [ehandle, (temp || subject)._handle(), int64Arg(estCostNano, 'estCostNano'), t.buffer];
        st = withPinned([engine, temp || subject], () => fn.ee_quota_admit_fast(...args));
        if (st >= 0) return t;
        let err = ExecEngineError.last(st);
        if (REFUSALS.has(statusNames.get(st))) {
            const r = t.refusal();
            const detail = { allowed: false, quota: r.quota, usage: r.usage, limit: r.limit,
                             resetsAt: r.resetsAt, retryAfterMs: r.retryAfterMs };
            err = ExecEngineError.forStatus(st, err.message, err.httpStatus,
                                            { ...detail, ...(err.detail || {}) });
        }
        err.ticket = t;
        throw err;
    } finally {
        if (temp) temp.close();
    }
}

// ---- storage: queries and increments ------------------------------------------------
const STORAGE_ORDERS = { timeDesc: 0, timeAsc: 1, idAsc: 2, idDesc: 3 };

/** Pairs [field, text value] of {field: value} (values: string, number,
 * BigInt, boolean - compared as text, as the header says). */
function eqPairs(eq, what) {
    if (eq === undefined || eq === null) return [];
    return Object.entries(plainObject(eq, what)).map(([field, v]) => {
        if (!['string', 'number', 'bigint', 'boolean'].includes(typeof v))
            throw new TypeError(`${what}.${field} must be a string, number or boolean`);
        return { field: cstr(field, what), value: cstr(String(v), `${what}.${field}`) };
    });
}

/** struct ee_storage_query_spec of {eq, timeFrom, timeTo, order, limit, cursor}. */
function querySpec(q) {
    if (q === undefined || q === null) q = {};
    plainObject(q, 'query');
    const eq = eqPairs(q.eq, 'query.eq');
    let flags = 0;
    if (q.timeFrom !== undefined && q.timeFrom !== null) flags |= 1;
    if (q.timeTo !== undefined && q.timeTo !== null) flags |= 2;
    let order = q.order === undefined || q.order === null ? 0 : q.order;
    if (typeof order === 'string') {
        if (!(order in STORAGE_ORDERS))
            throw new RangeError(`query.order must be one of ${Object.keys(STORAGE_ORDERS).join(', ')}`);
        order = STORAGE_ORDERS[order];
    }
    return {
        version: 1, flags, eq: eq.length ? eq : null, n_eq: eq.length,
        time_from: flags & 1 ? int64Arg(q.timeFrom, 'query.timeFrom') : 0,
        time_to: flags & 2 ? int64Arg(q.timeTo, 'query.timeTo') : 0,
        order: intArg(order, 'query.order', 'int'),
        limit: q.limit === undefined || q.limit === null ? 0 : intArg(q.limit, 'query.limit', 'size'),
        cursor: cstr(q.cursor, 'query.cursor'),
    };
}

/**
 * storage.query(collection, workspace, {eq: {field: value}, timeFrom,
 * timeTo, order: 'timeDesc'|'timeAsc'|'idAsc'|'idDesc', limit, cursor})
 * -> {rows: [{id, revision, time, data}], nextCursor} (data: the BSON
 * bytes, a Buffer; nextCursor null on the last page). The row callback is
 * registered for this call only (the library calls it synchronously).
 */
Storage.prototype.query = function query(collection, workspace, q) {
    const spec = querySpec(q);
    const rows = [];
    let failure = null;
    const cb = koffi.register((rowPtr) => {
        try {
            const r = koffi.decode(rowPtr, structs.ee_storage_row);
            const n = Number(r.len);
            rows.push({
                id: Buffer.from(new Uint8Array(koffi.view(r.id, 12))).toString('hex'),
                revision: r.revision,
                time: r.time,
                data: n ? Buffer.from(new Uint8Array(koffi.view(r.data, n))) : Buffer.alloc(0),
            });
            return 0;
        } catch (e) {
            failure = e;
            return 1;
        }
    }, koffi.pointer(callbackTypes.ee_storage_row_fn));
    const next = [null];
    let st;
    try {
        st = sfn.ee_storage_query(this._handle(), cstr(collection, 'collection'), cstr(workspace, 'workspace'),
                                  spec, cb, null, next);
    } finally {
        koffi.unregister(cb);
    }
    const nextCursor = takeString(next[0]);
    if (failure) throw failure;
    check(st);
    return { rows, nextCursor };
};

/** storage.count(collection, workspace, {eq, timeFrom, timeTo}?) -> the number
 * of matching documents (a query of null counts the whole workspace). */
Storage.prototype.count = function count(collection, workspace, q) {
    const out = [0];
    check(sfn.ee_storage_count(this._handle(), cstr(collection, 'collection'), cstr(workspace, 'workspace'),
                               q === undefined || q === null ? null : querySpec(q), out));
    return out[0];
};

/**
 * storage.increment(collection, workspace, key {field: value}, inc
 * {field: delta}, nowMs) -> {field: total after the increment}. `key`
 * names every field of the collection's unique key; the document is
 * created if missing.
 */
Storage.prototype.increment = function increment(collection, workspace, key, inc, nowMs) {
    const k = eqPairs(key, 'key');
    const d = Object.entries(plainObject(inc, 'inc'))
        .map(([field, delta]) => ({ field: cstr(field, 'inc'), delta: int64Arg(delta, `inc.${field}`) }));
    const totals = new BigInt64Array(d.length);
    check(sfn.ee_storage_increment(this._handle(), cstr(collection, 'collection'), cstr(workspace, 'workspace'),
                                   k.length ? k : null, k.length, d.length ? d : null, d.length,
                                   int64Arg(nowMs, 'nowMs'), totals));
    return Object.fromEntries(d.map((x, i) => [x.field, int64Value(totals[i])]));
};

module.exports = {
    ...classes,
    QuotaTicket,
    ...modules,
    ExecEngineError,
    LibraryError,
    errors: Object.assign(modules.errors || {}, errorClasses, { ExecEngineError }),
    ...errorClasses,
    Status,
    LogLevel,
    EXPECTED_MAJOR,
    LIBRARY_VERSION,
    version: () => fn.ee_version(),
    versionNum: () => fn.ee_version_num(),
    /** What the library was built with: ['sqlite', 'memory', 'postgres', ...]. */
    features: () => fn.ee_version_features().split(' '),
    statusName: (code) => fn.ee_status_name(code),
    strerror: (code) => fn.ee_strerror(code),
    /** The function -> method table (lib/mapping.js), for tools and tests. */
    bindings: descriptors,
    /** Raw access: the manifest, the loaded library, every C function. */
    native: {
        manifest, lib, libraryPath, fn, statusNames, callString, callDocAsync, takeString,
        free: (ptr) => fn.ee_free(ptr), libraryCandidates,
        /** The koffi struct types of the idiomatic struct calls (by C name). */
        structs,
    },
};
