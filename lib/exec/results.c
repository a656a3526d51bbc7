/*
 * The result store (support.h): outputs too large for their execution
 * record, one file per execution under EXEC_RESULTS_DIR:
 *
 *   <dir>/<hex of the workspace id>/<hex of the execution id>.result
 *
 * Ids are hex-encoded so no byte of them ("/", "..", NUL-free but
 * otherwise anything) can reach outside the folder. A file is a short
 * header - "ee-result-v1\n", the organisation whose storage quota counts
 * it, the reservation id, each on a line - then the output's bytes. The
 * header lets a delete, which is given only the workspace, give the bytes
 * back to the right organisation, and lets a put that replaces an
 * execution's file release the bytes of the file it replaced.
 *
 * A put reserves the bytes first (nothing is written when the quota
 * refuses), writes a temporary file beside the final one, fsyncs it,
 * renames it into place (atomically exchanging it with an older file of
 * the same execution, so two puts of one execution leave one file and one
 * reservation) and fsyncs the folder. A reader sees the whole file or none.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>

#include "engine/engine.h"
#include "exec/support.h"
#include "exec/support_internal.h"
#include "quota/quota.h"
#include "execengine/storage.h"

#define MAGIC "ee-result-v1\n"
#define MAGIC_LEN (sizeof MAGIC - 1)
/* magic, an id of at most 64 bytes and a 20-digit number, each on a line */
#define HEADER_MAX (MAGIC_LEN + EE_PRINCIPAL_ID_MAX + 1 + 20 + 1)
#define PATH_CAP 4096
/* The user id the store's own principals carry (releases need one). */
#define STORE_USER "result-store"

/* ---- where ------------------------------------------------------------------ */

/* `base` + "/execengine/results" under the user's data directory, as the
 * default database file's (lib/engine/options.c). */
static int data_dir_default(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/')
        return snprintf(out, cap, "%s/execengine/results", xdg);
    if (home != NULL && home[0] == '/')
        return snprintf(out, cap, "%s/.local/share/execengine/results", home);
    return snprintf(out, cap, "execengine/results");
}

ee_status ee__results_dir(const ee_engine *engine, char *out, size_t cap)
{
    const ee_config *cfg = ee__engine_config(engine);
    const char *set = ee__config_text(cfg, "EXEC_RESULTS_DIR");
    int n;
    if (set != NULL) {
        n = snprintf(out, cap, "%s", set);
    } else {
        const char *uri = ee__config_text(cfg, "EE_STORAGE_URI");
        struct ee_storage *storage = ee__engine_storage(engine);
        bool sqlite = uri != NULL && strncasecmp(uri, "sqlite://", 9) == 0 && storage != NULL &&
                      strcmp(ee_storage_backend_name(storage), "sqlite") == 0;
        if (sqlite) {
            /* Beside the database file: sqlite://<path>[?options]. */
            const char *path = uri + 9;
            size_t plen = strcspn(path, "?");
            const char *slash = memrchr(path, '/', plen);
            if (slash == NULL)
                n = snprintf(out, cap, "results");
            else if (slash == path)
                n = snprintf(out, cap, "/results");
            else
                n = snprintf(out, cap, "%.*s/results", (int)(slash - path), path);
        } else {
            n = data_dir_default(out, cap);
        }
    }
    if (n < 0 || (size_t)n >= cap)
        return ee__error(EE_EINVAL, "EXEC_RESULTS_DIR: the result store's path is longer than "
                                    "%zu bytes", cap - 1);
    return EE_OK;
}

/* <dir>/<hex ws> into out; with `exec_id`, <...>/<hex id>.result. */
static ee_status file_path(const ee_engine *engine, const char *workspace, const char *exec_id,
                           char *out, size_t cap)
{
    ee_status st = ee__results_dir(engine, out, cap);
    if (st != EE_OK)
        return st;
    size_t n = strlen(out), wl = strlen(workspace), el = exec_id ? strlen(exec_id) : 0;
    if (n + 1 + 2 * wl + 1 + 2 * el + 8 > cap)
        return ee__error(EE_EINVAL, "EXEC_RESULTS_DIR is too long for a result's path");
    out[n++] = '/';
    ee__hex_encode((const uint8_t *)workspace, wl, out + n);
    n += 2 * wl;
    if (exec_id != NULL) {
        out[n++] = '/';
        ee__hex_encode((const uint8_t *)exec_id, el, out + n);
        n += 2 * el;
        memcpy(out + n, ".result", 8);
    }
    return EE_OK;
}

static ee_status check_ids(const char *what, const char *workspace, const char *exec_id)
{
    if (workspace == NULL || workspace[0] == '\0' || strlen(workspace) > EE_PRINCIPAL_ID_MAX)
        return ee__error(EE_EINVAL, "%s: the workspace id must be 1 to %d bytes", what,
                         EE_PRINCIPAL_ID_MAX);
    if (exec_id == NULL || exec_id[0] == '\0' || strlen(exec_id) > EE__RESULTS_ID_MAX)
        return ee__error(EE_EINVAL, "%s: the execution id must be 1 to %d bytes", what,
                         EE__RESULTS_ID_MAX);
    return EE_OK;
}

/* The execution id as a message may quote it. */
static void quoted(const char *id, char out[80])
{
    ee__quote_for_message(id, out, 80);
    ee__utf8_sanitize(out);
}

/* mkdir -p with 0700 for every folder it creates. */
static ee_status make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(path, 0700);
        int err = errno;
        *p = c;
        if (rc != 0 && err != EEXIST)
            return ee__error(EE_EIO, "result store: cannot create a folder of it: %s",
                             strerror(err));
        if (c == '\0')
            return EE_OK;
    }
}

static ee_status sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return ee__error(EE_EIO, "result store: cannot sync its folder: %s", strerror(err));
    }
    close(fd);
    return EE_OK;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static void sha256_hex(const char *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    ee__hex_encode(md, sizeof md, hex);
}

/* ---- the header ----------------------------------------------------------------- */

typedef struct {
    char org[EE_PRINCIPAL_ID_MAX + 1];
    uint64_t resv;
    size_t len; /* bytes of the header */
} header;

/* Parse the header at the start of the open file `fd` (read from offset 0). */
static bool header_read(int fd, header *h)
{
    char buf[HEADER_MAX + 1];
    ssize_t n;
    do
        n = pread(fd, buf, HEADER_MAX, 0);
    while (n < 0 && errno == EINTR);
    if (n < (ssize_t)MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
        return false;
    buf[n] = '\0';
    char *org = buf + MAGIC_LEN, *nl = strchr(org, '\n');
    if (nl == NULL || nl == org || nl - org > EE_PRINCIPAL_ID_MAX)
        return false;
    *nl = '\0';
    if (!ee__id_valid(org))
        return false;
    char *num = nl + 1, *end = strchr(num, '\n');
    if (end == NULL || end == num || end - num > 20)
        return false;
    uint64_t v = 0;
    for (char *p = num; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    memcpy(h->org, org, (size_t)(nl - org) + 1);
    h->resv = v;
    h->len = (size_t)(end + 1 - buf);
    return true;
}

/* The header of the file at `path`: false when it is missing or unreadable. */
static bool header_of(const char *path, header *h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = header_read(fd, h);
    close(fd);
    return ok;
}

/* Give back reservation `resv` of `org`'s storage quota; one that is gone
 * already (released before a crash, or by the put that replaced it) is
 * fine. */
static ee_status release(ee_engine *engine, const char *workspace, const char *org,
                         uint64_t resv)
{
    if (resv == 0)
        return EE_OK;
    ee_principal *p = NULL;
    ee_status st = ee_principal_new(&p, workspace, STORE_USER, org);
    if (st == EE_OK)
        st = ee_quota_storage_release(engine, p, resv);
    ee_principal_free(p);
    if (st == EE_ENOTFOUND) {
        ee_error_clear();
        return EE_OK;
    }
    return st;
}

/* ---- put -------------------------------------------------------------------------- */

/* Give back the bytes of a file a put replaced. The new file is in place
 * and counted by then, so a failure here does not undo the put: the old
 * bytes stay counted (too much, never too little) and a warning says so. */
static void release_replaced(ee_engine *engine, const char *workspace, const header *old)
{
    if (release(engine, workspace, old->org, old->resv) != EE_OK)
        ee__log(ee__engine_logger(engine), EE_LOG_WARN, "exec",
                "result store: the bytes of a replaced result (reservation %llu of "
                "organisation \"%s\") stay counted: %s",
                (unsigned long long)old->resv, old->org, ee_error_last_message());
    ee_error_clear();
}

/* Move the finished temporary file into place. When the execution already
 * has a file, the two are exchanged atomically and the old one, now at
 * `tmp`, has its bytes released and is removed: two puts of one execution,
 * even at once, leave one file and one reservation. */
static ee_status install(ee_engine *engine, const char *workspace, const char *tmp,
                         const char *path)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
            return EE_OK;
        if (errno == EEXIST) {
            if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
                header old;
                bool had = header_of(tmp, &old);
                unlink(tmp);
                if (had)
                    release_replaced(engine, workspace, &old);
                return EE_OK;
            }
            if (errno == ENOENT)
                continue; /* deleted in between: place it again */
        }
        if (errno != EINVAL && errno != ENOSYS)
            return ee__error(EE_EIO, "result store: cannot move a result into place: %s",
                             strerror(errno));
        /* A file system without renameat2's flags: a plain rename, which
         * may lose an old reservation to a concurrent put of the same
         * execution (the file itself is never partial). */
        header old;
        bool had = header_of(path, &old);
        if (rename(tmp, path) != 0)
            return ee__error(EE_EIO, "result store: cannot move a result into place: %s",
                             strerror(errno));
        if (had)
            release_replaced(engine, workspace, &old);
        return EE_OK;
    }
    return ee__error(EE_EIO, "result store: the result kept changing while being placed");
}

/* Write the header and the bytes to a new temporary file beside `path`;
 * *tmp_out names it. */
static ee_status write_temp(const char *path, const char *org, uint64_t resv, const char *data,
                            size_t len, char *tmp_out, size_t cap)
{
    const char *base = strrchr(path, '/');
    int n = snprintf(tmp_out, cap, "%.*s/.%s.XXXXXX", (int)(base - path), path, base + 1);
    if (n < 0 || (size_t)n >= cap)
        return ee__error(EE_EINVAL, "EXEC_RESULTS_DIR is too long for a result's path");
    int fd = mkostemp(tmp_out, O_CLOEXEC);
    if (fd < 0)
        return ee__error(EE_EIO, "result store: cannot create a file: %s", strerror(errno));
    char head[HEADER_MAX + 1];
    int hl = snprintf(head, sizeof head, MAGIC "%s\n%llu\n", org, (unsigned long long)resv);
    bool ok = write_all(fd, head, (size_t)hl) && write_all(fd, data, len) && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        unlink(tmp_out);
        return ee__error(EE_EIO, "result store: cannot write a result: %s", strerror(err));
    }
    return EE_OK;
}

ee_status ee__results_put(ee_engine *engine, const ee_principal *principal,
                          const char *execution_id, const char *data, size_t len,
                          ee__result_ref *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (engine == NULL || principal == NULL || out == NULL || (data == NULL && len > 0))
        return ee__error(EE_EINVAL, "ee__results_put: NULL argument");
    const char *ws = ee_principal_workspace(principal);
    const char *org = ee_principal_org(principal);
    if (org[0] == '\0')
        org = ws;
    ee_status st = check_ids("ee__results_put", ws, execution_id);
    if (st != EE_OK)
        return st;
    if ((uint64_t)len > (uint64_t)INT64_C(9007199254740991))
        return ee__error(EE_EINVAL, "ee__results_put: %zu bytes is more than the store takes",
                         len);
    char path[PATH_CAP], tmp[PATH_CAP];
    if ((st = file_path(engine, ws, NULL, path, sizeof path)) != EE_OK)
        return st;
    /* The quota first: refused, nothing is written. */
    uint64_t resv = 0;
    if (len > 0 &&
        (st = ee__quota_storage_reserve(engine, principal, (int64_t)len, &resv, NULL)) != EE_OK)
        return st;
    if ((st = make_dirs(path)) != EE_OK)
        goto fail;
    char dir[PATH_CAP];
    memcpy(dir, path, strlen(path) + 1);
    if ((st = file_path(engine, ws, execution_id, path, sizeof path)) != EE_OK ||
        (st = write_temp(path, org, resv, data, len, tmp, sizeof tmp)) != EE_OK)
        goto fail;
    /* Committed before the file is in place: once it is, a concurrent put
     * of the same execution may replace it and release this reservation. */
    uint64_t committed = resv;
    if (len > 0 && (st = ee_quota_storage_commit(engine, principal, resv, (int64_t)len,
                                                 (int64_t)len, &committed)) != EE_OK) {
        unlink(tmp);
        goto fail;
    }
    if ((st = install(engine, ws, tmp, path)) != EE_OK) {
        unlink(tmp);
        goto fail;
    }
    if ((st = sync_dir(dir)) != EE_OK)
        goto fail_placed;
    sha256_hex(data != NULL ? data : "", len, out->sha256);
    out->bytes = (int64_t)len;
    out->storage_resv = committed;
    return EE_OK;
fail_placed:
    /* Taken back only while it is still this put's file (not a concurrent
     * put's that replaced it). */
    {
        header h;
        if (header_of(path, &h) && h.resv == resv && strcmp(h.org, org) == 0)
            unlink(path);
    }
fail:
    if (resv != 0) {
        /* The first failure is the one to report: the release only tidies up. */
        char saved[EE__ERROR_MSG_MAX];
        snprintf(saved, sizeof saved, "%s", ee_error_last_message());
        release(engine, ws, org, resv);
        ee__error(st, "%s", saved);
    }
    return st;
}

/* ---- get and delete --------------------------------------------------------------- */

ee_status ee__results_get(ee_engine *engine, const char *workspace, const char *execution_id,
                          const ee__result_ref *ref, char **data_out, size_t *len_out)
{
    if (data_out != NULL)
        *data_out = NULL;
    if (len_out != NULL)
        *len_out = 0;
    if (engine == NULL || ref == NULL || data_out == NULL || len_out == NULL)
        return ee__error(EE_EINVAL, "ee__results_get: NULL argument");
    ee_status st = check_ids("ee__results_get", workspace, execution_id);
    if (st != EE_OK)
        return st;
    char path[PATH_CAP], q[80];
    if ((st = file_path(engine, workspace, execution_id, path, sizeof path)) != EE_OK)
        return st;
    quoted(execution_id, q);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return ee__error(EE_ECORRUPT, "the stored result of execution \"%s\" is missing", q);
        return ee__error(EE_EIO, "cannot open the stored result of execution \"%s\": %s", q,
                         strerror(errno));
    }
    header h;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return ee__error(EE_EIO, "cannot read the stored result of execution \"%s\": %s", q,
                         strerror(err));
    }
    /* The size decides before anything is allocated: a bogus reference
     * cannot make this read (or allocate) more than the file holds. */
    if (!header_read(fd, &h) || ref->bytes < 0 ||
        (uint64_t)sb.st_size != (uint64_t)h.len + (uint64_t)ref->bytes) {
        close(fd);
        return ee__error(EE_ECORRUPT, "the stored result of execution \"%s\" is damaged (its "
                                      "header or size is not what was stored)", q);
    }
    size_t n = (size_t)ref->bytes;
    char *buf = malloc(n + 1);
    if (buf == NULL) {
        close(fd);
        return ee__error(EE_ENOMEM, "out of memory reading a stored result");
    }
    bool ok = lseek(fd, (off_t)h.len, SEEK_SET) == (off_t)h.len && read_all(fd, buf, n);
    int err = errno;
    close(fd);
    if (!ok) {
        free(buf);
        return ee__error(EE_EIO, "cannot read the stored result of execution \"%s\": %s", q,
                         strerror(err));
    }
    buf[n] = '\0';
    char hex[65];
    sha256_hex(buf, n, hex);
    if (strncmp(hex, ref->sha256, 64) != 0) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return ee__error(EE_ECORRUPT, "the stored result of execution \"%s\" does not match its "
                                      "SHA-256: it was changed or damaged", q);
    }
    *data_out = buf;
    *len_out = n;
    return EE_OK;
}

ee_status ee__results_delete(ee_engine *engine, const char *workspace, const char *execution_id,
                             const ee__result_ref *ref)
{
    if (engine == NULL)
        return ee__error(EE_EINVAL, "ee__results_delete: NULL engine");
    ee_status st = check_ids("ee__results_delete", workspace, execution_id);
    if (st != EE_OK)
        return st;
    char path[PATH_CAP], dir[PATH_CAP];
    if ((st = file_path(engine, workspace, NULL, dir, sizeof dir)) != EE_OK ||
        (st = file_path(engine, workspace, execution_id, path, sizeof path)) != EE_OK)
        return st;
    uint64_t ref_resv = ref != NULL ? ref->storage_resv : 0;
    header h;
    /* The bytes go back before the file does: a crash between the two
     * leaves a file whose reservation is gone (a repeated delete removes
     * it), never bytes counted for a file that is gone. */
    if (header_of(path, &h)) {
        if ((st = release(engine, workspace, h.org, h.resv)) != EE_OK)
            return st;
        if (ref_resv != 0 && ref_resv != h.resv &&
            (st = release(engine, workspace, h.org, ref_resv)) != EE_OK)
            return st;
    } else if (ref_resv != 0 && ee__id_valid(workspace) && strcmp(workspace, "platform") != 0) {
        /* No file to say whose bytes they were: the workspace's own
         * organisation, the usual case, is tried. */
        if ((st = release(engine, workspace, workspace, ref_resv)) != EE_OK)
            return st;
    }
    if (unlink(path) != 0) {
        if (errno == ENOENT)
            return EE_OK;
        char q[80];
        quoted(execution_id, q);
        return ee__error(EE_EIO, "cannot delete the stored result of execution \"%s\": %s", q,
                         strerror(errno));
    }
    return sync_dir(dir);
}

/* ---- retention: walking the store ------------------------------------------------ */

/* A folder or file name of `n` hex digits, as ee__hex_encode writes them
 * (lowercase: an uppercase spelling is not a name this store wrote), into
 * out (n / 2 bytes and a NUL); false when it is not one, or spells a NUL. */
static bool hex_name(const char *hex, size_t n, char *out, size_t cap)
{
    if (n == 0 || n % 2 != 0 || n / 2 >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (hex[i] >= 'A' && hex[i] <= 'F')
            return false;
    if (!ee__hex_decode(hex, n / 2, (uint8_t *)out) || memchr(out, '\0', n / 2) != NULL)
        return false;
    out[n / 2] = '\0';
    return true;
}

ee_status ee__results_each_workspace(ee_engine *engine,
                                     ee_status (*fn)(const char *workspace, void *payload),
                                     void *payload)
{
    if (engine == NULL || fn == NULL)
        return ee__error(EE_EINVAL, "ee__results_each_workspace: NULL argument");
    char root[PATH_CAP];
    ee_status st = ee__results_dir(engine, root, sizeof root);
    if (st != EE_OK)
        return st;
    DIR *d = opendir(root);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return EE_OK; /* nothing was ever stored */
        return ee__error(EE_EIO, "result store: cannot list its folder: %s", strerror(errno));
    }
    struct dirent *de;
    while (st == EE_OK && (errno = 0, de = readdir(d)) != NULL) {
        char ws[EE_PRINCIPAL_ID_MAX + 1];
        if (!hex_name(de->d_name, strlen(de->d_name), ws, sizeof ws))
            continue; /* ".", "..", or not one of ours */
        st = fn(ws, payload);
    }
    if (st == EE_OK && de == NULL && errno != 0)
        st = ee__error(EE_EIO, "result store: cannot list its folder: %s", strerror(errno));
    closedir(d);
    return st;
}

static int64_t mtime_ms(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
}

ee_status ee__results_sweep(ee_engine *engine, const char *workspace, int64_t temp_age_ms,
                            int64_t file_age_ms,
                            bool (*has_record)(ee_engine *engine, const char *workspace,
                                               const char *execution_id, void *payload),
                            void *payload, uint64_t *removed_out)
{
    if (removed_out != NULL)
        *removed_out = 0;
    if (engine == NULL || has_record == NULL || temp_age_ms < 0 || file_age_ms < 0)
        return ee__error(EE_EINVAL, "ee__results_sweep: bad argument");
    ee_status st = check_ids("ee__results_sweep", workspace, "-");
    char dir[PATH_CAP];
    if (st != EE_OK || (st = file_path(engine, workspace, NULL, dir, sizeof dir)) != EE_OK)
        return st;
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return EE_OK;
        return ee__error(EE_EIO, "result store: cannot list a workspace's folder: %s",
                         strerror(errno));
    }
    /* Files are dated by the file system's clock, so ages are measured
     * against the real clock, not the engine's. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    uint64_t removed = 0;
    struct dirent *de;
    while (st == EE_OK && (errno = 0, de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        int64_t age = now_ms - mtime_ms(&sb);
        if (name[0] == '.') {
            /* ".<hex id>.result.XXXXXX": what a put that stopped between
             * creating it and moving it into place (or a replace that
             * stopped before removing the file it replaced) left. Its
             * reservation, if still there, goes back with it. */
            const char *dot = strstr(name + 1, ".result.");
            char id[EE__RESULTS_ID_MAX + 1];
            if (dot == NULL || strlen(dot) != 8 + 6 ||
                !hex_name(name + 1, (size_t)(dot - name - 1), id, sizeof id) ||
                age < temp_age_ms)
                continue;
            char path[PATH_CAP];
            int w = snprintf(path, sizeof path, "%s/%s", dir, name);
            header h;
            bool had = w > 0 && (size_t)w < sizeof path && header_of(path, &h);
            if (had && (st = release(engine, workspace, h.org, h.resv)) != EE_OK)
                break;
            if (unlinkat(dirfd(d), name, 0) == 0)
                removed++;
            continue;
        }
        /* "<hex id>.result" whose record is gone: what a purge that stopped
         * between deleting a record and its file left (the file goes first,
         * so only an older engine's purge or a lost delete leaves one). */
        char id[EE__RESULTS_ID_MAX + 1];
        if (len <= 7 || strcmp(name + len - 7, ".result") != 0 ||
            !hex_name(name, len - 7, id, sizeof id) || age < file_age_ms ||
            has_record(engine, workspace, id, payload))
            continue;
        if ((st = ee__results_delete(engine, workspace, id, NULL)) == EE_OK)
            removed++;
    }
    if (st == EE_OK && de == NULL && errno != 0)
        st = ee__error(EE_EIO, "result store: cannot list a workspace's folder: %s",
                       strerror(errno));
    closedir(d);
    if (removed_out != NULL)
        *removed_out = removed;
    return st;
}
