/* The handshake's cryptography and invitations (see auth.h). */
#include "auth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int tutti__auth_init(void)
{
    return sodium_init() < 0 ? TUTTI_ENOMEM : 0;
}

void tutti__auth_keypair(uint8_t pk[32], uint8_t sk[64], const uint8_t seed[32])
{
    crypto_sign_seed_keypair(pk, sk, seed);
}

static void h_part(crypto_generichash_state *st, const void *p, size_t n)
{
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_generichash_update(st, len, sizeof len);
    if (n) crypto_generichash_update(st, p, n);
}

void tutti__auth_transcript(uint8_t th[32], const char *session, const uint8_t *cnonce,
                            const uint8_t *epk, const uint8_t *hnonce, const uint8_t *hub_pk)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    h_part(&st, "tutti-hs-1", 10);
    h_part(&st, session, strlen(session));
    h_part(&st, cnonce, 32);
    h_part(&st, epk, 32);
    h_part(&st, hnonce, 32);
    h_part(&st, hub_pk, 32);
    crypto_generichash_final(&st, th, 32);
}

static void sign_msg(uint8_t msg[17 + 32], const uint8_t th[32])
{
    memcpy(msg, "tutti-challenge-1", 17);
    memcpy(msg + 17, th, 32);
}

void tutti__auth_sign(uint8_t sig[64], const uint8_t th[32], const uint8_t sk[64])
{
    uint8_t msg[17 + 32];
    sign_msg(msg, th);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
}

bool tutti__auth_verify(const uint8_t sig[64], const uint8_t th[32], const uint8_t pk[32])
{
    uint8_t msg[17 + 32];
    sign_msg(msg, th);
    return crypto_sign_verify_detached(sig, msg, sizeof msg, pk) == 0;
}

void tutti__auth_ephemeral(uint8_t epk[32], uint8_t esk[32], const uint8_t seed[32])
{
    /* X25519 clamps the scalar itself; hash the seed so it is uniform. */
    crypto_generichash(esk, 32, seed, 32, (const uint8_t *)"tutti-eph-1", 11);
    crypto_scalarmult_base(epk, esk);
}

bool tutti__auth_dh_member(uint8_t dh[32], const uint8_t esk[32], const uint8_t hub_pk[32])
{
    uint8_t x[32];
    if (crypto_sign_ed25519_pk_to_curve25519(x, hub_pk) != 0) return false;
    return crypto_scalarmult(dh, esk, x) == 0;
}

bool tutti__auth_dh_hub(uint8_t dh[32], const uint8_t hub_sk[64], const uint8_t epk[32])
{
    uint8_t x[32];
    crypto_sign_ed25519_sk_to_curve25519(x, hub_sk);
    bool ok = crypto_scalarmult(dh, x, epk) == 0;
    sodium_memzero(x, sizeof x);
    return ok;
}

void tutti__auth_proof(uint8_t proof[32], const uint8_t key[32], const uint8_t dh[32],
                       const uint8_t th[32], uint32_t kind, const char *cred_id,
                       const char *name, uint32_t resume_id)
{
    crypto_generichash_state st;
    uint8_t k[4] = {(uint8_t)(kind >> 24), (uint8_t)(kind >> 16), (uint8_t)(kind >> 8),
                    (uint8_t)kind};
    uint8_t r[4] = {(uint8_t)(resume_id >> 24), (uint8_t)(resume_id >> 16),
                    (uint8_t)(resume_id >> 8), (uint8_t)resume_id};
    crypto_generichash_init(&st, key, 32, 32);
    h_part(&st, "tutti-proof-1", 13);
    h_part(&st, dh, 32);
    h_part(&st, th, 32);
    h_part(&st, k, 4);
    h_part(&st, cred_id, strlen(cred_id));
    h_part(&st, name, strlen(name));
    h_part(&st, r, 4);
    crypto_generichash_final(&st, proof, 32);
}

bool tutti__auth_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void tutti__auth_member_secret(uint8_t secret[32], const uint8_t dh[32], const uint8_t th[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, dh, 32, 32);
    h_part(&st, "tutti-member-1", 14);
    h_part(&st, th, 32);
    crypto_generichash_final(&st, secret, 32);
}

int tutti__auth_passphrase_key(uint8_t key[32], const char *passphrase, const char *session)
{
    uint8_t salt[crypto_pwhash_SALTBYTES];
    crypto_generichash(salt, sizeof salt, (const uint8_t *)session, strlen(session),
                       (const uint8_t *)"tutti-pass-salt-1", 17);
    if (crypto_pwhash(key, 32, passphrase, strlen(passphrase), salt,
                      crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return TUTTI_ENOMEM;
    return 0;
}

void tutti__auth_wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

/* ------------------------------------------------------- invitations */

static const char *const role_names[] = {"performer", "listener", "conductor", "admin"};

int tutti__role_from_name(const char *s, size_t len)
{
    for (int i = 0; i < 4; i++)
        if (strlen(role_names[i]) == len && memcmp(s, role_names[i], len) == 0) return i;
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool tutti__hex32(const char *s, size_t len, uint8_t out[32])
{
    if (len != 64) return false;
    for (size_t i = 0; i < 32; i++) {
        int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
        if (a < 0 || b < 0) return false;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return true;
}

void tutti__to_hex(char *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* Next field of line[*pos..len): returns its start and length, or false. */
static bool next_field(const char *line, size_t len, size_t *pos, const char **f, size_t *flen)
{
    size_t i = *pos;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    if (i >= len) return false;
    size_t j = i;
    while (j < len && line[j] != ' ' && line[j] != '\t') j++;
    *f = line + i;
    *flen = j - i;
    *pos = j;
    return true;
}

int tutti__invite_parse(const char *line, size_t len, tutti__invite *out, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    memset(out, 0, sizeof *out);
    if (!line) {
        *why = "no invitation";
        return TUTTI_EINVAL;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 && c != '\t') {
            *why = "a control character in the invitation";
            return TUTTI_EINVAL;
        }
    }
    size_t pos = 0, n;
    const char *f;
    if (!next_field(line, len, &pos, &f, &n) || n != 14 || memcmp(f, "tutti-invite-1", 14)) {
        *why = "not a tutti invitation (it starts \"tutti-invite-1\")";
        return TUTTI_EINVAL;
    }
    if (!next_field(line, len, &pos, &f, &n) || n == 0 || n >= TUTTI__INVITE_ID_MAX) {
        *why = "the invitation's id is missing or too long";
        return TUTTI_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if (hexval(f[i]) < 0) {
            *why = "the invitation's id is not hexadecimal";
            return TUTTI_EINVAL;
        }
    memcpy(out->id, f, n);
    if (!next_field(line, len, &pos, &f, &n) || (out->role = tutti__role_from_name(f, n)) < 0) {
        *why = "the invitation's role is not performer, listener, conductor or admin";
        return TUTTI_EINVAL;
    }
    if (!next_field(line, len, &pos, &f, &n) || n == 0 || n > 15) {
        *why = "the invitation's expiry is missing or out of range";
        return TUTTI_EINVAL;
    }
    int64_t e = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9') {
            *why = "the invitation's expiry is not a number of seconds";
            return TUTTI_EINVAL;
        }
        e = e * 10 + (f[i] - '0');
    }
    out->expires = e;
    if (!next_field(line, len, &pos, &f, &n) || !tutti__hex32(f, n, out->secret)) {
        *why = "the invitation's secret is not 64 hex digits";
        return TUTTI_EINVAL;
    }
    if (!next_field(line, len, &pos, &f, &n) || !tutti__hex32(f, n, out->hub_pk)) {
        *why = "the invitation's hub key is not 64 hex digits";
        return TUTTI_EINVAL;
    }
    if (next_field(line, len, &pos, &f, &n)) {
        if (n >= sizeof out->url) {
            *why = "the invitation's URL is too long";
            return TUTTI_EINVAL;
        }
        memcpy(out->url, f, n);
    }
    if (next_field(line, len, &pos, &f, &n)) {
        *why = "extra fields after the invitation's URL";
        return TUTTI_EINVAL;
    }
    return 0;
}

size_t tutti__invite_format(const tutti__invite *inv, char *buf, size_t cap)
{
    char secret[65], pk[65];
    tutti__to_hex(secret, inv->secret, 32);
    tutti__to_hex(pk, inv->hub_pk, 32);
    const char *role = inv->role >= 0 && inv->role < 4 ? role_names[inv->role] : "performer";
    int k = snprintf(buf, cap, "tutti-invite-1 %s %s %lld %s %s%s%s", inv->id, role,
                     (long long)inv->expires, secret, pk, inv->url[0] ? " " : "", inv->url);
    tutti__auth_wipe(secret, sizeof secret);
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}
