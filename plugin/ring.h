/*
 * A fixed-size byte ring of variable-length records, one producer and one
 * consumer, lock-free and wait-free on both sides.
 *
 * Design notes
 * ------------
 * - Replies leave scsynth on its non-real-time thread; the proxy's loop thread
 *   sends them. The ring carries each reply (a 64-bit tag naming the client
 *   and the bytes) between the two without a lock and without allocating.
 * - head and tail are byte counters that only grow (64 bits: they never wrap
 *   in practice); the position in the buffer is the counter modulo the
 *   capacity, a power of two. The producer publishes a record by storing head
 *   with release order after writing it; the consumer frees space by storing
 *   tail with release order after reading. Each side reads the other's
 *   counter with acquire order.
 * - A record is a 16-byte header (length, flags, tag) and the bytes, padded to
 *   16. A record never wraps: when it does not fit before the end, the
 *   producer writes a skip header there and starts again at 0.
 * - Full means full: a push that does not fit fails (the caller counts the
 *   loss) instead of waiting. Nothing here blocks.
 *
 * Thread rules: tutti__ring_push from one thread at a time (callers with
 * several producer threads serialise them); peek/pop from one consumer thread.
 * All functions are real-time safe.
 */
#ifndef TUTTI_PLUGIN_RING_H
#define TUTTI_PLUGIN_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti__ring {
    uint8_t *buf;
    size_t cap;                         /* power of two, multiple of 16 */
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
} tutti__ring;

/* `buf` of `cap` bytes (a power of two, at least 64) stays owned by the caller
 * and must outlive the ring. */
void tutti__ring_init(tutti__ring *r, uint8_t *buf, size_t cap);

/* Largest record the ring can ever take. */
size_t tutti__ring_max_record(const tutti__ring *r);

/* 0, or TUTTI_EFULL when the record does not fit now, or TUTTI_EINVAL when it
 * never would. */
int tutti__ring_push(tutti__ring *r, uint64_t tag, const void *data, size_t len);

/* The oldest record, or NULL when the ring is empty. Valid until pop. */
const uint8_t *tutti__ring_peek(tutti__ring *r, uint64_t *tag, size_t *len);
void tutti__ring_pop(tutti__ring *r);

#ifdef __cplusplus
}
#endif

#endif
