/* Sealed frames; see seal.h. */
#include "seal.h"
#include "wire.h"

#include <sodium.h>
#include <string.h>

static const char KDF_CTX[crypto_kdf_CONTEXTBYTES] = {'t', 'u', 't', 't',
                                                      'i', 'l', 'n', 'k'};
enum { SUBKEY_MEMBER_TO_HUB = 1, SUBKEY_HUB_TO_MEMBER = 2 };

void tutti__seal_init(tutti__seal *s, const uint8_t secret[32], bool hub)
{
    uint8_t m2h[32], h2m[32];
    crypto_kdf_derive_from_key(m2h, sizeof m2h, SUBKEY_MEMBER_TO_HUB, KDF_CTX, secret);
    crypto_kdf_derive_from_key(h2m, sizeof h2m, SUBKEY_HUB_TO_MEMBER, KDF_CTX, secret);
    memset(s, 0, sizeof *s);
    memcpy(s->tx_key, hub ? h2m : m2h, 32);
    memcpy(s->rx_key, hub ? m2h : h2m, 32);
    s->tx_next = 1;
    s->on = true;
    sodium_memzero(m2h, sizeof m2h);
    sodium_memzero(h2m, sizeof h2m);
}

void tutti__seal_off(tutti__seal *s)
{
    uint64_t refused = s->refused;
    sodium_memzero(s, sizeof *s);
    s->refused = refused;
}

bool tutti__seal_is_sealed(const uint8_t *buf, size_t len)
{
    return len >= 4 && buf[0] == 'T' && buf[1] == 'U' && (buf[3] & TUTTI__FLAG_SEALED);
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void nonce_of(uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES],
                     const uint8_t ctr[8])
{
    memset(nonce, 0, 4);
    memcpy(nonce + 4, ctr, 8);
}

size_t tutti__seal_frame(tutti__seal *s, uint8_t *out, const uint8_t *in, size_t len)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    out[0] = 'T';
    out[1] = 'U';
    out[2] = TUTTI__WIRE_VERSION;
    out[3] = TUTTI__FLAG_SEALED;
    put_u64le(out + 4, s->tx_next++);
    nonce_of(nonce, out + 4);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out + TUTTI__SEAL_HDR, &clen, in, len, out,
                                              TUTTI__SEAL_HDR, NULL, nonce, s->tx_key);
    return TUTTI__SEAL_HDR + (size_t)clen;
}

int tutti__seal_open(tutti__seal *s, uint8_t *out, size_t *out_len, const uint8_t *in,
                     size_t len, const char **why)
{
    const char *w = NULL;
    uint64_t ctr = 0;
    if (!s->on)
        w = "a sealed frame on a link without keys";
    else if (len < TUTTI__SEAL_OVERHEAD || !tutti__seal_is_sealed(in, len))
        w = "a sealed frame too short";
    else if (in[2] != TUTTI__WIRE_VERSION)
        w = "a sealed frame of another version";
    else {
        ctr = get_u64le(in + 4);
        if (ctr == 0)
            w = "a sealed frame with counter 0";
        else if (ctr <= s->rx_top &&
                 (s->rx_top - ctr >= 64 || (s->rx_window >> (s->rx_top - ctr)) & 1))
            w = "a replayed or too old sealed frame";
    }
    if (!w) {
        uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
        unsigned long long mlen = 0;
        nonce_of(nonce, in + 4);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(
                out, &mlen, NULL, in + TUTTI__SEAL_HDR, len - TUTTI__SEAL_HDR, in,
                TUTTI__SEAL_HDR, nonce, s->rx_key) != 0)
            w = "a sealed frame that does not open (wrong key or altered)";
        else
            *out_len = (size_t)mlen;
    }
    if (w) {
        s->refused++;
        if (why) *why = w;
        return TUTTI_EPROTO;
    }
    /* Only an authentic frame moves the window. */
    if (ctr > s->rx_top) {
        uint64_t shift = ctr - s->rx_top;
        s->rx_window = shift >= 64 ? 0 : s->rx_window << shift;
        s->rx_window |= 1;
        s->rx_top = ctr;
    } else {
        s->rx_window |= (uint64_t)1 << (s->rx_top - ctr);
    }
    return 0;
}
