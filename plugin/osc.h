/*
 * OSC as scsynth reads it: a checker for untrusted packets, a cursor that reads
 * arguments exactly the way scsynth's sc_msg_iter does, a bundle walker and a
 * small writer for the replies the proxy composes itself.
 *
 * Design notes
 * ------------
 * - scsynth trusts its input. Its packet unroller follows element sizes
 *   without checking them, skips strings by looking only at the last byte of
 *   each 4-byte word (OSCstrskip) and, when a command reads an argument whose
 *   type tag it does not handle, advances the tag index but not the data
 *   pointer. So a malformed packet can make it read outside the packet, loop,
 *   or crash. tutti__osc_check() accepts only what every one of those paths
 *   reads inside the packet:
 *     - size a positive multiple of 4;
 *     - a message: an address that is a NUL-terminated string whose padding is
 *       zero (so the first NUL and OSCstrskip agree), or an integer command
 *       (first byte 0, as sclang sends them); then either nothing, or a type
 *       tag string (',' + tags, zero padded) whose arguments consume the rest
 *       of the message exactly: no bytes left over, because a command that
 *       reads past its arguments walks the tag string into whatever follows;
 *     - tags of OSC 1.0 and 1.1 only (i f s b h t d S c r m T F N I [ ]);
 *       blobs with a non-negative size inside the message; strings NUL
 *       terminated and zero padded;
 *     - a bundle: "#bundle\0", a timetag, then elements of positive,
 *       4-aligned size inside the bundle, each a checked message or bundle,
 *       nested at most TUTTI_OSC_MAX_DEPTH deep.
 *   Messages with arguments but no type tag string are refused: scsynth would
 *   read their strings without bounds, and no current client sends them.
 * - What the checker cannot see is whether a command's arguments have the
 *   types that command expects; scsynth's own command parsers decide that.
 * - The cursor (tutti__osc_iter) mirrors sc_msg_iter::geti, including its
 *   quirks, so the proxy interprets /notify exactly as scsynth would.
 *
 * Thread rules: pure functions over caller memory; thread-safe, no allocation.
 */
#ifndef TUTTI_PLUGIN_OSC_H
#define TUTTI_PLUGIN_OSC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_OSC_MAX_DEPTH 8

/* Big-endian words and OSC padding, as every OSC reader and writer here needs
 * them. */
static inline size_t tutti__osc_pad4(size_t n)
{
    return (n + 3) & ~(size_t)3;
}
static inline uint32_t tutti__osc_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void tutti__osc_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline uint64_t tutti__osc_rd64(const uint8_t *p)
{
    return (uint64_t)tutti__osc_rd32(p) << 32 | tutti__osc_rd32(p + 4);
}
static inline void tutti__osc_wr64(uint8_t *p, uint64_t v)
{
    tutti__osc_wr32(p, (uint32_t)(v >> 32));
    tutti__osc_wr32(p + 4, (uint32_t)v);
}

/* scsynth's integer command numbers (server/SC_OSC_Commands.h). */
enum {
    TUTTI_OSC_CMD_NOTIFY = 1,
    TUTTI_OSC_CMD_STATUS = 2,
    TUTTI_OSC_CMD_CMD = 4,
};

/* 0 when `p` is one well-formed packet as described above, TUTTI_EPROTO
 * otherwise. */
int tutti__osc_check(const uint8_t *p, size_t len);

/* True when the packet starts as a bundle ("#bundle\0"). */
bool tutti__osc_is_bundle(const uint8_t *p, size_t len);

/* One checked message. */
typedef struct tutti__osc_msg {
    const char *addr;    /* the address string; NULL for an integer command */
    int cmd;             /* the integer command (byte 3, as scsynth reads it), or -1 */
    const char *tags;    /* the type tags after ','; NULL when there is no tag string */
    const uint8_t *args; /* the argument bytes */
    const uint8_t *end;
} tutti__osc_msg;

/* Splits a checked message into its parts. 0 or TUTTI_EPROTO. */
int tutti__osc_msg_parse(const uint8_t *p, size_t len, tutti__osc_msg *m);

/* True when the message is the command named `addr` or numbered `cmd`. */
bool tutti__osc_msg_is(const tutti__osc_msg *m, const char *addr, int cmd);

/* Reads arguments the way scsynth's sc_msg_iter does. */
typedef struct tutti__osc_iter {
    const tutti__osc_msg *m;
    const uint8_t *rd;
    unsigned count;
} tutti__osc_iter;

void tutti__osc_iter_init(tutti__osc_iter *it, const tutti__osc_msg *m);
/* sc_msg_iter::geti: i as is, f truncated, s and b skipped with the default,
 * any other tag counted but not consumed; the default once nothing remains. */
int32_t tutti__osc_iter_geti(tutti__osc_iter *it, int32_t dflt);
/* sc_msg_iter::gets: the string for an s tag, else `dflt` (not consumed). */
const char *tutti__osc_iter_gets(tutti__osc_iter *it, const char *dflt);

/* Calls `fn` for every message of a checked packet, depth first, in order.
 * Stops at, and returns, the first non-zero result. */
typedef int (*tutti__osc_visit_fn)(void *ctx, const uint8_t *msg, size_t len);
int tutti__osc_each_message(const uint8_t *p, size_t len, tutti__osc_visit_fn fn,
                            void *ctx);

/* Copies a checked bundle into `out` (at least `len` bytes) without the
 * messages for which `drop` returns true; nested bundles keep their place even
 * when emptied. Returns the new length (16 or more). */
typedef bool (*tutti__osc_drop_fn)(void *ctx, const uint8_t *msg, size_t len);
size_t tutti__osc_filter_bundle(const uint8_t *p, size_t len, tutti__osc_drop_fn drop,
                                void *ctx, uint8_t *out);

/* Rewrites a checked packet message by message: `fn` writes the new form of
 * one message into (out, cap) and returns 0 with its length in *n (0 removes
 * it), or an error, which stops the walk and is returned. Bundles keep their
 * header and place, even emptied. 0 and the packet's new length in *n, or
 * TUTTI_EFULL when `cap` is too small. */
typedef int (*tutti__osc_map_fn)(void *ctx, const uint8_t *msg, size_t len, uint8_t *out,
                                 size_t cap, size_t *n);
int tutti__osc_map(const uint8_t *p, size_t len, tutti__osc_map_fn fn, void *ctx,
                   uint8_t *out, size_t cap, size_t *n);

/* Copies a checked message with its first string argument replaced by
 * `with`. Returns the new length, or 0 when the message has no string
 * argument or `cap` is too small. */
size_t tutti__osc_replace_string(const uint8_t *msg, size_t len, const char *with,
                                 uint8_t *out, size_t cap);

/* Writes one message: address, then one argument per character of `types`
 * ('i' int32_t, 's' const char *, 'f' double (sent as a float), 'd' double,
 * 'b' a blob given as two
 * arguments, const void * and size_t). Returns its length, or 0 when
 * `cap` is too small or a type is not one of those. */
size_t tutti__osc_write(uint8_t *out, size_t cap, const char *addr, const char *types,
                        ...);
size_t tutti__osc_vwrite(uint8_t *out, size_t cap, const char *addr, const char *types,
                         va_list ap);

#ifdef __cplusplus
}
#endif

#endif
