/*
 * What the member and hub engines share: frame assembly and small helpers.
 */
#ifndef TUTTI_ENGINE_H
#define TUTTI_ENGINE_H

#include "link.h"
#include "wire.h"

#include <stdarg.h>

#define TUTTI__CHECKPOINT 16 /* members report their hash every this many events */
#define TUTTI__MAX_PAYLOAD (64u * 1024u)
/* The furthest ahead an event may be scheduled, and the largest horizon:
 * bounds on what one member can make everyone hold in memory. */
#define TUTTI__MAX_LEAD (60 * TUTTI_S)
#define TUTTI__MAX_HORIZON (10 * TUTTI_S)
/* Round trips a member keeps for the delay it reports (pings every 50-100 ms:
 * 3.2-6.4 s of them). For its "need" (the L its deliveries needed, see
 * member.c) it keeps the largest of each of its last NEED_LEVEL ping
 * intervals (1.6-3.2 s: the level) and how far each of the last NEED_SPREAD
 * stood above the level of its moment (6.4-12.8 s: the spread). */
#define TUTTI__DELAY_WINDOW 64
#define TUTTI__NEED_LEVEL 32
#define TUTTI__NEED_SPREAD 128
/* How far above the level the next NEED_SPREAD intervals may go, from the
 * excesses v[0..n) of the last ones (member.c). */
tutti_time tutti__spread_ahead(const tutti_time *v, uint32_t n, tutti_time level);
/* A member's first second is not measured (its clock locking, a session's
 * processes starting). Not longer: until every member measures, L rises on
 * round-trip guesses, which miss the wait for the promises, while the
 * session's first events meet the paths' slower moments (over a pareto
 * queue, 4 of 5 series fell below 99.9 % on time with 2 s, 5 of 10 with
 * 1 s; no other condition changed beyond its run-to-run spread). */
#define TUTTI__NEED_WARMUP (1 * TUTTI_S)
/* A sample above STALL_FACTOR x the window's median + STALL_SLACK is a stall
 * (a partition waited out, a crashed member's suspect time), not the path:
 * it is left out of the reported estimates. */
#define TUTTI__STALL_FACTOR 4
#define TUTTI__STALL_SLACK (20 * TUTTI_MS)
/* n random bytes from the platform's io->random, or from a splitmix64
 * counter in *fallback when it has none (fuzzing, benchmarks). */
void tutti__random_bytes(const tutti_io *io, uint64_t *fallback, uint8_t *out, size_t n);
/* The largest of v[0..n) (n <= DELAY_WINDOW) that is not a stall: samples
 * above STALL_FACTOR x the median + STALL_SLACK are left out. */
tutti_time tutti__high_estimate(const tutti_time *v, uint32_t n);
/* A member with nothing to send sends its promise at least this often (the
 * hub's own heartbeat, the close, may be shorter: 5 ms at small L). */
#define TUTTI__MEMBER_BEAT (20 * TUTTI_MS)
/* Frames we send carry at most this much body (the decoder takes 1 MiB). */
#define TUTTI__FRAME_BODY_MAX (TUTTI__WIRE_MAX_FRAME / 4)
/* A peer that is not connected: frames are numbered and kept, not sent. */
#define TUTTI__NO_PEER UINT32_MAX

/* Append raw bytes (whole records). */
void tutti__wbuf_append(tutti__wbuf *b, const uint8_t *p, size_t n);

/* At least n writable bytes at b->p (len set to 0); NULL when out of memory. */
uint8_t *tutti__wbuf_room(tutti__wbuf *b, size_t n);

/* Send `body` (records) as one frame, or several if it is large. Sequenced frames (seq=true) get the
 * link's next number and are kept for resending. `scratch` is reused. */
void tutti__send_frame(const tutti_io *io, uint32_t peer, tutti__link *l, bool seq,
                       const tutti__wbuf *body, tutti__wbuf *scratch);
/* Send one unsequenced record. Sealed when l has sealing on, except the
 * handshake's HELLO and AUTH, which a hub reads before it knows the link. */
void tutti__send_rec(const tutti_io *io, uint32_t peer, tutti__link *l,
                     const tutti__rec *r, tutti__wbuf *scratch);
/* Resend kept frames from `from` on (each sealed afresh when the link
 * seals); false if some have left the ring. */
bool tutti__resend(const tutti_io *io, uint32_t peer, tutti__link *l, uint64_t from);

/* An incoming frame, opened when it is sealed. If buf is sealed and l has
 * keys, it is opened into `out` and frame/flen point there, *sealed = true;
 * if it is not sealed, *frame = buf. TUTTI_EPROTO (with *why) when it is
 * sealed and does not open, or when l is NULL or has no keys; counted in
 * l->seal.refused when l is given. */
int tutti__open_frame(tutti__link *l, const uint8_t *buf, size_t len, tutti__wbuf *out,
                      const uint8_t **frame, size_t *flen, bool *sealed, const char **why);

void tutti__logf(const tutti_io *io, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copy a wire string into a NUL-terminated buffer of `cap` bytes; false if too
 * long. */
bool tutti__str_copy(char *dst, size_t cap, tutti__str s);

/* Append an origin's watermark record to `b`. */
void tutti__put_watermark(tutti__wbuf *b, uint32_t origin, tutti_time w, uint64_t next_seq);

/* Append a command event record to `b`. */
void tutti__put_command(tutti__wbuf *b, const tutti_key *key, const tutti__rec *cmd,
                        tutti__wbuf *scratch);

/*
 * The tempo schedule: the timeline in force and the changes still ahead, in
 * order of their start t0 (a later command with the same t0 wins). A change
 * takes effect when session time reaches its t0, so members and the hub agree
 * on the timeline at every session time however many changes are in flight.
 */
#define TUTTI__TEMPO_AHEAD 8

typedef struct tutti__tempo {
    tutti_timeline now;
    tutti_timeline ahead[TUTTI__TEMPO_AHEAD];
    uint32_t n;
} tutti__tempo;

void tutti__tempo_init(tutti__tempo *s, const tutti_timeline *tl);
void tutti__tempo_push(tutti__tempo *s, const tutti_timeline *tl);
/* The timeline in force at session time `at` (promotes what has started). */
tutti_timeline tutti__tempo_at(tutti__tempo *s, tutti_time at);
/* The timeline in force at `at`, without promoting anything (for status). */
tutti_timeline tutti__tempo_peek(const tutti__tempo *s, tutti_time at);
/* The last timeline scheduled (what a new change should start from). */
tutti_timeline tutti__tempo_last(const tutti__tempo *s);
/* The timeline in force at `at`, then the changes after it (of two for the
 * same instant only the later), without promoting anything: how many (fills
 * at most cap). */
uint32_t tutti__tempo_schedule(const tutti__tempo *s, tutti_time at, tutti_timeline *out,
                               uint32_t cap);

/* tutti_member_submit without its role check: a client changed to send what
 * its role forbids, so the simulation can show the hub refusing it (sim.h,
 * tutti_sim_forge). Not for anything else. */
int tutti__member_submit_any_role(tutti_member *m, tutti_time t, const uint8_t *data,
                                  uint32_t len, tutti_key *key);

#endif
