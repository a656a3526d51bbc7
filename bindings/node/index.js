'use strict';
/*
 * Node binding of libexecengine (koffi).
 *
 *   const ee = require('execengine');
 *   const cfg = new ee.Config();
 *   cfg.set('EE_STORAGE_URI', 'memory:');
 *   const engine = ee.Engine.open(cfg);
 *   console.log(engine.summary().version, engine.nowMs());
 *   engine.close(); cfg.free();
 *
 * Every C prototype comes from bindings/manifest.json (checked against
 * abi/exports.txt and the public headers by ctest bindings.manifest); the
 * status codes come from the library (ee_status_name()). Loading checks the
 * library's major version. Failing calls throw ExecEngineError.
 */
const fs = require('fs');
const path = require('path');
const koffi = require('koffi');

class LibraryError extends Error {
    constructor(message) {
        super(message);
        this.name = 'LibraryError';
    }
}

function readManifest() {
    const candidates = process.env.EE_MANIFEST_PATH
        ? [process.env.EE_MANIFEST_PATH]
        : [path.join(__dirname, 'manifest.json'), path.join(__dirname, '..', 'manifest.json')];
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
function openLibrary() {
    const candidates = process.env.EE_LIBRARY_PATH
        ? [process.env.EE_LIBRARY_PATH]
        : [`libexecengine.so.${EXPECTED_MAJOR}`];
    const errors = [];
    for (const c of candidates) {
        try {
            return { lib: koffi.load(c), where: c };
        } catch (e) {
            errors.push(`${c}: ${e.message}`);
        }
    }
    throw new LibraryError('execengine: cannot load libexecengine (set EE_LIBRARY_PATH to the .so): '
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
/**
 * A failing libexecengine call. `code` is the negative ee_status, `name` its
 * enumerator ('EE_EINVAL'), `message` what was wrong with which input (never
 * a secret), `httpStatus` what an upstream answered (0 if none), `detail`
 * structured detail or null.
 */
class ExecEngineError extends Error {
    constructor(code, name, message, httpStatus = 0, detail = null) {
        super(message);
        this.code = code;
        this.name = name;
        this.httpStatus = httpStatus;
        this.detail = detail;
    }

    static forStatus(code, message, httpStatus = 0, detail = null) {
        return new ExecEngineError(code, statusNames.get(code) || 'EE_UNKNOWN_STATUS',
                                   message == null ? fn.ee_strerror(code) : message,
                                   httpStatus || 0, detail == null ? null : detail);
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

function check(status) {
    if (status < 0) throw ExecEngineError.last(status);
    return status;
}

/** Copy a library-allocated string and ee_free() it. */
function takeString(ptr) {
    if (ptr === null || ptr === undefined || ptr === 0n) return null;
    try {
        return koffi.decode(ptr, 'char', -1);
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

function keyArg(key) {
    if (typeof key !== 'string') throw new TypeError('key must be a string');
    return key;
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

function releaseAll(callbacks) {
    for (const cb of callbacks) cb.release();
}

// Safety net: handles that were never freed explicitly are freed once
// garbage collected. The held value never references the wrapper itself.
const configRegistry = new FinalizationRegistry((held) => {
    fn.ee_config_free(held.ptr);
    releaseAll(Object.values(held.callbacks));
});
const engineRegistry = new FinalizationRegistry((held) => {
    fn.ee_engine_close(held.ptr);
    releaseAll(held.callbacks);
});

function levelArg(level) {
    if (typeof level === 'string') {
        const l = LogLevel[level.toUpperCase()];
        if (l === undefined) throw new RangeError(`unknown log level '${level}'`);
        return l;
    }
    return level;
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
        this._held = { ptr, callbacks: {} };
        configRegistry.register(this, this._held, this);
    }

    _handle() {
        if (!this._held) throw new Error('execengine: operation on a freed Config');
        return this._held.ptr;
    }

    /** Free the config (wiping secrets). Idempotent. */
    free() {
        if (!this._held) return;
        configRegistry.unregister(this);
        fn.ee_config_free(this._held.ptr);
        releaseAll(Object.values(this._held.callbacks));
        this._held = null;
    }

    close() { this.free(); }

    [Symbol.dispose]() { this.free(); }

    get freed() { return this._held === null; }

    /** An independent copy (values, clock and log callback). */
    copy() {
        const out = [null];
        check(fn.ee_config_copy(out, this._handle()));
        const c = new Config(ADOPT, out[0]);
        for (const [k, cb] of Object.entries(this._held.callbacks))
            c._held.callbacks[k] = cb.acquire();
        return c;
    }

    /** Set an option from its text form; booleans and numbers are converted. */
    set(key, value) {
        if (typeof value === 'boolean') value = value ? 'true' : 'false';
        else if (typeof value === 'number' || typeof value === 'bigint') value = String(value);
        if (typeof value !== 'string') throw new TypeError('value must be a string');
        check(fn.ee_config_set(this._handle(), keyArg(key), value));
        return this;
    }

    /** Set an integer-valued option (money in nano-USD, percentages in basis points). */
    setInt(key, value) {
        if (typeof value === 'number' && !Number.isSafeInteger(value))
            throw new TypeError('value must be an integer (use a BigInt beyond 2^53)');
        if (typeof value !== 'number' && typeof value !== 'bigint')
            throw new TypeError('value must be a number or a BigInt');
        check(fn.ee_config_set_int64(this._handle(), keyArg(key), value));
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
            const entries = Object.entries(env).map(([k, v]) => `${k}=${v}`);
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

    /** summary() on a worker thread. */
    summaryAsync() {
        return callDocAsync('ee_config_summary_json', this._handle());
    }

    static options() {
        return JSON.parse(callString('ee_config_options_json'));
    }

    options() { return Config.options(); }

    _setCallback(slot, cb) {
        const old = this._held.callbacks[slot];
        if (cb) this._held.callbacks[slot] = cb;
        else delete this._held.callbacks[slot];
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
                return clock();
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
        check(fn.ee_engine_open(out, config._handle()));
        // The engine copied the config's callback pointers: hold them.
        const callbacks = Object.values(config._held.callbacks).map((cb) => cb.acquire());
        this._held = { ptr: out[0], callbacks };
        this._pending = 0;
        this._closing = false;
        engineRegistry.register(this, this._held, this);
    }

    static open(config) { return new Engine(config); }

    _handle() {
        if (!this._held || this._closing) throw new Error('execengine: operation on a closed Engine');
        return this._held.ptr;
    }

    close() {
        if (!this._held || this._closing) return;
        this._closing = true;
        if (this._pending === 0) this._reallyClose();
    }

    _reallyClose() {
        engineRegistry.unregister(this);
        fn.ee_engine_close(this._held.ptr);
        releaseAll(this._held.callbacks);
        this._held = null;
    }

    [Symbol.dispose]() { this.close(); }

    get closed() { return this._closing; }

    /** The engine's clock, ms since the Unix epoch (Number, or BigInt if huge). */
    nowMs() {
        return fn.ee_engine_now_ms(this._handle());
    }

    summary() {
        return JSON.parse(callString('ee_engine_summary_json', this._handle()));
    }

    /** summary() on a koffi worker thread: a Promise of the parsed JSON. */
    async summaryAsync() {
        const handle = this._handle();
        this._pending++;
        try {
            return await callDocAsync('ee_engine_summary_json', handle);
        } finally {
            if (--this._pending === 0 && this._closing) this._reallyClose();
        }
    }
}

module.exports = {
    Config,
    Engine,
    ExecEngineError,
    LibraryError,
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
    /** Raw access: the manifest, the loaded library, every C function. */
    native: { manifest, lib, libraryPath, fn, statusNames, callString, callDocAsync, takeString },
};
