/* Shared helpers for the benchmarks: monotonic clock, percentiles, and the
 * JSON line every benchmark prints (DESIGN.md "Tests and benchmarks"). */
#ifndef EE_BENCH_UTIL_H
#define EE_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts `v` in place and returns the q-quantile (0..1). */
static inline uint64_t bench_quantile(uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bench_cmp_u64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static inline int bench_quick(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0)
            return 1;
    return 0;
}

/* One JSON line: ours (p50/p99 ns per op) beside the baseline's p50. */
static inline void bench_report(const char *bench, const char *backend, const char *extra_json,
                                uint64_t p50, uint64_t p99, const char *baseline,
                                uint64_t baseline_p50)
{
    double ops = p50 ? 1e9 / (double)p50 : 0;
    double slowdown = baseline_p50 ? (double)p50 / (double)baseline_p50 : 0;
    printf("{\"bench\": \"%s\", \"backend\": \"%s\"%s%s, \"unit\": \"ns/op\", \"p50\": %llu, "
           "\"p99\": %llu, \"ops_per_s\": %.0f, \"baseline\": \"%s\", \"baseline_p50\": %llu, "
           "\"slowdown\": %.4f}\n",
           bench, backend, extra_json ? ", " : "", extra_json ? extra_json : "",
           (unsigned long long)p50, (unsigned long long)p99, ops, baseline,
           (unsigned long long)baseline_p50, slowdown);
    fflush(stdout);
}

/* The source tree's data/ folder, found from this header's own path
 * ("data" when __FILE__ names no bench/ folder). Not thread-safe: one
 * static buffer. */
static inline const char *bench_data_dir(void)
{
    static char dir[1024];
    const char *f = __FILE__, *cut = strstr(f, "/bench/");
    if (cut == NULL)
        return "data";
    snprintf(dir, sizeof dir, "%.*s/data", (int)(cut - f), f);
    return dir;
}

#endif
