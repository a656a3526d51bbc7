/*
 * Choosing a backend from a URI (EE_STORAGE_URI): sqlite://, postgres://,
 * postgresql://, memory:. Messages quote the scheme or the option, never
 * the rest of the URI (it may carry a password).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/features.h"
#include "internal.h"
#include "storage/storage.h"

#define SQLITE_DEFAULT_BUSY_MS 5000

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static ee_status sqlite_option(ee__sqlite_options *o, const char *opt, size_t len)
{
    char buf[64], q[72];
    if (len >= sizeof buf) {
        ee__quote_for_message(opt, q, 40);
        return ee__error(EE_EINVAL, "sqlite URI option '%s' is too long", q);
    }
    memcpy(buf, opt, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    if (eq != NULL) {
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(buf, "synchronous") == 0) {
            if (strcasecmp(v, "full") == 0) { o->synchronous = 2; return EE_OK; }
            if (strcasecmp(v, "normal") == 0) { o->synchronous = 1; return EE_OK; }
            if (strcasecmp(v, "off") == 0) { o->synchronous = 0; return EE_OK; }
            ee__quote_for_message(v, q, sizeof q);
            return ee__error(EE_EINVAL, "sqlite URI option synchronous='%s': expected full, "
                                        "normal or off", q);
        }
        if (strcmp(buf, "busy_timeout") == 0) {
            int64_t ms;
            if (ee__int_parse(v, &ms) != EE_OK || ms < 0 || ms > 600000) {
                ee__quote_for_message(v, q, sizeof q);
                return ee__error(EE_EINVAL, "sqlite URI option busy_timeout='%s': expected "
                                            "0 to 600000 ms", q);
            }
            o->busy_timeout_ms = (int)ms;
            return EE_OK;
        }
    }
    ee__quote_for_message(buf, q, sizeof q);
    return ee__error(EE_EINVAL, "unknown sqlite URI option '%s' (known: synchronous, "
                                "busy_timeout)", q);
}

static ee_status open_sqlite(ee_storage **out, const char *rest)
{
    size_t plen = strcspn(rest, "?");
    if (plen == 0)
        return ee__error(EE_EINVAL, "sqlite URI has no file path: expected "
                                    "sqlite:///abs/path.db or sqlite://relative.db");
    char *path = strndup(rest, plen);
    if (path == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a storage URI");
    ee__sqlite_options o = {path, 2, SQLITE_DEFAULT_BUSY_MS};
    ee_status st = EE_OK;
    const char *q = rest[plen] == '?' ? rest + plen + 1 : NULL;
    while (st == EE_OK && q != NULL && *q != '\0') {
        size_t n = strcspn(q, "&");
        if (n > 0)
            st = sqlite_option(&o, q, n);
        q += n;
        if (*q == '&')
            q++;
    }
    if (st == EE_OK)
        st = ee__storage_sqlite_open(out, &o);
    free(path);
    return st;
}

#if EE_WITH_POSTGRES
/* Take our own `schema=` option out of a libpq URI (libpq refuses unknown
 * parameters) and check it is a plain identifier. */
static ee_status split_postgres(const char *uri, char **conninfo, char **schema)
{
    *schema = NULL;
    *conninfo = strdup(uri);
    if (*conninfo == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a storage URI");
    char *qm = strchr(*conninfo, '?');
    if (qm == NULL)
        return EE_OK;
    char *src = qm + 1, *dst = qm + 1;
    while (*src != '\0') {
        size_t n = strcspn(src, "&");
        if (strncmp(src, "schema=", 7) == 0) {
            free(*schema);
            *schema = strndup(src + 7, n - 7);
            if (*schema == NULL)
                return ee__error(EE_ENOMEM, "out of memory parsing a storage URI");
        } else {
            if (dst != qm + 1)
                *dst++ = '&';
            memmove(dst, src, n);
            dst += n;
        }
        src += n;
        if (*src == '&')
            src++;
    }
    *dst = '\0';
    if (dst == qm + 1)
        *qm = '\0';
    if (*schema != NULL) {
        size_t n = strlen(*schema);
        bool ok = n > 0 && n <= 63 && (islower((unsigned char)(*schema)[0]) || (*schema)[0] == '_');
        for (size_t i = 0; ok && i < n; i++)
            ok = islower((unsigned char)(*schema)[i]) || isdigit((unsigned char)(*schema)[i]) ||
                 (*schema)[i] == '_';
        if (!ok)
            return ee__error(EE_EINVAL, "postgres URI option schema: expected a lowercase "
                                        "identifier of at most 63 characters [a-z0-9_]");
    }
    return EE_OK;
}
#endif

ee_status ee_storage_open_uri(ee_storage **out, const char *uri)
{
    return ee__storage_open_uri_logged(out, uri, NULL);
}

ee_status ee__storage_open_uri_logged(ee_storage **out, const char *uri, const ee__logger *lg)
{
    if (out == NULL || uri == NULL)
        return ee__error(EE_EINVAL, "ee_storage_open_uri: NULL argument");
    *out = NULL;
    if (strcasecmp(uri, "memory:") == 0 || strcasecmp(uri, "memory://") == 0)
        return ee__storage_memory_open(out);
    if (has_prefix_ci(uri, "sqlite://"))
        return open_sqlite(out, uri + 9);
    if (has_prefix_ci(uri, "postgres://") || has_prefix_ci(uri, "postgresql://")) {
#if !EE_WITH_POSTGRES
        (void)lg;
        return ee__not_built("storage URI postgres://", "PostgreSQL", "EE_WITH_POSTGRES");
#else
        char *conninfo = NULL, *schema = NULL;
        ee_status st = split_postgres(uri, &conninfo, &schema);
        if (st == EE_OK)
            st = ee__storage_postgres_open(out, conninfo, schema, lg);
        ee__secret_free(conninfo);
        free(schema);
        return st;
#endif
    }
    size_t n = strcspn(uri, ":/?@");
    char scheme[40];
    if (uri[n] != ':' || n == 0)
        return ee__error(EE_EINVAL, "storage URI has no scheme: expected sqlite:///path.db, "
                                    "postgres://... or memory:");
    char raw[64];
    size_t k = n < sizeof raw - 1 ? n : sizeof raw - 1;
    memcpy(raw, uri, k);
    raw[k] = '\0';
    ee__quote_for_message(raw, scheme, sizeof scheme);
    return ee__error(EE_EINVAL, "unknown storage URI scheme '%s': expected sqlite, postgres, "
                                "postgresql or memory", scheme);
}

ee_status ee_storage_sqlite_new(ee_storage **out, const char *path)
{
    if (out == NULL || path == NULL || path[0] == '\0')
        return ee__error(EE_EINVAL, "ee_storage_sqlite_new: NULL or empty argument");
    *out = NULL;
    ee__sqlite_options o = {path, 2, SQLITE_DEFAULT_BUSY_MS};
    return ee__storage_sqlite_open(out, &o);
}

ee_status ee_storage_postgres_new(ee_storage **out, const char *conninfo)
{
    if (out == NULL || conninfo == NULL)
        return ee__error(EE_EINVAL, "ee_storage_postgres_new: NULL argument");
    *out = NULL;
#if EE_WITH_POSTGRES
    return ee__storage_postgres_open(out, conninfo, NULL, NULL);
#else
    return ee__not_built("ee_storage_postgres_new", "PostgreSQL", "EE_WITH_POSTGRES");
#endif
}
