/*
 * Option parsing, signals and small helpers shared by the commands.
 */
#include "cli.h"
#include "posix/url.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

volatile sig_atomic_t cli_stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static volatile sig_atomic_t exit_status;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "tutti: the network library did not shut down in time; "
                              "exiting anyway\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(exit_status);
}

void cli_exit_after(unsigned seconds, int status)
{
    exit_status = status;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

int cli_fifo(int priority)
{
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    sp.sched_priority = priority;
    return pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
}

bool cli_realtime(const char *cmd, int priority)
{
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int rc = cli_fifo(priority);
    if (rc != 0)
        fprintf(stderr,
                "tutti %s: no real-time priority (%s): running at normal priority\n",
                cmd, strerror(rc));
    return rc == 0;
}

long cli_peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

void cli_sleep(tutti_time ns)
{
    if (ns <= 0) return;
    struct timespec ts = {(time_t)(ns / TUTTI_S), (long)(ns % TUTTI_S)};
    nanosleep(&ts, NULL);
}

double cli_ms(tutti_time ns)
{
    return (double)ns / 1e6;
}

void cli_log(void *ctx, int level, const char *msg)
{
    const char *name = ctx;
    /* The engines start their messages with their own name; the bracket
     * already says who is speaking. */
    if (!strncmp(msg, "tutti hub: ", 11))
        msg += 11;
    else if (!strncmp(msg, "tutti: ", 7))
        msg += 7;
    const char *mark = level >= TUTTI_LOG_ERROR   ? "error: "
                       : level >= TUTTI_LOG_WARN  ? "warning: "
                       : level <= TUTTI_LOG_DEBUG ? "debug: "
                                                  : "";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld [%s] %s%s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, name ? name : "tutti", mark, msg);
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len)
{
    for (const cli_opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) return o;
    return NULL;
}

static int set_value(const char *cmd, const cli_opt *o, const char *v)
{
    char *end;
    errno = 0;
    if (o->kind == CLI_STRING) {
        if (!*v) {
            fprintf(stderr, "tutti %s: --%s needs a value\n", cmd, o->name);
            return CLI_USAGE;
        }
        *(const char **)o->dst = v;
        return 0;
    }
    if (o->kind == CLI_PORT) {
        uint16_t port;
        if (tutti__port_parse(v, strlen(v), (unsigned)o->lo, &port)) {
            fprintf(stderr, "tutti %s: --%s wants a port from %u to 65535, not \"%s\"\n",
                    cmd, o->name, (unsigned)o->lo, v);
            return CLI_USAGE;
        }
        *(int *)o->dst = port;
        return 0;
    }
    if (o->kind == CLI_LISTEN || o->kind == CLI_DIAL) {
        uint16_t port;
        char host[256];
        const char *why = NULL;
        if (o->kind == CLI_LISTEN
                ? tutti__url_listen_parse(v, host, sizeof host, &port, &why)
                : tutti__url_dial_check(v, &why)) {
            fprintf(stderr, "tutti %s: --%s \"%s\": %s\n", cmd, o->name, v, why);
            return CLI_USAGE;
        }
        *(const char **)o->dst = v;
        return 0;
    }
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d) || d < o->lo || d > o->hi ||
        (o->kind == CLI_COUNT && d != floor(d))) {
        fprintf(stderr, "tutti %s: --%s wants %s%s between %g and %g, not \"%s\"\n", cmd,
                o->name, o->kind == CLI_COUNT ? "a whole number of " : "",
                o->what ? o->what : "a number", o->lo, o->hi, v);
        return CLI_USAGE;
    }
    if (o->kind == CLI_COUNT)
        *(uint64_t *)o->dst = (uint64_t)d;
    else
        *(double *)o->dst = d;
    return 0;
}

int cli_parse(const char *cmd, const char *usage, int argc, char **argv,
              const cli_opt *opts, char **rest, int *nrest)
{
    if (nrest) *nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "help")) {
            fputs(usage, stdout);
            return -1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (!rest) {
                fprintf(stderr, "tutti %s: unexpected \"%s\" (try tutti %s --help)\n",
                        cmd, a, cmd);
                return CLI_USAGE;
            }
            rest[(*nrest)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = find_opt(opts, name, len);
        if (!o) {
            fprintf(stderr, "tutti %s: there is no option --%.*s (try tutti %s --help)\n",
                    cmd, (int)len, name, cmd);
            return CLI_USAGE;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) {
                fprintf(stderr, "tutti %s: --%s takes no value\n", cmd, o->name);
                return CLI_USAGE;
            }
            *(bool *)o->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "tutti %s: --%s needs a value\n", cmd, o->name);
            return CLI_USAGE;
        }
        int rc = set_value(cmd, o, v);
        if (rc) return rc;
    }
    return 0;
}

int cli_env_port(const char *cmd, const char *var, unsigned lo, int dflt)
{
    const char *e = getenv(var);
    if (!e || !*e) return dflt;
    uint16_t port;
    if (tutti__port_parse(e, strlen(e), lo, &port)) {
        fprintf(stderr, "tutti %s: %s wants a port from %u to 65535, not \"%s\"\n", cmd,
                var, lo, e);
        return -1;
    }
    return port;
}
