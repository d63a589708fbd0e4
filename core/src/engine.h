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
/* A peer that is not connected: frames are numbered and kept, not sent. */
#define TUTTI__NO_PEER UINT32_MAX

/* Append raw bytes (whole records). */
void tutti__wbuf_append(tutti__wbuf *b, const uint8_t *p, size_t n);

/* Send `body` (records) as one frame. Sequenced frames (seq=true) get the
 * link's next number and are kept for resending. `scratch` is reused. */
void tutti__send_frame(const tutti_io *io, uint32_t peer, tutti__link *l, bool seq,
                       const tutti__wbuf *body, tutti__wbuf *scratch);
/* Send one unsequenced record. */
void tutti__send_rec(const tutti_io *io, uint32_t peer, tutti__link *l,
                     const tutti__rec *r, tutti__wbuf *scratch);
/* Resend kept frames from `from` on; false if some have left the ring. */
bool tutti__resend(const tutti_io *io, uint32_t peer, const tutti__link *l, uint64_t from);

void tutti__logf(const tutti_io *io, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copy a wire string into a NUL-terminated buffer of `cap` bytes; false if too
 * long. */
bool tutti__str_copy(char *dst, size_t cap, tutti__str s);

/* Append a command event record to `b`. */
void tutti__put_command(tutti__wbuf *b, const tutti_key *key, const tutti__rec *cmd,
                        tutti__wbuf *scratch);

#endif
