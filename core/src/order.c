/* The deterministic ordered merge; see order.h for the rules. */
#include "order.h"

#include <stdlib.h>
#include <string.h>

uint64_t tutti__fnv1a(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t tutti__event_digest(const tutti_key *k, uint32_t kind, const uint8_t *data,
                             uint32_t len)
{
    /* Canonical form, little endian, independent of struct layout. */
    uint8_t hdr[28];
    put_le(hdr, (uint64_t)k->t, 8);
    put_le(hdr + 8, k->origin, 4);
    put_le(hdr + 12, k->seq, 8);
    put_le(hdr + 20, kind, 4);
    put_le(hdr + 24, len, 4);
    uint64_t h = tutti__fnv1a(hdr, sizeof hdr, TUTTI__FNV_INIT);
    return tutti__fnv1a(data, len, h);
}

int tutti__order_init(tutti__order *o, uint32_t max_pending)
{
    memset(o, 0, sizeof *o);
    o->max = max_pending ? max_pending : (1u << 20);
    o->start.t = INT64_MIN;
    o->close = INT64_MIN;
    return 0;
}

static void clear_heap(tutti__order *o)
{
    for (uint32_t i = 0; i < o->n; i++) free(o->heap[i]);
    o->n = 0;
    o->bytes = 0;
}

void tutti__order_free(tutti__order *o)
{
    clear_heap(o);
    free(o->heap);
    free(o->origins);
    memset(o, 0, sizeof *o);
}

void tutti__order_reset(tutti__order *o, tutti_key start)
{
    clear_heap(o);
    o->norigins = 0;
    o->start = start;
    o->close = INT64_MIN;
    o->any_delivered = false;
    memset(&o->last, 0, sizeof o->last);
}

tutti__origin *tutti__order_origin(tutti__order *o, uint32_t id)
{
    for (uint32_t i = 0; i < o->norigins; i++)
        if (o->origins[i].id == id) return &o->origins[i];
    return NULL;
}

int tutti__order_add_origin(tutti__order *o, uint32_t id, uint64_t next_seq)
{
    if (tutti__order_origin(o, id)) return 0;
    if (o->norigins == o->origins_cap) {
        uint32_t cap = o->origins_cap ? 2 * o->origins_cap : 8;
        tutti__origin *p = realloc(o->origins, cap * sizeof *p);
        if (!p) return TUTTI_ENOMEM;
        o->origins = p;
        o->origins_cap = cap;
    }
    tutti__origin *r = &o->origins[o->norigins++];
    memset(r, 0, sizeof *r);
    r->id = id;
    r->next_seq = next_seq;
    return 0;
}

void tutti__order_set_close(tutti__order *o, tutti_time t)
{
    if (t > o->close) o->close = t;
}

void tutti__order_close(tutti__order *o, uint32_t id, uint64_t last_seq, tutti_key rm_key)
{
    tutti__origin *r = tutti__order_origin(o, id);
    if (!r) {
        /* Never heard of: it can send nothing we will deliver. */
        if (tutti__order_add_origin(o, id, last_seq + 1) != 0) return;
        r = tutti__order_origin(o, id);
    }
    r->closed = true;
    r->last_seq = last_seq;
    r->rm_key = rm_key;
}

uint32_t tutti__order_pending_of(const tutti__order *o, uint32_t id)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < o->n; i++)
        n += o->heap[i]->key.origin == id;
    return n;
}

void tutti__order_forget(tutti__order *o, uint32_t id)
{
    for (uint32_t i = 0; i < o->norigins; i++) {
        if (o->origins[i].id == id) {
            o->origins[i] = o->origins[--o->norigins];
            return;
        }
    }
}

static bool key_less(const tutti_key *a, const tutti_key *b)
{
    return tutti_key_cmp(a, b) < 0;
}

static void sift_up(tutti__order *o, uint32_t i)
{
    tutti__pending *x = o->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!key_less(&x->key, &o->heap[parent]->key)) break;
        o->heap[i] = o->heap[parent];
        i = parent;
    }
    o->heap[i] = x;
}

static void sift_down(tutti__order *o, uint32_t i)
{
    tutti__pending *x = o->heap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        const tutti_key *best = &x->key;
        if (l < o->n && key_less(&o->heap[l]->key, best)) m = l, best = &o->heap[l]->key;
        if (l + 1 < o->n && key_less(&o->heap[l + 1]->key, best)) m = l + 1;
        if (m == i) break;
        o->heap[i] = o->heap[m];
        i = m;
    }
    o->heap[i] = x;
}

int tutti__order_push(tutti__order *o, const tutti_key *key, tutti_time stamped,
                      uint32_t kind, const uint8_t *data, uint32_t len)
{
    if (tutti_key_cmp(key, &o->start) <= 0) {
        o->stale++;
        return 1;
    }
    if (o->any_delivered && tutti_key_cmp(key, &o->last) <= 0) {
        o->violations++;
        return 1;
    }
    tutti__origin *r = tutti__order_origin(o, key->origin);
    if (r && r->closed && key->seq > r->last_seq) return 1;
    if (o->n == o->max) return TUTTI_EFULL;
    if (o->n == o->cap) {
        uint32_t cap = o->cap ? 2 * o->cap : 256;
        if (cap > o->max) cap = o->max;
        tutti__pending **h = realloc(o->heap, cap * sizeof *h);
        if (!h) return TUTTI_ENOMEM;
        o->heap = h;
        o->cap = cap;
    }
    tutti__pending *p = malloc(sizeof *p + len);
    if (!p) return TUTTI_ENOMEM;
    p->key = *key;
    p->stamped = stamped && stamped < key->t ? stamped : key->t;
    p->kind = kind;
    p->len = len;
    if (len) memcpy(p->data, data, len);
    o->heap[o->n] = p;
    sift_up(o, o->n++);
    o->bytes += len;
    /* Only a stored event counts towards a removed origin's complete stream. */
    if (r && key->seq >= r->next_seq) r->next_seq = key->seq + 1;
    return 0;
}

tutti_key tutti__order_frontier(const tutti__order *o)
{
    tutti_key f = {o->close, 0, 0};
    return f;
}

const tutti__pending *tutti__order_ready(const tutti__order *o)
{
    if (o->n == 0) return NULL;
    tutti_key f = tutti__order_frontier(o);
    return tutti_key_cmp(&o->heap[0]->key, &f) < 0 ? o->heap[0] : NULL;
}

void tutti__order_pop(tutti__order *o)
{
    if (o->n == 0) return;
    tutti__pending *p = o->heap[0];
    o->last = p->key;
    o->any_delivered = true;
    o->heap[0] = o->heap[--o->n];
    if (o->n) sift_down(o, 0);
    o->bytes -= p->len;
    free(p);
}
