/*
 * tutti session: a whole performance on this machine, and its verdict.
 *
 * Starts a hub and N members as separate processes (this program, run again),
 * on 127.0.0.1 with a port the hub picks, lets every member play, then
 * compares what each one heard. Everything they write lands in one folder:
 * hub.out/hub.log, and per member NAME.journal, NAME.out (its final JSON
 * line) and NAME.log.
 *
 * Only processes this command started are ever signalled, by pid, and every
 * wait is bounded: a stuck member is stopped, then killed, and the session
 * reports the failure instead of hanging.
 */
#include "cli.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char usage[] =
    "usage: tutti session [--members N] [--events N] [--rate HZ] [--duration S]\n"
    "                     [--horizon MS] [--lead-max MS] [--out DIR]\n"
    "\n"
    "Plays a whole session on this machine: a hub and N members, each a separate\n"
    "process, each playing test events at random moments. Then prints, for every\n"
    "member, how well its clock agreed with the session clock, its round trip, the\n"
    "horizon L, the events it sent, heard and heard late, and the hash of its\n"
    "journal; and the verdict: whether all members heard exactly the same\n"
    "performance (their journals identical over the time they shared).\n"
    "\n"
    "  --members N     members to start (default 3)\n"
    "  --events N      test events each member plays (default 500)\n"
    "  --rate HZ       events per second per member (default 200)\n"
    "  --duration S    play for at least this long (default 0: until done)\n"
    "  --horizon MS    the session's L (default 100)\n"
    "  --lead-max MS   stamp events up to this far ahead (default 200)\n"
    "  --out DIR       keep journals and logs in DIR (default: a new folder in /tmp)\n"
    "\n"
    "Exit status: 0 coherent and complete, 1 otherwise, 2 bad options.\n";

static const char *const default_names[] = {"anna",  "bruno", "carla", "dario",
                                            "elena", "fabio", "gina",  "hugo"};

typedef struct child {
    char name[32];
    pid_t pid;
    int status;
    bool done;
} child;

static int spawn(child *c, char *const argv[], const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&c->pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    c->done = false;
    if (rc != 0) {
        fprintf(stderr, "tutti session: cannot start %s: %s\n", c->name, strerror(rc));
        return -1;
    }
    return 0;
}

/* Has it exited? Reaps it if so. */
static bool poll_child(child *c)
{
    if (c->done) return true;
    pid_t r = waitpid(c->pid, &c->status, WNOHANG);
    if (r == c->pid || (r < 0 && errno == ECHILD)) c->done = true;
    return c->done;
}

/* Wait until every child has exited or `deadline` passes; true if all did. */
static bool wait_all(child *cs, int n, tutti_time deadline)
{
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all &= poll_child(&cs[i]);
        if (all) return true;
        if (tutti_net_now() >= deadline) return false;
        cli_sleep(20 * TUTTI_MS);
    }
}

/* Ask politely, then insist: SIGTERM, up to `grace`, then SIGKILL. */
static void stop_children(child *cs, int n, tutti_time grace)
{
    for (int i = 0; i < n; i++)
        if (!poll_child(&cs[i])) kill(cs[i].pid, SIGTERM);
    if (wait_all(cs, n, tutti_net_now() + grace)) return;
    for (int i = 0; i < n; i++) {
        if (!poll_child(&cs[i])) {
            fprintf(stderr, "tutti session: %s does not stop; killing it\n", cs[i].name);
            kill(cs[i].pid, SIGKILL);
            waitpid(cs[i].pid, &cs[i].status, 0);
            cs[i].done = true;
        }
    }
}

static const char *exit_text(const child *c, char *buf, size_t cap)
{
    if (!c->done) return "still running";
    if (WIFEXITED(c->status)) {
        if (WEXITSTATUS(c->status) == 0) return "ok";
        snprintf(buf, cap, "failed (exit %d)", WEXITSTATUS(c->status));
    } else if (WIFSIGNALED(c->status)) {
        snprintf(buf, cap, "CRASHED (%s)", strsignal(WTERMSIG(c->status)));
    } else {
        snprintf(buf, cap, "ended oddly");
    }
    return buf;
}

static bool child_ok(const child *c)
{
    return c->done && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

/* The last line of a file, or "" (into buf). */
static void last_line(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f))
        if (line[0] && line[0] != '\n') snprintf(buf, cap, "%s", line);
    fclose(f);
}

/* A number after "key": in a flat JSON object; `dflt` if absent. */
static double json_num(const char *json, const char *key, double dflt)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return dflt;
    p += strlen(pat);
    if (*p == '"') p++;
    char *end;
    double v = strtod(p, &end);
    if (end == p) return !strncmp(p, "true", 4) ? 1 : dflt;
    return v;
}

static void json_str(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    out[0] = 0;
    const char *p = strstr(json, pat);
    if (!p) return;
    p += strlen(pat);
    size_t i = 0;
    while (p[i] && p[i] != '"' && i + 1 < cap) {
        out[i] = p[i];
        i++;
    }
    out[i] = 0;
}

static int make_out_dir(const char *want, char *dir, size_t cap)
{
    if (want) {
        if (mkdir(want, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "tutti session: cannot create the folder %s: %s\n", want,
                    strerror(errno));
            return -1;
        }
        snprintf(dir, cap, "%s", want);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/tutti-session-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "tutti session: cannot create a folder for the journals: %s\n",
                strerror(errno));
        return -1;
    }
    return 0;
}

int cmd_session(int argc, char **argv)
{
    uint64_t members = 3, events = 500;
    double rate = 200, duration = 0, horizon_ms = 100, lead_max_ms = 200;
    const char *out_want = NULL;
    const cli_opt opts[] = {
        {"members", CLI_COUNT, &members, 1, 64, "members"},
        {"events", CLI_COUNT, &events, 0, 1e8, "events"},
        {"rate", CLI_NUMBER, &rate, 0.1, 100000, "events per second"},
        {"duration", CLI_NUMBER, &duration, 0, 86400, "seconds"},
        {"horizon", CLI_NUMBER, &horizon_ms, 1, 10000, "milliseconds"},
        {"lead-max", CLI_NUMBER, &lead_max_ms, 0, 60000, "milliseconds"},
        {"out", CLI_STRING, &out_want, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse("session", usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;

    char dir[PATH_MAX - 64];
    if (make_out_dir(out_want, dir, sizeof dir)) return CLI_FAIL;
    cli_catch_signals();

    const int n = (int)members;
    const double play_s =
        (double)events / rate > duration ? (double)events / rate : duration;
    const double member_timeout = 30 + play_s;
    char path[PATH_MAX], out[PATH_MAX], err[PATH_MAX], url_file[PATH_MAX];
    char a_h[32], a_ev[32], a_rate[32], a_lead[32], a_dur[32], a_wait[32], a_exp[32],
        a_to[32];

    /* ---- the hub ---- */
    child hub = {.name = "the hub"};
    snprintf(url_file, sizeof url_file, "%s/hub.url", dir);
    unlink(url_file);
    snprintf(a_h, sizeof a_h, "%g", horizon_ms);
    /* The hub ends by itself some time after the members must have, in case
     * this process is killed before it can stop the hub. */
    char a_hub_dur[32];
    snprintf(a_hub_dur, sizeof a_hub_dur, "%g", member_timeout + 60);
    char *hub_argv[] = {"tutti",      "hub",     "--listen",   "tcp://127.0.0.1:0",
                        "--session",  "session", "--horizon",  a_h,
                        "--url-file", url_file,  "--duration", a_hub_dur,
                        "--quiet",    NULL};
    snprintf(out, sizeof out, "%s/hub.out", dir);
    snprintf(err, sizeof err, "%s/hub.log", dir);
    if (spawn(&hub, hub_argv, out, err)) return CLI_FAIL;

    char url[256] = "";
    tutti_time until = tutti_net_now() + 10 * TUTTI_S;
    while (!url[0]) {
        FILE *f = fopen(url_file, "r");
        if (f) {
            if (!fgets(url, sizeof url, f)) url[0] = 0;
            fclose(f);
            url[strcspn(url, "\n")] = 0;
        }
        if (url[0]) break;
        if (poll_child(&hub) || tutti_net_now() >= until || cli_stop_requested) {
            fprintf(stderr, "tutti session: the hub did not start; see %s\n", err);
            stop_children(&hub, 1, 2 * TUTTI_S);
            return CLI_FAIL;
        }
        cli_sleep(10 * TUTTI_MS);
    }

    /* ---- the members ---- */
    child *ms = calloc((size_t)n, sizeof *ms);
    if (!ms) return CLI_FAIL;
    snprintf(a_ev, sizeof a_ev, "%" PRIu64, events);
    snprintf(a_rate, sizeof a_rate, "%g", rate);
    snprintf(a_lead, sizeof a_lead, "%g", lead_max_ms);
    snprintf(a_dur, sizeof a_dur, "%g", duration);
    snprintf(a_wait, sizeof a_wait, "%d", n);
    snprintf(a_exp, sizeof a_exp, "%" PRIu64, (uint64_t)n * events);
    snprintf(a_to, sizeof a_to, "%g", member_timeout);
    printf("tutti session: hub at %s; %d members play %" PRIu64 " events each at %g/s "
           "(L %g ms)\n",
           url, n, events, rate, horizon_ms);
    fflush(stdout);
    const tutti_time t0 = tutti_net_now();
    bool started = true;
    for (int i = 0; i < n; i++) {
        if (i < (int)(sizeof default_names / sizeof default_names[0]))
            snprintf(ms[i].name, sizeof ms[i].name, "%s", default_names[i]);
        else
            snprintf(ms[i].name, sizeof ms[i].name, "member%d", i + 1);
        snprintf(path, sizeof path, "%s/%s.journal", dir, ms[i].name);
        char *argv_m[] = {
            "tutti",          "member",  "--hub",     url,   "--name",     ms[i].name,
            "--session",      "session", "--events",  a_ev,  "--rate",     a_rate,
            "--lead-max",     a_lead,    "--journal", path,  "--duration", a_dur,
            "--wait-members", a_wait,    "--expect",  a_exp, "--timeout",  a_to,
            "--quiet",        NULL};
        snprintf(out, sizeof out, "%s/%s.out", dir, ms[i].name);
        snprintf(err, sizeof err, "%s/%s.log", dir, ms[i].name);
        if (spawn(&ms[i], argv_m, out, err)) {
            started = false;
            ms[i].done = true;
            ms[i].status = 1 << 8;
            break;
        }
    }

    /* ---- play ---- */
    bool finished = started;
    tutti_time deadline = t0 + (tutti_time)((member_timeout + 10) * 1e9);
    while (finished && !wait_all(ms, n, tutti_net_now() + 100 * TUTTI_MS)) {
        if (cli_stop_requested || tutti_net_now() >= deadline) finished = false;
    }
    if (!finished) {
        fprintf(stderr, "tutti session: %s; stopping the members\n",
                cli_stop_requested ? "interrupted"
                : !started         ? "a member could not start"
                                   : "the members took too long");
        stop_children(ms, n, 3 * TUTTI_S);
    }
    double played = (double)(tutti_net_now() - t0) / 1e9;
    stop_children(&hub, 1, 5 * TUTTI_S);

    /* ---- the report ---- */
    char line[4096], buf[64];
    snprintf(out, sizeof out, "%s/hub.out", dir);
    last_line(out, line, sizeof line);
    double epoch = json_num(line, "session_epoch_ns", 0);
    uint64_t hub_div = (uint64_t)json_num(line, "divergences", 0);
    uint64_t hub_drop = (uint64_t)json_num(line, "dropped_frames", 0);
    uint64_t hub_refused = (uint64_t)json_num(line, "refused", 0);

    const char **journals = calloc((size_t)n, sizeof *journals);
    char(*jpaths)[PATH_MAX] = calloc((size_t)n, sizeof *jpaths);
    cli_journal_summary *sum = calloc((size_t)n, sizeof *sum);
    if (!journals || !jpaths || !sum) return CLI_FAIL;
    for (int i = 0; i < n; i++) {
        snprintf(jpaths[i], sizeof jpaths[i], "%s/%s.journal", dir, ms[i].name);
        journals[i] = jpaths[i];
    }
    char *verdict_text = NULL;
    size_t verdict_len = 0;
    FILE *vf = open_memstream(&verdict_text, &verdict_len);
    int cmp = n >= 2 ? cli_journal_compare(journals, n, vf, sum) : CLI_JOURNALS_IDENTICAL;
    if (n < 2) fprintf(vf, "only one member: nothing to compare\n");
    fclose(vf);

    printf("\n%-8s %4s %12s %10s %9s %6s %6s %9s %7s %5s %9s  %-16s  %s\n", "member",
           "id", "clock error", "bound", "rtt", "L", "sent", "restamped", "heard", "late",
           "max late", "journal hash", "result");
    uint64_t all_events = (uint64_t)n * events, late_total = 0, heard_total = 0;
    bool all_ok = started && finished, complete = true;
    for (int i = 0; i < n; i++) {
        snprintf(out, sizeof out, "%s/%s.out", dir, ms[i].name);
        last_line(out, line, sizeof line);
        bool have = line[0] == '{';
        double off = json_num(line, "offset_ns", 0);
        uint64_t heard = (uint64_t)json_num(line, "heard", 0);
        uint64_t late = (uint64_t)json_num(line, "late", 0);
        late_total += late;
        heard_total += heard;
        if (heard != all_events || (n >= 2 && sum[i].user_events != all_events))
            complete = false;
        char err_text[128] = "";
        json_str(line, "error", err_text, sizeof err_text);
        const char *result = exit_text(&ms[i], buf, sizeof buf);
        if (!child_ok(&ms[i])) all_ok = false;
        if (!have) {
            printf("%-8s  (no figures: %s; see %s/%s.log)\n", ms[i].name, result, dir,
                   ms[i].name);
            continue;
        }
        char hash[20] = "-";
        if (n >= 2 && sum[i].shared_lines)
            snprintf(hash, sizeof hash, "%016" PRIx64, sum[i].shared_hash);
        printf(
            "%-8s %4.0f %+9.3f ms \u00b1%6.3f ms %6.3f ms %3.0f ms %6.0f %9.0f %7" PRIu64
            " %5" PRIu64 " %6.1f ms  %-16s  %s%s%s\n",
            ms[i].name, json_num(line, "id", 0), epoch ? (off - epoch) / 1e6 : 0.0,
            json_num(line, "bound_ns", 0) / 1e6, json_num(line, "rtt_ns", 0) / 1e6,
            json_num(line, "horizon_ns", 0) / 1e6, json_num(line, "submitted", 0),
            json_num(line, "restamped", 0), heard, late,
            json_num(line, "max_lateness_ns", 0) / 1e6, hash, result,
            err_text[0] ? ": " : "", err_text);
    }
    printf("\nhub: %" PRIu64 " divergences reported, %" PRIu64
           " malformed frames dropped, %" PRIu64 " connections refused\n",
           hub_div, hub_drop, hub_refused);
    printf("played %.1f s; the members heard %" PRIu64
           " test events between them, %" PRIu64 " late\n",
           played, heard_total, late_total);
    printf("%s", verdict_text ? verdict_text : "");
    bool coherent = cmp == CLI_JOURNALS_IDENTICAL && hub_div == 0;
    if (!complete)
        printf("incomplete: not every member heard all %" PRIu64 " test events\n",
               all_events);
    printf("verdict: %s\n", coherent && complete && all_ok
                                ? "COHERENT, every member heard the same performance"
                            : !coherent
                                ? "INCOHERENT, the members heard different performances"
                                : "FAILED, the session did not run to the end");
    printf("journals and logs: %s\n", dir);
    free(verdict_text);
    free(journals);
    free(jpaths);
    free(sum);
    free(ms);
    return coherent && complete && all_ok ? CLI_OK : CLI_FAIL;
}
