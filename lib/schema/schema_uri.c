/*
 * URI references for "$id", "$ref" and "$dynamicRef": resolving a
 * reference against a base URI as RFC 3986 section 5.2 says (split by the
 * regular expression of its appendix B, merge, remove dot segments).
 * Nothing is fetched and nothing is normalised beyond what section 5.2
 * does, so two URIs name the same resource when their strings are equal.
 */
#include "schema/schema_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t n;
    bool has;
} part;

typedef struct {
    part scheme, authority, path, query, fragment;
} uri_parts;

/* ^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))? */
static void split(const char *u, uri_parts *out)
{
    memset(out, 0, sizeof *out);
    size_t i = strcspn(u, ":/?#");
    if (i > 0 && u[i] == ':') {
        out->scheme = (part){u, i, true};
        u += i + 1;
    }
    if (u[0] == '/' && u[1] == '/') {
        size_t n = strcspn(u + 2, "/?#");
        out->authority = (part){u + 2, n, true};
        u += 2 + n;
    }
    size_t n = strcspn(u, "?#");
    out->path = (part){u, n, true};
    u += n;
    if (*u == '?') {
        n = strcspn(u + 1, "#");
        out->query = (part){u + 1, n, true};
        u += 1 + n;
    }
    if (*u == '#')
        out->fragment = (part){u + 1, strlen(u + 1), true};
}

/* RFC 3986 5.2.4, in place on a NUL-terminated path; linear in its length
 * (each step consumes input, the output only shrinks by what it holds). */
static void remove_dot_segments(char *path)
{
    const char *in = path;
    char *out = path; /* the output never overtakes the input */
    size_t olen = 0;
    while (*in != '\0') {
        if (strncmp(in, "../", 3) == 0) {
            in += 3;
        } else if (strncmp(in, "./", 2) == 0) {
            in += 2;
        } else if (strncmp(in, "/./", 3) == 0) {
            in += 2;
        } else if (strcmp(in, "/.") == 0) {
            in += 1; /* leaves "/" */
            out[olen++] = '/';
            in += 1;
        } else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
            while (olen > 0 && out[olen - 1] != '/')
                olen--;
            if (olen > 0)
                olen--; /* the last segment and its "/" */
            if (in[3] == '\0') {
                out[olen++] = '/';
                in += 3;
            } else {
                in += 3; /* leaves "/..." */
            }
        } else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
            in += strlen(in);
        } else {
            size_t seg = 1 + strcspn(in + 1, "/");
            if (in[0] != '/')
                seg = strcspn(in, "/");
            memmove(out + olen, in, seg);
            olen += seg;
            in += seg;
        }
    }
    out[olen] = '\0';
}

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_part(buf *b, const char *lead, const part *p)
{
    if (!p->has)
        return;
    put(b, lead, strlen(lead));
    put(b, p->p, p->n);
}

/* The path of the target (5.2.2 / 5.2.3), dot segments removed, in b. */
static void target_path(buf *b, const uri_parts *base, const uri_parts *ref, bool merge)
{
    size_t start = b->len;
    if (merge) {
        if (base->authority.has && base->path.n == 0) {
            put(b, "/", 1);
        } else {
            size_t keep = base->path.n;
            while (keep > 0 && base->path.p[keep - 1] != '/')
                keep--;
            put(b, base->path.p, keep);
        }
    }
    put(b, ref->path.p, ref->path.n);
    remove_dot_segments(b->p + start);
    b->len = start + strlen(b->p + start);
}

ee_status ee__schema_uri_resolve(const char *base, const char *ref, char **uri_out,
                                 char **frag_out)
{
    *uri_out = NULL;
    *frag_out = NULL;
    uri_parts B, R;
    split(base, &B);
    split(ref, &R);
    buf b = {.cap = strlen(base) + strlen(ref) + 8};
    if ((b.p = malloc(b.cap)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory resolving a URI");
    b.p[0] = '\0';
    const part *scheme = R.scheme.has ? &R.scheme : &B.scheme;
    for (size_t i = 0; i < scheme->n; i++) /* schemes are case-insensitive (3.1) */
        b.p[i] = scheme->p[i] >= 'A' && scheme->p[i] <= 'Z' ? (char)(scheme->p[i] + 32)
                                                            : scheme->p[i];
    b.len = scheme->n;
    if (scheme->has)
        put(&b, ":", 1);
    if (R.scheme.has || R.authority.has) {
        put_part(&b, "//", &R.authority);
        target_path(&b, &B, &R, false);
        put_part(&b, "?", &R.query);
    } else {
        put_part(&b, "//", &B.authority);
        if (R.path.n == 0) {
            put(&b, B.path.p, B.path.n);
            put_part(&b, "?", R.query.has ? &R.query : &B.query);
        } else {
            target_path(&b, &B, &R, R.path.p[0] != '/');
            put_part(&b, "?", &R.query);
        }
    }
    if (R.fragment.has && (*frag_out = malloc(R.fragment.n + 1)) == NULL) {
        free(b.p);
        return ee__error(EE_ENOMEM, "out of memory resolving a URI");
    }
    if (R.fragment.has) {
        memcpy(*frag_out, R.fragment.p, R.fragment.n);
        (*frag_out)[R.fragment.n] = '\0';
    }
    *uri_out = b.p;
    return EE_OK;
}
