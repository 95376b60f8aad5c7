/* Shifts this process's wall clock, as an NTP step would, and nothing else.
 *
 * Preloaded with LD_PRELOAD; CLOCKSHIFT_FILE names a file holding one signed 64-bit offset in
 * nanoseconds (native byte order), mapped once and read on every call, so a test steps the clock
 * of a running process by rewriting those 8 bytes. CLOCK_REALTIME (and its coarse variant),
 * gettimeofday and time are shifted; CLOCK_MONOTONIC and every sleep or timed wait are left
 * alone (faketime's defaults also shift those, and beat's sleeps then fail with EINVAL).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int64_t *offset_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);

static void load(void) {
    if (!real_clock_gettime)
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    if (offset_ns)
        return;
    const char *path = getenv("CLOCKSHIFT_FILE");
    int fd = path ? open(path, O_RDONLY) : -1;
    if (fd < 0)
        return;
    void *map = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED)
        offset_ns = (volatile int64_t *)map;
}

static void shift(struct timespec *ts) {
    int64_t total = (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec + (offset_ns ? *offset_ns : 0);
    ts->tv_sec = total / 1000000000LL;
    ts->tv_nsec = total % 1000000000LL;
    if (ts->tv_nsec < 0) {
        ts->tv_nsec += 1000000000LL;
        ts->tv_sec -= 1;
    }
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    load();
    int result = real_clock_gettime(clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        shift(ts);
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (result == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
