/*
 * Sealed frames: the member<->hub link encrypted and authenticated after a
 * credentialed join (docs/security.md, "What is encrypted").
 *
 * Design notes
 * ------------
 * - AEAD: ChaCha20-Poly1305 (libsodium's _ietf construction, 12-byte nonce)
 *   with a counter nonce. A sealed frame is
 *     "TU" | version u8 | flags u8 (TUTTI__FLAG_SEALED) | counter u64 LE
 *     | ciphertext of the whole plain frame | 16-byte tag
 *   and its first 12 bytes (the clear header and the counter) are the
 *   associated data. The nonce is 4 zero bytes and the counter (LE).
 * - Keys: one per direction, derived from the member secret (auth.h: never
 *   sent, computed by both sides from the handshake's dh and transcript)
 *   with crypto_kdf (BLAKE2b), context "tuttilnk", subkey 1 member -> hub,
 *   subkey 2 hub -> member. Two keys, so the two directions' counters never
 *   meet under one key.
 * - Never the same nonce under one key: each direction has exactly one
 *   sender (the member's engine or the hub's slot for that member), which
 *   takes the counter from tx_next and increments it for every frame it
 *   seals, retransmissions included (the link ring keeps plain frames and
 *   every send seals afresh), and the counter lives exactly as long as the
 *   key: both are set together by tutti__seal_init and both are lost
 *   together (a rejoin makes a new member secret, so new keys). 2^64 frames
 *   are never reached.
 * - Replays: the receiver keeps the highest counter it opened and a 64-frame
 *   bitmap behind it (RFC 6479 style, as WireGuard and IPsec do). A counter
 *   already opened, or older than the window, is refused before any
 *   decryption: a captured frame replayed later is dropped even if the link
 *   would also have dropped it as a duplicate (pings and NACKs are
 *   unsequenced, so the link would not). The window tolerates a frame of an
 *   old connection arriving a little after frames of the new one.
 * - Resume (a cut connection picked up again, AUTH kind resume): the member
 *   keeps its keys and both counters; a resume is a new TCP connection of
 *   the same link, not a new link. This is safe for the nonce rule above
 *   because the counters are never reset while the keys live.
 * - A frame that fails to open (wrong key, tampered byte, replayed or
 *   too-old counter, truncated) is dropped and counted; nothing in it is
 *   decoded. Opening writes the plain frame into a caller buffer, which is
 *   only read after the tag has been checked.
 *
 * Thread rules: one thread at a time per tutti__seal. Not real-time safe
 * (the engines are not on the audio thread).
 */
#ifndef TUTTI_SEAL_H
#define TUTTI_SEAL_H

#include "tutti/tutti.h"

#define TUTTI__FLAG_SEALED 0x80u
#define TUTTI__SEAL_HDR 12 /* "TU", version, flags, counter u64 */
#define TUTTI__SEAL_TAG 16
#define TUTTI__SEAL_OVERHEAD (TUTTI__SEAL_HDR + TUTTI__SEAL_TAG)

typedef struct tutti__seal {
    bool on;
    uint8_t tx_key[32], rx_key[32];
    uint64_t tx_next;   /* counter of the next frame we seal, from 1 */
    uint64_t rx_top;    /* highest counter opened (0: none yet) */
    uint64_t rx_window; /* bit i: rx_top - i was opened */
    uint64_t refused;   /* frames that failed to open */
} tutti__seal;

/* Keys from the member secret; `hub` says which side we are. Counters
 * start over. The secret stays the caller's. */
void tutti__seal_init(tutti__seal *s, const uint8_t secret[32], bool hub);
/* Forget the keys (wiped) and turn sealing off. */
void tutti__seal_off(tutti__seal *s);

/* Whether buf is a sealed frame (by its header only: not yet opened). */
bool tutti__seal_is_sealed(const uint8_t *buf, size_t len);

/* Seal the plain frame `in` (len bytes) into `out` (room for len +
 * TUTTI__SEAL_OVERHEAD bytes); returns the sealed length. in and out must
 * not overlap. */
size_t tutti__seal_frame(tutti__seal *s, uint8_t *out, const uint8_t *in, size_t len);

/* Open the sealed frame `in` into `out` (room for len bytes); on success
 * *out_len is the plain frame's length and the counter is recorded. 0, or
 * TUTTI_EPROTO (counted in s->refused) with *why (static) set. */
int tutti__seal_open(tutti__seal *s, uint8_t *out, size_t *out_len, const uint8_t *in,
                     size_t len, const char **why);

#endif
