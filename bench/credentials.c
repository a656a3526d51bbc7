/* bench_credentials: decrypt + route a 20-node workflow (every node's
 * credential sealed and decrypted: platform pool and personal credentials,
 * memory storage, warm metadata cache) beside a bare AES-256-GCM decrypt of
 * the same bytes, 20 per op. Prints DESIGN.md's JSON lines; never fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <execengine/credentials.h>
#include <execengine/execengine.h>

#include "bench_util.h"
#include "credentials/cred_internal.h"

#define NODES 20
#define SECRET "bench-secret-0123456789abcdef0123456789"

static const char *const workflow =
    "{\"nodeNames\": [\"serper\", \"firecrawl\", \"openai\", \"resend\", \"brave\", \"tavily\","
    " \"youtubeSearch\", \"openrouter\", \"brave\", \"serper\", \"firecrawl\", \"openai\","
    " \"gmail\", \"slack\", \"notion\", \"hubspot\", \"outlook\", \"salesforce\", \"shopify\","
    " \"googleSheets\"]}";

static const char *const personal[][3] = {
    {"gmailOAuth2", "oauth2", "ya29.bench-access-token-0123456789abcdef"},
    {"slackApi", "apiKey", "xoxb-bench-0123456789abcdef"},
    {"notionApi", "apiKey", "secret_bench_0123456789abcdef"},
    {"hubspotApi", "apiKey", "pat-na1-bench-0123456789abcdef"},
    {"microsoftOutlookOAuth2Api", "oauth2", "EwBwA8l6BAAU-bench-0123456789"},
    {"salesforceOAuth2Api", "oauth2", "00D-bench-0123456789abcdef"},
    {"shopifyApi", "apiKey", "shpat_bench_0123456789abcdef"},
    {"googleSheetsOAuth2Api", "oauth2", "ya29.sheets-bench-0123456789"},
};

static ee_engine *setup(ee_principal **p)
{
    ee_config *cfg = NULL;
    ee_config_new(&cfg);
    ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", SECRET);
    ee_config_set(cfg, "EE_STORAGE_URI", "memory:");
    ee_config_set(cfg, "EE_DATA_DIR", bench_data_dir());
    ee_config_set(cfg, "PLATFORM_SERPER_KEY", "serper-bench-0123456789abcdef");
    ee_config_set(cfg, "PLATFORM_FIRECRAWL_KEY", "fc-bench-0123456789abcdef");
    ee_config_set(cfg, "PLATFORM_OPENROUTER_KEY", "sk-or-v1-bench-0123456789abcdef");
    ee_config_set(cfg, "PLATFORM_RESEND_KEY", "re_bench_0123456789abcdef");
    ee_config_set(cfg, "PLATFORM_BRAVE_KEY", "brave-bench-0123456789abcdef");
    ee_config_set(cfg, "PLATFORM_TAVILY_KEY", "tvly-bench-0123456789abcdef");
    ee_config_set(cfg, "PLATFORM_YOUTUBE_KEY", "AIza-bench-0123456789abcdef");
    ee_engine *e = NULL;
    if (ee_engine_open(&e, cfg) != EE_OK) {
        fprintf(stderr, "bench_credentials: cannot open an engine: %s\n", ee_error_last_message());
        ee_config_free(cfg);
        return NULL;
    }
    ee_config_free(cfg);
    char *out = NULL;
    ee_cred_platform_provision(e, &out);
    ee_free(out);
    ee_principal_new(p, "bench-ws", "bench-user", NULL);
    for (size_t i = 0; i < sizeof personal / sizeof personal[0]; i++) {
        char req[512];
        snprintf(req, sizeof req, "{\"credentialName\": \"%s\", \"type\": \"%s\", \"%s\": \"%s\"}",
                 personal[i][0], personal[i][1],
                 strcmp(personal[i][1], "oauth2") == 0 ? "accessToken" : "apiKey", personal[i][2]);
        ee_cred_personal_put(e, *p, req, &out);
        ee_free(out);
    }
    return e;
}

/* The baseline: the same plaintext lengths sealed with a bare key and
 * opened with EVP alone (context, key schedule, AAD, decrypt, tag). */
typedef struct {
    unsigned char nonce[12], tag[16], ct[512];
    int len;
} bare_env;

static unsigned char bare_key[32];
static const unsigned char bare_aad[64] = "ee-credential-v1 workspace record header....";

static void bare_seal(bare_env *b, const char *pt, size_t len)
{
    RAND_bytes(b->nonce, sizeof b->nonce);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, fin = 0;
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL);
    EVP_EncryptInit_ex(ctx, NULL, NULL, bare_key, b->nonce);
    EVP_EncryptUpdate(ctx, NULL, &outl, bare_aad, sizeof bare_aad);
    EVP_EncryptUpdate(ctx, b->ct, &outl, (const unsigned char *)pt, (int)len);
    EVP_EncryptFinal_ex(ctx, b->ct + outl, &fin);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, b->tag);
    EVP_CIPHER_CTX_free(ctx);
    b->len = (int)len;
}

static int bare_open(const bare_env *b, unsigned char *pt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, fin = 0, ok;
    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL);
    EVP_DecryptInit_ex(ctx, NULL, NULL, bare_key, b->nonce);
    EVP_DecryptUpdate(ctx, NULL, &outl, bare_aad, sizeof bare_aad);
    EVP_DecryptUpdate(ctx, pt, &outl, b->ct, b->len);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)b->tag);
    ok = EVP_DecryptFinal_ex(ctx, pt + outl, &fin);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    size_t iters = quick ? 2000 : 20000;
    ee_principal *p = NULL;
    ee_engine *e = setup(&p);
    if (e == NULL)
        return 0;
    json_t *wf = json_loads(workflow, 0, NULL);

    /* One resolve to learn the plaintexts for the baseline, and to warm up. */
    ee__cred_resolved *r = NULL;
    if (ee__cred_resolve(e, p, wf, NULL, &r) != EE_OK || r->n != NODES) {
        fprintf(stderr, "bench_credentials: resolve failed (%s) or has gaps\n",
                ee_error_last_message());
        ee__cred_resolved_free(r);
        return 0;
    }
    RAND_bytes(bare_key, sizeof bare_key);
    bare_env envs[NODES];
    for (size_t i = 0; i < NODES; i++)
        bare_seal(&envs[i], r->items[i].secret, r->items[i].secret_len);
    ee__cred_resolved_free(r);

    uint64_t *ours = malloc(iters * sizeof *ours), *base = malloc(iters * sizeof *base);
    unsigned char pt[512];
    int sink = 0;
    for (size_t k = 0; k < iters; k++) {
        /* Interleaved, so both see the same machine load. */
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < NODES; i++)
            sink += bare_open(&envs[i], pt);
        uint64_t t1 = bench_now_ns();
        if (ee__cred_resolve(e, p, wf, NULL, &r) == EE_OK)
            sink += (int)r->n;
        ee__cred_resolved_free(r);
        uint64_t t2 = bench_now_ns();
        base[k] = t1 - t0;
        ours[k] = t2 - t1;
    }
    if (sink == 0)
        fprintf(stderr, "bench_credentials: nothing decrypted\n");
    uint64_t b50 = bench_quantile(base, iters, 0.5);
    uint64_t o50 = bench_quantile(ours, iters, 0.5), o99 = bench_quantile(ours, iters, 0.99);
    bench_report("aes_gcm.decrypt", "openssl", "\"nodes\": 20", b50,
                 bench_quantile(base, iters, 0.99), "aes_gcm.decrypt", b50);
    bench_report("credentials.route", "memory", "\"nodes\": 20", o50, o99, "aes_gcm.decrypt", b50);
    free(ours);
    free(base);
    json_decref(wf);
    ee_principal_free(p);
    ee_engine_close(e);
    return 0;
}
