/*
 * The plugin's session side (see session.h).
 */
#define _GNU_SOURCE
#include "session.h"

#include "journal.h"
#include "ns.h"
#include "osc.h"
#include "tutti/net.h"
#include "wire.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTX_BYTES 8
#define MAX_EVENT (64 * 1024)               /* the member's payload limit */
#define OUT_CAP (2 * MAX_EVENT + 4096)      /* a rewritten event, with room to grow */

static struct session {
    tutti_proxy_host host;
    pthread_mutex_t mu; /* guards net and the option strings */
    tutti_net *net;
    _Atomic(tutti_net *) live; /* the same, for the member's own thread */
    _Atomic bool active;

    /* Published by the member's thread, read by the proxy's. */
    _Atomic uint32_t my_id;
    _Atomic uint64_t submitted, submit_failed, delivered, late, injected, inject_failed,
        invalid, discarded_replies;

    /* The member's loop thread only. */
    tutti__ns *ns;
    uint32_t groups_made; /* bit p: part p's group exists on this server */
    cli_journal journal;
    bool journal_open;
    uint8_t out[OUT_CAP];
    uint8_t canon[OUT_CAP];

    char hub[128], session[32], name[32], journal_path[256];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (S.host.log) S.host.log(S.host.host, line);
}

void tutti__session_init(const tutti_proxy_host *host)
{
    S.host = *host;
}

bool tutti__session_active(void)
{
    return atomic_load(&S.active);
}

/* ------------------------------------------------------------- clocks */

/* Wall-clock time now as ns since 1900, the clock scsynth reads timetags by. */
static tutti_time wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((tutti_time)ts.tv_sec + 2208988800LL) * TUTTI_S + ts.tv_nsec;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* --------------------------------------------------------- outbound */

int tutti__session_submit(uint64_t ctx, const uint8_t *p, size_t len)
{
    if (len + CTX_BYTES > MAX_EVENT) return TUTTI_EINVAL;
    pthread_mutex_lock(&S.mu);
    int rc = TUTTI_ESTATE;
    if (S.net) {
        tutti_time t;
        if (tutti_net_session_now(S.net, &t) == 0) {
            if (tutti__osc_is_bundle(p, len)) {
                uint64_t tt = get_be64(p + 8);
                if (tt > 1) t += tutti_time_from_ntp(tt) - wall_now();
            }
            uint8_t buf[MAX_EVENT];
            put_be64(buf, ctx);
            memcpy(buf + CTX_BYTES, p, len);
            rc = tutti_net_submit(S.net, t, buf, (uint32_t)(len + CTX_BYTES));
        }
    }
    pthread_mutex_unlock(&S.mu);
    atomic_fetch_add(rc ? &S.submit_failed : &S.submitted, 1);
    return rc;
}

/* ---------------------------------------------------------- inbound */

static bool inject(const uint8_t *p, size_t len, uint64_t ctx)
{
    bool ok = S.host.inject(S.host.host, p, len, ctx);
    atomic_fetch_add(ok ? &S.injected : &S.inject_failed, 1);
    return ok;
}

/* The part's group, made on this server the first time the part is heard. */
static void ensure_group(uint32_t part)
{
    if (part >= TUTTI_NS_SLOTS || (S.groups_made & (1u << part))) return;
    uint8_t msg[64];
    size_t n = tutti__ns_part_setup(part, msg, sizeof msg);
    if (n && inject(msg, n, TUTTI_PROXY_CTX_DISCARD)) S.groups_made |= 1u << part;
}

/* `p` (a rewritten packet) as one bundle for local wall time `at`, into
 * S.canon's twin: a message is wrapped, a bundle gets the timetag. */
static size_t timed(const uint8_t *p, size_t len, tutti_time at, uint8_t *out)
{
    uint64_t tt = tutti_time_to_ntp(at);
    if (tutti__osc_is_bundle(p, len)) {
        memcpy(out, p, len);
        put_be64(out + 8, tt);
        return len;
    }
    memcpy(out, "#bundle", 8);
    put_be64(out + 8, tt);
    out[16] = (uint8_t)(len >> 24), out[17] = (uint8_t)(len >> 16);
    out[18] = (uint8_t)(len >> 8), out[19] = (uint8_t)len;
    memcpy(out + 20, p, len);
    return len + 20;
}

static void journal(const tutti_event *ev, const uint8_t *data, size_t len)
{
    if (!S.journal_open) return;
    tutti_event e = *ev;
    e.data = data;
    e.len = (uint32_t)len;
    cli_journal_write(&S.journal, &e);
}

static void on_command(const tutti_event *ev, tutti_time at)
{
    journal(ev, ev->data, ev->len);
    tutti__rec c;
    if (tutti__command_decode(ev->data, ev->len, &c)) return;
    if (c.u.command.op != TUTTI__CMD_REMOVE) return;
    uint32_t part = tutti_member_part(c.u.command.member_id);
    if (part >= TUTTI_NS_SLOTS || !(S.groups_made & (1u << part))) return;
    /* The member is gone: silence its part everywhere at the same place. */
    uint8_t msg[64], b[96];
    size_t n = tutti__osc_write(msg, sizeof msg, "/g_freeAll", "i",
                                (int32_t)tutti__ns_part_group(part));
    if (n) inject(b, timed(msg, n, at, b), TUTTI_PROXY_CTX_DISCARD);
}

static void learn_id(void *arg, void *engine)
{
    (void)arg;
    tutti_member_status st;
    tutti_member_status_get(engine, &st);
    atomic_store(&S.my_id, st.joined ? st.id : 0);
}

static void deliver(void *ctx, const tutti_event *ev, tutti_time now_session, bool late)
{
    (void)ctx;
    atomic_fetch_add(&S.delivered, 1);
    if (late) atomic_fetch_add(&S.late, 1);
    /* This server's wall clock at the event's session time. */
    tutti_time at = wall_now() + (ev->key.t - now_session);
    if (ev->kind == TUTTI_EV_COMMAND) {
        on_command(ev, at);
        return;
    }
    const uint8_t *osc = ev->data + CTX_BYTES;
    size_t len = ev->len >= CTX_BYTES ? ev->len - CTX_BYTES : 0;
    uint32_t part = tutti_member_part(ev->key.origin);
    ssize_t n = -1;
    if (ev->len >= CTX_BYTES && tutti__osc_check(osc, len) == 0)
        n = tutti__ns_rewrite(S.ns, part, osc, len, S.out, sizeof S.out);
    if (n < 0) {
        if (atomic_fetch_add(&S.invalid, 1) < 3)
            logf_("tutti: event %" PRIu64 " of member %" PRIu32
                  " is not OSC this server can play (%s); skipped on every member",
                  ev->key.seq, ev->key.origin, n == -1 ? "malformed" : tutti_strerror((int)n));
        journal(ev, NULL, 0);
        return;
    }
    /* Canonical: the rewritten packet, a bundle's timetag zeroed. */
    memcpy(S.canon, S.out, (size_t)n);
    if (n && tutti__osc_is_bundle(S.canon, (size_t)n)) put_be64(S.canon + 8, 0);
    journal(ev, S.canon, (size_t)n);
    if (!n) return; /* nothing left to run on a server */
    ensure_group(part);
    tutti_net *net = atomic_load(&S.live);
    if (net) tutti_net_call(net, learn_id, NULL); /* runs at once: this is its thread */
    bool mine = ev->key.origin == atomic_load(&S.my_id);
    uint64_t reply_to = mine ? get_be64(ev->data) : TUTTI_PROXY_CTX_DISCARD;
    size_t m = timed(S.out, (size_t)n, at, S.canon);
    inject(S.canon, m, reply_to);
}

static void notice(void *ctx, int level, const char *msg)
{
    (void)ctx;
    logf_("%s%s", level >= TUTTI_LOG_WARN ? "tutti: warning: " : "", msg);
}

static void net_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level >= TUTTI_LOG_INFO) logf_("tutti: %s", msg);
}

/* ------------------------------------------------------------ replies */

ssize_t tutti__session_reply(const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
    uint32_t id = atomic_load(&S.my_id);
    if (!atomic_load(&S.active) || !id) return -1;
    ssize_t n = tutti__ns_reply(S.ns, tutti_member_part(id), p, len, out, cap);
    if (n == 0) atomic_fetch_add(&S.discarded_replies, 1);
    return n;
}

/* ---------------------------------------------------- join, leave, stop */

/* Close the journal on the member's thread, after the last delivery. */
static void close_journal(void *arg, void *engine)
{
    (void)arg, (void)engine;
    if (!S.journal_open) return;
    if (cli_journal_close(&S.journal))
        logf_("tutti: the journal %s is incomplete (a write failed)", S.journal_path);
    S.journal_open = false;
}

static void stop_member(void)
{
    pthread_mutex_lock(&S.mu);
    tutti_net *n = S.net;
    S.net = NULL;
    pthread_mutex_unlock(&S.mu);
    atomic_store(&S.live, NULL);
    atomic_store(&S.active, false);
    if (!n) return;
    tutti_net_leave(n, 500 * TUTTI_MS);
    tutti_net_call(n, close_journal, NULL);
    tutti_net_stop(n);
    atomic_store(&S.my_id, 0);
    tutti__ns_destroy(S.ns);
    S.ns = NULL;
    logf_("tutti: left the session; the proxy is solo again");
}

int tutti__session_join(const tutti__session_opts *o, char *why, size_t cap)
{
    if (!o->hub || !*o->hub || !o->name || !*o->name) {
        snprintf(why, cap, "join needs a hub URL and a member name");
        return TUTTI_EINVAL;
    }
    stop_member();

    tutti_proxy_server srv = {0};
    if (S.host.server) S.host.server(S.host.host, &srv);
    tutti__ns_config nc;
    tutti__ns_config_init(&nc);
    nc.hw_audio_buses = srv.inputs + srv.outputs;
    if (srv.buffers &&
        tutti__ns_check_server(&nc, srv.buffers, srv.audio_buses, srv.control_buses, why,
                               cap))
        return TUTTI_EINVAL;
    int rc = tutti__ns_create(&S.ns, &nc);
    if (rc) {
        snprintf(why, cap, "%s", tutti_strerror(rc));
        return rc;
    }
    const char *rules = getenv("TUTTI_NS_RULES");
    if (rules && *rules && tutti__ns_rules_parse(S.ns, rules))
        logf_("tutti: TUTTI_NS_RULES=\"%s\" is not a list of name:kind pairs; ignored", rules);
    S.groups_made = 1; /* part 0 is the server's own */
    S.journal_open = false;
    snprintf(S.journal_path, sizeof S.journal_path, "%s", o->journal ? o->journal : "");
    if (S.journal_path[0]) {
        if (cli_journal_open(&S.journal, S.journal_path)) {
            snprintf(why, cap, "cannot write the journal %s", S.journal_path);
            tutti__ns_destroy(S.ns);
            S.ns = NULL;
            return TUTTI_EINVAL;
        }
        S.journal_open = true;
    }

    tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = o->session && *o->session ? o->session : "tutti";
    mc.name = o->name;
    mc.deliver_lead = 5 * TUTTI_MS; /* scsynth needs the bundle before its time */
    tutti_member_callbacks cb = {.ctx = NULL, .deliver = deliver, .notice = notice};
    tutti_net_config ncfg;
    tutti_net_config_init(&ncfg);
    ncfg.name = o->name;
    ncfg.log = net_log;
    tutti_net *n = NULL;
    rc = tutti_net_member_start(&n, &mc, &cb, o->hub, &ncfg);
    if (rc) {
        snprintf(why, cap, "cannot start the member for %s: %s", o->hub, tutti_strerror(rc));
        if (S.journal_open) cli_journal_close(&S.journal);
        S.journal_open = false;
        tutti__ns_destroy(S.ns);
        S.ns = NULL;
        return rc;
    }
    pthread_mutex_lock(&S.mu);
    S.net = n;
    atomic_store(&S.live, n);
    snprintf(S.hub, sizeof S.hub, "%s", o->hub);
    snprintf(S.session, sizeof S.session, "%s", mc.session);
    snprintf(S.name, sizeof S.name, "%s", o->name);
    pthread_mutex_unlock(&S.mu);
    atomic_store(&S.active, true);
    logf_("tutti: joining session \"%s\" at %s as %s", mc.session, o->hub, o->name);
    return 0;
}

void tutti__session_leave(void)
{
    stop_member();
}

void tutti__session_stop(void)
{
    stop_member();
}

void tutti__session_status_get(tutti__session_status *st)
{
    memset(st, 0, sizeof *st);
    st->active = atomic_load(&S.active);
    pthread_mutex_lock(&S.mu);
    if (S.net) {
        tutti_member_status ms;
        tutti_net_member_status(S.net, &ms);
        st->joined = ms.joined;
        st->id = ms.joined ? ms.id : 0;
        st->part = ms.joined ? tutti_member_part(ms.id) : 0;
        st->members = ms.members;
        st->horizon_ns = ms.horizon;
        st->clock_locked = ms.clock.locked;
        /* against this machine's wall clock, which session time reads as */
        st->clock_offset_ns = ms.clock.offset_ns - tutti_net_session_epoch();
        st->clock_bound_ns = ms.clock.bound_ns;
        st->rtt_ns = ms.clock.rtt_min_ns;
    }
    snprintf(st->hub, sizeof st->hub, "%s", S.hub);
    snprintf(st->session, sizeof st->session, "%s", S.session);
    snprintf(st->name, sizeof st->name, "%s", S.name);
    snprintf(st->journal, sizeof st->journal, "%s", S.journal_path);
    pthread_mutex_unlock(&S.mu);
    st->submitted = atomic_load(&S.submitted);
    st->submit_failed = atomic_load(&S.submit_failed);
    st->delivered = atomic_load(&S.delivered);
    st->late = atomic_load(&S.late);
    st->injected = atomic_load(&S.injected);
    st->inject_failed = atomic_load(&S.inject_failed);
    st->invalid = atomic_load(&S.invalid);
    st->discarded_replies = atomic_load(&S.discarded_replies);
}
