/*
 * The addresses people type: the hub's listen URL, a member's hub URL, and
 * the ports inside them. Checked here, before getaddrinfo, libuv or NNG see
 * them, because they read a port with strtoul and keep its low 16 bits:
 * "tcp://127.0.0.1:83306" made a hub listen on port 17770 (83306 - 65536),
 * and a member dial nothing and say nothing. A port outside its range, or one
 * that is not a number, is TUTTI_EINVAL with a sentence saying why.
 *
 * Pure functions on strings: thread-safe, no allocation, no I/O.
 */
#ifndef TUTTI_URL_H
#define TUTTI_URL_H

#include "tutti/tutti.h"

#include <stddef.h>
#include <stdint.h>

/* The lowest port each side accepts: a listener may ask for port 0 (any
 * free port, reported afterwards), a dialer may not. */
#define TUTTI__PORT_ANY 0
#define TUTTI__PORT_MIN 1

/* `len` bytes of `s` as a port from `lo` to 65535: decimal digits only (no
 * sign, space or "0x"), at least one. 0 and *out, or TUTTI_EINVAL. */
int tutti__port_parse(const char *s, size_t len, unsigned lo, uint16_t *out);

/* The sentence for a port refused by tutti__port_parse with `lo`, e.g. "the
 * port must be a number from 1 to 65535". A static string. */
const char *tutti__port_rule(unsigned lo);

/*
 * The hub's listen URL, "tcp://HOST:PORT": HOST may be a name, an IPv4
 * address, a bracketed IPv6 address, or empty or "*" for every address
 * (written to `host` as ""); PORT is 0 to 65535, 0 picking a free port.
 * 0, or TUTTI_EINVAL with a sentence in *why (static; `why` may be NULL).
 */
int tutti__url_listen_parse(const char *url, char *host, size_t hcap, uint16_t *port,
                            const char **why);

/*
 * A member's hub URL, before NNG dials it. For NNG's TCP schemes (tcp://,
 * tcp4://, tcp6://, tls+tcp://...) the URL must end in ":PORT" with PORT from
 * 1 to 65535; for its WebSocket schemes (ws://, wss://...) a port, when
 * given, must be too. Other schemes (ipc://, inproc://) have no port and are
 * left to NNG. 0, or TUTTI_EINVAL with a sentence in *why (may be NULL).
 */
int tutti__url_dial_check(const char *url, const char **why);

#endif
