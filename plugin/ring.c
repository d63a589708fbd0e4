/*
 * The single-producer, single-consumer record ring; see ring.h.
 */
#include "ring.h"

#include "tutti/tutti.h"

#include <string.h>

enum { HDR = 16, SKIP = 1 };

typedef struct hdr {
    uint32_t len;
    uint32_t flags;
    uint64_t tag;
} hdr;

_Static_assert(sizeof(hdr) == HDR, "record header is 16 bytes");

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

void tutti__ring_init(tutti__ring *r, uint8_t *buf, size_t cap)
{
    r->buf = buf;
    r->cap = cap;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
}

size_t tutti__ring_max_record(const tutti__ring *r)
{
    return r->cap / 2 - HDR;
}

int tutti__ring_push(tutti__ring *r, uint64_t tag, const void *data, size_t len)
{
    if (len > tutti__ring_max_record(r)) return TUTTI_EINVAL;
    size_t need = HDR + round16(len);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t at = (size_t)(head & (r->cap - 1));
    size_t to_end = r->cap - at;
    size_t skip = to_end < need ? to_end : 0;
    if (r->cap - (size_t)(head - tail) < skip + need) return TUTTI_EFULL;
    if (skip) {
        hdr h = {0, SKIP, 0};
        memcpy(r->buf + at, &h, HDR);
        at = 0;
    }
    hdr h = {(uint32_t)len, 0, tag};
    memcpy(r->buf + at, &h, HDR);
    memcpy(r->buf + at + HDR, data, len);
    atomic_store_explicit(&r->head, head + skip + need, memory_order_release);
    return 0;
}

const uint8_t *tutti__ring_peek(tutti__ring *r, uint64_t *tag, size_t *len)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail == head) return NULL;
    size_t at = (size_t)(tail & (r->cap - 1));
    hdr h;
    memcpy(&h, r->buf + at, HDR);
    if (h.flags & SKIP) {
        tail += r->cap - at;
        atomic_store_explicit(&r->tail, tail, memory_order_release);
        if (tail == head) return NULL;
        at = 0;
        memcpy(&h, r->buf, HDR);
    }
    *tag = h.tag;
    *len = h.len;
    return r->buf + at + HDR;
}

void tutti__ring_pop(tutti__ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t at = (size_t)(tail & (r->cap - 1));
    hdr h;
    memcpy(&h, r->buf + at, HDR);
    atomic_store_explicit(&r->tail, tail + HDR + round16(h.len), memory_order_release);
}
