/*
 * What the posix transport needs from the operating system, in one place: the
 * clocks, randomness and the log line format. transport.c holds the sockets
 * and the loop; nothing in it reads a clock or the random device directly.
 *
 * Thread rules: every function here is thread-safe. The random state is per
 * node and used only by its loop thread.
 */
#ifndef TUTTI_POSIX_H
#define TUTTI_POSIX_H

#include "tutti/net.h"

/* Local monotonic time, ns. */
tutti_time tutti__posix_now(void);

/* Randomness for an engine: bytes from getrandom(2), fetched a block at a
 * time so a draw is usually a copy, not a system call. */
typedef struct tutti__posix_random {
    uint64_t block[32];
    uint32_t used; /* words of `block` handed out */
} tutti__posix_random;

void tutti__posix_random_init(tutti__posix_random *r);
uint64_t tutti__posix_random_next(tutti__posix_random *r);

/* "debug", "info", "warn", "error". */
const char *tutti__posix_level_name(int level);

/* Write one log line to stderr with a single write, so lines from several
 * threads or processes sharing the terminal do not interleave. */
void tutti__posix_log_stderr(const char *name, int level, const char *msg);

#endif
