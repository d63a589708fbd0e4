/*
 * tutti join | leave | status: session control of a server that runs the
 * plugin, through its proxy port (the same /cmd tutti commands a client can
 * send itself: see docs/supercollider.md).
 *
 * One UDP socket on 127.0.0.1; every request waits for its answer with a
 * deadline, so a server that is not there gives a clear message, not a hang.
 */
#include "cli.h"
#include "osc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_PROXY 57121

static int proxy_socket(int port)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) {
        close(s);
        return -1;
    }
    return s;
}

/* Waits up to `ms` for a message whose address is one of `a1`, `a2`. */
static ssize_t await(int s, uint8_t *buf, size_t cap, int ms, const char *a1,
                     const char *a2, tutti__osc_msg *m)
{
    tutti_time end = tutti_net_now() + (tutti_time)ms * TUTTI_MS;
    for (;;) {
        int left = (int)((end - tutti_net_now()) / TUTTI_MS);
        if (left <= 0) return -1;
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) continue;
        ssize_t n = recv(s, buf, cap, 0);
        if (n <= 0) {
            if (n < 0 && errno == ECONNREFUSED) return -2;
            continue;
        }
        if (tutti__osc_check(buf, (size_t)n) || tutti__osc_is_bundle(buf, (size_t)n) ||
            tutti__osc_msg_parse(buf, (size_t)n, m) || !m->addr)
            continue;
        if (!strcmp(m->addr, a1) || (a2 && !strcmp(m->addr, a2))) return n;
    }
}

/* Prints /tutti/status's key/value pairs to `out` (NULL: nowhere), one
 * "key value" per line, or as one JSON object. Returns the value of "mode" in
 * `mode`. */
static void print_status(const tutti__osc_msg *m, FILE *out, bool json, char *mode,
                         size_t cap)
{
    const uint8_t *rd = m->args;
    const char *tags = m->tags ? m->tags : "";
    if (out && json) fputc('{', out);
    for (size_t i = 0; tags[i] && tags[i + 1]; i += 2) {
        const char *key = (const char *)rd;
        rd += (strlen(key) + 4) & ~(size_t)3;
        char val[160];
        if (tags[i + 1] == 's') {
            snprintf(val, sizeof val, "%s", (const char *)rd);
            rd += (strlen(val) + 4) & ~(size_t)3;
            if (!strcmp(key, "mode")) snprintf(mode, cap, "%.*s", (int)cap - 1, val);
        } else if (tags[i + 1] == 'i') {
            int32_t v = (int32_t)((uint32_t)rd[0] << 24 | (uint32_t)rd[1] << 16 |
                                  (uint32_t)rd[2] << 8 | rd[3]);
            snprintf(val, sizeof val, "%d", v);
            rd += 4;
        } else if (tags[i + 1] == 'f') {
            uint32_t u = (uint32_t)rd[0] << 24 | (uint32_t)rd[1] << 16 |
                         (uint32_t)rd[2] << 8 | rd[3];
            float f;
            memcpy(&f, &u, 4);
            snprintf(val, sizeof val, "%.3f", f);
            rd += 4;
        } else if (tags[i + 1] == 'd') {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++) u = u << 8 | rd[k];
            double d;
            memcpy(&d, &u, 8);
            snprintf(val, sizeof val, "%.17g", d); /* exactly the double sent */
            rd += 8;
        } else {
            break;
        }
        if (!out) continue;
        if (json)
            fprintf(out, "%s\"%s\":%s%s%s", i ? "," : "", key,
                    tags[i + 1] == 's' ? "\"" : "", val, tags[i + 1] == 's' ? "\"" : "");
        else
            fprintf(out, "%-16s %s\n", key, val);
    }
    if (out && json) fputs("}\n", out);
}

/* Asks for the status; 0 and prints it, or CLI_FAIL with a message. */
static int status_once(int s, int port, bool json, bool print, char *mode, size_t cap)
{
    uint8_t req[64], buf[16384];
    size_t n = tutti__osc_write(req, sizeof req, "/cmd", "ss", "tutti", "status");
    tutti__osc_msg m;
    if (send(s, req, n, 0) < 0 ||
        await(s, buf, sizeof buf, 1000, "/tutti/status", NULL, &m) < 0) {
        fprintf(stderr,
                "tutti: no answer from a tutti proxy on 127.0.0.1:%d (is scsynth running "
                "with the plugin? TUTTI_PROXY_PORT sets its port)\n",
                port);
        return CLI_FAIL;
    }
    mode[0] = 0;
    print_status(&m, print ? stdout : NULL, json, mode, cap);
    return CLI_OK;
}

static const char join_usage[] =
    "usage: tutti join --hub URL --name NAME [--session NAME] [--journal FILE]\n"
    "                  [--role ROLE] [--proxy PORT] [--wait S] [--json]\n"
    "\n"
    "Makes the server whose tutti proxy listens on PORT join a session: from\n"
    "then on what its clients send is played on every member's server, and\n"
    "every member's part is played on it. Waits until the member is in the\n"
    "session, then prints its status.\n"
    "\n"
    "  --hub URL       the hub, e.g. tcp://203.0.113.5:7770\n"
    "  --name NAME     this member's name in the session\n"
    "  --session NAME  the session (default " CLI_DEFAULT_SESSION ")\n"
    "  --journal FILE  the server writes what it executes there (canonical form,\n"
    "                  for tutti verify); a path on the server's machine\n"
    "  --role ROLE     what an open hub should make this member: performer (the\n"
    "                  default), listener, conductor (may change the tempo and\n"
    "                  start and stop the transport) or admin\n"
    "  --proxy PORT    the proxy's port (default 57121, or TUTTI_PROXY_PORT)\n"
    "  --wait S        give up after S seconds (default 10)\n"
    "  --json          the status as one JSON object\n";

/* The proxy's port when --proxy is not given (`port` still -1): the one in
 * TUTTI_PROXY_PORT, or 57121. -1 (said on stderr) if TUTTI_PROXY_PORT is not
 * a port a client can reach (0, the plugin's "any free port", is not). */
static int default_port(const char *cmd, int port)
{
    return port >= 0 ? port : cli_env_port(cmd, "TUTTI_PROXY_PORT", 1, DEFAULT_PROXY);
}

int cmd_join(int argc, char **argv)
{
    const char *hub = NULL, *name = NULL, *session = CLI_DEFAULT_SESSION, *journal = "",
               *role = "performer";
    double wait_s = 10;
    int port = -1;
    bool json = false;
    cli_opt opts[] = {{"hub", CLI_DIAL, &hub, 0, 0, NULL},
                      {"name", CLI_STRING, &name, 0, 0, NULL},
                      {"session", CLI_STRING, &session, 0, 0, NULL},
                      {"journal", CLI_STRING, &journal, 0, 0, NULL},
                      {"role", CLI_STRING, &role, 0, 0, NULL},
                      {"proxy", CLI_PORT, &port, 1, 65535, NULL},
                      {"wait", CLI_NUMBER, &wait_s, 0.1, 3600, "seconds"},
                      {"json", CLI_FLAG, &json, 0, 0, NULL},
                      {NULL, 0, NULL, 0, 0, NULL}};
    int rc = cli_parse("join", join_usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((port = default_port("join", port)) < 0) return CLI_USAGE;
    if (!hub || !name) {
        fprintf(stderr, "tutti join: --hub and --name are needed\n\n%s", join_usage);
        return CLI_USAGE;
    }
    int s = proxy_socket(port);
    if (s < 0) {
        perror("tutti join: socket");
        return CLI_FAIL;
    }
    uint8_t req[1024], buf[4096];
    size_t n = tutti__osc_write(req, sizeof req, "/cmd", "sssssss", "tutti", "join", hub,
                                session, name, journal, role);
    tutti__osc_msg m;
    if (!n || send(s, req, n, 0) < 0 ||
        await(s, buf, sizeof buf, 2000, "/done", "/fail", &m) < 0) {
        fprintf(stderr, "tutti join: no answer from a tutti proxy on 127.0.0.1:%d\n",
                port);
        close(s);
        return CLI_FAIL;
    }
    if (!strcmp(m.addr, "/fail")) {
        tutti__osc_iter it;
        tutti__osc_iter_init(&it, &m);
        tutti__osc_iter_gets(&it, NULL);
        fprintf(stderr, "tutti join: the server refused: %s\n",
                tutti__osc_iter_gets(&it, "(no reason given)"));
        close(s);
        return CLI_FAIL;
    }
    tutti_time end = tutti_net_now() + (tutti_time)(wait_s * 1e9);
    char mode[32] = "";
    while (tutti_net_now() < end) {
        if (status_once(s, port, json, false, mode, sizeof mode)) break;
        if (!strcmp(mode, "session")) {
            status_once(s, port, json, true, mode, sizeof mode);
            close(s);
            return CLI_OK;
        }
        cli_sleep(100 * TUTTI_MS);
    }
    fprintf(stderr,
            "tutti join: the server did not get into session \"%s\" at %s within %.1f s "
            "(is the hub running and reachable from the server? the server's log says "
            "more)\n",
            session, hub, wait_s);
    close(s);
    return CLI_FAIL;
}

static const char leave_usage[] =
    "usage: tutti leave [--proxy PORT]\n"
    "\n"
    "The server leaves its session politely and plays solo again.\n";

int cmd_leave(int argc, char **argv)
{
    int port = -1;
    cli_opt opts[] = {{"proxy", CLI_PORT, &port, 1, 65535, NULL},
                      {NULL, 0, NULL, 0, 0, NULL}};
    int rc = cli_parse("leave", leave_usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((port = default_port("leave", port)) < 0) return CLI_USAGE;
    int s = proxy_socket(port);
    if (s < 0) return CLI_FAIL;
    uint8_t req[64], buf[1024];
    size_t n = tutti__osc_write(req, sizeof req, "/cmd", "ss", "tutti", "leave");
    tutti__osc_msg m;
    rc = send(s, req, n, 0) < 0 || await(s, buf, sizeof buf, 3000, "/done", "/fail", &m) < 0
             ? CLI_FAIL
             : CLI_OK;
    if (rc)
        fprintf(stderr, "tutti leave: no answer from a tutti proxy on 127.0.0.1:%d\n",
                port);
    close(s);
    return rc;
}

static const char status_usage[] =
    "usage: tutti status [--proxy PORT] [--json]\n"
    "\n"
    "What the server's tutti proxy is doing: solo or in a session, the members,\n"
    "L, the clock, events played and late.\n";

int cmd_status(int argc, char **argv)
{
    int port = -1;
    bool json = false;
    cli_opt opts[] = {{"proxy", CLI_PORT, &port, 1, 65535, NULL},
                      {"json", CLI_FLAG, &json, 0, 0, NULL},
                      {NULL, 0, NULL, 0, 0, NULL}};
    int rc = cli_parse("status", status_usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((port = default_port("status", port)) < 0) return CLI_USAGE;
    int s = proxy_socket(port);
    if (s < 0) return CLI_FAIL;
    char mode[32];
    rc = status_once(s, port, json, true, mode, sizeof mode);
    close(s);
    return rc;
}
