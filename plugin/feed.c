/*
 * The session feed (see feed.h).
 */
#include "feed.h"

#include "osc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds between 1900 (NTP, session time) and 1970 (Unix, wall clock). */
#define UNIX_FROM_NTP INT64_C(2208988800)

static struct feed {
    tutti__feed_send_fn send;
    uint64_t subs[TUTTI__FEED_MAX];
    uint32_t nsubs;
    bool sent; /* `last` holds what was sent */
    tutti__session_view last;
    uint64_t changes; /* tutti__session_changes() at the last poll */
    int64_t offset;   /* the session's offset from the wall clock clients have */
    bool have_offset;
    char link_told[16]; /* the Link bridge as subscribers were last told */
    uint32_t link_peers_told;
} F;

/* ------------------------------------------------------------ commands */

/* The next argument as a number: 1 and *v, or 0 when there is none or it is
 * not a number. */
static int number_arg(tutti__osc_iter *it, double *v)
{
    const char *tags = it->m->tags;
    if (!tags || !tags[it->count]) return 0;
    char t = tags[it->count];
    const uint8_t *p = it->rd;
    size_t need = t == 'd' ? 8 : 4;
    if ((t != 'i' && t != 'f' && t != 'd') || (size_t)(it->m->end - p) < need) return 0;
    if (t == 'i') {
        *v = (int32_t)tutti__osc_rd32(p);
    } else if (t == 'f') {
        uint32_t u = tutti__osc_rd32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        *v = f;
    } else {
        uint64_t u = tutti__osc_rd64(p);
        memcpy(v, &u, sizeof *v);
    }
    it->rd += need;
    it->count++;
    return 1;
}

int tutti__feed_parse(const uint8_t *p, size_t len, tutti__feed_cmd *out, char *why,
                      size_t cap)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m) ||
        !tutti__osc_msg_is(&m, "/cmd", TUTTI_OSC_CMD_CMD))
        return 0;
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    const char *name = tutti__osc_iter_gets(&it, NULL);
    if (!name || strcmp(name, "tutti")) return 0;
    const char *what = tutti__osc_iter_gets(&it, NULL);
    if (!what) return 0;
    int kind = !strcmp(what, "notify")      ? TUTTI__FEED_NOTIFY
               : !strcmp(what, "transport") ? TUTTI__FEED_TRANSPORT
               : !strcmp(what, "bpm")       ? TUTTI__FEED_BPM
                                            : 0;
    if (!kind) return 0;
    double v;
    if (!number_arg(&it, &v) || !isfinite(v)) {
        snprintf(why, cap,
                 kind == TUTTI__FEED_NOTIFY
                     ? "tutti notify: give 1 to subscribe, 0 to stop"
                 : kind == TUTTI__FEED_TRANSPORT
                     ? "tutti transport: give 1 to start, 0 to stop"
                     : "tutti bpm: give the tempo, a number");
        return TUTTI_EINVAL;
    }
    if (kind == TUTTI__FEED_BPM && !(v >= TUTTI_BPM_MIN && v <= TUTTI_BPM_MAX)) {
        snprintf(why, cap, "tutti bpm: %g is not a tempo a session takes (%g to %g)", v,
                 TUTTI_BPM_MIN, TUTTI_BPM_MAX);
        return TUTTI_EINVAL;
    }
    if (kind != TUTTI__FEED_BPM && v != 0 && v != 1) {
        snprintf(why, cap, "tutti %s: give 1 or 0, not %g", what, v);
        return TUTTI_EINVAL;
    }
    out->what = kind;
    out->value = v;
    return 1;
}

/* ------------------------------------------------------------ messages */

static int64_t sat_sub(int64_t a, int64_t b)
{
    if (b > 0 && a < INT64_MIN + b) return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b) return INT64_MAX;
    return a - b;
}

static double seconds(int64_t ns)
{
    /* whole seconds and the rest apart: the sum is as exact as a double of
     * 4e9 seconds can be (about 0.5 us) */
    return (double)(ns / TUTTI_S) + (double)(ns % TUTTI_S) / 1e9;
}

size_t tutti__feed_timeline_bundle(const tutti__session_view *v, uint32_t i, uint8_t *out,
                                   size_t cap)
{
    if (i >= v->ntl || cap < 20) return 0;
    const tutti_timeline *tl = &v->tl[i];
    /* ns since 1900 on this wall clock (saturated: a timeline from the
     * network may hold any t0) */
    int64_t local = sat_sub(tl->t0, v->offset_ns);
    size_t n = tutti__osc_write(out + 20, cap - 20, "/tutti/timeline", "idddddi",
                                (int32_t)v->seq, seconds(tl->t0),
                                seconds(sat_sub(local, UNIX_FROM_NTP * TUTTI_S)), tl->beat0,
                                tl->bpm, tl->quantum, (int32_t)(tl->playing ? 1 : 0));
    if (!n) return 0;
    memcpy(out, "#bundle\0", 8);
    tutti__osc_wr64(out + 8, tutti_time_to_ntp(local));
    tutti__osc_wr32(out + 16, (uint32_t)n);
    return 20 + n;
}

static const char *mode_name(int mode)
{
    return mode == TUTTI__MODE_SESSION   ? "session"
           : mode == TUTTI__MODE_JOINING ? "joining"
                                         : "solo";
}

static void send_session(const uint64_t *to, uint32_t n, const tutti__session_view *v)
{
    uint8_t buf[256];
    double horizon = (double)v->horizon_ns / 1e9;
    double latency = v->mode == TUTTI__MODE_SESSION
                         ? (double)(v->horizon_ns + TUTTI_CLIENT_MARGIN) / 1e9
                         : (double)TUTTI__FEED_SOLO_LATENCY / 1e9;
    size_t len = tutti__osc_write(
        buf, sizeof buf, "/tutti/session", "sddiiis", mode_name(v->mode), horizon,
        latency, (int32_t)v->members, (int32_t)v->id, (int32_t)v->part,
        v->mode == TUTTI__MODE_SESSION ? tutti_role_name(v->role) : "");
    for (uint32_t i = 0; len && i < n; i++)
        F.send(to[i], buf, len);
}

static void send_members(const uint64_t *to, uint32_t n, const tutti__session_view *v)
{
    uint8_t buf[4096];
    char tags[2 + 3 * TUTTI_PARTS] = ",";
    for (uint32_t i = 0; i < v->nlist; i++)
        memcpy(tags + 1 + 3 * i, "isi", 3);
    tags[1 + 3 * v->nlist] = 0;
    /* by hand: the arguments are a list */
    size_t at = 0, l;
    const char *addr = "/tutti/members";
    l = strlen(addr) + 1;
    memset(buf, 0, sizeof buf);
    memcpy(buf, addr, l);
    at = tutti__osc_pad4(l);
    l = strlen(tags) + 1;
    memcpy(buf + at, tags, l);
    at += tutti__osc_pad4(l);
    for (uint32_t i = 0; i < v->nlist; i++) {
        if (at + 4 + TUTTI_NAME_MAX + 4 > sizeof buf) return;
        tutti__osc_wr32(buf + at, v->list[i].id);
        at += 4;
        l = strnlen(v->list[i].name, TUTTI_NAME_MAX - 1) + 1;
        memcpy(buf + at, v->list[i].name, l - 1);
        at += tutti__osc_pad4(l);
        tutti__osc_wr32(buf + at, tutti_member_part(v->list[i].id));
        at += 4;
    }
    for (uint32_t i = 0; i < n; i++)
        F.send(to[i], buf, at);
}

static void send_timelines(const uint64_t *to, uint32_t n, const tutti__session_view *v)
{
    uint8_t buf[256];
    for (uint32_t k = 0; k < v->ntl; k++) {
        size_t len = tutti__feed_timeline_bundle(v, k, buf, sizeof buf);
        for (uint32_t i = 0; len && i < n; i++)
            F.send(to[i], buf, len);
    }
}

/* ------------------------------------------------------------ changes */

static bool same_timeline(const tutti_timeline *a, const tutti_timeline *b)
{
    return a->bpm == b->bpm && a->beat0 == b->beat0 && a->t0 == b->t0 &&
           a->quantum == b->quantum && a->playing == b->playing;
}

/* The schedules differ otherwise than by a change having come into force
 * (the first of `a` dropped). */
static bool schedule_changed(const tutti__session_view *a, const tutti__session_view *b)
{
    if (a->seq != b->seq || a->mode != b->mode) return true;
    uint32_t skip = 0;
    while (skip < a->ntl && b->ntl > 0 && !same_timeline(&a->tl[skip], &b->tl[0]))
        skip++;
    if (skip == a->ntl || a->ntl - skip != b->ntl) return true;
    for (uint32_t i = 0; i < b->ntl; i++)
        if (!same_timeline(&a->tl[skip + i], &b->tl[i])) return true;
    return false;
}

static bool members_changed(const tutti__session_view *a, const tutti__session_view *b)
{
    if (a->nlist != b->nlist) return true;
    for (uint32_t i = 0; i < a->nlist; i++)
        if (a->list[i].id != b->list[i].id || strcmp(a->list[i].name, b->list[i].name))
            return true;
    return false;
}

/* /tutti/link: the LAN's Link bridge ("off" once the setting is turned off;
 * nothing while it never was on). What was last told is kept apart from the
 * last view: a subscriber is told at once, between two polls. */
static void send_link(const uint64_t *to, uint32_t n, const tutti__session_view *v)
{
    uint8_t buf[64];
    size_t len = tutti__osc_write(buf, sizeof buf, "/tutti/link", "si",
                                  v->link[0] ? v->link : "off", (int32_t)v->link_peers);
    for (uint32_t i = 0; len && i < n; i++)
        F.send(to[i], buf, len);
    memcpy(F.link_told, v->link, sizeof F.link_told);
    F.link_peers_told = v->link_peers;
}

static bool link_changed(const tutti__session_view *v)
{
    return (v->link[0] || F.link_told[0]) &&
           (strcmp(v->link, F.link_told) != 0 || v->link_peers != F.link_peers_told);
}

static bool session_changed(const tutti__session_view *a, const tutti__session_view *b)
{
    return a->mode != b->mode || a->horizon_ns != b->horizon_ns ||
           a->members != b->members || a->id != b->id || a->role != b->role;
}

void tutti__feed_init(tutti__feed_send_fn send)
{
    memset(&F, 0, sizeof F);
    F.send = send;
}

uint32_t tutti__feed_subscribers(void)
{
    return F.nsubs;
}

static void reply(uint64_t ctx, const char *addr, const char *text)
{
    uint8_t buf[256];
    size_t n = tutti__osc_write(buf, sizeof buf, addr, "ss", "/cmd", text);
    if (n) F.send(ctx, buf, n);
}

void tutti__feed_subscribe(uint64_t ctx, bool on)
{
    int at = -1;
    for (uint32_t i = 0; i < F.nsubs; i++)
        if (F.subs[i] == ctx) at = (int)i;
    if (!on) {
        if (at >= 0) F.subs[at] = F.subs[--F.nsubs];
        reply(ctx, "/done", "tutti notify");
        return;
    }
    if (at < 0 && F.nsubs == TUTTI__FEED_MAX) {
        char why[96];
        snprintf(why, sizeof why, "tutti notify: %d clients subscribe already (the most)",
                 TUTTI__FEED_MAX);
        reply(ctx, "/fail", why);
        return;
    }
    if (at < 0) F.subs[F.nsubs++] = ctx;
    reply(ctx, "/done", "tutti notify");
    tutti__session_view *v = malloc(sizeof *v);
    if (!v) return;
    tutti__session_view_get(v);
    if (F.have_offset && v->mode == F.last.mode) v->offset_ns = F.offset;
    send_session(&ctx, 1, v);
    send_members(&ctx, 1, v);
    send_timelines(&ctx, 1, v);
    if (v->link[0]) send_link(&ctx, 1, v);
    free(v);
}

void tutti__feed_forget(uint64_t ctx)
{
    for (uint32_t i = 0; i < F.nsubs; i++)
        if (F.subs[i] == ctx) {
            F.subs[i] = F.subs[--F.nsubs];
            return;
        }
}

bool tutti__feed_stale(void)
{
    return tutti__session_changes() != F.changes;
}

int64_t tutti__feed_offset(void)
{
    return F.offset;
}

void tutti__feed_poll(const tutti__session_view *v)
{
    F.changes = tutti__session_changes();
    /* The mapping clients have: moved only by more than TUTTI__FEED_MOVE or
     * with the timeline, so they are not told again for every microsecond
     * the clock estimate wanders. */
    int64_t moved = v->offset_ns - F.offset;
    bool remap = !F.have_offset || moved > TUTTI__FEED_MOVE ||
                 moved < -TUTTI__FEED_MOVE || v->mode != F.last.mode;
    bool resched = !F.have_offset || schedule_changed(&F.last, v);
    if (remap || resched) {
        F.offset = v->offset_ns;
        F.have_offset = true;
    }
    if (F.nsubs) {
        uint64_t to[TUTTI__FEED_MAX];
        uint32_t n = F.nsubs;
        memcpy(to, F.subs, n * sizeof to[0]);
        tutti__session_view *w = malloc(sizeof *w);
        if (w) {
            *w = *v;
            w->offset_ns = F.offset;
            if (!F.sent || session_changed(&F.last, v)) send_session(to, n, w);
            if (!F.sent || members_changed(&F.last, v)) send_members(to, n, w);
            if (!F.sent || remap || resched) send_timelines(to, n, w);
            if (link_changed(v)) send_link(to, n, w);
            free(w);
        }
    }
    F.last = *v;
    F.sent = F.nsubs > 0;
}
