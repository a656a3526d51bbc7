/* Document ids: 12-byte ObjectIds, made without a system call.
 *
 * libbson's bson_oid_init() asks the kernel for the process id on every
 * id, to notice a fork; every document the storage writes takes one, and
 * on some virtual machines that call costs more than the write to memory
 * storage itself. Here a fork is noticed by a pthread_atfork() handler
 * instead, which gives the child its own random part. The layout is
 * MongoDB's: 4 bytes of big-endian seconds, 5 random bytes chosen once per
 * process, a 3-byte big-endian counter that starts at a random value. */
#include "core.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_once_t oid_once = PTHREAD_ONCE_INIT;
static uint8_t oid_process[5];
static _Atomic uint32_t oid_counter;

static void oid_seed(void)
{
    uint8_t r[8];
    size_t got = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < sizeof r) {
        ssize_t n = read(fd, r + got, sizeof r - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    if (got < sizeof r) { /* no /dev/urandom: the time, the pid and an address */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^
                     (uint64_t)(uintptr_t)&got ^ (uint64_t)ts.tv_sec;
        memcpy(r, &x, sizeof r);
    }
    memcpy(oid_process, r, sizeof oid_process);
    atomic_store_explicit(&oid_counter, (uint32_t)r[5] << 16 | (uint32_t)r[6] << 8 | r[7],
                          memory_order_relaxed);
}

static void oid_init(void)
{
    oid_seed();
    /* the child of a fork has one thread, at this point: no reader races */
    (void)pthread_atfork(NULL, NULL, oid_seed);
}

void ee__oid_new(uint8_t out[12])
{
    pthread_once(&oid_once, oid_init);
    uint32_t t = (uint32_t)time(NULL);
    uint32_t n = atomic_fetch_add_explicit(&oid_counter, 1, memory_order_relaxed);
    out[0] = (uint8_t)(t >> 24);
    out[1] = (uint8_t)(t >> 16);
    out[2] = (uint8_t)(t >> 8);
    out[3] = (uint8_t)t;
    memcpy(out + 4, oid_process, sizeof oid_process);
    out[9] = (uint8_t)(n >> 16);
    out[10] = (uint8_t)(n >> 8);
    out[11] = (uint8_t)n;
}
