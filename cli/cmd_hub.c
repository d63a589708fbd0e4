/*
 * tutti hub: relay and coordinate a session until interrupted.
 */
#include "cli.h"
#include "credentials.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: tutti hub [--listen URL] [--session NAME] [--horizon MS] [--suspect MS]\n"
    "                 [--auto-horizon] [--bpm X] [--change-lead MS] [--duration S]\n"
    "                 [--url-file FILE]\n"
    "                 [--rehearsal FILE] [--quiet] [--verbose] [--realtime]\n"
    "                 [--keys DIR] [--passphrase-file FILE] [--passphrase-role ROLE]\n"
    "                 [--max-rate N] [--max-kib-rate N] [--max-ahead S]\n"
    "                 [--max-held-kib N] [--per-address N] [--max-unauth N]\n"
    "                 [--hello-deadline MS] [--limiter DB|off] [--node-budget N]\n"
    "\n"
    "Runs the hub of a session: members connect to it, it relays every event to\n"
    "every member and sequences who is in the session and the tempo. Session time\n"
    "is this machine's wall clock (NTP time). Stops on Ctrl-C (or after --duration)\n"
    "and prints a status line every second meanwhile.\n"
    "\n"
    "  --listen URL     where members connect (default " CLI_DEFAULT_LISTEN ");\n"
    "                   tcp://0.0.0.0:7770 accepts other machines, port 0 picks a\n"
    "                   free port\n"
    "  --session NAME   the session's name; members must give the same (default\n"
    "                   " CLI_DEFAULT_SESSION ")\n"
    "  --horizon MS     L: how far ahead of its play time an event must be sent; it\n"
    "                   must exceed the slowest member's one-way delay (default 100)\n"
    "  --auto-horizon   choose L from the delays the members measure (starting\n"
    "                   at --horizon): raised at once on trouble, lowered slowly;\n"
    "                   the status line shows each member's one-way delay\n"
    "  --rehearsal FILE with --auto-horizon: start from the L a rehearsal over\n"
    "                   the same network called for, kept in FILE, and do not go\n"
    "                   below it until this session has measured as long as the\n"
    "                   rehearsal had (30 s at most); then write this session's\n"
    "                   figures to FILE (a missing FILE starts one)\n"
    "  --suspect MS     keep a silent member's place this long, then remove it\n"
    "                   (default 8000); nobody waits for it meanwhile\n"
    "  --bpm X          starting tempo (default 120)\n"
    "  --change-lead MS a tempo change or a transport start/stop takes effect at\n"
    "                   the first bar line at least this long after every member\n"
    "                   has it (default 1000; at least L + 100), so clients that\n"
    "                   schedule ahead (Sonic Pi 500 ms, sclang 200 ms) play the\n"
    "                   new grid from its first beat\n"
    "  --duration S     stop after this many seconds (default: run until stopped)\n"
    "  --url-file FILE  write the address members should dial to FILE once ready\n"
    "  --quiet          no status line every second\n"
    "  --verbose        log connections and other details to stderr\n"
    "  --realtime       run at real-time priority (SCHED_FIFO 10, below audio), so\n"
    "                   that a busy machine does not hold the session back\n"
    "\n"
    "Who may join (docs/security.md). With neither of the next two the hub is\n"
    "OPEN: anyone who reaches it joins with the role it asks for.\n"
    "  --keys DIR       the hub's key (DIR/hub.key, made if missing) and the\n"
    "                   invitations it accepts (DIR/invites, made by tutti invite,\n"
    "                   re-read within a second of a change)\n"
    "  --passphrase-file FILE  members may also join with this passphrase (the\n"
    "                   first line of FILE), as --passphrase-role (performer)\n"
    "Limits per member, beyond which its events are refused and it is told why:\n"
    "  --max-rate N     events per second (5000; bursts of twice that)\n"
    "  --max-kib-rate N KiB of payload per second (4096; bursts of twice that)\n"
    "  --max-ahead S    how far ahead of now an event may be stamped (20)\n"
    "  --max-held-kib N KiB of its events relayed and not yet due (4096)\n"
    "Limits on connections:\n"
    "  --per-address N  connections one address may hold (32)\n"
    "  --max-unauth N   connections without a credential yet (64; a new one\n"
    "                   closes the oldest)\n"
    "  --hello-deadline MS  close a connection with no credential after this\n"
    "                   long (5000)\n"
    "Session settings, the same on every member:\n"
    "  --limiter DB     the safety limiter on every part's output on every server\n"
    "                   (the plugin's guard): its ceiling in dBFS (-6); off: none\n"
    "  --node-budget N  nodes one part may hold on the servers (512); beyond it\n"
    "                   its synths and groups are refused on every server (0: none)\n"
    "\n"
    "On exit the last line on stdout is a JSON object with the final counters.\n";

/*
 * A rehearsal file: what the automatic horizon of a session settled on, for
 * the next session over the same network to start from. Text, one
 * "key value" per line, '#' comments; unknown keys are left alone.
 */
#define REHEARSAL_HOLD_MAX (30 * TUTTI_S)

typedef struct rehearsal {
    double l_ms, measured_s;
    char session[TUTTI_NAME_MAX];
} rehearsal;

/* How long the rehearsal's L is held: as long as it had measured, at most
 * REHEARSAL_HOLD_MAX (by then the members' own windows know as much). */
static tutti_time rehearsal_hold(const rehearsal *r)
{
    tutti_time t = (tutti_time)(r->measured_s * 1e9);
    return t < REHEARSAL_HOLD_MAX ? t : REHEARSAL_HOLD_MAX;
}

/* 0: read; 1: no such file; -1: not a rehearsal file (why in err). */
static int rehearsal_read(const char *path, rehearsal *r, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 1;
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    memset(r, 0, sizeof *r);
    r->l_ms = r->measured_s = -1;
    char line[256];
    int no = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        no++;
        char key[32], val[sizeof line], *end;
        int got = line[0] == '#' ? 0 : sscanf(line, "%31s %255s", key, val);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "line %d is too long", no);
            rc = -1;
        } else if (got < 1) {
            continue;
        } else if (got != 2) {
            snprintf(err, errlen, "line %d has no value", no);
            rc = -1;
        } else if (!strcmp(key, "L_ms") || !strcmp(key, "measured_s")) {
            double v = strtod(val, &end);
            bool l = key[0] == 'L';
            if (*end || !(v >= 0 && v <= (l ? 10000 : 1e7))) {
                snprintf(err, errlen, "line %d: %s must be a number of %s, not \"%.40s\"",
                         no, key, l ? "milliseconds up to 10000" : "seconds", val);
                rc = -1;
            } else {
                *(l ? &r->l_ms : &r->measured_s) = v;
            }
        } else if (!strcmp(key, "session")) {
            if (strlen(val) < sizeof r->session) strcpy(r->session, val);
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s", strerror(errno));
        rc = -1;
    }
    fclose(f);
    if (rc == 0 && (r->l_ms < 1 || r->measured_s < 0)) {
        snprintf(err, errlen,
                 "it has no %s (a file written by tutti hub --rehearsal has)",
                 r->l_ms < 1 ? "L_ms of 1 or more" : "measured_s");
        rc = -1;
    }
    return rc;
}

/* Written whole or not at all (a new file renamed over the old). */
static bool rehearsal_write(const char *path, const char *session,
                            const tutti_hub_status *st)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp) return false;
    FILE *f = fopen(tmp, "w");
    if (!f) return false;
    fprintf(f,
            "# tutti rehearsal: the L that session \"%s\" called for (its automatic\n"
            "# horizon's target) after measuring its members' paths for measured_s s\n"
            "session %s\nL_ms %.1f\nmeasured_s %.1f\nmembers %" PRIu32 "\n",
            session, session, cli_ms(st->horizon_target), st->measured_for / 1e9,
            st->members);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) remove(tmp);
    return ok;
}

/* This session's figures to the rehearsal file, once it has its own: every
 * member's need measured, the rehearsal's L (if any) let go. False only if
 * that write failed. */
static bool rehearsal_save(const char *path, const char *session,
                           const tutti_hub_status *st)
{
    if (!path || st->members == 0 || st->measured_for == 0 || st->horizon_floor != 0)
        return true;
    return rehearsal_write(path, session, st);
}

/* One line: each member's one-way delay to the hub (its high estimate),
 * clock error bound, late events and the L its deliveries needed (with the
 * part of it that its tail adds), as the members last reported them; its
 * events the hub moved to the close, and how long it has been silent when
 * it is (a frozen laptop, a cut link: its place is kept). */
static void list_members(void *arg, void *engine)
{
    FILE *out = arg;
    tutti_member_info info[64];
    uint32_t n = tutti_hub_list(engine, info, 64);
    if (!n) return;
    fputs("     delays:", out);
    for (uint32_t i = 0; i < n && i < 64; i++) {
        fprintf(out,
                " %s [%s] %.1f ms (clock +/-%.2f, late %" PRIu64 ", needs L %.1f, tail %.1f",
                info[i].name, tutti_role_name(info[i].role), cli_ms(info[i].delay_ns),
                cli_ms(info[i].clock_bound_ns), info[i].late, cli_ms(info[i].need_ns),
                cli_ms(info[i].tail_ns));
        if (info[i].refused)
            fprintf(out, ", REFUSED %" PRIu64 " events: %s", info[i].refused,
                    info[i].refused_why);
        if (info[i].refused_requests)
            fprintf(out, ", %" PRIu64 " requests refused", info[i].refused_requests);
        if (info[i].moved)
            fprintf(out, ", moved %" PRIu64 " up to %.1f ms", info[i].moved,
                    cli_ms(info[i].max_moved_ns));
        if (info[i].silent_ns >= TUTTI_S)
            fprintf(out, ", SILENT %.1f s", info[i].silent_ns / 1e9);
        fprintf(out, ")%s", i + 1 < n && i + 1 < 64 ? "," : "");
    }
    fputc('\n', out);
}

static void print_members(tutti_net *n)
{
    tutti_net_call(n, list_members, stdout);
}

typedef struct invites_call {
    tutti_invite *list;
    uint32_t n;
} invites_call;

static void set_invites(void *arg, void *engine)
{
    invites_call *c = arg;
    tutti_hub_set_invites(engine, c->list, c->n);
}

/* Re-read DIR/invites when it changed (by mtime and size); log what the hub
 * now accepts. */
static void reload_invites(tutti_net *n, const char *dir, struct timespec *seen, off_t *size,
                           bool first)
{
    char path[4096], err[300];
    struct stat st;
    snprintf(path, sizeof path, "%s/invites", dir);
    if (stat(path, &st) != 0) memset(&st, 0, sizeof st);
    if (!first && st.st_mtim.tv_sec == seen->tv_sec && st.st_mtim.tv_nsec == seen->tv_nsec &&
        st.st_size == *size)
        return;
    *seen = st.st_mtim;
    *size = st.st_size;
    invites_call c;
    if (cli_invites_load(dir, &c.list, &c.n, err, sizeof err) != 0) {
        fprintf(stderr, "tutti hub: %s (the invitations in force stay as they were)\n", err);
        return;
    }
    if (n) tutti_net_call(n, set_invites, &c);
    printf("tutti hub: %u invitation%s in force (%s)\n", (unsigned)c.n, c.n == 1 ? "" : "s",
           path);
    fflush(stdout);
    if (c.list) sodium_memzero(c.list, c.n * sizeof *c.list);
    free(c.list);
}

static void hub_key_of(void *arg, void *engine)
{
    tutti_hub_public_key(engine, arg);
}

int cmd_hub(int argc, char **argv)
{
    const char *listen = CLI_DEFAULT_LISTEN, *session = CLI_DEFAULT_SESSION,
               *url_file = NULL, *rehearsal_file = NULL;
    double horizon_ms = 100, suspect_ms = 8000, bpm = 120, duration = 0,
           change_lead_ms = 1000;
    bool quiet = false, verbose = false, auto_horizon = false, realtime = false;
    const char *keys = NULL, *pass_file = NULL, *pass_role = "performer";
    double max_rate = 5000, max_kib_rate = 4096, max_ahead = 20, max_held_kib = 4096,
           per_addr = 32, max_unauth = 64, hello_deadline = 5000;
    const char *limiter = NULL;
    double node_budget = -1;
    const cli_opt opts[] = {
        {"keys", CLI_STRING, &keys, 0, 0, NULL},
        {"passphrase-file", CLI_STRING, &pass_file, 0, 0, NULL},
        {"passphrase-role", CLI_STRING, &pass_role, 0, 0, NULL},
        {"max-rate", CLI_NUMBER, &max_rate, 1, 1e7, "events per second"},
        {"max-kib-rate", CLI_NUMBER, &max_kib_rate, 1, 1e7, "KiB per second"},
        {"max-ahead", CLI_NUMBER, &max_ahead, 0.1, 60, "seconds"},
        {"max-held-kib", CLI_NUMBER, &max_held_kib, 64, 1e7, "KiB"},
        {"per-address", CLI_NUMBER, &per_addr, 1, 4096, "connections"},
        {"max-unauth", CLI_NUMBER, &max_unauth, 1, 4096, "connections"},
        {"hello-deadline", CLI_NUMBER, &hello_deadline, 100, 600000, "milliseconds"},
        {"limiter", CLI_STRING, &limiter, 0, 0, NULL},
        {"node-budget", CLI_NUMBER, &node_budget, 0, 1000000, "nodes"},
        {"listen", CLI_LISTEN, &listen, 0, 0, NULL},
        {"session", CLI_STRING, &session, 0, 0, NULL},
        {"horizon", CLI_NUMBER, &horizon_ms, 1, 10000, "milliseconds"},
        {"suspect", CLI_NUMBER, &suspect_ms, 10, 600000, "milliseconds"},
        {"auto-horizon", CLI_FLAG, &auto_horizon, 0, 0, NULL},
        {"bpm", CLI_NUMBER, &bpm, TUTTI_BPM_MIN, TUTTI_BPM_MAX, "beats per minute"},
        {"change-lead", CLI_NUMBER, &change_lead_ms, 0, 60000, "milliseconds"},
        {"duration", CLI_NUMBER, &duration, 0, 1e7, "seconds"},
        {"url-file", CLI_STRING, &url_file, 0, 0, NULL},
        {"rehearsal", CLI_STRING, &rehearsal_file, 0, 0, NULL},
        {"quiet", CLI_FLAG, &quiet, 0, 0, NULL},
        {"verbose", CLI_FLAG, &verbose, 0, 0, NULL},
        {"realtime", CLI_FLAG, &realtime, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse("hub", usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (strlen(session) >= TUTTI_NAME_MAX) {
        fprintf(stderr, "tutti hub: the session name can have at most %d characters\n",
                TUTTI_NAME_MAX - 1);
        return CLI_USAGE;
    }

    if (rehearsal_file && !auto_horizon) {
        fprintf(stderr, "tutti hub: --rehearsal goes with --auto-horizon\n");
        return CLI_USAGE;
    }
    rehearsal reh = {0};
    if (rehearsal_file) {
        char err[200];
        int r = rehearsal_read(rehearsal_file, &reh, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "tutti hub: --rehearsal %s: %s\n", rehearsal_file, err);
            return CLI_USAGE;
        }
        if (r == 1) {
            printf("tutti hub: no rehearsal in %s yet; this session's figures go there\n",
                   rehearsal_file);
        } else {
            printf(
                "tutti hub: starting from the rehearsal's L of %.1f ms (%s), held until "
                "this session has measured for %.1f s\n",
                reh.l_ms, rehearsal_file, rehearsal_hold(&reh) / 1e9);
            if (reh.session[0] && strcmp(reh.session, session))
                fprintf(
                    stderr,
                    "tutti hub: note: %s was the rehearsal of session \"%s\", this is "
                    "\"%s\"\n",
                    rehearsal_file, reh.session, session);
            horizon_ms = reh.l_ms;
        }
    }

    tutti_hub_config cfg;
    tutti_hub_config_init(&cfg);
    cfg.session = session;
    cfg.horizon = (tutti_time)(horizon_ms * 1e6);
    cfg.suspect_after = (tutti_time)(suspect_ms * 1e6);
    cfg.bpm = bpm;
    cfg.change_lead = (tutti_time)(change_lead_ms * 1e6);
    cfg.session_epoch = tutti_net_session_epoch();
    cfg.auto_horizon = auto_horizon;
    if (reh.l_ms > 0) {
        cfg.horizon_floor = cfg.horizon;
        cfg.floor_for = rehearsal_hold(&reh);
    }
    cfg.max_event_rate = max_rate;
    cfg.max_event_burst = 2 * max_rate;
    cfg.max_byte_rate = max_kib_rate * 1024;
    cfg.max_byte_burst = 2 * max_kib_rate * 1024;
    cfg.max_ahead = (tutti_time)(max_ahead * 1e9);
    cfg.max_held = (uint64_t)(max_held_kib * 1024);
    /* the session's settings (tutti_hub_config.settings) */
    char settings[128] = "";
    if (limiter) {
        char *end;
        double db = strtod(limiter, &end);
        if (!strcmp(limiter, "off")) {
            snprintf(settings, sizeof settings, "limiter=off");
        } else if (*end || end == limiter || !(db >= -60 && db <= 0)) {
            fprintf(stderr,
                    "tutti hub: --limiter is a ceiling in dBFS from -60 to 0, or off\n");
            return CLI_USAGE;
        } else {
            snprintf(settings, sizeof settings, "limiter=%g", db);
        }
    }
    if (node_budget >= 0) {
        size_t k = strlen(settings);
        snprintf(settings + k, sizeof settings - k, "%snode_budget=%.0f", k ? ";" : "",
                 node_budget);
    }
    /* the largest file a member can send at once within these limits (the
     * plugin refuses a larger one at its source, with the reason) */
    {
        size_t k = strlen(settings);
        double files_kib = max_held_kib < 2 * max_kib_rate ? max_held_kib : 2 * max_kib_rate;
        snprintf(settings + k, sizeof settings - k, "%sfiles_kib=%.0f", k ? ";" : "",
                 files_kib);
    }
    if (settings[0]) cfg.settings = settings;
    uint8_t sk[64];
    char pass[256], err[300];
    if (keys) {
        if (cli_hub_key(keys, sk, err, sizeof err) != 0) {
            fprintf(stderr, "tutti hub: %s\n", err);
            return CLI_FAIL;
        }
        cfg.hub_sk = sk;
        cfg.open = false;
    }
    if (pass_file) {
        if (cli_read_line_file(pass_file, pass, sizeof pass) != 0 || !pass[0]) {
            fprintf(stderr, "tutti hub: cannot read a passphrase from %s\n", pass_file);
            return CLI_USAGE;
        }
        if ((cfg.passphrase_role = cli_role(pass_role)) < 0) {
            fprintf(stderr, "tutti hub: --passphrase-role is performer, listener, "
                            "conductor or admin\n");
            return CLI_USAGE;
        }
        cfg.passphrase = pass;
        cfg.open = false;
    }
    tutti_net_config ncfg;
    tutti_net_config_init(&ncfg);
    ncfg.per_addr = (uint32_t)per_addr;
    ncfg.max_unauth = (uint32_t)max_unauth;
    ncfg.hello_deadline = (tutti_time)(hello_deadline * 1e6);
    ncfg.name = "hub";
    ncfg.log = cli_log;
    ncfg.log_ctx = "hub";
    if (verbose) ncfg.log_level = TUTTI_LOG_DEBUG;
    ncfg.url_file = url_file;

    if (realtime) cli_realtime("hub", CLI_RT_PRIORITY);
    cli_catch_signals();
    tutti_net *n;
    if ((rc = tutti_net_hub_start(&n, &cfg, listen, &ncfg)) != 0) {
        fprintf(stderr, "tutti hub: could not start the hub on %s: %s\n", listen,
                tutti_strerror(rc));
        return CLI_FAIL;
    }
    if (keys) sodium_memzero(sk, sizeof sk);
    if (pass_file) sodium_memzero(pass, sizeof pass);
    char url[256];
    tutti_net_url(n, url, sizeof url);
    printf("tutti hub: session \"%s\" is open at %s (L %.0f ms%s, %.0f bpm)\n", session,
           url, horizon_ms, auto_horizon ? ", automatic" : "", bpm);
    uint8_t pk[32];
    char pkhex[65];
    tutti_net_call(n, hub_key_of, pk);
    cli_hex_key(pkhex, pk);
    if (cfg.open)
        fprintf(stderr,
                "tutti hub: WARNING: THIS HUB IS OPEN: anyone who can reach %s joins with "
                "any role they ask for (tempo, L, removing members). Give --keys DIR (and "
                "tutti invite) or --passphrase-file for a hub others can reach.\n",
                url);
    printf("tutti hub: %s; hub key %s\n",
           cfg.open ? "OPEN (no credential needed)"
                    : pass_file ? (keys ? "invitations or the passphrase needed"
                                        : "the passphrase needed")
                                : "invitations needed",
           pkhex);
    struct timespec inv_seen = {0, 0};
    off_t inv_size = 0;
    if (keys) reload_invites(n, keys, &inv_seen, &inv_size, true);
    fflush(stdout);

    tutti_time start = tutti_net_now(), next_line = start + TUTTI_S;
    tutti_hub_status st;
    tutti_net_stats ns;
    bool write_failed = false;
    while (!cli_stop_requested) {
        tutti_time now = tutti_net_now();
        if (duration > 0 && now - start >= (tutti_time)(duration * 1e9)) break;
        if (now >= next_line) {
            next_line += TUTTI_S;
            if (keys) reload_invites(n, keys, &inv_seen, &inv_size, false);
            tutti_net_hub_status(n, &st);
            /* the session's own figures, once it has measured as long as the
             * rehearsal it started from */
            if (!rehearsal_save(rehearsal_file, session, &st) && !write_failed) {
                fprintf(stderr, "tutti hub: could not write %s: %s\n", rehearsal_file,
                        strerror(errno));
                write_failed = true;
            }
            if (!quiet) {
                tutti_net_stats_get(n, &ns);
                printf("hub: %" PRIu32 " member%s, L %.1f ms, relayed %" PRIu64
                       ", delivered %" PRIu64 ", divergences %" PRIu64
                       ", dropped %" PRIu64 ", removed %" PRIu64 ", moved %" PRIu64
                       ", closing %.1f ms ahead%s; auth ok %" PRIu64 " refused %" PRIu64
                       ", refused events %" PRIu64 " requests %" PRIu64
                       ", connections closed at the hello deadline %" PRIu64
                       " refused for their address %" PRIu64 " evicted %" PRIu64
                       "; held ahead %" PRIu64 " events, %.1f KiB\n",
                       st.members, st.members == 1 ? "" : "s", cli_ms(st.horizon),
                       st.relayed, st.delivered, st.divergences, st.dropped_frames,
                       st.removed, st.moved, cli_ms(st.close_lead),
                       st.horizon_floor ? ", the rehearsal's L held" : "", st.auth_ok,
                       st.auth_refused, st.refused_events, st.refused_requests,
                       ns.hello_timeouts, ns.addr_refused, ns.evicted, st.pending_events,
                       st.held_bytes / 1024.0);
                print_members(n);
                fflush(stdout);
            }
        }
        cli_sleep(50 * TUTTI_MS);
    }
    tutti_net_hub_status(n, &st);
    tutti_net_stats_get(n, &ns);
    tutti_net_stop(n);
    if (!rehearsal_save(rehearsal_file, session, &st))
        fprintf(stderr, "tutti hub: could not write %s: %s\n", rehearsal_file,
                strerror(errno));
    printf("{\"role\":\"hub\",\"url\":\"%s\",\"session_epoch_ns\":%" PRId64
           ",\"members\":%" PRIu32 ",\"horizon_ns\":%" PRId64 ",\"relayed\":%" PRIu64
           ",\"delivered\":%" PRIu64 ",\"divergences\":%" PRIu64 ",\"removed\":%" PRIu64
           ",\"dropped_frames\":%" PRIu64 ",\"connections\":%" PRIu64
           ",\"frames_in\":%" PRIu64 ",\"frames_out\":%" PRIu64
           ",\"send_failed\":%" PRIu64 ",\"refused\":%" PRIu64
           ",\"auto_horizon\":%s,\"horizon_target_ns\":%" PRId64
           ",\"horizon_changes\":%" PRIu64 ",\"moved\":%" PRIu64
           ",\"close_lead_ns\":%" PRId64 ",\"open\":%s,\"auth_ok\":%" PRIu64
           ",\"auth_refused\":%" PRIu64 ",\"refused_events\":%" PRIu64
           ",\"refused_requests\":%" PRIu64 ",\"hello_timeouts\":%" PRIu64
           ",\"addr_refused\":%" PRIu64 ",\"evicted\":%" PRIu64
           ",\"unsealed_dropped\":%" PRIu64 ",\"peak_rss_kib\":%ld}\n",
           url, cfg.session_epoch, st.members, st.horizon, st.relayed, st.delivered,
           st.divergences, st.removed, st.dropped_frames, ns.connects, ns.frames_in,
           ns.frames_out, ns.send_failed, ns.refused, auto_horizon ? "true" : "false",
           st.horizon_target, st.horizon_changes, st.moved, st.close_lead,
           st.open ? "true" : "false", st.auth_ok, st.auth_refused, st.refused_events,
           st.refused_requests, ns.hello_timeouts, ns.addr_refused, ns.evicted,
           st.unsealed_dropped, cli_peak_rss_kib());
    return CLI_OK;
}
