/*
 * The wire format between members and the hub.
 *
 * Design notes
 * ------------
 * A frame is one transport message (NNG keeps message boundaries, so frames are
 * length-delimited by the transport; inside, every part is length-delimited too):
 *
 *   frame  := magic "TU" | version u8 | flags u8 | varint link_seq | varint ack
 *             | record*
 *   record := type u8 | varint body_len | body
 *   body   := field*
 *   field  := varint key | value      key = (number << 3) | kind
 *             kind 0: varint, 1: fixed 64-bit little endian, 2: varint length + bytes
 *
 * Signed integers are zigzag varints; doubles are fixed 64-bit IEEE 754.
 * Compatibility rules: a decoder skips record types and field numbers it does not
 * know, and fields missing from a body take their zero value, so either side can
 * add fields and record types without breaking the other. A different major
 * `version` is refused with TUTTI_EVERSION.
 *
 * link_seq numbers the frames of one direction of one link, from 1; 0 marks an
 * unsequenced frame (pings, hellos, nacks) that is never retransmitted. `ack` is
 * the highest link_seq received in order from the other side.
 *
 * Decoding never trusts a length: every read is bounds-checked against the
 * frame, varints are at most 10 bytes, strings are views into the frame (not
 * NUL-terminated) and must not contain NUL. Any violation rejects the whole
 * frame with TUTTI_EPROTO and a reason; nothing is delivered from it.
 */
#ifndef TUTTI_WIRE_H
#define TUTTI_WIRE_H

#include "tutti/tutti.h"

#define TUTTI__WIRE_VERSION 1
#define TUTTI__WIRE_MAX_FRAME (1u << 20) /* larger frames are refused */

enum tutti__rec_type {
    TUTTI__REC_HELLO = 1,     /* member -> hub: join or resume */
    TUTTI__REC_WELCOME = 2,   /* hub -> member: admitted */
    TUTTI__REC_REJECT = 3,    /* hub -> member: refused or removed */
    TUTTI__REC_EVENT = 4,     /* both ways: one event */
    TUTTI__REC_WATERMARK = 5, /* both ways: a promise (origin 0: the session's close) */
    TUTTI__REC_PING = 6,      /* member -> hub */
    TUTTI__REC_PONG = 7,      /* hub -> member */
    TUTTI__REC_NACK = 8,      /* both ways: resend from link_seq */
    TUTTI__REC_REPORT = 9,    /* member -> hub: delivered count and hash */
    TUTTI__REC_NOTICE = 10,   /* hub -> member: something to tell the user */
    TUTTI__REC_REQUEST = 11,  /* member -> hub: ask for a command */
    TUTTI__REC_BYE = 12,      /* member -> hub: leaving */
    TUTTI__REC_COMMAND = 13,  /* only inside a TUTTI_EV_COMMAND event payload */
    TUTTI__REC_CHALLENGE = 14, /* hub -> member: answer a HELLO (see auth.h) */
    TUTTI__REC_AUTH = 15,      /* member -> hub: prove a credential */
    TUTTI__REC_STAMP = 16,     /* both ways, first in a frame: when it was made */
};

enum tutti__reject_code {
    TUTTI__REJ_SESSION = 1,  /* wrong session name */
    TUTTI__REJ_FULL = 2,     /* no room */
    TUTTI__REJ_REMOVED = 3,  /* you were removed at a cut; rejoin */
    TUTTI__REJ_UNKNOWN = 4,  /* resume of an id the hub does not know */
    TUTTI__REJ_VERSION = 5,
    TUTTI__REJ_AUTH = 6,     /* the credential was refused (reason says why) */
};

enum tutti__notice_code {
    TUTTI__NOTE_TEXT = 0,
    TUTTI__NOTE_DIVERGED = 1, /* a member's hash differs from the coordinator's */
    TUTTI__NOTE_MOVED = 2,    /* some of the member's events came after their close */
    TUTTI__NOTE_REFUSED = 3,  /* a request or events of the member were refused (role,
                               * limits); the text says what and why */
};

enum tutti__request_kind {
    TUTTI__REQ_BPM = 1,     /* f: bpm, from the next bar */
    TUTTI__REQ_HORIZON = 2, /* i: new L in ns */
    TUTTI__REQ_REMOVE = 3,  /* member: remove that member (admin) */
    TUTTI__REQ_TRANSPORT = 4, /* i: 1 start, 0 stop the transport, from a bar line */
};

enum tutti__command_op {
    TUTTI__CMD_ADD = 1,     /* member id, name, role join; horizon: first promise
                             * is the ADD's t plus this */
    TUTTI__CMD_REMOVE = 2,  /* member id leaves; its events up to last_seq count */
    TUTTI__CMD_TEMPO = 3,   /* timeline (bpm, beat0, t0, quantum, playing) */
    TUTTI__CMD_HORIZON = 4, /* L and heartbeat interval */
    TUTTI__CMD_ROLE = 5,    /* member id, role */
};

/* A byte string inside a frame: not NUL-terminated. */
typedef struct tutti__str {
    const uint8_t *p;
    uint32_t len;
} tutti__str;

typedef struct tutti__rec {
    uint8_t type; /* enum tutti__rec_type; unknown types are skipped, not passed */
    union {
        struct {
            /* both empty: the member hides them until its AUTH (ident) */
            tutti__str session, name;
            uint32_t role;
            uint32_t resume_id;   /* 0: a new join */
            uint64_t recv_next;   /* next hub link_seq this member expects */
            tutti__str cnonce;    /* 32 fresh random bytes */
            tutti__str epk;       /* the member's ephemeral X25519 key, 32 bytes */
        } hello;
        struct {
            tutti__str hnonce;    /* 32 fresh random bytes */
            tutti__str hub_pk;    /* the hub's Ed25519 public key, 32 bytes */
            tutti__str sig;       /* Ed25519 over the transcript, 64 bytes */
            uint32_t mode;        /* TUTTI__MODE_* bits: what the hub accepts */
        } challenge;
        struct {
            uint32_t kind;        /* enum tutti__auth_kind */
            tutti__str cred_id;   /* an invitation's id */
            tutti__str proof;     /* 32 bytes */
            /* the member's session and name sealed to this handshake
             * (tutti__auth_seal_id), when its HELLO left them out */
            tutti__str ident;
        } auth;
        struct {
            uint32_t member_id;
            tutti_time horizon, heartbeat;
            tutti_key joined;     /* the ADD command admitting this member */
            uint64_t hub_next;    /* link_seq of the hub's next sequenced frame */
            uint32_t role;        /* the role the hub gives (from the credential) */
            tutti__str settings;  /* the session's settings (tutti_hub_config) */
        } welcome;
        struct {
            uint32_t code; /* enum tutti__reject_code */
            tutti__str reason;
        } reject;
        struct {
            tutti_key key;
            uint32_t kind;
            tutti__str payload;
            /* hub -> member: the t the origin stamped, when the event reached
             * the hub after session time had closed on it and was moved to
             * key.t, the first open instant (0: not moved) */
            tutti_time moved_from;
        } event;
        struct {
            /* member -> hub: no future event of `origin` has t < w.
             * hub -> member, origin 0: the session's close, no record the hub
             * relays from now on has t < w (from any origin). */
            uint32_t origin;
            tutti_time w;
            uint64_t next_seq; /* the origin's next sequence number */
        } watermark;
        struct {
            tutti_time t1;
            tutti_time delay; /* the member's one-way delay to the hub, high estimate */
            uint64_t late;    /* events it delivered late since joining */
            tutti_time bound; /* its clock's error bound */
            tutti_time need;  /* the L its recent deliveries needed (0: not known) */
            tutti_time tail;  /* of need, what its tail says is still to come */
        } ping;
        struct {
            tutti_time t1, t2, t3;
        } pong;
        struct {
            /* The sender's clock when it made the frame: the member's local
             * clock, or the hub's session clock. Hub -> member also: of the
             * member's frames since the last echo, the one with the smallest
             * e2 - e1, its stamp e1 and the session time e2 it came (0:
             * none). Clock samples besides the pings (clock.h,
             * tutti__clock_note); a frame resent later keeps its old stamp,
             * which only loosens them. */
            tutti_time t, e1, e2;
        } stamp;
        struct {
            uint64_t from; /* resend frames with link_seq >= from */
        } nack;
        struct {
            uint64_t count; /* events delivered since joining */
            uint64_t hash;  /* chain hash after `count` events */
        } report;
        struct {
            uint32_t code; /* enum tutti__notice_code */
            int32_t level; /* enum tutti_log_level */
            tutti__str text;
        } notice;
        struct {
            uint32_t kind; /* enum tutti__request_kind */
            double f;
            tutti_time i;
            uint32_t member; /* REMOVE: which member */
        } request;
        struct {
            uint32_t op; /* enum tutti__command_op */
            uint32_t member_id;
            uint32_t role;
            tutti__str name;
            uint64_t last_seq; /* REMOVE: the member's last event that counts (0: none) */
            tutti_time horizon, heartbeat;
            tutti_timeline timeline; /* TEMPO */
        } command;
    } u;
} tutti__rec;

typedef struct tutti__frame_hdr {
    uint8_t version, flags;
    uint64_t link_seq, ack;
} tutti__frame_hdr;

/*
 * Decode a frame. Calls on_rec for each known record in order; a nonzero return
 * from on_rec stops decoding and is returned. The whole frame is validated before
 * the first callback, so a malformed frame delivers nothing. On TUTTI_EPROTO,
 * *why (if not NULL) points to a static reason.
 */
int tutti__frame_decode(const uint8_t *buf, size_t len, tutti__frame_hdr *hdr,
                        int (*on_rec)(void *ctx, const tutti__rec *r), void *ctx,
                        const char **why);

/* A growable output buffer. Memory is owned by the buffer; free with _free. */
typedef struct tutti__wbuf {
    uint8_t *p;
    size_t len, cap;
    int err; /* sticky: TUTTI_ENOMEM after a failed growth, later puts do nothing */
} tutti__wbuf;

void tutti__wbuf_init(tutti__wbuf *b);
void tutti__wbuf_free(tutti__wbuf *b);
void tutti__wbuf_reset(tutti__wbuf *b); /* len = 0, keeps memory */

/* Append a frame header / a record. */
void tutti__frame_begin(tutti__wbuf *b, const tutti__frame_hdr *hdr);
void tutti__rec_put(tutti__wbuf *b, const tutti__rec *r);

/* Encode/decode only a COMMAND record body (the payload of a command event). */
void tutti__command_encode(tutti__wbuf *b, const tutti__rec *cmd);
int tutti__command_decode(const uint8_t *buf, size_t len, tutti__rec *cmd);

/* A view of a C string. */
tutti__str tutti__str_c(const char *s);

#endif
