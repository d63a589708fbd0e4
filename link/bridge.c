/*
 * The Ableton Link bridge (design notes in bridge.h).
 */
#include "bridge.h"

#include "ablink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define BEACON_GROUP "239.255.84.84"
#define BEACON_PORT 7771
#define BEACON_EVERY (200 * TUTTI_MS)
#define BEACON_FORGET (1000 * TUTTI_MS)
#define MAX_BRIDGES 16
#define STEP (2 * TUTTI_MS)
/* A tempo differing by less is Link's own rounding (it carries a tempo as
 * whole microseconds per beat). */
#define BPM_EPS 0.005
/* A fresh bridge takes no Link change for a local one this long: its Link
 * peer is still joining the room's Link session. */
#define SETTLE_AFTER (2 * TUTTI_S)
/* Link sends a peer's state at most every 50 ms (discovery/UdpMessenger.hpp);
 * a commit made within 50 ms of the last one reaches the room late. So this
 * long before an agreed change the bridge re-asserts the timeline (a real,
 * microseconds-small correction), and the switch itself then goes out at
 * once. */
#define PRIME_BEFORE (70 * TUTTI_MS)

typedef struct heard_bridge {
    uint32_t id;
    uint64_t tie;
    tutti_time seen;
} heard_bridge;

struct tutti_bridge {
    tutti_bridge_config cfg;
    tutti_net *n;
    tutti_ablink *link;
    tutti_time started;
    /* what this bridge last committed to Link */
    bool committed;
    double c_bpm;
    double c_bpm_before; /* the tempo committed before c_bpm (0: none) */
    bool c_playing;
    tutti_time last_commit;
    bool settled; /* Link showed what was committed since */
    double proposed_bpm;
    int proposed_playing; /* -1: none */
    tutti_time proposed_at;
    uint32_t peers;           /* Link peers at the last step */
    tutti_time peers_changed; /* when that count last changed */
    tutti_time primed; /* t0 of the change the limiter was primed for */
    double last_bpm; /* the session's tempo at the last step, for switches */
    tutti_time last_t0;
    /* beacons */
    int sock;
    uint64_t tie;
    tutti_time next_beacon;
    heard_bridge heard[MAX_BRIDGES];
    uint32_t nheard;
    tutti_bridge_status st;
};

void tutti_bridge_config_init(tutti_bridge_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->propose = true;
    cfg->reassert_over = 50 * 1000;
    cfg->reassert_every = 100 * TUTTI_MS;
    cfg->reassert_now = TUTTI_MS;
    cfg->beacon = true;
}

/* ------------------------------------------------------------ beacons */

static int beacon_open(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(BEACON_PORT);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    unsigned char loop = 1, ttl = 1;
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    return s;
}

/* Join the group and send on every IPv4 interface that is up (Link's own
 * scope: every interface it would discover peers on). Joining again where
 * already joined fails harmlessly; interfaces that appear later are joined
 * at the next beacon. */
static void beacon_send(tutti_bridge *b, uint32_t id)
{
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) != 0) return;
    char msg[96];
    int len = snprintf(msg, sizeof msg, "tutti-link-bridge 1 %" PRIu32 " %016" PRIx64, id,
                       b->tie);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(BEACON_PORT);
    inet_pton(AF_INET, BEACON_GROUP, &to.sin_addr);
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP))
            continue;
        struct in_addr ifa = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        struct ip_mreq mr;
        mr.imr_multiaddr = to.sin_addr;
        mr.imr_interface = ifa;
        setsockopt(b->sock, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
        setsockopt(b->sock, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
        sendto(b->sock, msg, (size_t)len, 0, (struct sockaddr *)&to, sizeof to);
    }
    freeifaddrs(ifs);
}

static void beacon_receive(tutti_bridge *b, tutti_time now)
{
    char buf[128];
    for (;;) {
        ssize_t r = recv(b->sock, buf, sizeof buf - 1, 0);
        if (r <= 0) break;
        buf[r] = 0;
        uint32_t id;
        uint64_t tie;
        if (sscanf(buf, "tutti-link-bridge 1 %" SCNu32 " %" SCNx64, &id, &tie) != 2) continue;
        if (tie == b->tie) continue;
        uint32_t k;
        for (k = 0; k < b->nheard && b->heard[k].tie != tie; k++) {}
        if (k == b->nheard) {
            if (b->nheard == MAX_BRIDGES) continue;
            b->nheard++;
        }
        b->heard[k] = (heard_bridge){id, tie, now};
    }
    for (uint32_t k = 0; k < b->nheard;)
        if (now - b->heard[k].seen > BEACON_FORGET)
            b->heard[k] = b->heard[--b->nheard];
        else
            k++;
}

/* Active unless a bridge ranking lower (id, tie) was heard recently. */
static bool beacon_active(const tutti_bridge *b, uint32_t id)
{
    for (uint32_t k = 0; k < b->nheard; k++) {
        const heard_bridge *h = &b->heard[k];
        if (h->id < id || (h->id == id && h->tie < b->tie)) return false;
    }
    return true;
}

/* ------------------------------------------------------------- bridge */

int tutti_bridge_create(tutti_bridge **out, tutti_net *member, const tutti_bridge_config *cfg)
{
    tutti_bridge *b = calloc(1, sizeof *b);
    if (!b) return TUTTI_ENOMEM;
    if (cfg)
        b->cfg = *cfg;
    else
        tutti_bridge_config_init(&b->cfg);
    b->n = member;
    b->sock = -1;
    b->proposed_playing = -1;
    b->link = tutti_ablink_create(120.0);
    if (!b->link) {
        free(b);
        return TUTTI_ETRANSPORT;
    }
    if (b->cfg.beacon) {
        b->sock = beacon_open();
        if (getrandom(&b->tie, sizeof b->tie, 0) != sizeof b->tie)
            b->tie = (uint64_t)tutti_net_now() ^ ((uint64_t)getpid() << 40);
    }
    b->started = tutti_net_now();
    *out = b;
    return 0;
}

void tutti_bridge_destroy(tutti_bridge *b)
{
    if (!b) return;
    tutti_ablink_destroy(b->link);
    if (b->sock >= 0) close(b->sock);
    free(b);
}

static double wrap(double x, double q)
{
    x = fmod(x, q);
    if (x >= q / 2) x -= q;
    if (x < -q / 2) x += q;
    return x;
}

typedef struct proposal {
    double bpm;
    int playing;
    int rc_bpm, rc_play;
} proposal;

static void send_proposal(void *arg, void *engine)
{
    proposal *p = arg;
    if (p->bpm > 0) p->rc_bpm = tutti_member_propose_bpm(engine, p->bpm);
    if (p->playing >= 0) p->rc_play = tutti_member_propose_transport(engine, p->playing);
}

static tutti_time step(tutti_bridge *b);

tutti_time tutti_bridge_step(tutti_bridge *b)
{
    const uint64_t commits = b->st.commits;
    const tutti_time next = step(b);
    const tutti_bridge_status *st = &b->st;
    if (b->cfg.trace && st->joined)
        fprintf(b->cfg.trace, "%" PRId64 " %" PRId64 " %.6f %d %" PRId64 " %" PRIu32 " %.6f\n",
                st->step_host_us, st->offset - tutti_net_session_epoch(), st->phase_error_ms,
                st->commits != commits, st->clock_bound, st->link_peers, st->link_bpm);
    return next;
}

static tutti_time step(tutti_bridge *b)
{
    const tutti_time now = tutti_net_now();
    tutti_member_status ms;
    tutti_net_member_status(b->n, &ms);
    tutti_bridge_status *st = &b->st;
    st->joined = ms.joined && ms.clock.locked;
    st->clock_bound = ms.clock.bound_ns;

    /* one bridge per LAN */
    bool active = st->joined;
    if (b->sock >= 0) {
        beacon_receive(b, now);
        if (st->joined && now >= b->next_beacon) {
            beacon_send(b, ms.id);
            b->next_beacon = now + BEACON_EVERY;
        }
        if (active) active = beacon_active(b, ms.id);
        st->bridges = b->nheard + 1;
    } else {
        st->bridges = 1;
    }
    if (active != st->active) {
        st->active = active;
        b->committed = false;
        b->settled = false;
    }

    const int64_t host = tutti_ablink_host_now(b->link);
    const int64_t raw_mono = tutti_ablink_raw_minus_mono();
    st->step_host_us = host;
    tutti_ablink_state ls;
    if (!st->joined) {
        tutti_ablink_capture(b->link, host, 4.0, &ls);
        st->link_peers = ls.peers;
        st->link_bpm = ls.bpm;
        st->link_playing = ls.playing;
        st->locked = false;
        return now + 10 * TUTTI_MS;
    }

    /* The session timeline at the host time of this step. */
    const tutti_time local = host * 1000 - raw_mono;
    const tutti_time off = tutti_clock_to_session(&ms.clock, local) - local;
    st->offset = off;

    const tutti_time s_now = local + off;
    tutti_timeline tl = ms.timeline;
    bool pending = ms.timeline_pending;
    if (pending && s_now >= ms.next_timeline.t0) {
        tl = ms.next_timeline;
        pending = false;
    }
    const double q = tl.quantum;
    const double target = tutti_timeline_beat_at(&tl, s_now);
    tutti_ablink_capture(b->link, host, q, &ls);
    st->bpm = tl.bpm;
    st->playing = tl.playing;
    st->link_bpm = ls.bpm;
    st->link_playing = ls.playing;
    st->link_peers = ls.peers;
    if (ls.peers != b->peers) {
        /* Link sessions meeting: the timeline Link shows is the one the
         * sessions settled on, not a local app's change. */
        b->peers = ls.peers;
        b->peers_changed = now;
    }
    st->next_change = pending ? ms.next_timeline.t0 : 0;
    const double err_beats = wrap(ls.phase - fmod(fmod(target, q) + q, q), q);
    st->phase_error_ms = err_beats * 60000.0 / ls.bpm;
    if (b->settled && fabs(st->phase_error_ms) > st->max_error_ms)
        st->max_error_ms = fabs(st->phase_error_ms);
    if (tl.bpm != b->last_bpm || tl.t0 != b->last_t0) {
        if (b->committed) st->switches++;
        b->last_bpm = tl.bpm;
        b->last_t0 = tl.t0;
    }

    tutti_time next = now + STEP;
    if (pending) {
        /* wake just after the switch */
        tutti_time at = ms.next_timeline.t0 - off + 200 * 1000;
        if (at > now && at < next) next = at;
    }
    if (!active) {
        st->locked = false;
        return next;
    }

    /* A local app's change: Link shows something other than what this
     * bridge committed, once it had shown the commit. Or, before that, a
     * tempo that neither this commit nor the one before it had, nor the
     * session has: an app's change that crossed a re-assertion on the LAN
     * (the app sent it just before our commit and Link took it just after;
     * our commit had already reached the app, so this is the last the room
     * will say of it). A stale echo of an earlier commit has an earlier
     * commit's tempo, which is not taken for one. */
    const bool tempo_moved = fabs(ls.bpm - b->c_bpm) > BPM_EPS;
    const bool play_moved = ls.playing != b->c_playing;
    const bool foreign_tempo = tempo_moved && fabs(ls.bpm - tl.bpm) > BPM_EPS &&
                               fabs(ls.bpm - b->c_bpm_before) > BPM_EPS;
    if (b->committed && (b->settled || foreign_tempo) && now - b->started >= SETTLE_AFTER &&
        now - b->peers_changed >= TUTTI_S &&
        (tempo_moved || play_moved)) {
        st->local_changes++;
        proposal p = {0, -1, 0, 0};
        if (tempo_moved && fabs(ls.bpm - tl.bpm) > BPM_EPS &&
            (fabs(ls.bpm - b->proposed_bpm) > BPM_EPS || now - b->proposed_at > TUTTI_S))
            p.bpm = ls.bpm;
        if (play_moved && ls.playing != tl.playing &&
            ((int)ls.playing != b->proposed_playing || now - b->proposed_at > TUTTI_S))
            p.playing = ls.playing;
        if (b->cfg.propose && (ms.role == TUTTI_ROLE_CONDUCTOR || ms.role == TUTTI_ROLE_ADMIN) &&
            (p.bpm > 0 || p.playing >= 0)) {
            tutti_net_call(b->n, send_proposal, &p);
            if (p.bpm > 0 && p.rc_bpm == 0) st->proposals++;
            if (p.playing >= 0 && p.rc_play == 0) st->proposals++;
            b->proposed_bpm = p.bpm > 0 ? p.bpm : b->proposed_bpm;
            b->proposed_playing = p.playing >= 0 ? p.playing : b->proposed_playing;
            b->proposed_at = now;
        }
    }

    /* Hold Link on the session's timeline. */
    const double abs_err = fabs(st->phase_error_ms) * TUTTI_MS;
    const bool must = !b->committed || fabs(ls.bpm - tl.bpm) > BPM_EPS ||
                      ls.playing != tl.playing || abs_err > (double)b->cfg.reassert_now;
    bool may = abs_err > (double)b->cfg.reassert_over &&
               now - b->last_commit >= b->cfg.reassert_every;
    if (pending && ms.next_timeline.t0 - s_now <= PRIME_BEFORE) {
        /* primed once; no small correction after that, which would hold
         * the switch's commit back by Link's 50 ms */
        may = b->primed != ms.next_timeline.t0;
        b->primed = ms.next_timeline.t0;
    }
    if (must || may) {
        const int64_t play_at = (tl.t0 - off + raw_mono) / 1000;
        /* Link carries a tempo as whole microseconds per beat: commit the
         * tempo every peer will receive, so this bridge sees the small drift
         * against the session's exact tempo and re-asserts past 50 us. */
        const double link_bpm = 60e6 / (double)llround(60e6 / tl.bpm);
        tutti_ablink_commit(b->link, link_bpm, target, host, q, ls.playing != tl.playing,
                            tl.playing, play_at < host ? play_at : host);
        if (b->committed) st->reasserts++;
        const double before = b->committed ? b->c_bpm : 0;
        st->commits++;
        b->committed = true;
        b->settled = false;
        b->c_playing = tl.playing;
        b->last_commit = now;
        /* Link rounds the tempo on its way through the session: compare
         * with what it shows from now on. */
        tutti_ablink_capture(b->link, host, q, &ls);
        if (fabs(ls.bpm - before) > BPM_EPS) b->c_bpm_before = before;
        b->c_bpm = ls.bpm;
    } else if (!tempo_moved && !play_moved) {
        b->settled = true;
    }
    const bool locked = b->committed && tutti_member_clock_settled(&ms, now);
    if (locked && !st->locked) st->locked_host_us = host;
    st->locked = locked;
    return next;
}

void tutti_bridge_status_get(const tutti_bridge *b, tutti_bridge_status *st)
{
    *st = b->st;
}
