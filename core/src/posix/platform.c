/*
 * The operating-system side of the posix platform: clocks, randomness and log
 * lines (see posix.h).
 *
 * Design notes
 * ------------
 * - Local time is CLOCK_MONOTONIC: it never steps, which the clock filter and
 *   every deadline rely on. Wall time enters only once, in the session epoch a
 *   hub is started with, so session time reads as NTP time without ever
 *   jumping when the wall clock is corrected.
 * - Randomness comes straight from the kernel (getrandom), buffered. The
 *   engines draw rarely (jitter, nonces), so a cryptographic source costs
 *   nothing measurable and needs no seeding policy of its own. If the kernel
 *   refuses (it does not on Linux >= 3.17 once booted), the fallback mixes the
 *   clock and a counter: poor, but never a crash.
 */
#include "posix/posix.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Seconds from 1900-01-01 (the NTP era 0 epoch) to 1970-01-01. */
#define NTP_UNIX_OFFSET_S INT64_C(2208988800)

static tutti_time read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (tutti_time)ts.tv_sec * TUTTI_S + ts.tv_nsec;
}

tutti_time tutti__posix_now(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

tutti_time tutti_net_now(void)
{
    return tutti__posix_now();
}

tutti_time tutti_net_session_epoch(void)
{
    /* Bracket the wall-clock read between two monotonic reads and keep the
     * tightest of a few tries, so a preemption between the reads does not
     * skew the epoch. */
    tutti_time best_width = TUTTI_TIME_MAX, epoch = 0;
    for (int i = 0; i < 5; i++) {
        tutti_time m1 = read_clock(CLOCK_MONOTONIC);
        tutti_time r = read_clock(CLOCK_REALTIME);
        tutti_time m2 = read_clock(CLOCK_MONOTONIC);
        if (m2 - m1 < best_width) {
            best_width = m2 - m1;
            epoch = r - (m1 + (m2 - m1) / 2);
        }
    }
    return epoch + NTP_UNIX_OFFSET_S * TUTTI_S;
}

static void fallback_fill(uint64_t *w, size_t n)
{
    static uint64_t counter;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (uint64_t)read_clock(CLOCK_MONOTONIC) ^ (++counter << 32);
        z ^= z >> 33;
        z *= 0xff51afd7ed558ccdull;
        z ^= z >> 33;
        z *= 0xc4ceb9fe1a85ec53ull;
        w[i] = z ^ (z >> 33);
    }
}

static void refill(tutti__posix_random *r)
{
    uint8_t *p = (uint8_t *)r->block;
    size_t want = sizeof r->block, got = 0;
    while (got < want) {
        ssize_t k = getrandom(p + got, want - got, 0);
        if (k > 0) {
            got += (size_t)k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else {
            fallback_fill(r->block, sizeof r->block / sizeof r->block[0]);
            break;
        }
    }
    r->used = 0;
}

void tutti__posix_random_init(tutti__posix_random *r)
{
    refill(r);
}

uint64_t tutti__posix_random_next(tutti__posix_random *r)
{
    if (r->used == sizeof r->block / sizeof r->block[0]) refill(r);
    return r->block[r->used++];
}

const char *tutti__posix_level_name(int level)
{
    switch (level) {
    case TUTTI_LOG_DEBUG:
        return "debug";
    case TUTTI_LOG_INFO:
        return "info";
    case TUTTI_LOG_WARN:
        return "warn";
    default:
        return "error";
    }
}

void tutti__posix_log_stderr(const char *name, int level, const char *msg)
{
    char line[1024];
    int k = snprintf(line, sizeof line, "tutti %s %s: %s\n", name,
                     tutti__posix_level_name(level), msg);
    if (k < 0) return;
    size_t len = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    if ((size_t)k >= sizeof line) line[len - 1] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
