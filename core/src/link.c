/* Reliable FIFO link bookkeeping; see link.h. */
#include "link.h"

#include <stdlib.h>
#include <string.h>

void tutti__link_init(tutti__link *l, uint64_t send_next, uint64_t recv_next)
{
    memset(l, 0, sizeof *l);
    l->send_next = send_next;
    l->recv_next = recv_next;
    l->acked = send_next - 1;
    l->last_nack = INT64_MIN / 2;
}

void tutti__link_free(tutti__link *l)
{
    for (size_t i = 0; i < TUTTI__LINK_RING; i++) free(l->ring[i].buf);
    memset(l->ring, 0, sizeof l->ring);
    free(l->sbuf);
    l->sbuf = NULL;
    l->scap = 0;
    tutti__seal_off(&l->seal);
}

int tutti__link_receive(tutti__link *l, uint64_t link_seq, uint64_t ack)
{
    /* Entries are overwritten as the ring wraps; `acked` tells the sender how
     * much of its window is still in flight (tutti__link_in_flight). */
    if (ack > l->acked && ack < l->send_next) l->acked = ack;
    if (link_seq == l->recv_next) {
        l->recv_next++;
        return TUTTI__LINK_ACCEPT;
    }
    if (link_seq < l->recv_next) {
        l->dups++;
        return TUTTI__LINK_DROP;
    }
    l->gaps++;
    return TUTTI__LINK_GAP;
}

bool tutti__link_should_nack(tutti__link *l, tutti_time now, tutti_time interval)
{
    if (now - l->last_nack < interval) return false;
    l->last_nack = now;
    return true;
}

int tutti__link_keep(tutti__link *l, const uint8_t *frame, size_t len)
{
    tutti__link_frame *f = &l->ring[l->send_next & (TUTTI__LINK_RING - 1)];
    uint64_t seq = l->send_next++;
    uint8_t *p = realloc(f->buf, len ? len : 1);
    if (!p) {
        free(f->buf);
        memset(f, 0, sizeof *f);
        return TUTTI_ENOMEM;
    }
    memcpy(p, frame, len);
    f->buf = p;
    f->len = (uint32_t)len;
    f->seq = seq;
    return 0;
}

const tutti__link_frame *tutti__link_find(const tutti__link *l, uint64_t seq)
{
    const tutti__link_frame *f = &l->ring[seq & (TUTTI__LINK_RING - 1)];
    return f->buf && f->seq == seq ? f : NULL;
}

uint64_t tutti__link_in_flight(const tutti__link *l)
{
    return l->send_next - 1 - l->acked;
}
