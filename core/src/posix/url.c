/*
 * Checking the addresses people type (see url.h for why this happens before
 * getaddrinfo and NNG see them).
 */
#include "posix/url.h"

#include <string.h>

int tutti__port_parse(const char *s, size_t len, unsigned lo, uint16_t *out)
{
    if (!s || len == 0) return TUTTI_EINVAL;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return TUTTI_EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 65535) return TUTTI_EINVAL; /* stops before it could overflow */
    }
    if (v < lo) return TUTTI_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

const char *tutti__port_rule(unsigned lo)
{
    return lo == TUTTI__PORT_ANY
               ? "the port must be a number from 0 to 65535 (0 picks a free port)"
               : "the port must be a number from 1 to 65535";
}

/* The authority of a URL (what follows "scheme://", up to a path) as host
 * and port. `*port` is NULL when no port is given. A bracketed IPv6 host
 * must be followed by ":PORT" or nothing. */
static int split_authority(const char *p, size_t len, const char **host, size_t *hlen,
                           const char **port, size_t *plen)
{
    *port = NULL;
    *plen = 0;
    if (len && p[0] == '[') {
        const char *end = memchr(p, ']', len);
        if (!end) return TUTTI_EINVAL;
        *host = p + 1;
        *hlen = (size_t)(end - p - 1);
        size_t rest = len - (size_t)(end - p) - 1;
        if (rest == 0) return 0;
        if (end[1] != ':') return TUTTI_EINVAL;
        *port = end + 2;
        *plen = rest - 1;
        return 0;
    }
    size_t colon = len;
    for (size_t i = 0; i < len; i++)
        if (p[i] == ':') colon = i;
    *host = p;
    *hlen = colon;
    if (colon < len) {
        *port = p + colon + 1;
        *plen = len - colon - 1;
    }
    return 0;
}

static int fail(const char **why, const char *sentence)
{
    if (why) *why = sentence;
    return TUTTI_EINVAL;
}

int tutti__url_listen_parse(const char *url, char *host, size_t hcap, uint16_t *port,
                            const char **why)
{
    static const char give[] = "give tcp://HOST:PORT, such as tcp://0.0.0.0:7770";
    if (!url || strncmp(url, "tcp://", 6) != 0) return fail(why, give);
    const char *p = url + 6, *h, *ps;
    size_t hl, pl;
    if (split_authority(p, strlen(p), &h, &hl, &ps, &pl) || !ps) return fail(why, give);
    if (hl >= hcap) return fail(why, "the host name is too long");
    if (tutti__port_parse(ps, pl, TUTTI__PORT_ANY, port))
        return fail(why, tutti__port_rule(TUTTI__PORT_ANY));
    memcpy(host, h, hl);
    host[hl] = 0;
    if (!strcmp(host, "*")) host[0] = 0;
    return 0;
}

/* NNG's schemes that carry a TCP port, and whether the port is required
 * (WebSocket URLs default to 80 or 443). */
static const struct {
    const char *scheme;
    int port_required;
} port_schemes[] = {
    {"tcp://", 1},      {"tcp4://", 1},     {"tcp6://", 1}, {"tls+tcp://", 1},
    {"tls+tcp4://", 1}, {"tls+tcp6://", 1}, {"ws://", 0},   {"ws4://", 0},
    {"ws6://", 0},      {"wss://", 0},      {"wss4://", 0}, {"wss6://", 0},
};

int tutti__url_dial_check(const char *url, const char **why)
{
    if (!url) return fail(why, "no URL");
    for (size_t i = 0; i < sizeof port_schemes / sizeof port_schemes[0]; i++) {
        size_t sl = strlen(port_schemes[i].scheme);
        if (strncmp(url, port_schemes[i].scheme, sl) != 0) continue;
        const char *p = url + sl, *h, *ps;
        size_t hl, pl;
        if (split_authority(p, strcspn(p, "/?#"), &h, &hl, &ps, &pl))
            return fail(why, "give SCHEME://HOST:PORT, an IPv6 address in brackets");
        if (!ps && port_schemes[i].port_required)
            return fail(why,
                        "give HOST:PORT after the scheme, e.g. tcp://203.0.113.5:7770");
        uint16_t port;
        if (ps && tutti__port_parse(ps, pl, TUTTI__PORT_MIN, &port))
            return fail(why, tutti__port_rule(TUTTI__PORT_MIN));
        return 0;
    }
    return 0; /* no port in this scheme: NNG judges the rest */
}
