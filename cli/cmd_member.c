/*
 * tutti member: join a session, play test events, journal everything heard.
 *
 * The main thread paces the submissions and watches the published status;
 * the loop thread delivers events into the journal (the deliver callback).
 * They share only the atomic counters below.
 */
#include "cli.h"
#include "credentials.h"
#include "journal.h"
#include "sim/sim.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: tutti member --hub URL --name NAME [--session NAME] [--events N]\n"
    "                    [--rate HZ] [--lead-max MS] [--journal FILE] [--duration S]\n"
    "                    [--wait-members K] [--expect N] [--timeout S] [--quiet]\n"
    "                    [--verbose] [--timing FILE] [--rejoin] [--realtime]\n"
    "                    [--invite FILE] [--passphrase-file FILE] [--hub-key HEX]\n"
    "                    [--role ROLE] [--request-bpm X] [--request-horizon MS]\n"
    "                    [--request-remove ID] [--request-transport start|stop]\n"
    "                    [--osc ADDRESS]\n"
    "\n"
    "Joins a session and plays N test events at about HZ per second, each stamped\n"
    "for a random moment between now and now + lead-max (an event stamped closer\n"
    "than the session's horizon L is moved to now + L: that is what L promises the\n"
    "others). Every event heard, its own included, goes to the journal. Once all\n"
    "of its own events have come back, --duration has passed and --expect events\n"
    "were heard, it leaves and prints a JSON line with its figures.\n"
    "\n"
    "  --hub URL          the hub's address, e.g. tcp://127.0.0.1:7770\n"
    "  --name NAME        this member's name in the session\n"
    "  --invite FILE      join with this invitation (tutti invite made it; the\n"
    "                     line itself also works); the hub's key in it is checked\n"
    "  --passphrase-file FILE  join with the session passphrase (first line)\n"
    "  --hub-key HEX      the hub's key (its log prints it): refuse any other hub\n"
    "  --role ROLE        the role asked of an open hub (performer); a credential's\n"
    "                     role is the credential's\n"
    "  --request-bpm X, --request-horizon MS, --request-remove ID  once joined,\n"
    "                     ask the hub for a tempo, an L, a member's removal (the\n"
    "                     hub refuses what this member's role may not do)\n"
    "  --request-transport start|stop  once joined, ask the hub to start or stop\n"
    "                     the session's transport at a bar line (a conductor's)\n"
    "  --session NAME     the session to join (default " CLI_DEFAULT_SESSION ")\n"
    "  --events N         test events to play (default 100)\n"
    "  --rate HZ          events per second (default 100)\n"
    "  --lead-max MS      stamp events up to this far ahead (default 200)\n"
    "  --osc ADDRESS      each event's payload is its 8-byte tag then an OSC\n"
    "                     message to ADDRESS with one int (default: random bytes)\n"
    "  --journal FILE     write every event heard to FILE, one line each\n"
    "  --duration S       stay at least this many seconds (default 0)\n"
    "  --wait-members K   start playing when K members (this one included) are in\n"
    "                     the session (default 1)\n"
    "  --expect N         stay until N test events (from anyone) were heard\n"
    "  --timeout S        give up after S seconds (default: generous for the job)\n"
    "  --quiet            no progress line every second\n"
    "  --verbose          log more detail to stderr\n"
    "  --timing FILE      write when things happened, for measurements (below)\n"
    "  --rejoin           when the hub removes this member, join again as a new\n"
    "                     member and play on (default: stop with an error)\n"
    "  --realtime         run at real-time priority (SCHED_FIFO 10, below audio), so\n"
    "                     that a busy machine does not hold the session's traffic\n"
    "                     back (needs root or an rtprio limit, as JACK does)\n"
    "\n"
    "The timing file has one record a line; times are ns, local = this machine's\n"
    "CLOCK_MONOTONIC, est = this member's estimate of session time, and the true\n"
    "session time of a hub on the same machine is local + the epoch_ns in the\n"
    "first line (its wall clock as NTP time); tag = the first 8 payload bytes:\n"
    "  s local est requested_t tag                an event submitted\n"
    "  d local est t origin seq kind incarnation tag   an event delivered\n"
    "  c local est bound locked horizon rtt       the clock, every 20 ms\n"
    "  n local incarnation message                a notice (joined, removed)\n"
    "\n"
    "Exit status: 0 done, 1 something failed (see the message), 2 bad options.\n";

typedef struct member_run {
    cli_journal journal;
    FILE *timing;                /* --timing: written by both threads, a line a call */
    uint32_t timing_incarnation; /* loop thread: counts the joins it was told of */
    int timing_rc;
    const char *name;
    bool verbose;
    uint64_t late_logged; /* loop thread */
    atomic_uint_fast32_t my_id;
    atomic_uint_fast64_t heard;     /* user events delivered */
    atomic_uint_fast64_t own_heard; /* ... of which this member's */
    uint64_t journal_lines;
    int journal_rc;
} member_run;

/* On the loop thread, once the member has left (nothing more is delivered);
 * the timing file closes with it. */
static void close_journal(void *arg, void *engine)
{
    (void)engine;
    member_run *r = arg;
    r->journal_lines = r->journal.lines;
    r->journal_rc = cli_journal_close(&r->journal);
    if (r->timing && fclose(r->timing) != 0) r->timing_rc = -1;
    r->timing = NULL;
}

/* The first 8 payload bytes as hex, which tell a test event's submission and
 * deliveries apart from every other event's (they are random). */
static void payload_tag(char *out, const uint8_t *data, uint32_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (len < 8) {
        strcpy(out, "-");
        return;
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[data[i] >> 4];
        out[2 * i + 1] = hex[data[i] & 15];
    }
    out[16] = 0;
}

/* Loop thread: a notice from the engine, in order with the deliveries. A join
 * starts a new incarnation before any of its events is delivered. */
static void on_notice(void *ctx, int level, const char *msg)
{
    (void)level;
    member_run *r = ctx;
    if (!r->timing) return;
    if (strstr(msg, "joined session")) r->timing_incarnation++;
    fprintf(r->timing, "n %" PRId64 " %" PRIu32 " %s\n", tutti_net_now(),
            r->timing_incarnation, msg);
}

static void on_deliver(void *ctx, const tutti_event *ev, tutti_time now_s, bool late)
{
    member_run *r = ctx;
    cli_journal_write(&r->journal, ev);
    if (r->timing) {
        char tag[17];
        payload_tag(tag, ev->data, ev->kind == TUTTI_EV_USER ? ev->len : 0);
        fprintf(r->timing,
                "d %" PRId64 " %" PRId64 " %" PRId64 " %" PRIu32 " %" PRIu64 " %" PRIu32
                " %" PRIu32 " %s\n",
                tutti_net_now(), now_s, ev->key.t, ev->key.origin, ev->key.seq, ev->kind,
                r->timing_incarnation, tag);
    }
    if (late && r->verbose && r->late_logged < 20) {
        /* The first few, to see when and how late; the status counts all. */
        r->late_logged++;
        char msg[160];
        snprintf(msg, sizeof msg,
                 "event (origin %" PRIu32 ", seq %" PRIu64
                 ") heard %.1f ms after its time",
                 ev->key.origin, ev->key.seq, cli_ms(now_s - ev->key.t));
        cli_log((void *)r->name, TUTTI_LOG_DEBUG, msg);
    }
    if (ev->kind != TUTTI_EV_USER) return;
    atomic_fetch_add(&r->heard, 1);
    if (ev->key.origin == atomic_load(&r->my_id)) atomic_fetch_add(&r->own_heard, 1);
}

typedef struct member_requests {
    double bpm;
    tutti_time horizon;
    uint32_t remove;
    int transport; /* 1 start, 0 stop, -1 none */
} member_requests;

static void send_requests(void *arg, void *engine)
{
    member_requests *rq = arg;
    if (rq->bpm) tutti_member_propose_bpm(engine, rq->bpm);
    if (rq->transport >= 0) tutti_member_propose_transport(engine, rq->transport == 1);
    if (rq->horizon) tutti_member_propose_horizon(engine, rq->horizon);
    if (rq->remove) tutti_member_propose_remove(engine, rq->remove);
}

static uint64_t seed_from(const char *name)
{
    uint64_t h =
        0xcbf29ce484222325ull ^ (uint64_t)tutti_net_now() ^ ((uint64_t)getpid() << 32);
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h;
}

static void print_progress(const char *name, const tutti_member_status *st, uint64_t sent,
                           uint64_t events, uint64_t heard)
{
    printf("%s: member %" PRIu32 " of %" PRIu32 ", sent %" PRIu64 "/%" PRIu64
           ", heard %" PRIu64 ", late %" PRIu64 ", moved %" PRIu64
           ", clock +/-%.3f ms, rtt %.3f ms, L %.0f ms\n",
           name, st->id, st->members, sent, events, heard, st->late, st->moved,
           cli_ms(st->clock.bound_ns), cli_ms(st->clock.rtt_last_ns),
           cli_ms(st->horizon));
    fflush(stdout);
}

int cmd_member(int argc, char **argv)
{
    const char *hub = NULL, *name = NULL, *session = CLI_DEFAULT_SESSION, *jpath = NULL,
               *tpath = NULL;
    uint64_t events = 100, wait_members = 1, expect = 0;
    double rate = 100, lead_max_ms = 200, duration = 0, timeout = 0;
    bool quiet = false, verbose = false, rejoin = false, realtime = false;
    const char *invite_file = NULL, *pass_file = NULL, *hub_key = NULL, *role = "performer";
    double req_bpm = 0, req_horizon = 0;
    uint64_t req_remove = 0;
    const char *osc = NULL, *req_transport = NULL;
    const cli_opt opts[] = {
        {"osc", CLI_STRING, &osc, 0, 0, NULL},
        {"invite", CLI_STRING, &invite_file, 0, 0, NULL},
        {"passphrase-file", CLI_STRING, &pass_file, 0, 0, NULL},
        {"hub-key", CLI_STRING, &hub_key, 0, 0, NULL},
        {"role", CLI_STRING, &role, 0, 0, NULL},
        {"request-bpm", CLI_NUMBER, &req_bpm, TUTTI_BPM_MIN, TUTTI_BPM_MAX, "bpm"},
        {"request-horizon", CLI_NUMBER, &req_horizon, 1, 10000, "milliseconds"},
        {"request-remove", CLI_COUNT, &req_remove, 1, UINT32_MAX, "member id"},
        {"request-transport", CLI_STRING, &req_transport, 0, 0, NULL},
        {"hub", CLI_DIAL, &hub, 0, 0, NULL},
        {"name", CLI_STRING, &name, 0, 0, NULL},
        {"session", CLI_STRING, &session, 0, 0, NULL},
        {"events", CLI_COUNT, &events, 0, 1e9, "events"},
        {"rate", CLI_NUMBER, &rate, 0.01, 100000, "events per second"},
        {"lead-max", CLI_NUMBER, &lead_max_ms, 0, 60000, "milliseconds"},
        {"journal", CLI_STRING, &jpath, 0, 0, NULL},
        {"duration", CLI_NUMBER, &duration, 0, 1e7, "seconds"},
        {"wait-members", CLI_COUNT, &wait_members, 1, 1000, "members"},
        {"expect", CLI_COUNT, &expect, 0, 1e12, "events"},
        {"timeout", CLI_NUMBER, &timeout, 0.1, 1e7, "seconds"},
        {"quiet", CLI_FLAG, &quiet, 0, 0, NULL},
        {"verbose", CLI_FLAG, &verbose, 0, 0, NULL},
        {"timing", CLI_STRING, &tpath, 0, 0, NULL},
        {"rejoin", CLI_FLAG, &rejoin, 0, 0, NULL},
        {"realtime", CLI_FLAG, &realtime, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse("member", usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!hub || !name) {
        fprintf(stderr, "tutti member: say which hub to join and who you are, e.g.\n"
                        "  tutti member --hub tcp://127.0.0.1:7770 --name anna\n");
        return CLI_USAGE;
    }
    if (!*name || strlen(name) >= TUTTI_NAME_MAX || strlen(session) >= TUTTI_NAME_MAX) {
        fprintf(stderr, "tutti member: names can have 1 to %d characters\n",
                TUTTI_NAME_MAX - 1);
        return CLI_USAGE;
    }
    int transport = -1;
    if (req_transport) {
        if (strcmp(req_transport, "start") && strcmp(req_transport, "stop")) {
            fprintf(stderr, "tutti member: --request-transport takes start or stop\n");
            return CLI_USAGE;
        }
        transport = !strcmp(req_transport, "start");
    }
    if (timeout == 0) timeout = 30 + (double)events / rate + duration;

    member_run run;
    memset(&run, 0, sizeof run);
    run.name = name;
    run.verbose = verbose;
    if (cli_journal_open(&run.journal, jpath) != 0) {
        fprintf(stderr, "tutti member: cannot write the journal %s: %m\n", jpath);
        return CLI_FAIL;
    }
    if (tpath) {
        run.timing = fopen(tpath, "w");
        if (!run.timing) {
            fprintf(stderr, "tutti member: cannot write the timing file %s: %m\n", tpath);
            cli_journal_close(&run.journal);
            return CLI_FAIL;
        }
        setvbuf(run.timing, NULL, _IOFBF, 1 << 16);
        fprintf(run.timing, "# tutti member timing: name %s epoch_ns %" PRId64 "\n", name,
                tutti_net_session_epoch());
    }
    tutti_member_config cfg;
    tutti_member_config_init(&cfg);
    cfg.session = session;
    cfg.name = name;
    tutti_invite invite;
    uint8_t pin[32];
    char pass[256], err[300];
    if ((cfg.role = cli_role(role)) < 0) {
        fprintf(stderr, "tutti member: --role is performer, listener, conductor or admin\n");
        return CLI_USAGE;
    }
    if (invite_file) {
        if (cli_invite_read(invite_file, &invite, err, sizeof err) != 0) {
            fprintf(stderr, "tutti member: --invite: %s\n", err);
            return CLI_USAGE;
        }
        cfg.invite = &invite;
    }
    if (pass_file) {
        if (cli_read_line_file(pass_file, pass, sizeof pass) != 0 || !pass[0]) {
            fprintf(stderr, "tutti member: cannot read a passphrase from %s\n", pass_file);
            return CLI_USAGE;
        }
        cfg.passphrase = pass;
    }
    if (hub_key) {
        if (!cli_parse_key(hub_key, pin)) {
            fprintf(stderr, "tutti member: --hub-key is 64 hex digits\n");
            return CLI_USAGE;
        }
        cfg.hub_key = pin;
    }
    /* notices are logged too; the timing file records them */
    tutti_member_callbacks cb = {&run, on_deliver, tpath ? on_notice : NULL};
    tutti_net_config ncfg;
    tutti_net_config_init(&ncfg);
    ncfg.log = cli_log;
    ncfg.log_ctx = (void *)name;
    if (verbose) ncfg.log_level = TUTTI_LOG_DEBUG;

    if (realtime) cli_realtime("member", CLI_RT_PRIORITY);
    cli_catch_signals();
    tutti_net *n;
    if ((rc = tutti_net_member_start(&n, &cfg, &cb, hub, &ncfg)) != 0) {
        fprintf(stderr, "tutti member: could not start: %s\n", tutti_strerror(rc));
        cli_journal_close(&run.journal);
        if (run.timing) fclose(run.timing);
        return CLI_FAIL;
    }

    tutti_rng rng;
    tutti_rng_seed(&rng, seed_from(name));
    const tutti_time start = tutti_net_now();
    const tutti_time give_up = start + (tutti_time)(timeout * 1e9);
    const tutti_time stay_until = start + (tutti_time)(duration * 1e9);
    const tutti_time lead_max = (tutti_time)(lead_max_ms * 1e6);
    const double period_ns = 1e9 / rate;
    tutti_member_status st;
    uint64_t sent = 0, sent_before = 0; /* sent_before: by earlier incarnations */
    uint32_t incarnation = 0;
    tutti_time play_start = 0, next_progress = start + TUTTI_S, next_clock = start;
    const char *failure = NULL;
    uint8_t payload[128];
    bool sealed = false; /* the link was encrypted (a credentialed join) */
    if (osc && (osc[0] != '/' || strlen(osc) > 60)) {
        fprintf(stderr, "tutti member: --osc wants an OSC address (/...), at most 60 bytes\n");
        return CLI_USAGE;
    }

    for (;;) {
        tutti_time now = tutti_net_now();
        tutti_net_member_status(n, &st);
        if (st.sealed) sealed = true;
        if (cli_stop_requested) {
            failure = "interrupted";
            break;
        }
        if (now >= give_up) {
            failure = !play_start && !st.joined
                          ? "never got into the session (is the hub running?)"
                      : !play_start   ? "the other members did not all join in time"
                      : sent < events ? "could not play all events in time"
                      : atomic_load(&run.own_heard) < sent
                          ? "not every event of ours came back in time"
                          : "did not hear every member's events in time";
            break;
        }
        if (run.timing && now >= next_clock) {
            next_clock = now + 20 * TUTTI_MS;
            tutti_time local = tutti_net_now(), est;
            int locked = tutti_net_session_now(n, &est) == 0;
            fprintf(run.timing,
                    "c %" PRId64 " %" PRId64 " %" PRId64 " %d %" PRId64 " %" PRId64 "\n",
                    local, est, st.clock.bound_ns, locked, st.horizon,
                    st.clock.rtt_last_ns);
        }
        if (!quiet && now >= next_progress) {
            next_progress += TUTTI_S;
            print_progress(name, &st, sent, events, atomic_load(&run.heard));
        }
        if (st.failed) {
            failure = "the hub refused to admit this member (see the log)";
            break;
        }
        if (!play_start) {
            if (st.joined && (req_bpm || req_horizon || req_remove || transport >= 0)) {
                member_requests rq = {req_bpm, (tutti_time)(req_horizon * 1e6),
                                      (uint32_t)req_remove, transport};
                tutti_net_call(n, send_requests, &rq);
                req_bpm = req_horizon = 0;
                req_remove = 0;
                transport = -1;
            }
            if (st.joined && st.members >= wait_members) {
                atomic_store(&run.my_id, st.id);
                incarnation = st.incarnation;
                play_start = now;
            } else {
                cli_sleep(5 * TUTTI_MS);
                continue;
            }
        }
        if (st.incarnation != incarnation) {
            if (!rejoin) {
                failure = "the hub removed this member mid-performance";
                break;
            }
            /* --rejoin: the events of the old incarnation that were cut off
             * never come back; count this incarnation's own from here on. */
            if (st.joined) {
                atomic_store(&run.my_id, st.id);
                atomic_store(&run.own_heard, 0);
                sent_before = sent;
                incarnation = st.incarnation;
            }
        }
        if (sent < events) {
            tutti_time due = play_start + (tutti_time)((double)sent * period_ns);
            if (now < due) {
                cli_sleep(due - now < 10 * TUTTI_MS ? due - now : 10 * TUTTI_MS);
                continue;
            }
            tutti_time t, est_now;
            tutti_net_session_now(n, &t);
            est_now = t;
            t += tutti_rng_range(&rng, 0, lead_max);
            uint32_t len = 8 + (uint32_t)tutti_rng_range(&rng, 0, 64 - 8);
            for (uint32_t i = 0; i < len; i++)
                payload[i] = (uint8_t)tutti_rng_next(&rng);
            if (osc) {
                /* tag | address, NUL-padded to 4 | ",i\0\0" | int32 BE */
                size_t a = strlen(osc), pad = (a + 4) & ~(size_t)3;
                len = 8;
                memset(payload + len, 0, pad);
                memcpy(payload + len, osc, a);
                len += (uint32_t)pad;
                memcpy(payload + len, ",i\0\0", 4);
                len += 4;
                uint32_t v = (uint32_t)sent;
                for (int i = 0; i < 4; i++) payload[len++] = (uint8_t)(v >> (24 - 8 * i));
            }
            tutti_time submit_local = tutti_net_now();
            rc = tutti_net_submit(n, t, payload, len);
            if (rc == 0) {
                if (run.timing) {
                    char tag[17];
                    payload_tag(tag, payload, len);
                    fprintf(run.timing, "s %" PRId64 " %" PRId64 " %" PRId64 " %s\n",
                            submit_local, est_now, t, tag);
                }
                sent++;
            } else if (rc == TUTTI_EFULL || rc == TUTTI_ESTATE) {
                cli_sleep(TUTTI_MS); /* the queue is full, or a rejoin is under way */
            } else {
                failure = "the member refused an event";
                break;
            }
            continue;
        }
        if (atomic_load(&run.own_heard) >= sent - sent_before &&
            atomic_load(&run.heard) >= expect && now >= stay_until)
            break;
        cli_sleep(5 * TUTTI_MS);
    }

    /* Figures as they were while playing (leaving ends the incarnation). */
    tutti_net_member_status(n, &st);
    tutti_time local = tutti_net_now(), session_now;
    tutti_net_session_now(n, &session_now);
    tutti_net_stats ns;
    tutti_net_leave(n, 100 * TUTTI_MS);
    tutti_net_stats_get(n, &ns);
    /* The journal is complete once the member has left: close it and report
     * before the connection is torn down. */
    if (tutti_net_call(n, close_journal, &run) != 0) close_journal(&run, NULL);
    if (run.timing_rc != 0 && !failure) failure = "the timing file could not be written";
    uint64_t lines = run.journal_lines;
    if (run.journal_rc != 0 && !failure) failure = "the journal could not be written";
    if (failure) fprintf(stderr, "tutti member %s: %s\n", name, failure);

    printf("{\"name\":\"%s\",\"ok\":%s,\"id\":%" PRIu32 ",\"incarnation\":%" PRIu32
           ",\"offset_ns\":%" PRId64 ",\"bound_ns\":%" PRId64 ",\"rtt_min_ns\":%" PRId64
           ",\"rtt_ns\":%" PRId64 ",\"drift_ppm\":%.3f,\"clock_locked\":%s"
           ",\"horizon_ns\":%" PRId64 ",\"submitted\":%" PRIu64 ",\"restamped\":%" PRIu64
           ",\"delivered\":%" PRIu64 ",\"heard\":%" PRIu64 ",\"own_heard\":%" PRIu64
           ",\"late\":%" PRIu64 ",\"max_lateness_ns\":%" PRId64 ",\"moved\":%" PRIu64
           ",\"max_moved_ns\":%" PRId64 ",\"moved_all\":%" PRIu64 ",\"hash\":\"%016" PRIx64
           "\",\"divergences\":%" PRIu64 ",\"dropped\":%" PRIu64
           ",\"journal_lines\":%" PRIu64 ",\"connects\":%" PRIu64
           ",\"send_failed\":%" PRIu64 ",\"role\":\"%s\",\"hub_verified\":%s"
           ",\"sealed\":%s,\"unsealed_dropped\":%" PRIu64 "%s%s%s}\n",
           name, failure ? "false" : "true", st.id, st.incarnation, session_now - local,
           st.clock.bound_ns, st.clock.rtt_min_ns, st.clock.rtt_last_ns,
           st.clock.drift * 1e6, st.clock.locked ? "true" : "false", st.horizon,
           st.submitted, st.restamped, st.delivered, (uint64_t)atomic_load(&run.heard),
           (uint64_t)atomic_load(&run.own_heard), st.late, st.max_lateness, st.moved,
           st.max_moved, st.moved_all, st.hash,
           st.divergences, st.dropped, lines, ns.connects, ns.send_failed,
           tutti_role_name(st.role), st.hub_verified ? "true" : "false",
           sealed ? "true" : "false", st.unsealed_dropped,
           failure ? ",\"error\":\"" : "", failure ? failure : "", failure ? "\"" : "");
    fflush(stdout);
    cli_exit_after(10, failure ? CLI_FAIL : CLI_OK);
    tutti_net_stop(n);
    tutti_net_fini();
    return failure ? CLI_FAIL : CLI_OK;
}
