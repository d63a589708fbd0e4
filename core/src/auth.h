/*
 * Authentication: the hub's key, invitations, and the join/resume handshake
 * (see docs/security.md for the threat model).
 *
 * Design notes
 * ------------
 * - Three messages after the member's HELLO (which carries a fresh cnonce and
 *   an ephemeral X25519 key epk): the hub's CHALLENGE (a fresh hnonce, its
 *   Ed25519 public key, a signature over the transcript hash th), the
 *   member's AUTH (a kind, a credential id, a proof), and WELCOME or REJECT.
 * - th = BLAKE2b-256("tutti-hs-1" | session | cnonce | epk | hnonce | hub_pk),
 *   each variable part length-prefixed. The hub signs "tutti-challenge-1" | th.
 * - dh = X25519(esk, the hub key as X25519) = X25519(hub x-secret, epk): a
 *   passive observer of the handshake cannot compute it, so the proof and
 *   the member secret derived through it reveal nothing testable offline.
 * - proof = BLAKE2b-256 keyed with the credential key over "tutti-proof-1" |
 *   dh | th | kind | credential id | name | resume id. The credential key is
 *   an invitation's secret, Argon2id of a passphrase (salted with the session
 *   name), the member secret (a resume), or zeros (an open hub).
 * - member secret = BLAKE2b-256 keyed with dh over "tutti-member-1" | th,
 *   derived on both sides after a join, never sent.
 * - Everything here is deterministic given its inputs: randomness (nonces,
 *   ephemeral keys) comes from the caller, which takes it from tutti_io, so
 *   the simulation stays reproducible.
 * - Comparisons of secrets are constant time (sodium_memcmp).
 *
 * Thread rules: pure functions, any thread. tutti__auth_init() must have
 * succeeded first (it calls sodium_init, which is thread-safe).
 */
#ifndef TUTTI_AUTH_H
#define TUTTI_AUTH_H

#include "tutti/tutti.h"

#define TUTTI__KEY_BYTES 32
#define TUTTI__NONCE_BYTES 32
#define TUTTI__SIG_BYTES 64
#define TUTTI__SK_BYTES 64 /* Ed25519 secret key (seed | public key) */
#define TUTTI__INVITE_ID_MAX 17 /* 16 hex digits and the NUL */

/* What the member proves with. Wire values of AUTH.kind. */
enum tutti__auth_kind {
    TUTTI__AUTH_OPEN = 0,
    TUTTI__AUTH_INVITE = 1,
    TUTTI__AUTH_PASSPHRASE = 2,
    TUTTI__AUTH_RESUME = 3,
};

/* Hub modes in CHALLENGE.mode (a bit set). */
#define TUTTI__MODE_OPEN 1u
#define TUTTI__MODE_PASSPHRASE 2u
#define TUTTI__MODE_INVITE 4u

/* 0, or TUTTI_ENOMEM when libsodium cannot start. Idempotent. */
int tutti__auth_init(void);

/* A key pair from a 32-byte seed. */
void tutti__auth_keypair(uint8_t pk[TUTTI__KEY_BYTES], uint8_t sk[TUTTI__SK_BYTES],
                         const uint8_t seed[TUTTI__KEY_BYTES]);

void tutti__auth_transcript(uint8_t th[32], const char *session, const uint8_t *cnonce,
                            const uint8_t *epk, const uint8_t *hnonce, const uint8_t *hub_pk);
void tutti__auth_sign(uint8_t sig[TUTTI__SIG_BYTES], const uint8_t th[32],
                      const uint8_t sk[TUTTI__SK_BYTES]);
bool tutti__auth_verify(const uint8_t sig[TUTTI__SIG_BYTES], const uint8_t th[32],
                        const uint8_t pk[TUTTI__KEY_BYTES]);

/* The member's ephemeral X25519 pair from a 32-byte seed. */
void tutti__auth_ephemeral(uint8_t epk[32], uint8_t esk[32], const uint8_t seed[32]);
/* dh on the member's side (esk, the hub's Ed25519 public key) and on the
 * hub's (its Ed25519 secret key, epk). False for a degenerate key. */
bool tutti__auth_dh_member(uint8_t dh[32], const uint8_t esk[32], const uint8_t hub_pk[32]);
bool tutti__auth_dh_hub(uint8_t dh[32], const uint8_t hub_sk[TUTTI__SK_BYTES],
                        const uint8_t epk[32]);

void tutti__auth_proof(uint8_t proof[32], const uint8_t key[32], const uint8_t dh[32],
                       const uint8_t th[32], uint32_t kind, const char *cred_id,
                       const char *name, uint32_t resume_id);
bool tutti__auth_equal(const uint8_t *a, const uint8_t *b, size_t n);
void tutti__auth_member_secret(uint8_t secret[32], const uint8_t dh[32], const uint8_t th[32]);

/* Argon2id ("interactive") of a passphrase salted with the session name.
 * Takes ~0.1 s and 64 MiB. 0 or TUTTI_ENOMEM. */
int tutti__auth_passphrase_key(uint8_t key[32], const char *passphrase, const char *session);

/* Wipe a secret. */
void tutti__auth_wipe(void *p, size_t n);

/* ------------------------------------------------------- invitations */

/*
 * One line of text, what `tutti invite` prints and a member reads:
 *   tutti-invite-1 ID ROLE EXPIRES SECRET HUBKEY [URL]
 * ID: 1 to 16 hex digits; ROLE: performer, listener, conductor or admin;
 * EXPIRES: Unix seconds (0: never); SECRET, HUBKEY: 64 hex digits each;
 * URL (optional): where the hub listens. Fields separated by single spaces
 * or tabs; a trailing newline is allowed. The hub's store (DIR/invites) is
 * such lines, one per invitation, '#' comments and blank lines allowed, and
 * a line starting "revoked " revokes the id that follows.
 */
typedef tutti_invite tutti__invite; /* tutti.h */

/* Parse one line (len bytes, not necessarily NUL-terminated). 0 or
 * TUTTI_EINVAL with *why (static) set. */
int tutti__invite_parse(const char *line, size_t len, tutti__invite *out, const char **why);
/* Format into buf (at least 256 bytes); returns the length. */
size_t tutti__invite_format(const tutti__invite *inv, char *buf, size_t cap);
/* Role from its name; -1 if unknown. */
int tutti__role_from_name(const char *s, size_t len);
/* 64 hex digits -> 32 bytes; false if malformed. */
bool tutti__hex32(const char *s, size_t len, uint8_t out[32]);
void tutti__to_hex(char *out, const uint8_t *p, size_t n); /* 2n+1 bytes */

#endif
