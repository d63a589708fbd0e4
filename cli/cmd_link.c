/*
 * tutti link: the Ableton Link bridge on its own (link/bridge.h): join a
 * session as a member and keep this LAN's Link session on its timeline.
 *
 * The main thread steps the bridge (every 2 ms, and just after each agreed
 * change takes effect) and prints a status line every second; the member's
 * loop thread runs the session as for `tutti member`.
 */
#include "cli.h"
#include "credentials.h"

#include <inttypes.h>
#include <string.h>

static const char usage[] =
    "usage: tutti link HUB SESSION NAME [--role ROLE] [--invite FILE]\n"
    "                  [--passphrase-file FILE] [--hub-key HEX] [--no-propose]\n"
    "                  [--no-beacon] [--duration S] [--quiet] [--verbose] [--realtime]\n"
    "                  [--trace FILE]\n"
    "\n"
    "Joins the tutti session SESSION at the hub HUB (e.g. tcp://hub.example:7770)\n"
    "as member NAME and is an Ableton Link peer on this machine's networks: every\n"
    "Link app on the LAN (Live, Bitwig, Sonic Pi 4, LinkHut, hardware) follows\n"
    "the session's tempo, beat, phase within its quantum, and start/stop. A\n"
    "tempo change or start/stop made in a Link app is proposed to the session\n"
    "and takes effect on a bar line in every city at once; until then the app\n"
    "is held on the session's timeline (docs/link.md).\n"
    "\n"
    "Several bridges on one LAN agree on one of them (the one that joined the\n"
    "session first); the others stand by and take over if it goes.\n"
    "\n"
    "  --role ROLE        the role asked of an open hub (default conductor: only a\n"
    "                     conductor or an admin may change the tempo); with a\n"
    "                     credential, the credential's role\n"
    "  --invite FILE, --passphrase-file FILE, --hub-key HEX  as for tutti member\n"
    "  --no-propose       never propose Link apps' changes (hold them back only)\n"
    "  --no-beacon        do not look for other bridges on the LAN\n"

    "  --duration S       stop after S seconds (default: until interrupted)\n"
    "  --quiet            no status line every second\n"
    "  --verbose          log more detail to stderr\n"
    "  --realtime         run at real-time priority (as for tutti member)\n"
    "  --trace FILE       write every step to FILE: Link host time (us), the clock\n"
    "                     offset used minus the one a hub on this machine keeps\n"
    "                     (ns; the clock's error in tests that run the hub here),\n"
    "                     the Link phase error before any correction (ms), 1 if\n"
    "                     the step committed, the clock's error bound (ns), the\n"
    "                     Link peers and the Link session's tempo before any\n"
    "                     correction (bpm)\n"
    "\n"
    "The status line: whether this bridge drives the Link session (active) or\n"
    "stands by, the Link peers it sees, the session's tempo and transport, the\n"
    "Link session's phase error against the session when last checked (before\n"
    "any correction) and its largest since lock, the member's clock error\n"
    "bound, and the counts of commits, re-assertions, agreed changes applied,\n"
    "local changes seen and proposals made. At the end, one JSON line (with\n"
    "offset_ns, session - CLOCK_MONOTONIC as estimated, and wall_epoch_ns, what\n"
    "that offset is for a hub on this machine: their difference is the clock's\n"
    "error in tests that run the hub here).\n"
    "\n"
    "Exit status: 0 done, 1 something failed (see the message), 2 bad options.\n";

#ifndef TUTTI_HAVE_LINK

int cmd_link(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return CLI_OK;
        }
    fprintf(stderr, "tutti link: this tutti was built without Ableton Link "
                    "(install ableton-link-dev and build again)\n");
    return CLI_FAIL;
}

#else

#include "bridge.h"

static void print_status(const char *name, const tutti_bridge_status *s)
{
    if (!s->joined) {
        printf("link %s: joining, %" PRIu32 " Link peers at %.2f bpm\n", name, s->link_peers,
               s->link_bpm);
    } else {
        printf("link %s: %s, %" PRIu32 " Link peers, %" PRIu32 " bridges, %.2f bpm %s, "
               "phase error %+.3f ms (max %.3f), clock +/-%.3f ms, commits %" PRIu64
               ", reasserts %" PRIu64 ", switches %" PRIu64 ", local changes %" PRIu64
               ", proposals %" PRIu64 "%s\n",
               name,
               !s->active ? "standing by" : s->locked ? "active, locked" : "active, settling",
               s->link_peers, s->bridges, s->bpm,
               s->playing ? "playing" : "stopped", s->phase_error_ms, s->max_error_ms,
               cli_ms(s->clock_bound), s->commits, s->reasserts, s->switches,
               s->local_changes, s->proposals, s->next_change ? ", change pending" : "");
    }
    fflush(stdout);
}

int cmd_link(int argc, char **argv)
{
    const char *invite_file = NULL, *pass_file = NULL, *hub_key = NULL, *role = "conductor",
               *trace_path = NULL;
    bool no_propose = false, no_beacon = false, quiet = false, verbose = false,
         realtime = false;
    double duration = 0;
    const cli_opt opts[] = {
        {"role", CLI_STRING, &role, 0, 0, NULL},
        {"invite", CLI_STRING, &invite_file, 0, 0, NULL},
        {"passphrase-file", CLI_STRING, &pass_file, 0, 0, NULL},
        {"hub-key", CLI_STRING, &hub_key, 0, 0, NULL},
        {"no-propose", CLI_FLAG, &no_propose, 0, 0, NULL},
        {"no-beacon", CLI_FLAG, &no_beacon, 0, 0, NULL},
        {"duration", CLI_NUMBER, &duration, 0, 1e7, "seconds"},
        {"quiet", CLI_FLAG, &quiet, 0, 0, NULL},
        {"verbose", CLI_FLAG, &verbose, 0, 0, NULL},
        {"realtime", CLI_FLAG, &realtime, 0, 0, NULL},
        {"trace", CLI_STRING, &trace_path, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    char *rest[argc > 0 ? argc : 1];
    int nrest = 0;
    int rc = cli_parse("link", usage, argc, argv, opts, rest, &nrest);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (nrest != 3) {
        fprintf(stderr, "tutti link: say the hub, the session and this member's name, e.g.\n"
                        "  tutti link tcp://127.0.0.1:7770 tutti room-a\n");
        return CLI_USAGE;
    }
    const char *hub = rest[0], *session = rest[1], *name = rest[2];
    if (strncmp(hub, "tcp://", 6) != 0) {
        fprintf(stderr, "tutti link: the hub is a URL, tcp://HOST:PORT\n");
        return CLI_USAGE;
    }
    if (!*name || strlen(name) >= TUTTI_NAME_MAX || !*session ||
        strlen(session) >= TUTTI_NAME_MAX) {
        fprintf(stderr, "tutti link: names can have 1 to %d characters\n", TUTTI_NAME_MAX - 1);
        return CLI_USAGE;
    }

    tutti_member_config cfg;
    tutti_member_config_init(&cfg);
    cfg.session = session;
    cfg.name = name;
    cfg.auto_rejoin = true;
    tutti_invite invite;
    uint8_t pin[32];
    char pass[256], err[300];
    if ((cfg.role = cli_role(role)) < 0) {
        fprintf(stderr, "tutti link: --role is performer, listener, conductor or admin\n");
        return CLI_USAGE;
    }
    if (invite_file) {
        if (cli_invite_read(invite_file, &invite, err, sizeof err) != 0) {
            fprintf(stderr, "tutti link: --invite: %s\n", err);
            return CLI_USAGE;
        }
        cfg.invite = &invite;
    }
    if (pass_file) {
        if (cli_read_line_file(pass_file, pass, sizeof pass) != 0 || !pass[0]) {
            fprintf(stderr, "tutti link: cannot read a passphrase from %s\n", pass_file);
            return CLI_USAGE;
        }
        cfg.passphrase = pass;
    }
    if (hub_key) {
        if (!cli_parse_key(hub_key, pin)) {
            fprintf(stderr, "tutti link: --hub-key is 64 hex digits\n");
            return CLI_USAGE;
        }
        cfg.hub_key = pin;
    }

    tutti_net_config ncfg;
    tutti_net_config_init(&ncfg);
    ncfg.log = cli_log;
    ncfg.log_ctx = (void *)name;
    if (verbose) ncfg.log_level = TUTTI_LOG_DEBUG;
    if (realtime) cli_realtime("link", CLI_RT_PRIORITY);
    cli_catch_signals();

    tutti_member_callbacks cb = {NULL, NULL, NULL};
    tutti_net *n;
    if ((rc = tutti_net_member_start(&n, &cfg, &cb, hub, &ncfg)) != 0) {
        fprintf(stderr, "tutti link: could not start: %s\n", tutti_strerror(rc));
        return CLI_FAIL;
    }
    FILE *trace = NULL;
    if (trace_path && !(trace = fopen(trace_path, "w"))) {
        fprintf(stderr, "tutti link: cannot write %s\n", trace_path);
        tutti_net_stop(n);
        return CLI_FAIL;
    }
    tutti_bridge_config bcfg;
    tutti_bridge_config_init(&bcfg);
    bcfg.propose = !no_propose;
    bcfg.beacon = !no_beacon;
    bcfg.trace = trace;
    tutti_bridge *b;
    if ((rc = tutti_bridge_create(&b, n, &bcfg)) != 0) {
        fprintf(stderr, "tutti link: Ableton Link could not start: %s\n", tutti_strerror(rc));
        if (trace) fclose(trace);
        tutti_net_stop(n);
        return CLI_FAIL;
    }
    const tutti_time start = tutti_net_now();
    const tutti_time stop_at = duration > 0 ? start + (tutti_time)(duration * 1e9) : 0;
    tutti_time next_print = start + TUTTI_S;
    const char *failure = NULL;
    tutti_bridge_status bs;
    memset(&bs, 0, sizeof bs);
    for (;;) {
        tutti_time next = tutti_bridge_step(b);
        tutti_time now = tutti_net_now();
        tutti_bridge_status_get(b, &bs);
        if (cli_stop_requested) break;
        if (stop_at && now >= stop_at) break;
        tutti_member_status ms;
        tutti_net_member_status(n, &ms);
        if (ms.failed) {
            failure = "the hub refused to admit this bridge (see the log)";
            break;
        }
        if (!quiet && now >= next_print) {
            next_print += TUTTI_S;
            print_status(name, &bs);
        }
        if (next > now) cli_sleep(next - now);
    }

    tutti_bridge_status_get(b, &bs);
    tutti_bridge_destroy(b);
    if (trace) fclose(trace);
    tutti_net_leave(n, 100 * TUTTI_MS);
    if (failure) fprintf(stderr, "tutti link %s: %s\n", name, failure);
    printf("{\"name\":\"%s\",\"ok\":%s,\"joined\":%s,\"active\":%s,\"link_peers\":%" PRIu32
           ",\"bridges\":%" PRIu32 ",\"bpm\":%.6f,\"link_bpm\":%.6f,\"playing\":%s"
           ",\"phase_error_ms\":%.6f,\"max_error_ms\":%.6f,\"clock_bound_ns\":%" PRId64
           ",\"offset_ns\":%" PRId64
           ",\"wall_epoch_ns\":%" PRId64
           ",\"commits\":%" PRIu64 ",\"reasserts\":%" PRIu64 ",\"switches\":%" PRIu64
           ",\"local_changes\":%" PRIu64 ",\"proposals\":%" PRIu64
           ",\"locked\":%s,\"locked_at_us\":%" PRId64 "}\n",
           name, failure ? "false" : "true", bs.joined ? "true" : "false",
           bs.active ? "true" : "false", bs.link_peers, bs.bridges, bs.bpm, bs.link_bpm,
           bs.playing ? "true" : "false", bs.phase_error_ms, bs.max_error_ms, bs.clock_bound, bs.offset,
           tutti_net_session_epoch(),
           bs.commits, bs.reasserts, bs.switches, bs.local_changes, bs.proposals,
           bs.locked ? "true" : "false", bs.locked_host_us);
    fflush(stdout);
    cli_exit_after(10, failure ? CLI_FAIL : CLI_OK);
    tutti_net_stop(n);
    tutti_net_fini();
    return failure ? CLI_FAIL : CLI_OK;
}

#endif
