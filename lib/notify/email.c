/*
 * E-mailed results: the notify module's per-engine state and options, the
 * transport it picked, the per-user sending limit and the background
 * outbox runner (docs/email.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "execengine/counters.h"
#include "execengine/notify.h"
#include "notify/notify_internal.h"

n_state *ee__notify_state(ee_engine *engine)
{
    return engine == NULL ? NULL : ee__engine_module(engine, EE__MOD_NOTIFY);
}

bool ee__email_address_ok(const char *s)
{
    if (s == NULL)
        return false;
    /* bounded before it is read further; then the one addr-spec rule of
     * the config (PLATFORM_FROM_EMAIL): ASCII, no 8-bit byte, nothing that
     * ends or adds an address in a header */
    size_t n = strnlen(s, 255);
    if (n == 0 || n > 254)
        return false;
    return ee__config_email_ok(s);
}

bool ee__email_configured(ee_engine *engine)
{
    n_state *st = ee__notify_state(engine);
    if (st == NULL)
        return ee__error(EE_EINVAL, "e-mail: engine must not be NULL") == EE_OK;
    if (st->via == N_NONE) {
        ee__error(EE_ENOTSUPPORTED, "e-mail is not configured: set SMTP_HOST (SMTP) or "
                                    "PLATFORM_RESEND_KEY (Resend-style API)");
        return false;
    }
    if (ee__config_text(ee__engine_config(engine), "PLATFORM_FROM_EMAIL") == NULL) {
        ee__error(EE_ENOTSUPPORTED, "e-mail is not configured: set PLATFORM_FROM_EMAIL, the "
                                    "sender of results e-mails");
        return false;
    }
    return true;
}

/* ---- the per-user limit --------------------------------------------------------------- */

/* The counter of one user's e-mails. Its ids are principal ids (1..64
 * bytes without '/': ee__id_valid()), so the key always fits and reads
 * back one way; the ids come from records in storage too (a userId may be
 * 256 bytes there), and an id that is not a principal's is refused rather
 * than cut: snprintf() cut two long ids with one prefix to one key, and
 * their users shared one limit. */
#define LIMIT_PREFIX "eem/user/"
_Static_assert(sizeof LIMIT_PREFIX - 1 + 2 * EE_PRINCIPAL_ID_MAX + 1 <= EE_COUNTERS_KEY_MAX,
               "an e-mail limit key of two principal ids fits a counter key");

static ee_status limit_key(const char *workspace, const char *user, char *key, size_t cap)
{
    bool no_user = user == NULL || user[0] == '\0';
    if (!ee__id_valid(workspace) || (!no_user && !ee__id_valid(user)))
        return ee__error(EE_EINVAL, "e-mail limit: the workspace or user id is not 1 to %d "
                                    "characters of [A-Za-z0-9_.:@-]", EE_PRINCIPAL_ID_MAX);
    snprintf(key, cap, LIMIT_PREFIX "%s/%s", workspace, no_user ? "-" : user);
    return EE_OK;
}

ee_status ee__email_reserve(ee_engine *engine, const char *workspace, const char *user,
                            uint64_t *resv_out)
{
    *resv_out = 0;
    n_state *st = ee__notify_state(engine);
    if (st == NULL)
        return ee__error(EE_EINVAL, "e-mail: engine must not be NULL");
    char key[EE_COUNTERS_KEY_MAX + 1];
    ee_status ks = limit_key(workspace, user, key, sizeof key);
    if (ks != EE_OK)
        return ks;
    ee_counter_req q = {key, 1, st->per_user_hour, 3600000, 0};
    ee_counter_result r;
    int granted = 0;
    int64_t now = ee_engine_now_ms(engine);
    ee_status s = ee_counters_reserve(ee__engine_counters(engine), &q, 60000, now, &r, &granted);
    if (s != EE_OK)
        return s;
    if (!granted) {
        int64_t after = r.retry_at_ms > now ? r.retry_at_ms - now : 0;
        json_t *detail = json_pack("{s:I, s:I}", "retryAfterMs", (json_int_t)after, "limit",
                                   (json_int_t)st->per_user_hour);
        return ee__error_full(EE_ERATELIMIT, 0, detail,
                                "e-mail: user \"%s\" has sent %lld e-mails this hour, the "
                                "limit (EMAIL_MAX_PER_USER_PER_HOUR): retry in %lld s",
                                user != NULL ? user : "", (long long)st->per_user_hour,
                                (long long)((after + 999) / 1000));
    }
    *resv_out = r.resv_id;
    return EE_OK;
}

void ee__email_reserve_end(ee_engine *engine, const char *workspace, const char *user,
                           uint64_t resv, bool commit)
{
    if (resv == 0 || ee__notify_state(engine) == NULL)
        return;
    char key[EE_COUNTERS_KEY_MAX + 1];
    if (limit_key(workspace, user, key, sizeof key) != EE_OK)
        return; /* never reserved: ee__email_reserve() refused the same ids */
    int64_t now = ee_engine_now_ms(engine);
    ee__error_saved saved;
    ee__error_save(&saved);
    ee_status s = commit ? ee_counters_commit(ee__engine_counters(engine), key, resv,
                                              EE_COUNTERS_ALL, now)
                         : ee_counters_release(ee__engine_counters(engine), key, resv, now);
    if (s != EE_OK)
        ee__log(ee__engine_logger(engine), EE_LOG_WARN, "notify",
                "e-mail limit of a user of %s: %s the reservation: %s", workspace,
                commit ? "committing" : "releasing", ee_error_last_message());
    ee__error_restore(&saved);
}

/* ---- the background runner ------------------------------------------------------------ */

static void *runner(void *arg)
{
    n_state *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        pthread_mutex_unlock(&st->lock);
        uint64_t sent = 0;
        if (ee_email_outbox_run(st->engine, 32, &sent) != EE_OK)
            ee__log(ee__engine_logger(st->engine), EE_LOG_WARN, "notify",
                    "e-mail outbox: %s", ee_error_last_message());
        ee_error_clear();
        pthread_mutex_lock(&st->lock);
        if (st->stopping)
            break;
        struct timespec until;
        ee__deadline_after_ms(st->poll_ms, &until);
        pthread_cond_timedwait(&st->wake, &st->lock, &until);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

ee_status ee__email_worker_start(ee_engine *engine)
{
    n_state *st = ee__notify_state(engine);
    if (st == NULL || st->poll_ms == 0 || st->via == N_NONE)
        return EE_OK;
    pthread_mutex_lock(&st->lock);
    ee_status s = EE_OK;
    if (!st->started && !st->stopping) {
        if (pthread_create(&st->thread, NULL, runner, st) == 0)
            st->started = true;
        else
            s = ee__error(EE_ENOMEM, "e-mail: cannot start the outbox thread");
    }
    pthread_mutex_unlock(&st->lock);
    return s;
}

static void stop_state(n_state *st)
{
    pthread_mutex_lock(&st->lock);
    bool join = st->started;
    st->stopping = true;
    st->started = false;
    pthread_cond_broadcast(&st->wake);
    pthread_mutex_unlock(&st->lock);
    if (join)
        pthread_join(st->thread, NULL);
}

void ee__email_worker_stop(ee_engine *engine)
{
    n_state *st = ee__notify_state(engine);
    if (st != NULL)
        stop_state(st);
}

/* ---- module --------------------------------------------------------------------------- */

static ee_status notify_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    n_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the notify module");
    const ee_config *cfg = ee__engine_config(engine);
    st->engine = engine;
    /* SMTP first: a host that runs its own mail server says so with
     * SMTP_HOST; the Resend key may be there for the workflows' own use. */
    if (ee__config_text(cfg, "SMTP_HOST") != NULL)
        st->via = N_SMTP;
    else if (ee__config_text(cfg, "PLATFORM_RESEND_KEY") != NULL)
        st->via = N_RESEND;
    st->max_attempts = ee__config_int(cfg, "EMAIL_MAX_ATTEMPTS");
    st->backoff_ms = ee__config_int(cfg, "EMAIL_BACKOFF_MS");
    st->backoff_max_ms = ee__config_int(cfg, "EMAIL_BACKOFF_MAX_MS");
    st->lease_ms = ee__config_int(cfg, "EMAIL_LEASE_MS");
    st->per_user_hour = ee__config_int(cfg, "EMAIL_MAX_PER_USER_PER_HOUR");
    st->poll_ms = ee__config_int(cfg, "EMAIL_POLL_MS");
    uint8_t rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        free(st);
        return ee__error(EE_ECRYPTO, "notify: no random bytes for the outbox owner");
    }
    char hex[25];
    ee__hex_encode(rnd, sizeof rnd, hex);
    snprintf(st->owner, sizeof st->owner, "mail-%s", hex);
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->wake, NULL);
    *state_out = st;
    return EE_OK;
}

static void notify_close(void *state)
{
    n_state *st = state;
    if (st == NULL)
        return;
    stop_state(st);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->wake);
    free(st);
}

static const ee__option notify_options[] = {
    EE__OPTION("EMAIL_API_URL", EE__OPT_URL, "https://api.resend.com", 1, EE__OPT_MAX_URL,
               "Base URL of the Resend-style e-mail API (POST <url>/emails), used when "
               "PLATFORM_RESEND_KEY is set and SMTP_HOST is not"),
    EE__OPTION("EMAIL_MAX_PER_USER_PER_HOUR", EE__OPT_INT, "20", 1, 1000000,
               "Results e-mails one user may queue per hour"),
    EE__OPTION("EMAIL_MAX_ATTEMPTS", EE__OPT_INT, "8", 1, 100,
               "Delivery attempts of one e-mail before it is marked failed"),
    EE__OPTION("EMAIL_BACKOFF_MS", EE__OPT_INT, "30000", 1, 86400000,
               "First wait before retrying an e-mail; doubles each attempt, with jitter"),
    EE__OPTION("EMAIL_BACKOFF_MAX_MS", EE__OPT_INT, "3600000", 1, 604800000,
               "Longest wait between two delivery attempts of an e-mail"),
    EE__OPTION("EMAIL_LEASE_MS", EE__OPT_INT, "300000", 1000, 86400000,
               "How long a sender holds an e-mail it is delivering before another may retry it "
               "(longer than one SMTP or HTTP attempt)"),
    EE__OPTION("EMAIL_POLL_MS", EE__OPT_INT, "5000", 0, 3600000,
               "How often the outbox thread (started with the execution workers) looks for "
               "e-mails to send; 0: no thread (call ee_email_outbox_run())"),
};

const ee__module ee__notify_module = {
    "notify", notify_options, sizeof notify_options / sizeof notify_options[0], NULL,
    notify_open, notify_close,
};
