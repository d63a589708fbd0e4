/*
 * A reliable FIFO link over a transport that may drop or cut frames.
 *
 * Design notes
 * ------------
 * TCP already retransmits, but connections break (a partition, a redial) and a
 * polyamorous NNG socket may drop a message when a pipe's queue is full. So the
 * protocol keeps its own sequence numbers: every sequenced frame of one
 * direction carries link_seq = 1, 2, 3, ...; the receiver accepts only the next
 * one, drops anything else, and on a gap asks for a resend from the first
 * missing number (NACK, at most once per nack_interval). The sender keeps the
 * frames it sent in a fixed ring until the peer acknowledges them (every frame
 * carries the highest link_seq received in order). A NACK for a frame that has
 * left the ring cannot be served: the engine then ends the link (the member is
 * removed and may rejoin), so nothing is ever silently lost.
 *
 * Thread rules: one thread at a time. Allocates (frame copies) on send.
 */
#ifndef TUTTI_LINK_H
#define TUTTI_LINK_H

#include "seal.h"
#include "tutti/tutti.h"

#define TUTTI__LINK_RING 2048 /* frames kept for resending (power of two) */

typedef struct tutti__link_frame {
    uint64_t seq;
    uint32_t len;
    uint8_t *buf;
} tutti__link_frame;

typedef struct tutti__link {
    uint64_t send_next; /* link_seq of the next sequenced frame we send */
    uint64_t acked;     /* highest of ours the peer has */
    uint64_t recv_next; /* link_seq we expect next */
    tutti_time last_nack;
    uint64_t gaps, dups;
    tutti__link_frame ring[TUTTI__LINK_RING];
    /* Sealing (seal.h): off on a fresh link; when on, every frame sent on
     * this link except the handshake's own records is sealed, and the
     * ring keeps plain frames (each resend is sealed afresh, new counter).
     * sbuf is where frames are sealed before io->send (owned, freed by
     * tutti__link_free). */
    tutti__seal seal;
    uint8_t *sbuf;
    size_t scap;
    /* Stamps (wire.h, TUTTI__REC_STAMP): when `stamps`, every frame sent
     * with tutti__send_frame begins with one, the io's clock plus
     * stamp_epoch, and (hub) the echo of the peer's tightest stamp since the
     * last echo (echo_t1 = 0: none), which it then clears. */
    bool stamps;
    tutti_time stamp_epoch, echo_t1, echo_t2;
} tutti__link;

/* Init clears everything (sealing off); call tutti__link_free first on a
 * link that was in use. Free releases the kept frames and wipes the keys. */
void tutti__link_init(tutti__link *l, uint64_t send_next, uint64_t recv_next);
void tutti__link_free(tutti__link *l);

/* Outcome of an incoming frame's header. */
enum { TUTTI__LINK_ACCEPT, TUTTI__LINK_DROP, TUTTI__LINK_GAP };
/* Check an incoming sequenced frame (link_seq != 0) and note its ack. On
 * ACCEPT, recv_next advances. On GAP the caller should NACK recv_next (if
 * tutti__link_should_nack says so). */
int tutti__link_receive(tutti__link *l, uint64_t link_seq, uint64_t ack);
bool tutti__link_should_nack(tutti__link *l, tutti_time now, tutti_time interval);

/* Keep a copy of a sequenced frame we are sending (seq = send_next, which
 * then advances). Returns TUTTI_ENOMEM on failure (the frame is still sent:
 * only its resend becomes impossible). */
int tutti__link_keep(tutti__link *l, const uint8_t *frame, size_t len);
/* The kept frame with this seq, or NULL if it has left the ring. */
const tutti__link_frame *tutti__link_find(const tutti__link *l, uint64_t seq);
/* Frames sent and not yet acknowledged. */
uint64_t tutti__link_in_flight(const tutti__link *l);

#endif
