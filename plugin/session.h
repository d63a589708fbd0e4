/*
 * The plugin's session side: the member of a tutti session that lives inside
 * a server, between the proxy (what local clients send) and the server (what
 * every member's clients sent, in the session's order).
 *
 * Design notes
 * ------------
 * - Outbound. After a join, what the proxy's clients send becomes this
 *   member's events: the proxy classifies each message (ns.h), keeps the local
 *   ones (/notify, /status, /quit...) for this server alone, and hands the
 *   rest to tutti__session_submit(). An event's session time is its bundle's
 *   timetag read on this machine's wall clock and carried to the session clock
 *   (t = session_now + (timetag - wall_now)); a message or an "immediately"
 *   bundle is stamped now, which the horizon rule moves to now + L. The event
 *   carries the client's context in front of the OSC bytes, so that the
 *   replies to it, on this server only, go back to that client.
 * - Inbound. The member's loop thread delivers every event in the session's
 *   total order. A user event from member `origin` is rewritten into the
 *   namespace of its part (tutti_member_part(origin)) and injected into the
 *   server as one bundle timetagged with its session time read on this
 *   machine's wall clock (the clock scsynth schedules by), so the server's
 *   own scheduler places it, sample-accurately, in time order; equal times keep
 *   delivery order (scsynth's scheduler is stable). Replies to another
 *   member's events are discarded; replies to this member's own go to the
 *   client that sent the event, translated back into its ids.
 * - Each part's nodes live in its own group (ns.h), made on this server the
 *   first time the part is heard (a local setup step, not an event). When the
 *   coordinator removes a member, its group is emptied on every server at the
 *   removal's place in the order, so a member that vanishes does not leave
 *   notes sounding forever.
 * - The journal is the canonical form of what this server executed: one line
 *   per delivered event (cli/journal.h's format), a user event as its
 *   rewritten OSC with the top timetag zeroed (the local time differs between
 *   servers; the session time is the line's key). Journals of two members are
 *   identical over the range of the order they both heard.
 * - The server check (check.h): at agreed places of the stream each member
 *   asks its server for its node tree and sends a digest of it, with the
 *   /fail replies session events caused, as an event of its own stream
 *   (CHECK_TAG); every member compares the digests as they are delivered
 *   and logs a difference ("tutti: server check: ..."), which the status
 *   shows too. The digests are journaled, so `tutti verify` compares them.
 * - Bytes from other members are untrusted: every payload is checked
 *   (tutti__osc_check) before it is rewritten; what fails is journaled as an
 *   empty event on every member alike and never reaches the server.
 *
 * Thread rules: join/leave/submit/status/reply are called on the proxy's loop
 * thread; stop from the thread that unloads the plugin, after which nothing
 * else is called; delivery runs on the member's own loop thread, and what
 * it would wait for (shared files stored, a newcomer's state sent) on a
 * file worker of the session's own (session.c). They share atomics, a mutex
 * around the member's handle, the part's model (state_mu: the proxy's
 * thread and the worker, never the member's thread) and the worker's queue.
 */
#ifndef TUTTI_PLUGIN_SESSION_H
#define TUTTI_PLUGIN_SESSION_H

#include "proxy.h"
#include "tutti/tutti.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti__session_opts {
    const char *hub;     /* tcp://HOST:PORT */
    const char *session; /* session name */
    const char *name;    /* this member's name */
    const char *journal; /* file, or NULL/"" for none */
    const char *role;    /* what an open hub should give (tutti_role_name);
                          * NULL/"": performer */
    /* The credential for a hub that is not open (docs/security.md); each
     * NULL/"" for none. invite: the invitation's text ("tutti-invite-1 ...")
     * or the path of a file on this machine holding it; passphrase: the
     * session passphrase itself; hub_key: the hub's key, 64 hex digits. */
    const char *invite;
    const char *passphrase;
    const char *hub_key;
} tutti__session_opts;

typedef struct tutti__session_status {
    bool active;  /* started (joining or joined) */
    bool joined;
    uint32_t id, part, members;
    int role; /* enum tutti_role, once joined */
    int64_t horizon_ns, clock_offset_ns, clock_bound_ns, rtt_ns;
    bool clock_locked;
    bool clock_settled; /* locked for TUTTI_CLOCK_SETTLE this join */
    double bpm, quantum, bar_phase; /* the session's timeline now */
    int64_t bar;                    /* bars since the timeline's beat 0 */
    int64_t tl_t0;                  /* the timeline: session time of beat tl_beat0 */
    double tl_beat0;
    bool playing;        /* its transport */
    uint64_t tl_seq;     /* timeline changes agreed since joining */
    bool pending;        /* a change agreed, not yet in force: */
    tutti_timeline next; /* this one, from next.t0 */
    uint64_t submitted, submit_failed, delivered, late, injected, inject_failed,
        invalid, discarded_replies, out_of_range, late_injected;
    /* since joining: the member's thread's longest turn on one event, the
     * longest an event waited for the ones before it in its batch, and the
     * least lead of a timed bundle handed to the server (negative: late),
     * the file worker's longest job */
    int64_t turn_max_ns, wait_max_ns, lead_min_ns, work_max_ns;
    uint64_t state_messages, replays_sent, replay_failed, held, queries_here;
    uint64_t recorded_here; /* messages of recordings run here alone (record.h) */
    uint64_t moved; /* this member's events the hub moved to its close */
    /* timed bundles held back to be re-timed shortly before their time
     * (hold.h; only on JACK's clock), since the proxy started */
    uint64_t held_back;
    bool carried; /* what was made solo is the part's state; traffic is the session's */
    /* the server check (check.h): rounds compared, of them identical,
     * differences reported, servers in the last round, whether the last
     * round decided had a difference, and the last difference */
    uint64_t check_rounds, check_identical, check_diffs, check_late;
    uint64_t check_skipped; /* rounds this server was not asked: too little lead */
    uint32_t check_servers;
    bool check_differs;
    char check_last[480];
    char hub[128], session[32], name[32], journal[256];
    uint64_t assets_refused; /* chunks of shared files refused (the parts' quotas) */
    uint64_t nodes_refused;  /* node-making events refused (a part over its node budget) */
    bool sealed;             /* the link to the hub is encrypted (a credentialed join) */
    bool hub_verified; /* the hub proved the key pinned by the invitation or hub_key */
    uint64_t unsealed_dropped;
} tutti__session_status;

/* Remembers how to reach the server. Called once, from tutti__proxy_start. */
void tutti__session_init(const tutti_proxy_host *host);

/* Joins (starts a member that dials the hub). 0, or a TUTTI_E* code with a
 * sentence in `why` (give it TUTTI__NS_WHY_MAX bytes: the server check's
 * sentences fill most of that). Joining again while active leaves first. */
int tutti__session_join(const tutti__session_opts *o, char *why, size_t cap);

/* This server's monitoring gain for a part (guard.h): `who` a member's name
 * or its part's number, `gain` 0 (mute) to 1. A local choice: no event, no
 * other server hears of it. 0, or TUTTI_EINVAL with a sentence in `why`. */
int tutti__session_monitor(const char *who, float gain, char *why, size_t cap);

/* The guards as one line for the status: per part "pN gain G limited B
 * nonfinite S" (blocks in which the limiter acted, samples replaced). */
void tutti__session_guard_text(char *out, size_t cap);

/* Leaves politely and stops the member; back to solo. */
void tutti__session_leave(void);

/* Whether client traffic goes to the session (a join was asked for). */
bool tutti__session_active(void);

/* A client's checked packet (messages the proxy kept local already removed)
 * from the client `ctx`. 0, or TUTTI_ESTATE (not joined yet: the packet is
 * not played), TUTTI_EFULL, TUTTI_EINVAL (too big for one event). */
int tutti__session_submit(uint64_t ctx, const uint8_t *p, size_t len);

/* A message that names a file on this machine (tutti__ns_classify says
 * TUTTI_NS_LOCAL_FILE): synthdef files become /d_recv events; a sound file
 * read is shared by content (asset.h). 0, or a TUTTI_E* code with a
 * sentence in `why` (a file that cannot be read or is too big, or a command
 * that would write files on the members' machines). */
int tutti__session_submit_file(uint64_t ctx, const uint8_t *p, size_t len, char *why,
                               size_t cap);

/* A server reply or notification for this member's clients, in the ids they
 * know: the length written to `out`, 0 to drop it (about another part), or
 * negative to pass it on unchanged (not in a session). */
ssize_t tutti__session_reply(const uint8_t *p, size_t len, uint8_t *out, size_t cap);

/* The client was told group `node` (its own id) started before the server
 * made it: the server's /n_go for it is not passed on (proxy's thread). */
void tutti__session_announce(int32_t node);

/* A client's /b_query (a plain message) answered by this server at once,
 * when nothing this member submitted that changes those buffers is still on
 * its way (buffers belong to their part: no other member changes them), so
 * the answer is the one the session would give a horizon later. Sonic Pi
 * asks for a sample's /b_info after the load's /done and waits for it
 * before the sample's first note. False: submit it as usual. */
bool tutti__session_query_here(uint64_t ctx, const uint8_t *p, size_t len);

/* A client's plain message that belongs to a recording (s.record through
 * the proxy, record.h) run on this server alone, in the part's numbers.
 * False: it is not a recording's; submit it as usual. The proxy's thread. */
bool tutti__session_record(uint64_t ctx, const uint8_t *p, size_t len);

void tutti__session_status_get(tutti__session_status *st);

/* Asks the coordinator for a tempo change / a transport start or stop at a
 * bar line (tutti.h's rule). 0 or a TUTTI_E* code (not joined, or out of
 * range). Blocks for the member's loop. */
int tutti__session_propose_bpm(double bpm);
int tutti__session_propose_transport(bool playing);

/* What the session feed (feed.h) and the UGens tell: the session as this
 * server sees it now. Without a session (solo, and while joining) the
 * timeline is the local grid: the session's last timeline after a leave
 * (the beat goes on), 120 bpm from the plugin's start before any, on this
 * machine's wall clock (offset 0). */
enum { TUTTI__MODE_SOLO = 0, TUTTI__MODE_JOINING = 1, TUTTI__MODE_SESSION = 2 };
#define TUTTI__VIEW_TIMELINES 8
typedef struct tutti__session_view {
    int mode; /* TUTTI__MODE_* */
    uint32_t id, part, members;
    int role;           /* enum tutti_role (session only) */
    int64_t horizon_ns; /* L (0 without a session) */
    /* session time - this machine's wall clock, both ns since 1900, as the
     * member's clock estimates it now (0 without a session) */
    int64_t offset_ns;
    uint64_t seq; /* timeline changes agreed since joining */
    uint32_t ntl; /* the timeline in force, then the changes ahead */
    tutti_timeline tl[TUTTI__VIEW_TIMELINES];
    uint32_t nlist; /* the members (at most TUTTI_PARTS listed) */
    tutti_member_info list[TUTTI_PARTS];
    /* the LAN's Link bridge (linkhost.h): its state's name, "" when the
     * setting is off; the Link peers it sees */
    char link[16];
    uint32_t link_peers;
} tutti__session_view;

/* Proxy's thread. Blocks for the member's loop. */
void tutti__session_view_get(tutti__session_view *v);
/* Bumped (any thread may read it) whenever the view may have changed
 * otherwise than by time: a command delivered, a join, a leave; the
 * proxy's loop is woken then too (tutti__proxy_wake). */
uint64_t tutti__session_changes(void);

/* The members of the session (up to `cap`); how many there are. */
uint32_t tutti__session_members(tutti_member_info *out, uint32_t cap);

/* Whether the clients' traffic goes to the session: joined, and what they
 * made before is carried into the part (proxy's thread). Until then it is
 * played here as in solo and noted in the part's model. */
bool tutti__session_routes(void);

/* A client packet while the session does not route traffic: play(ctx, p,
 * len) on this server and, when `note`, note it in the part's model, in one
 * step with respect to the carry. False (nothing done) when the session
 * routes traffic by now: submit it instead. Proxy's thread. */
bool tutti__session_solo(uint64_t ctx, const uint8_t *p, size_t len, bool note,
                         void (*play)(uint64_t ctx, const uint8_t *p, size_t len));

/* Called every 100 ms or so on the proxy's thread: once joined, carries the
 * model into the part if no delivery has done so yet. */
void tutti__session_poll(void);

/* A reply to a session event of part `part` (proxy's thread, before it
 * goes where its context says): a /fail is counted for the server check. */
void tutti__session_event_reply(uint32_t part, const uint8_t *p, size_t len);

/* The server's answer to the server check of round `round` (proxy's
 * thread): this member's digest is made of it and submitted. */
void tutti__session_check_reply(int64_t round, const uint8_t *p, size_t len);

/* Leaves and stops; at unload. */
void tutti__session_stop(void);

#ifdef __cplusplus
}
#endif

#endif
