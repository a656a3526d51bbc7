/* ee_quota_stats(): this engine's admissions, refusals by reason and
 * failed admissions, counted by ee_quota_admit_fast() (admit.c). */
#include <stdatomic.h>

#include "quota/quota_internal.h"

ee_status ee_quota_stats(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_stats: out must not be NULL");
    *out = NULL;
    q_state *st = ee__quota_state(engine);
    if (st == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_quota_stats: engine must not be "
                                                       "NULL"));
    const q_counts *c = &st->counts;
    uint64_t admitted = atomic_load_explicit(&c->admitted_shared, memory_order_relaxed);
    uint64_t refused_total = 0;
    for (size_t i = 0; i < Q_STAT_SLOTS; i++)
        admitted += atomic_load_explicit(&c->admitted[i].n, memory_order_relaxed);
    json_t *refused = json_object();
    for (int k = 0; k < Q_R_COUNT && refused != NULL; k++) {
        uint64_t n = atomic_load_explicit(&c->refused[k], memory_order_relaxed);
        refused_total += n;
        json_object_set_new(refused, ee__quota_res_name(k), json_integer((json_int_t)n));
    }
    json_t *doc = refused == NULL ? NULL
                                  : json_pack("{s:I, s:I, s:o, s:I, s:I}", "since",
                                              (json_int_t)st->opened_at, "admitted",
                                              (json_int_t)admitted, "refused", refused,
                                              "refusedTotal", (json_int_t)refused_total,
                                              "errors",
                                              (json_int_t)atomic_load_explicit(
                                                  &c->errors, memory_order_relaxed));
    if (doc == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory answering quota stats"));
    return ee__json_out(out, doc);
}
