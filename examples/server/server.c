/*
 * execengine-server: the example REST server of issue #15 (first piece),
 * a thin HTTP front of libexecengine using the public API only.
 *
 * Environment: EE_SERVER_ADDR (default 127.0.0.1:8080), EE_SERVER_TOKENS
 * (a JSON file {"tokens": [{"token","workspaceId","userId","orgId","role"}]})
 * and the engine's own configuration (ee_config_load_env()).
 * Routes done so far: see docs/server.md. SIGTERM/SIGINT: stop accepting,
 * let running requests finish, ee_engine_close().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <microhttpd.h>

#include <execengine/execengine.h>

#define MAX_TOKENS 256
#define MAX_BODY (1024 * 1024)

typedef struct {
    char token[256];
    char workspace[128];
    char user[128];
    char org[128];
    int admin;
} token_entry;

static token_entry g_tokens[MAX_TOKENS];
static size_t g_ntokens;
static ee_engine *g_engine;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Largest tokens file read (bytes). */
#define MAX_TOKENS_FILE (1024 * 1024)

static int token_field(json_t *entry, const char *key, char *buf, size_t cap, int required,
                       size_t index)
{
    json_t *v = json_object_get(entry, key);
    if (v == NULL && !required) {
        buf[0] = '\0';
        return 0;
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s == '\0' || strlen(s) >= cap) {
        fprintf(stderr,
                "execengine-server: EE_SERVER_TOKENS: /tokens/%zu/%s must be a non-empty "
                "string shorter than %zu bytes\n",
                index, key, cap);
        return -1;
    }
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

/* Read the tokens file with jansson; every problem is named on stderr. */
static int load_tokens(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: cannot open %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size > MAX_TOKENS_FILE) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: %s is over %d bytes\n", path,
                MAX_TOKENS_FILE);
        fclose(f);
        return -1;
    }
    json_error_t jerr;
    json_t *doc = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (doc == NULL) {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: %s: line %d: %s\n", path,
                jerr.line, jerr.text);
        return -1;
    }
    json_t *list = json_object_get(doc, "tokens");
    if (!json_is_array(list) || json_array_size(list) > MAX_TOKENS) {
        fprintf(stderr,
                "execengine-server: EE_SERVER_TOKENS: /tokens must be an array of at most %d "
                "entries\n",
                MAX_TOKENS);
        json_decref(doc);
        return -1;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        token_entry *t = &g_tokens[g_ntokens];
        char role[16];
        if (!json_is_object(entry) ||
            token_field(entry, "token", t->token, sizeof t->token, 1, i) != 0 ||
            token_field(entry, "workspaceId", t->workspace, sizeof t->workspace, 1, i) != 0 ||
            token_field(entry, "userId", t->user, sizeof t->user, 1, i) != 0 ||
            token_field(entry, "orgId", t->org, sizeof t->org, 0, i) != 0 ||
            token_field(entry, "role", role, sizeof role, 0, i) != 0) {
            if (!json_is_object(entry))
                fprintf(stderr, "execengine-server: EE_SERVER_TOKENS: /tokens/%zu must be an "
                                "object\n", i);
            json_decref(doc);
            return -1;
        }
        if (role[0] != '\0' && strcmp(role, "user") != 0 && strcmp(role, "admin") != 0) {
            fprintf(stderr,
                    "execengine-server: EE_SERVER_TOKENS: /tokens/%zu/role must be \"user\" or "
                    "\"admin\"\n", i);
            json_decref(doc);
            return -1;
        }
        t->admin = strcmp(role, "admin") == 0;
        g_ntokens++;
    }
    json_decref(doc);
    return 0;
}

/* Constant time in the length of the stored token: every entry compared. */
static const token_entry *find_token(const char *given)
{
    const token_entry *found = NULL;
    size_t glen = strlen(given);
    for (size_t i = 0; i < g_ntokens; i++) {
        const char *t = g_tokens[i].token;
        size_t tlen = strlen(t);
        unsigned char diff = (unsigned char)(glen != tlen);
        for (size_t k = 0; k < tlen; k++)
            diff |= (unsigned char)(t[k] ^ (k < glen ? given[k] : 0));
        if (diff == 0)
            found = &g_tokens[i];
    }
    return found;
}

/* One table: library status -> HTTP status. */
static unsigned http_of(ee_status st)
{
    switch (st) {
    case EE_OK: return 200;
    case EE_EINVAL: case EE_EPARSE: case EE_EVALIDATION: return 400;
    case EE_EAUTH: return 401;
    case EE_EPERM: return 403;
    case EE_ENOTFOUND: return 404;
    case EE_EEXISTS: case EE_ECONFLICT: case EE_ESTATE: return 409;
    case EE_ETOOBIG: return 413;
    case EE_EQUOTA: case EE_ESPEND: return 402;
    case EE_ERATELIMIT: case EE_ECONCURRENCY: case EE_EBUSY: return 429;
    case EE_ENOTSUPPORTED: return 501;
    case EE_ENETWORK: case EE_EUPSTREAM: return 502;
    case EE_ETIMEOUT: return 504;
    default: return 500;
    }
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* Send a document built with jansson (reference stolen). */
static enum MHD_Result send_doc(struct MHD_Connection *c, unsigned code, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL)
        return send_json(c, 500, "{\"error\":{\"status\":\"EE_ENOMEM\",\"message\":\"out of memory\"}}");
    enum MHD_Result r = send_json(c, code, text);
    free(text);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *status,
                                  const char *message)
{
    return send_doc(c, code, json_pack("{s:{s:s, s:s}}", "error", "status", status, "message",
                                       message));
}

static enum MHD_Result send_status(struct MHD_Connection *c, ee_status st)
{
    return send_error(c, http_of(st), ee_status_name(st), ee_error_last_message());
}

static enum MHD_Result route_catalog(struct MHD_Connection *c, const token_entry *who)
{
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
    const char *cat = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "category");
    json_t *query = json_object();
    if (query == NULL || (q && json_object_set_new(query, "q", json_string(q)) != 0) ||
        (cat && json_object_set_new(query, "category", json_string(cat)) != 0)) {
        json_decref(query);
        return send_error(c, 400, "EE_EINVAL", "q and category must be UTF-8 text");
    }
    char *qtext = json_dumps(query, JSON_COMPACT);
    json_decref(query);
    ee_principal *p = NULL;
    ee_status st = qtext ? ee_principal_new(&p, who->workspace, who->user,
                                            who->org[0] ? who->org : NULL)
                         : EE_ENOMEM;
    if (st != EE_OK) {
        free(qtext);
        return send_status(c, st);
    }
    char *out = NULL;
    st = q ? ee_catalog_search(g_engine, p, qtext, &out)
           : ee_catalog_list(g_engine, p, qtext, &out);
    ee_principal_free(p);
    free(qtext);
    if (st != EE_OK) {
        ee_free(out);
        return send_status(c, st);
    }
    enum MHD_Result r = send_json(c, 200, out);
    ee_free(out);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    (void)upload;
    static int first;
    if (*state == NULL) {
        *state = &first;
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (len != NULL && strtoull(len, NULL, 10) > MAX_BODY)
            return send_error(c, 413, "EE_ETOOBIG", "request body over the limit");
        return MHD_YES;
    }
    if (*upload_size != 0) {
        /* Bodies are not used by the routes done so far; refuse big ones. */
        if (*upload_size > MAX_BODY)
            return send_error(c, 413, "EE_ETOOBIG", "request body over the limit");
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0)
        return send_doc(c, 200, json_pack("{s:s}", "status", "ok"));

    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const token_entry *who = NULL;
    if (auth && strncmp(auth, "Bearer ", 7) == 0)
        who = find_token(auth + 7);
    if (who == NULL)
        return send_error(c, 401, "EE_EAUTH", "missing or unknown bearer token");

    if (strncmp(url, "/api/billing", 12) == 0 || strncmp(url, "/api/v1/billing", 15) == 0 ||
        strncmp(url, "/api/audit", 10) == 0 || strncmp(url, "/api/email", 10) == 0)
        return send_error(c, 501, "EE_ENOTSUPPORTED",
                          "billing, e-mail and audit are not in the library yet (issue #14)");
    if (strncmp(url, "/api/admin/", 11) == 0 && !who->admin)
        return send_error(c, 403, "EE_EPERM", "admin role required");
    if (strcmp(url, "/api/engines/catalog") == 0 && strcmp(method, "GET") == 0)
        return route_catalog(c, who);
    return send_error(c, 404, "EE_ENOTFOUND", "no such route");
}

int main(void)
{
    const char *addr = getenv("EE_SERVER_ADDR");
    if (addr == NULL || *addr == '\0')
        addr = "127.0.0.1:8080";
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host) {
        fprintf(stderr, "execengine-server: EE_SERVER_ADDR must be HOST:PORT\n");
        return 2;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int port = atoi(colon + 1);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "execengine-server: EE_SERVER_ADDR must be IPv4:PORT\n");
        return 2;
    }
    const char *tokens = getenv("EE_SERVER_TOKENS");
    if (tokens == NULL || *tokens == '\0') {
        fprintf(stderr, "execengine-server: EE_SERVER_TOKENS must name the tokens file\n");
        return 2;
    }
    if (load_tokens(tokens) != 0)
        return 2;

    ee_config *cfg = NULL;
    ee_status st = ee_config_new(&cfg);
    if (st == EE_OK)
        st = ee_config_load_env(cfg);
    if (st == EE_OK)
        st = ee_engine_open(&g_engine, cfg);
    ee_config_free(cfg);
    if (st != EE_OK) {
        fprintf(stderr, "execengine-server: engine: %s: %s\n", ee_status_name(st),
                ee_error_last_message());
        return 1;
    }

    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "execengine-server: cannot listen on %s\n", addr);
        ee_engine_close(g_engine);
        return 1;
    }
    fprintf(stderr, "execengine-server: listening on %s\n", addr);
    while (!g_stop)
        pause();
    /* Stop accepting, let running requests finish, then close the engine. */
    MHD_quiesce_daemon(d);
    MHD_stop_daemon(d);
    ee_engine_close(g_engine);
    return 0;
}
