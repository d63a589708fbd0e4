/*
 * `tutti bench proxy`: what the plugin's proxy port adds to a client's path
 * into scsynth, compared with sending straight to scsynth's own port.
 *
 * Setup: a JACK server of its own (dummy driver, --period frames at 48 kHz)
 * and an scsynth (block size --block) with the TuttiProxy plugin, both
 * started and stopped here; or, with --server-port and --proxy-port, servers
 * already running.
 *
 * Latency: /status round trips over UDP, one at a time, alternating between
 * scsynth's port and the proxy's (in a random order within each pair), with a
 * random pause of up to one audio block after each, so every request meets
 * the audio callback at a random phase. Both paths end in the same command
 * queue, which the audio thread reads once per block: each round trip
 * includes a wait of up to one block that has nothing to do with the proxy
 * and is far larger than what the proxy adds. So the paths are compared
 * quantile by quantile: added one-way latency at q = (q-quantile of proxy
 * round trips - q-quantile of direct round trips) / 2. With the block wait
 * uniform and equal on both paths, that difference is what the proxy adds
 * (its extra thread hop in and its reply ring out) at that quantile. Each
 * figure comes with a 95% bootstrap interval (the samples of both paths
 * resampled 200 times): the block wait and the machine's scheduling make
 * the tail noisy, and the interval says how much to trust a figure. The
 * interval narrows with the square root of --samples.
 *
 * Rate: for --rate-seconds per path, --window /status requests kept in
 * flight; the replies per second each path sustains.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char usage[] =
    "usage: tutti bench proxy [OPTIONS]\n"
    "\n"
    "Measures the one-way latency the TuttiProxy port adds over sending straight\n"
    "to scsynth, and the request rate each sustains. Starts its own JACK (dummy\n"
    "driver) and scsynth with the plugin unless given the ports of running ones.\n"
    "\n"
    "options:\n"
    "  --samples N        round trips per path (default 4000)\n"
    "  --period FRAMES    JACK period, frames at 48 kHz (default 64)\n"
    "  --block FRAMES     scsynth block size (default 64)\n"
    "  --rate-seconds S   how long the rate is measured per path (default 2)\n"
    "  --window N         requests in flight for the rate (default 32)\n"
    "  --plugin-dir DIR   where TuttiProxy.so is (default: <tutti's folder>/plugin)\n"
    "  --server-port P    use a running scsynth on 127.0.0.1:P ...\n"
    "  --proxy-port Q     ... and its proxy on 127.0.0.1:Q\n"
    "\n"
    "The last line is one JSON object.\n";

static const uint8_t status_msg[12] = {'/', 's', 't', 'a', 't', 'u',
                                       's', 0,   ',', 0,   0,   0};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void sleep_us(double us)
{
    struct timespec ts = {(time_t)(us / 1e6),
                          (long)((us - (double)(time_t)(us / 1e6) * 1e6) * 1e3)};
    nanosleep(&ts, NULL);
}

static uint64_t rng_state = 0x853c49e6748fea9bu;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(rng_state >> 33);
}

/* ------------------------------------------------------------ processes */

typedef struct procs {
    pid_t jackd, scsynth;
    int server_port;
    char server_name[64];
    char log_path[64];
} procs;

static pid_t spawn(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -1 : pid;
}

/* Waits up to `ms` for `pid` to end; true when it has. */
static bool wait_for(pid_t pid, int ms, int *status)
{
    for (int i = 0; i < ms / 10; i++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || r < 0) return true;
        sleep_us(10000);
    }
    return false;
}

static void stop_pid(pid_t pid, int grace_ms)
{
    int status;
    if (pid <= 0) return;
    if (wait_for(pid, 0, &status)) return;
    kill(pid, SIGTERM);
    if (!wait_for(pid, grace_ms, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
}

static int free_port(void)
{
    for (int i = 0; i < 50; i++) {
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        int port = -1;
        if (t >= 0 && u >= 0 && !bind(t, (struct sockaddr *)&a, sizeof a) &&
            !getsockname(t, (struct sockaddr *)&a, &al) &&
            !bind(u, (struct sockaddr *)&a, sizeof a))
            port = ntohs(a.sin_port);
        if (t >= 0) close(t);
        if (u >= 0) close(u);
        if (port > 0) return port;
    }
    return -1;
}

static int find_plugin_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = 0;
    const char *dir = dirname(exe);
    const char *cands[] = {"%s/plugin", "%s/../lib/SuperCollider/plugins"};
    for (size_t i = 0; i < 2; i++) {
        char so[PATH_MAX + 64];
        snprintf(out, cap, cands[i], dir);
        snprintf(so, sizeof so, "%s/TuttiProxy.so", out);
        if (!access(so, R_OK)) return 0;
    }
    return -1;
}

/* The proxy's port, once scsynth has said it listens; -1 after `ms`. */
static int wait_proxy_port(const procs *p, int ms)
{
    for (int i = 0; i < ms / 50; i++) {
        FILE *f = fopen(p->log_path, "r");
        char line[512];
        int port = -1;
        while (f && fgets(line, sizeof line, f)) {
            const char *s = strstr(line, "proxy listening on 127.0.0.1:");
            if (s) port = atoi(s + strlen("proxy listening on 127.0.0.1:"));
        }
        if (f) fclose(f);
        if (port > 0) return port;
        int status;
        if (wait_for(p->scsynth, 0, &status)) return -1;
        sleep_us(50000);
    }
    return -1;
}

static int start_servers(procs *p, const char *plugin_dir, uint64_t period,
                         uint64_t block)
{
    /* A fixed name: JACK keeps at most 8 servers in its registry and frees the
     * entry of a server that died only when one of the same name starts. */
    snprintf(p->server_name, sizeof p->server_name, "tutti-bench-proxy");
    snprintf(p->log_path, sizeof p->log_path, "/tmp/tutti-bench-proxy-%d.log",
             (int)getpid());
    unlink(p->log_path);
    setenv("JACK_DEFAULT_SERVER", p->server_name, 1);
    setenv("JACK_NO_START_SERVER", "1", 1);
    setenv("TUTTI_PROXY_PORT", "0", 1);

    char per[32], blk[32], port[32], udirs[PATH_MAX + 64];
    snprintf(per, sizeof per, "%llu", (unsigned long long)period);
    snprintf(blk, sizeof blk, "%llu", (unsigned long long)block);
    char *jack_argv[] = {"jackd", "-r", "-d", "dummy", "-r", "48000", "-p", per, NULL};
    p->jackd = spawn(jack_argv, p->log_path);
    if (p->jackd < 0) {
        fprintf(stderr,
                "tutti bench proxy: cannot start jackd (scripts/deps.sh installs it)\n");
        return -1;
    }
    char *wait_argv[] = {"jack_wait", "-w", "-t", "10", NULL};
    pid_t w = spawn(wait_argv, "/dev/null");
    int status = 1;
    if (w < 0 || waitpid(w, &status, 0) != w || !WIFEXITED(status) ||
        WEXITSTATUS(status)) {
        fprintf(stderr, "tutti bench proxy: jackd did not start (see %s)\n", p->log_path);
        return -1;
    }
    p->server_port = free_port();
    snprintf(port, sizeof port, "%d", p->server_port);
    snprintf(udirs, sizeof udirs, "%s:/usr/lib/SuperCollider/plugins", plugin_dir);
    char *sc_argv[] = {"scsynth", "-u", port, "-B", "127.0.0.1", "-R",  "0",
                       "-D",      "0",  "-z", blk,  "-U",        udirs, NULL};
    p->scsynth = spawn(sc_argv, p->log_path);
    if (p->scsynth < 0) {
        fprintf(
            stderr,
            "tutti bench proxy: cannot start scsynth (scripts/deps.sh installs it)\n");
        return -1;
    }
    return 0;
}

static int udp_to(int port)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) {
        if (s >= 0) close(s);
        return -1;
    }
    return s;
}

static void stop_servers(procs *p)
{
    if (p->scsynth > 0) {
        int s = udp_to(p->server_port);
        const uint8_t quit[8] = {'/', 'q', 'u', 'i', 't', 0, 0, 0};
        if (s >= 0) {
            (void)send(s, quit, sizeof quit, 0);
            close(s);
        }
        int status;
        if (!wait_for(p->scsynth, 10000, &status)) stop_pid(p->scsynth, 2000);
    }
    stop_pid(p->jackd, 3000);
    /* What a killed scsynth or jackd leaves in shared memory, named after this
     * run's port and server. */
    char pat[160];
    glob_t g;
    snprintf(pat, sizeof pat, "/dev/shm/SuperColliderServer_%d", p->server_port);
    unlink(pat);
    snprintf(pat, sizeof pat, "/dev/shm/jack*_%s_*", p->server_name);
    if (!glob(pat, 0, NULL, &g)) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
        globfree(&g);
    }
}

/* --------------------------------------------------------------- client */

/* One /status round trip in microseconds, or -1 when no reply came within
 * 1 s. */
static double round_trip(int s)
{
    uint8_t buf[256];
    while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    double t0 = now_us();
    if (send(s, status_msg, sizeof status_msg, 0) != (ssize_t)sizeof status_msg)
        return -1;
    struct pollfd pf = {s, POLLIN, 0};
    if (poll(&pf, 1, 1000) != 1) return -1;
    ssize_t n = recv(s, buf, sizeof buf, 0);
    double t1 = now_us();
    return n > 0 && !memcmp(buf, "/status.reply", 13) ? t1 - t0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, size_t n, double q)
{
    if (!n) return 0;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

/* 95% bootstrap interval of (q-quantile of b - q-quantile of a) / 2. */
static void bootstrap(const double *a, size_t na, const double *b, size_t nb, double q,
                      double ci[2])
{
    enum { ROUNDS = 200 };
    double *ra = malloc(na * sizeof(double)), *rb = malloc(nb * sizeof(double));
    double d[ROUNDS];
    if (!ra || !rb) {
        ci[0] = ci[1] = 0;
        free(ra);
        free(rb);
        return;
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < na; i++)
            ra[i] = a[rnd() % na];
        for (size_t i = 0; i < nb; i++)
            rb[i] = b[rnd() % nb];
        qsort(ra, na, sizeof(double), cmp_double);
        qsort(rb, nb, sizeof(double), cmp_double);
        d[r] = (quantile(rb, nb, q) - quantile(ra, na, q)) / 2;
    }
    qsort(d, ROUNDS, sizeof(double), cmp_double);
    ci[0] = quantile(d, ROUNDS, 0.025);
    ci[1] = quantile(d, ROUNDS, 0.975);
    free(ra);
    free(rb);
}

/* Replies per second with `window` requests in flight. */
static double rate(int s, double seconds, uint64_t window, uint64_t *lost)
{
    uint8_t buf[256];
    while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    uint64_t in_flight = 0, replies = 0;
    double start = now_us(), end = start + seconds * 1e6;
    for (; in_flight < window; in_flight++)
        (void)send(s, status_msg, sizeof status_msg, 0);
    while (now_us() < end) {
        struct pollfd pf = {s, POLLIN, 0};
        if (poll(&pf, 1, 200) != 1) {
            /* a request lost on the way: put it back in flight */
            (*lost)++;
            (void)send(s, status_msg, sizeof status_msg, 0);
            continue;
        }
        while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {
            replies++;
            (void)send(s, status_msg, sizeof status_msg, 0);
        }
    }
    double took = now_us() - start;
    sleep_us(100000);
    while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    return (double)replies / (took / 1e6);
}

int tutti_bench_proxy(int argc, char **argv)
{
    uint64_t samples = 4000, period = 64, block = 64, window = 32;
    uint64_t server_port = 0, proxy_port = 0;
    double rate_s = 2;
    const char *plugin_dir = NULL;
    cli_opt opts[] = {
        {"samples", CLI_COUNT, &samples, 10, 1e7, "round trips"},
        {"period", CLI_COUNT, &period, 16, 8192, "frames"},
        {"block", CLI_COUNT, &block, 1, 8192, "frames"},
        {"rate-seconds", CLI_NUMBER, &rate_s, 0, 3600, "seconds"},
        {"window", CLI_COUNT, &window, 1, 512, "requests"},
        {"plugin-dir", CLI_STRING, &plugin_dir, 0, 0, NULL},
        {"server-port", CLI_COUNT, &server_port, 1, 65535, "port"},
        {"proxy-port", CLI_COUNT, &proxy_port, 1, 65535, "port"},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse("bench proxy", usage, argc, argv, opts, NULL, NULL);
    if (rc < 0) return CLI_OK;
    if (rc) return rc;
    if (!server_port != !proxy_port) {
        fprintf(
            stderr,
            "tutti bench proxy: give both --server-port and --proxy-port, or neither\n");
        return CLI_USAGE;
    }

    procs p = {0};
    char dir[PATH_MAX];
    bool own = !server_port;
    if (own) {
        if (plugin_dir)
            snprintf(dir, sizeof dir, "%s", plugin_dir);
        else if (find_plugin_dir(dir, sizeof dir)) {
            fprintf(stderr,
                    "tutti bench proxy: no TuttiProxy.so next to tutti; say where with "
                    "--plugin-dir\n");
            return CLI_USAGE;
        }
        signal(SIGPIPE, SIG_IGN);
        if (start_servers(&p, dir, period, block)) {
            stop_servers(&p);
            return CLI_FAIL;
        }
        int port = wait_proxy_port(&p, 20000);
        if (port < 0) {
            fprintf(stderr,
                    "tutti bench proxy: the proxy did not open its port (see %s)\n",
                    p.log_path);
            stop_servers(&p);
            return CLI_FAIL;
        }
        server_port = (uint64_t)p.server_port;
        proxy_port = (uint64_t)port;
    }

    int sd = udp_to((int)server_port), sp = udp_to((int)proxy_port);
    double *rt[2] = {calloc(samples, sizeof(double)), calloc(samples, sizeof(double))};
    uint64_t lost = 0, n[2] = {0, 0};
    int result = CLI_OK;
    if (sd < 0 || sp < 0 || !rt[0] || !rt[1]) {
        result = CLI_FAIL;
        goto out;
    }
    /* Both must answer before anything is timed. */
    for (int i = 0; i < 100; i++)
        if (round_trip(sd) >= 0 && round_trip(sp) >= 0) break;
    for (int i = 0; i < 200; i++) {
        round_trip(sd);
        round_trip(sp);
    }

    double block_us = 1e6 * (double)(period > block ? period : block) / 48000.0;
    int socks[2] = {sd, sp};
    for (uint64_t i = 0; i < samples; i++) {
        int first = (int)(rnd() & 1);
        for (int k = 0; k < 2; k++) {
            int path = first ^ k;
            double r = round_trip(socks[path]);
            if (r < 0)
                lost++;
            else
                rt[path][n[path]++] = r;
            sleep_us(block_us * (double)rnd() / 4294967296.0);
        }
    }
    if (n[0] < samples / 2 || n[1] < samples / 2) {
        fprintf(stderr, "tutti bench proxy: too many requests went unanswered (%llu)\n",
                (unsigned long long)lost);
        result = CLI_FAIL;
        goto out;
    }
    qsort(rt[0], n[0], sizeof(double), cmp_double);
    qsort(rt[1], n[1], sizeof(double), cmp_double);
    double d50 = quantile(rt[0], n[0], 0.5), d99 = quantile(rt[0], n[0], 0.99);
    double p50 = quantile(rt[1], n[1], 0.5), p99 = quantile(rt[1], n[1], 0.99);
    double add50 = (p50 - d50) / 2, add99 = (p99 - d99) / 2, ci50[2], ci99[2];
    bootstrap(rt[0], n[0], rt[1], n[1], 0.5, ci50);
    bootstrap(rt[0], n[0], rt[1], n[1], 0.99, ci99);

    uint64_t rate_lost = 0;
    double rate_d = rate_s > 0 ? rate(sd, rate_s, window, &rate_lost) : 0;
    double rate_p = rate_s > 0 ? rate(sp, rate_s, window, &rate_lost) : 0;

    printf("setup: JACK dummy %llu frames at 48 kHz, scsynth block %llu (%.0f us), %llu "
           "round "
           "trips per path%s\n",
           (unsigned long long)period, (unsigned long long)block, block_us,
           (unsigned long long)samples, own ? "" : " (running servers)");
    printf("direct round trip (us): p50 %.1f  p99 %.1f\n", d50, d99);
    printf("proxy round trip (us):  p50 %.1f  p99 %.1f\n", p50, p99);
    printf("added one-way latency (us): p50 %.1f [%.1f, %.1f]  p99 %.1f [%.1f, %.1f]  "
           "(95%% intervals; target: p50 <= 50)\n",
           add50, ci50[0], ci50[1], add99, ci99[0], ci99[1]);
    printf("sustained /status rate (%llu in flight): direct %.0f/s  proxy %.0f/s\n",
           (unsigned long long)window, rate_d, rate_p);
    printf("{\"bench\":\"proxy\",\"added_latency_p50_us\":%.1f,\"added_latency_p99_us\":%"
           ".1f,"
           "\"added_latency_p50_ci95_us\":[%.1f,%.1f],\"added_latency_p99_ci95_us\":[%."
           "1f,%.1f],"
           "\"direct_rtt_p50_us\":%.1f,\"direct_rtt_p99_us\":%.1f,"
           "\"proxy_rtt_p50_us\":%.1f,\"proxy_rtt_p99_us\":%.1f,\"samples\":%llu,"
           "\"lost\":%llu,"
           "\"period_frames\":%llu,\"block_frames\":%llu,\"rate_direct_per_s\":%.0f,"
           "\"rate_proxy_per_s\":%.0f,\"rate_window\":%llu,\"rate_lost\":%llu,"
           "\"target_p50_us\":50,\"target_met\":%s}\n",
           add50, add99, ci50[0], ci50[1], ci99[0], ci99[1], d50, d99, p50, p99,
           (unsigned long long)samples, (unsigned long long)lost,
           (unsigned long long)period, (unsigned long long)block, rate_d, rate_p,
           (unsigned long long)window, (unsigned long long)rate_lost,
           add50 <= 50 ? "true" : "false");
out:
    if (sd >= 0) close(sd);
    if (sp >= 0) close(sp);
    free(rt[0]);
    free(rt[1]);
    if (own) {
        stop_servers(&p);
        if (result == CLI_OK) unlink(p.log_path);
    }
    return result;
}
