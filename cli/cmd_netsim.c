/*
 * tutti netsim: the command line of the impairment relay (netsim.c): options,
 * link settings, the scenario language, and the summary printed on exit.
 *
 * A scenario is one event per line; "#" starts a comment. Times need a unit
 * (us, ms, s, min); probabilities are percentages ("1%" or "1").
 *
 *   at T set [up|down] SETTINGS    change link settings (both directions unless
 *                                  one is named); SETTINGS as for --up
 *   at T partition [up|down] D [reset]
 *                                  nothing gets through for D; with "reset" the
 *                                  connections are reset when it begins
 *   at T spike [up|down] X for D   X more one-way delay for D
 *   at T flap DOWN UP for D        down for DOWN, up for UP, again and again,
 *                                  for D (ending up)
 *   at T reset                     reset every connection
 *
 * SETTINGS: delay T, jitter T, uniform|normal|pareto (or dist NAME),
 * loss P, dup P, rate R (bit, kbit, mbit, gbit; 0 for unlimited).
 */
#include "cli.h"
#include "netsim.h"
#include "posix/url.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tutti netsim --listen ADDR --to ADDR [--delay MS] [--jitter MS]\n"
    "                    [--dist uniform|normal|pareto] [--jitter-model queue|independent]\n"
    "                    [--loss PCT] [--dup PCT]\n"
    "                    [--rate RATE] [--up SETTINGS] [--down SETTINGS]\n"
    "                    [--scenario FILE] [--event LINE]... [--seed N]\n"
    "                    [--recovery sack|rto] [--rto-min MS] [--queue-max BYTES]\n"
    "                    [--spin-max US] [--realtime] [--duration S] [--url-file FILE]\n"
    "                    [--quiet]\n"
    "\n"
    "A relay that stands for a network path: it accepts TCP connections on ADDR,\n"
    "dials --to for each, and carries both directions through a modelled path\n"
    "with one-way delay, jitter, loss, duplication and a bandwidth limit, under\n"
    "a model of TCP (a lost segment is sent again about a round trip later, or\n"
    "after the retransmission timeout, and everything behind it waits).\n"
    "Scheduled events cut the path (partitions), add latency spikes, make it\n"
    "flap or change its settings. Point a member at the relay instead of the hub.\n"
    "\n"
    "  --listen ADDR       where to accept, HOST:PORT or tcp://HOST:PORT (port 0\n"
    "                      picks a free one; see --url-file)\n"
    "  --to ADDR           what to dial for each connection (the hub)\n"
    "  --delay MS          one-way delay, each direction (default 0)\n"
    "  --jitter MS         delay spread (default 0); with --dist:\n"
    "                        uniform  delay +/- jitter (default)\n"
    "                        normal   sd jitter/2, clipped at +/- 2 jitter\n"
    "                        pareto   at least delay - jitter, mean delay + jitter,\n"
    "                                 heavy tail (shape 3) up to delay + 19 jitter\n"
    "  --jitter-model M    queue: the delay drifts smoothly over time (per direction,\n"
    "                      one curve with that distribution; consecutive segments\n"
    "                      see nearly the same delay), as behind a queue (default);\n"
    "                      independent: each segment draws its own delay and waits\n"
    "                      for the ones before it, so a busy direction is slower\n"
    "                      on average than a quiet one\n"
    "  --loss PCT          chance that one transmission of a segment is lost\n"
    "  --dup PCT           chance that a segment is sent twice (costs wire time)\n"
    "  --rate RATE         bandwidth per direction, e.g. 2mbit, 512kbit (default:\n"
    "                      unlimited)\n"
    "  --up SETTINGS       the up direction (toward --to) differs, e.g.\n"
    "                      \"delay 40ms jitter 5ms normal loss 1% rate 1mbit\"\n"
    "  --down SETTINGS     the same for the way back\n"
    "  --scenario FILE     scheduled events, one a line (docs/netsim.md), e.g.\n"
    "                      \"at 5s partition 3s\", \"at 10s spike 200ms for 2s\",\n"
    "                      \"at 20s flap 500ms 500ms for 10s\",\n"
    "                      \"at 30s set delay 40ms jitter 10ms normal loss 1%\"\n"
    "  --event LINE        one more event in the same form (repeatable)\n"
    "  --seed N            seed of every random draw (default 1)\n"
    "  --recovery MODE     sack: Linux's RACK-TLP, a loss costs about a round trip\n"
    "                      (default); rto: every loss waits for the timeout\n"
    "  --rto-min MS        the smallest retransmission timeout (default 200)\n"
    "  --queue-max BYTES   bytes held per direction before the relay stops reading\n"
    "                      from the sender (default 4194304); with --rate, the\n"
    "                      bottleneck's buffer\n"
    "  --spin-max US       wake up to US early and spin to each deadline, to be\n"
    "                      exact although the machine wakes threads late (default\n"
    "                      500; 0: never spin, use less CPU, be ~0.1-2 ms late)\n"
    "  --realtime          run at real-time priority (SCHED_FIFO 10), so that a busy\n"
    "                      machine delays the relay less (needs root or rtprio)\n"
    "  --duration S        stop after S seconds (default: until interrupted)\n"
    "  --url-file FILE     write tcp://HOST:PORT of the relay to FILE once it listens\n"
    "  --quiet             no status line every second\n"
    "\n"
    "Events are printed on stdout as they happen, and on exit a summary whose last\n"
    "line is one JSON object. Connections are logged on stderr.\n";

/* ------------------------------------------------------------- values */

/* A time like "30ms", "1.5s", "250us", "2min". A bare number is in
 * `bare_unit` ns, or an error when bare_unit is 0. */
static int parse_time(const char *s, tutti_time bare_unit, tutti_time *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0) return -1;
    double unit;
    if (!*end) {
        if (!bare_unit) return -1;
        unit = (double)bare_unit;
    } else if (!strcmp(end, "us")) {
        unit = 1e3;
    } else if (!strcmp(end, "ms")) {
        unit = 1e6;
    } else if (!strcmp(end, "s")) {
        unit = 1e9;
    } else if (!strcmp(end, "min")) {
        unit = 60e9;
    } else {
        return -1;
    }
    double ns = v * unit;
    if (ns > 1e16) return -1; /* about four months */
    *out = (tutti_time)llround(ns);
    return 0;
}

/* "1%", "1" or "0.5%": a fraction in [0, 1]. */
static int parse_pct(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return -1;
    if (*end == '%') end++;
    if (*end || v < 0 || v > 100) return -1;
    *out = v / 100;
    return 0;
}

/* "2mbit", "512kbit", "1gbit", "9600bit", "64000": bits per second. */
static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!strcmp(s, "none") || !strcmp(s, "unlimited")) {
        *out = 0;
        return 0;
    }
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0) return -1;
    char unit[16];
    size_t n = strlen(end);
    if (n >= sizeof unit) return -1;
    memcpy(unit, end, n + 1);
    if (n >= 2 && !strcmp(unit + n - 2, "/s")) unit[n - 2] = 0;
    double m = !*unit || !strcmp(unit, "bit") ? 1
               : !strcmp(unit, "kbit")        ? 1e3
               : !strcmp(unit, "mbit")        ? 1e6
               : !strcmp(unit, "gbit")        ? 1e9
                                              : -1;
    if (m < 0 || v * m > 1e12) return -1;
    *out = v * m;
    return 0;
}

static int parse_dist(const char *s)
{
    if (!strcmp(s, "uniform")) return TUTTI_JITTER_UNIFORM;
    if (!strcmp(s, "normal")) return TUTTI_JITTER_NORMAL;
    if (!strcmp(s, "pareto")) return TUTTI_JITTER_PARETO;
    return -1;
}

static const char *dist_name(int d)
{
    return d == TUTTI_JITTER_NORMAL   ? "normal"
           : d == TUTTI_JITTER_PARETO ? "pareto"
                                      : "uniform";
}

/* ----------------------------------------------------------- settings */

/* Where a message about a bad word comes from: "--up", "FILE line 3". */
typedef struct where {
    char what[300];
} where;

static int bad(const where *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(const where *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tutti netsim: %s: ", w->what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_USAGE;
}

/* Link settings from words (tok[0..n)); sets the fields it names. */
static int parse_settings(const where *w, char **tok, int n, netsim_link *l,
                          unsigned *fields)
{
    for (int i = 0; i < n; i++) {
        const char *k = tok[i];
        int d = parse_dist(k);
        if (d >= 0) {
            l->dist = d;
            *fields |= NETSIM_F_DIST;
            continue;
        }
        if (i + 1 >= n) return bad(w, "\"%s\" needs a value", k);
        const char *v = tok[++i];
        if (!strcmp(k, "delay") || !strcmp(k, "jitter")) {
            tutti_time t;
            if (parse_time(v, 0, &t) != 0)
                return bad(w, "%s wants a time with a unit (30ms, 1.5s, 500us)", k);
            if (k[0] == 'd') {
                l->delay = t;
                *fields |= NETSIM_F_DELAY;
            } else {
                l->jitter = t;
                *fields |= NETSIM_F_JITTER;
            }
        } else if (!strcmp(k, "dist")) {
            if ((d = parse_dist(v)) < 0)
                return bad(w, "\"%s\" is not a distribution (uniform, normal, pareto)",
                           v);
            l->dist = d;
            *fields |= NETSIM_F_DIST;
        } else if (!strcmp(k, "loss")) {
            if (parse_pct(v, &l->loss) != 0)
                return bad(w, "%s: loss must be between 0 and 100%%", v);
            *fields |= NETSIM_F_LOSS;
        } else if (!strcmp(k, "dup") || !strcmp(k, "duplicate")) {
            if (parse_pct(v, &l->dup) != 0)
                return bad(w, "%s: dup must be between 0 and 100%%", v);
            *fields |= NETSIM_F_DUP;
        } else if (!strcmp(k, "rate")) {
            if (parse_rate(v, &l->rate) != 0)
                return bad(w, "%s: rate wants bits per second, e.g. 2mbit or 512kbit", v);
            *fields |= NETSIM_F_RATE;
        } else {
            return bad(w,
                       "unknown setting \"%s\" (delay, jitter, uniform, normal, "
                       "pareto, loss, dup, rate)",
                       k);
        }
    }
    return 0;
}

static void describe(char *buf, size_t cap, const netsim_link *l, unsigned fields)
{
    size_t o = 0;
    buf[0] = 0;
#define ADD(...)                                                                         \
    do {                                                                                 \
        if (o < cap) o += (size_t)snprintf(buf + o, cap - o, __VA_ARGS__);               \
    } while (0)
    if (fields & NETSIM_F_DELAY) ADD("%sdelay %g ms", o ? ", " : "", cli_ms(l->delay));
    if (fields & NETSIM_F_JITTER)
        ADD("%sjitter %g ms%s%s", o ? ", " : "", cli_ms(l->jitter),
            fields & NETSIM_F_DIST ? " " : "",
            fields & NETSIM_F_DIST ? dist_name(l->dist) : "");
    else if (fields & NETSIM_F_DIST)
        ADD("%s%s jitter", o ? ", " : "", dist_name(l->dist));
    if (fields & NETSIM_F_LOSS) ADD("%sloss %g%%", o ? ", " : "", l->loss * 100);
    if (fields & NETSIM_F_DUP) ADD("%sdup %g%%", o ? ", " : "", l->dup * 100);
    if (fields & NETSIM_F_RATE) {
        if (l->rate >= 1e6)
            ADD("%srate %g Mbit/s", o ? ", " : "", l->rate / 1e6);
        else if (l->rate > 0)
            ADD("%srate %g kbit/s", o ? ", " : "", l->rate / 1e3);
        else
            ADD("%sno rate limit", o ? ", " : "");
    }
#undef ADD
}

/* ------------------------------------------------------------ events */

typedef struct evlist {
    netsim_event *v;
    size_t n, cap;
} evlist;

static netsim_event *ev_add(evlist *l, tutti_time at, int action, unsigned dirs)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        netsim_event *v = realloc(l->v, cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    netsim_event *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    e->at = at;
    e->action = action;
    e->dirs = dirs;
    return e;
}

static const char *dirs_name(unsigned dirs)
{
    return dirs == NETSIM_BOTH       ? "both directions"
           : dirs == 1u << NETSIM_UP ? "up only"
                                     : "down only";
}

#define MAX_TOKENS 64
#define MAX_FLAPS 100000

/* One scenario line, already cut into words. */
static int parse_event(const where *w, char **tok, int n, evlist *out)
{
    tutti_time at, d1, d2, d3;
    if (n < 3 || strcmp(tok[0], "at")) return bad(w, "expected \"at TIME WHAT ...\"");
    if (parse_time(tok[1], 0, &at) != 0)
        return bad(w, "\"%s\" is not a time with a unit (5s, 1500ms)", tok[1]);
    const char *verb = tok[2];
    tok += 3;
    n -= 3;
    unsigned dirs = NETSIM_BOTH;
    if (n > 0 && (!strcmp(tok[0], "up") || !strcmp(tok[0], "down")) &&
        strcmp(verb, "flap") && strcmp(verb, "reset")) {
        dirs = !strcmp(tok[0], "up") ? 1u << NETSIM_UP : 1u << NETSIM_DOWN;
        tok++;
        n--;
    }
    netsim_event *e;
    if (!strcmp(verb, "set")) {
        if (n == 0) return bad(w, "\"set\" needs settings, e.g. set delay 40ms");
        netsim_link l;
        memset(&l, 0, sizeof l);
        unsigned fields = 0;
        int rc = parse_settings(w, tok, n, &l, &fields);
        if (rc) return rc;
        if (!(e = ev_add(out, at, NETSIM_SET, dirs))) return CLI_FAIL;
        e->link = l;
        e->fields = fields;
        char desc[150];
        describe(desc, sizeof desc, &l, fields);
        snprintf(e->what, sizeof e->what, "set (%s): %s", dirs_name(dirs), desc);
        return 0;
    }
    if (!strcmp(verb, "partition")) {
        bool reset = n == 2 && !strcmp(tok[1], "reset");
        if ((n != 1 && !reset) || parse_time(tok[0], 0, &d1) != 0 || d1 <= 0)
            return bad(w, "expected \"at T partition [up|down] DURATION [reset]\"");
        if (!(e = ev_add(out, at, NETSIM_CUT, dirs))) return CLI_FAIL;
        e->reset = reset;
        snprintf(e->what, sizeof e->what, "partition begins (%.3f s, %s%s)",
                 (double)d1 / 1e9, dirs_name(dirs), reset ? ", connections reset" : "");
        if (!(e = ev_add(out, at + d1, NETSIM_HEAL, dirs))) return CLI_FAIL;
        snprintf(e->what, sizeof e->what, "partition ends (%s)", dirs_name(dirs));
        return 0;
    }
    if (!strcmp(verb, "spike")) {
        if (n != 3 || strcmp(tok[1], "for") || parse_time(tok[0], 0, &d1) != 0 ||
            parse_time(tok[2], 0, &d2) != 0 || d2 <= 0)
            return bad(w, "expected \"at T spike [up|down] EXTRA for DURATION\"");
        if (!(e = ev_add(out, at, NETSIM_SPIKE_ON, dirs))) return CLI_FAIL;
        e->link.delay = d1;
        snprintf(e->what, sizeof e->what,
                 "latency spike begins (+%g ms one-way for %.3f s, %s)", cli_ms(d1),
                 (double)d2 / 1e9, dirs_name(dirs));
        if (!(e = ev_add(out, at + d2, NETSIM_SPIKE_OFF, dirs))) return CLI_FAIL;
        e->link.delay = d1;
        snprintf(e->what, sizeof e->what, "latency spike ends (%s)", dirs_name(dirs));
        return 0;
    }
    if (!strcmp(verb, "flap")) {
        if (n != 4 || strcmp(tok[2], "for") || parse_time(tok[0], 0, &d1) != 0 ||
            parse_time(tok[1], 0, &d2) != 0 || parse_time(tok[3], 0, &d3) != 0 ||
            d1 <= 0 || d2 <= 0 || d3 <= 0)
            return bad(w, "expected \"at T flap DOWN UP for DURATION\"");
        uint64_t cycles = (uint64_t)((d3 + d1 + d2 - 1) / (d1 + d2));
        if (cycles > MAX_FLAPS) return bad(w, "that flaps too often");
        for (uint64_t i = 0; i < cycles; i++) {
            tutti_time t = at + (tutti_time)i * (d1 + d2);
            tutti_time down = t + d1 < at + d3 ? d1 : at + d3 - t;
            if (!(e = ev_add(out, t, NETSIM_CUT, NETSIM_BOTH))) return CLI_FAIL;
            snprintf(e->what, sizeof e->what,
                     "flap %" PRIu64 "/%" PRIu64 ": link down (partition of %g ms)",
                     i + 1, cycles, cli_ms(down));
            if (!(e = ev_add(out, t + down, NETSIM_HEAL, NETSIM_BOTH))) return CLI_FAIL;
            snprintf(e->what, sizeof e->what, "flap %" PRIu64 "/%" PRIu64 ": link up",
                     i + 1, cycles);
        }
        return 0;
    }
    if (!strcmp(verb, "reset")) {
        if (n != 0) return bad(w, "expected \"at T reset\"");
        if (!(e = ev_add(out, at, NETSIM_RESET, NETSIM_BOTH))) return CLI_FAIL;
        snprintf(e->what, sizeof e->what, "connections reset");
        return 0;
    }
    return bad(w, "unknown event \"%s\" (set, partition, spike, flap, reset)", verb);
}

/* Cut a line into words in place; "#" ends it. */
static int split(char *line, char **tok)
{
    int n = 0;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    for (char *p = line; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p) break;
        if (n == MAX_TOKENS) return -1;
        tok[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p) *p++ = 0;
    }
    return n;
}

static int parse_line(const where *w, const char *text, evlist *out)
{
    char buf[1024], *tok[MAX_TOKENS];
    if (strlen(text) >= sizeof buf) return bad(w, "the line is too long");
    strcpy(buf, text);
    int n = split(buf, tok);
    if (n < 0) return bad(w, "too many words");
    return n == 0 ? 0 : parse_event(w, tok, n, out);
}

static int read_scenario(const char *path, evlist *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tutti netsim: cannot read the scenario %s: %s\n", path,
                strerror(errno));
        return CLI_USAGE;
    }
    char line[1024];
    int no = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        no++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') line[--len] = 0;
        where w;
        snprintf(w.what, sizeof w.what, "%s line %d", path, no);
        rc = parse_line(&w, line, out);
    }
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------- addresses */

/* "tcp://HOST:PORT", "HOST:PORT", "[V6]:PORT" or ":PORT", the port from `lo`
 * (0 for --listen: any free port; 1 for --to) to 65535. */
static int parse_addr(const char *opt, const char *s, unsigned lo, char *host, size_t cap,
                      int *port)
{
    if (!strncmp(s, "tcp://", 6)) s += 6;
    const char *colon = strrchr(s, ':');
    if (!colon) {
        fprintf(stderr,
                "tutti netsim: --%s wants HOST:PORT (or tcp://HOST:PORT), not \"%s\"\n",
                opt, s);
        return CLI_USAGE;
    }
    uint16_t p;
    if (tutti__port_parse(colon + 1, strlen(colon + 1), lo, &p)) {
        fprintf(stderr, "tutti netsim: --%s \"%s\": %s\n", opt, s, tutti__port_rule(lo));
        return CLI_USAGE;
    }
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        s++;
        hl -= 2;
    }
    if (hl >= cap) {
        fprintf(stderr, "tutti netsim: --%s: the host name is too long\n", opt);
        return CLI_USAGE;
    }
    memcpy(host, s, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

static int write_url_file(const char *path, const char *url)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", url);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

/* ------------------------------------------------------------ summary */

static void print_dir(const char *name, const netsim_dir_stats *d)
{
    printf("  %-5s %" PRIu64 " B in, %" PRIu64 " B out, %" PRIu64 " segments, %" PRIu64
           " lost (%" PRIu64 " repaired after a round trip, %" PRIu64 " probes, %" PRIu64
           " timeouts), %" PRIu64 " duplicated, at most %" PRIu64
           " B held, longest stay %.3f ms\n",
           name, d->bytes_in, d->bytes_out, d->segments, d->lost, d->fast, d->probes,
           d->timeouts, d->dups, d->max_queue, cli_ms(d->max_delay));
}

static void json_dir(const char *name, const netsim_dir_stats *d)
{
    printf("\"%s\":{\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
           ",\"segments\":%" PRIu64 ",\"transmissions\":%" PRIu64 ",\"lost\":%" PRIu64
           ",\"fast\":%" PRIu64 ",\"probes\":%" PRIu64 ",\"timeouts\":%" PRIu64
           ",\"dups\":%" PRIu64 ",\"max_queue\":%" PRIu64 ",\"max_delay_ns\":%" PRId64
           ",\"read_pauses\":%" PRIu64 "}",
           name, d->bytes_in, d->bytes_out, d->segments, d->transmissions, d->lost,
           d->fast, d->probes, d->timeouts, d->dups, d->max_queue, d->max_delay,
           d->read_pauses);
}

/* ------------------------------------------------------------ command */

static int link_option(const char *name, const char *v, netsim_link *both, unsigned field)
{
    if (!v) return 0;
    tutti_time t;
    double x;
    switch (field) {
    case NETSIM_F_DELAY:
    case NETSIM_F_JITTER:
        if (parse_time(v, TUTTI_MS, &t) != 0) {
            fprintf(stderr,
                    "tutti netsim: --%s wants milliseconds (or a time with a unit: "
                    "30ms, 1.5s), not \"%s\"\n",
                    name, v);
            return CLI_USAGE;
        }
        for (int d = 0; d < 2; d++)
            *(field == NETSIM_F_DELAY ? &both[d].delay : &both[d].jitter) = t;
        return 0;
    case NETSIM_F_DIST: {
        int dist = parse_dist(v);
        if (dist < 0) {
            fprintf(
                stderr,
                "tutti netsim: --dist must be uniform, normal or pareto, not \"%s\"\n",
                v);
            return CLI_USAGE;
        }
        both[0].dist = both[1].dist = dist;
        return 0;
    }
    case NETSIM_F_LOSS:
    case NETSIM_F_DUP:
        if (parse_pct(v, &x) != 0) {
            fprintf(stderr,
                    "tutti netsim: --%s must be between 0 and 100%%, not \"%s\"\n", name,
                    v);
            return CLI_USAGE;
        }
        for (int d = 0; d < 2; d++)
            *(field == NETSIM_F_LOSS ? &both[d].loss : &both[d].dup) = x;
        return 0;
    default:
        if (parse_rate(v, &x) != 0) {
            fprintf(stderr,
                    "tutti netsim: --rate wants bits per second, e.g. 2mbit or 512kbit, "
                    "not \"%s\"\n",
                    v);
            return CLI_USAGE;
        }
        both[0].rate = both[1].rate = x;
        return 0;
    }
}

int cmd_netsim(int argc, char **argv)
{
    const char *listen = NULL, *to = NULL, *delay = NULL, *jitter = NULL, *dist = NULL,
               *loss = NULL, *dup = NULL, *rate = NULL, *up = NULL, *down = NULL,
               *scenario = NULL, *recovery = "sack", *rto_min = NULL, *url_file = NULL,
               *jitter_model = "queue";
    uint64_t seed = 1, queue_max = 4u << 20;
    double duration = 0, spin_max_us = 500;
    bool quiet = false, realtime = false;
    const cli_opt opts[] = {
        {"listen", CLI_STRING, &listen, 0, 0, NULL},
        {"to", CLI_STRING, &to, 0, 0, NULL},
        {"delay", CLI_STRING, &delay, 0, 0, NULL},
        {"jitter", CLI_STRING, &jitter, 0, 0, NULL},
        {"dist", CLI_STRING, &dist, 0, 0, NULL},
        {"loss", CLI_STRING, &loss, 0, 0, NULL},
        {"dup", CLI_STRING, &dup, 0, 0, NULL},
        {"rate", CLI_STRING, &rate, 0, 0, NULL},
        {"up", CLI_STRING, &up, 0, 0, NULL},
        {"down", CLI_STRING, &down, 0, 0, NULL},
        {"scenario", CLI_STRING, &scenario, 0, 0, NULL},
        {"seed", CLI_COUNT, &seed, 0, 1e18, "seed"},
        {"recovery", CLI_STRING, &recovery, 0, 0, NULL},
        {"jitter-model", CLI_STRING, &jitter_model, 0, 0, NULL},
        {"rto-min", CLI_STRING, &rto_min, 0, 0, NULL},
        {"queue-max", CLI_COUNT, &queue_max, 4096, 1 << 30, "bytes"},
        {"spin-max", CLI_NUMBER, &spin_max_us, 0, 100000, "microseconds"},
        {"duration", CLI_NUMBER, &duration, 0, 1e7, "seconds"},
        {"url-file", CLI_STRING, &url_file, 0, 0, NULL},
        {"quiet", CLI_FLAG, &quiet, 0, 0, NULL},
        {"realtime", CLI_FLAG, &realtime, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };

    /* --event may be given many times: take those out before the parser,
     * which keeps one value per option. */
    char **args = malloc((size_t)(argc + 1) * sizeof *args);
    const char **evs = malloc((size_t)(argc + 1) * sizeof *evs);
    int nargs = 0, nevs = 0, rc = 0;
    evlist events = {NULL, 0, 0};
    if (!args || !evs) {
        free(args);
        free(evs);
        return CLI_FAIL;
    }
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--event")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tutti netsim: --event needs a value\n");
                rc = CLI_USAGE;
                goto out;
            }
            evs[nevs++] = argv[++i];
        } else if (i > 0 && !strncmp(argv[i], "--event=", 8)) {
            evs[nevs++] = argv[i] + 8;
        } else {
            args[nargs++] = argv[i];
        }
    }
    args[nargs] = NULL;
    rc = cli_parse("netsim", usage, nargs, args, opts, NULL, NULL);
    if (rc) {
        rc = rc < 0 ? CLI_OK : rc;
        goto out;
    }
    if (!listen || !to) {
        fprintf(stderr, "tutti netsim: say where to listen and what to dial, e.g.\n"
                        "  tutti netsim --listen 127.0.0.1:7771 --to 127.0.0.1:7770 "
                        "--delay 30 --jitter 5 --loss 1\n");
        rc = CLI_USAGE;
        goto out;
    }

    netsim_config cfg;
    netsim_config_init(&cfg);
    char lhost[256], thost[256];
    if ((rc = parse_addr("listen", listen, TUTTI__PORT_ANY, lhost, sizeof lhost,
                         &cfg.listen_port)) ||
        (rc = parse_addr("to", to, TUTTI__PORT_MIN, thost, sizeof thost, &cfg.to_port)))
        goto out;
    cfg.listen_host = lhost;
    cfg.to_host = thost;
    if ((rc = link_option("delay", delay, cfg.link, NETSIM_F_DELAY)) ||
        (rc = link_option("jitter", jitter, cfg.link, NETSIM_F_JITTER)) ||
        (rc = link_option("dist", dist, cfg.link, NETSIM_F_DIST)) ||
        (rc = link_option("loss", loss, cfg.link, NETSIM_F_LOSS)) ||
        (rc = link_option("dup", dup, cfg.link, NETSIM_F_DUP)) ||
        (rc = link_option("rate", rate, cfg.link, NETSIM_F_RATE)))
        goto out;
    const char *dir_spec[2] = {up, down};
    for (int d = 0; d < 2; d++) {
        if (!dir_spec[d]) continue;
        char buf[1024], *tok[MAX_TOKENS];
        where w;
        snprintf(w.what, sizeof w.what, "--%s", d == NETSIM_UP ? "up" : "down");
        snprintf(buf, sizeof buf, "%s", dir_spec[d]);
        int n = split(buf, tok);
        unsigned fields = 0;
        if (n <= 0) {
            bad(&w, "wants settings, e.g. \"delay 40ms loss 1%%\"");
            rc = CLI_USAGE;
            goto out;
        }
        if ((rc = parse_settings(&w, tok, n, &cfg.link[d], &fields))) goto out;
    }
    if (!strcmp(recovery, "sack"))
        cfg.recovery = NETSIM_RECOVERY_SACK;
    else if (!strcmp(recovery, "rto"))
        cfg.recovery = NETSIM_RECOVERY_RTO;
    else {
        fprintf(stderr, "tutti netsim: --recovery must be sack or rto, not \"%s\"\n",
                recovery);
        rc = CLI_USAGE;
        goto out;
    }
    if (!strcmp(jitter_model, "queue"))
        cfg.jitter_model = NETSIM_JITTER_QUEUE;
    else if (!strcmp(jitter_model, "independent"))
        cfg.jitter_model = NETSIM_JITTER_INDEPENDENT;
    else {
        fprintf(stderr,
                "tutti netsim: --jitter-model must be queue or independent, not \"%s\"\n",
                jitter_model);
        rc = CLI_USAGE;
        goto out;
    }
    if (rto_min && (parse_time(rto_min, TUTTI_MS, &cfg.rto_min) != 0 ||
                    cfg.rto_min < TUTTI_MS || cfg.rto_min > 60 * TUTTI_S)) {
        fprintf(stderr,
                "tutti netsim: --rto-min wants milliseconds between 1 and 60000, not "
                "\"%s\"\n",
                rto_min);
        rc = CLI_USAGE;
        goto out;
    }
    if (scenario && (rc = read_scenario(scenario, &events))) goto out;
    for (int i = 0; i < nevs; i++) {
        where w;
        snprintf(w.what, sizeof w.what, "--event \"%.200s\"", evs[i]);
        if ((rc = parse_line(&w, evs[i], &events))) goto out;
    }
    /* Settings the scenario makes at 0 s are the link's settings from the
     * start: show those (the relay applies them again, announcing them). */
    for (size_t i = 0; i < events.n; i++) {
        const netsim_event *e = &events.v[i];
        if (e->at != 0 || e->action != NETSIM_SET) continue;
        for (int d = 0; d < 2; d++)
            if (e->dirs & (1u << d)) netsim_set(&cfg.link[d], &e->link, e->fields);
    }
    cfg.seed = seed;
    cfg.queue_max = (size_t)queue_max;
    cfg.spin_max = (tutti_time)(spin_max_us * 1e3);
    cfg.rt_priority = realtime ? NETSIM_RT_PRIORITY : 0;
    cfg.duration = (tutti_time)(duration * 1e9);
    cfg.events = events.v;
    cfg.nevents = events.n;
    cfg.stop_flag = &cli_stop_requested;
    cfg.out = stdout;
    cfg.status = !quiet;
    cfg.log = cli_log;
    cfg.log_ctx = "netsim";

    cli_catch_signals();
    netsim *ns;
    if (netsim_create(&ns, &cfg) != 0) {
        rc = CLI_FAIL;
        goto out;
    }
    char url[300];
    snprintf(url, sizeof url, "tcp://%s%s%s:%d", strchr(lhost, ':') ? "[" : "",
             !*lhost || !strcmp(lhost, "0.0.0.0") ? "127.0.0.1"
             : !strcmp(lhost, "::")               ? "::1"
                                                  : lhost,
             strchr(lhost, ':') ? "]" : "", netsim_port(ns));
    char desc[2][200];
    for (int d = 0; d < 2; d++) {
        const netsim_link *l = &cfg.link[d];
        unsigned f = NETSIM_F_DELAY | NETSIM_F_RATE;
        if (l->jitter > 0) f |= NETSIM_F_JITTER | NETSIM_F_DIST;
        if (l->loss > 0) f |= NETSIM_F_LOSS;
        if (l->dup > 0) f |= NETSIM_F_DUP;
        describe(desc[d], sizeof desc[d], l, f);
    }
    printf("tutti netsim: relaying %s -> %s:%d\n"
           "  up:   %s\n"
           "  down: %s\n"
           "  model: %s recovery, %s jitter, round trip %g ms, retransmission timeout "
           "%g ms, seed %" PRIu64 ", %zu scheduled event%s\n",
           url, thost, cfg.to_port, desc[NETSIM_UP], desc[NETSIM_DOWN],
           cfg.recovery == NETSIM_RECOVERY_SACK ? "SACK" : "RTO", jitter_model,
           cli_ms(netsim_srtt(&cfg.link[0], &cfg.link[1])),
           cli_ms(netsim_rto(&cfg.link[0], &cfg.link[1], cfg.rto_min)), seed, events.n,
           events.n == 1 ? "" : "s");
    fflush(stdout);
    if (url_file && write_url_file(url_file, url) != 0) {
        fprintf(stderr, "tutti netsim: cannot write %s: %s\n", url_file, strerror(errno));
        netsim_destroy(ns);
        rc = CLI_FAIL;
        goto out;
    }

    tutti_time start = tutti_net_now();
    int run_rc = netsim_run(ns);
    double secs = (double)(tutti_net_now() - start) / 1e9;
    netsim_stats st;
    netsim_stats_get(ns, &st);
    netsim_destroy(ns);

    printf("netsim: stopped after %.3f s: %" PRIu64 " connection%s (%" PRIu64
           " refused, %" PRIu64 " reset), %" PRIu64 " event%s, %" PRIu64 " partition%s\n",
           secs, st.connections, st.connections == 1 ? "" : "s", st.refused, st.resets,
           st.events, st.events == 1 ? "" : "s", st.partitions,
           st.partitions == 1 ? "" : "s");
    print_dir("up:", &st.dir[NETSIM_UP]);
    print_dir("down:", &st.dir[NETSIM_DOWN]);
    printf(
        "{\"role\":\"netsim\",\"listen\":\"%s\",\"to\":\"%s:%d\",\"seed\":%" PRIu64
        ",\"recovery\":\"%s\",\"jitter_model\":\"%s\",\"realtime\":%s,\"seconds\":%.3f,"
        "\"connections\":%" PRIu64
        ",\"refused\":%" PRIu64 ",\"resets\":%" PRIu64 ",\"events\":%" PRIu64
        ",\"partitions\":%" PRIu64 ",",
        url, thost, cfg.to_port, seed, recovery, jitter_model, st.realtime ? "true" : "false", secs,
        st.connections, st.refused, st.resets, st.events, st.partitions);
    json_dir("up", &st.dir[NETSIM_UP]);
    putchar(',');
    json_dir("down", &st.dir[NETSIM_DOWN]);
    printf("}\n");
    fflush(stdout);
    rc = run_rc == 0 ? CLI_OK : CLI_FAIL;
out:
    free(events.v);
    free(args);
    free(evs);
    return rc;
}
