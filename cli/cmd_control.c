/*
 * tutti join | leave | status: session control of a server that runs the
 * plugin, through its proxy port (the same /cmd tutti commands a client can
 * send itself: see docs/supercollider.md).
 *
 * One UDP socket on 127.0.0.1; every request waits for its answer with a
 * deadline, so a server that is not there gives a clear message, not a hang.
 *
 * The requests are written and the answers read with liblo
 * (lo_message_serialise into our buffer, lo_message_deserialise): a few
 * messages from a server on this machine, where liblo's cost does not matter
 * (docs/osc.md has the comparison; the plugin keeps its own reader for what
 * clients send, which must be read the way scsynth reads it). An answer
 * passes the plugin's OSC check (plugin/osc.c, fuzzed) before liblo reads it:
 * liblo 0.31 reads past the end of some malformed packets, the check's
 * packets it reads inside them (docs/osc.md).
 */
#include "auth.h"
#include "cli.h"
#include "credentials.h"
#include "osc.h"

#include <arpa/inet.h>
#include <lo/lo_lowlevel.h>
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

/* /cmd with the strings `args` (n of them) into `out`: its length, or 0 when
 * it does not fit. */
static size_t write_cmd(uint8_t *out, size_t cap, const char *const *args, int n)
{
    lo_message m = lo_message_new();
    if (!m) return 0;
    for (int i = 0; i < n; i++)
        lo_message_add_string(m, args[i]);
    size_t len = lo_message_length(m, "/cmd");
    if (len > cap || !lo_message_serialise(m, "/cmd", out, &len)) len = 0;
    lo_message_free(m);
    return len;
}

/* Waits up to `ms` for a message whose address is one of `a1`, `a2`: the
 * message (the caller frees it with lo_message_free) and its address in
 * *addr (which points into `buf`), or NULL. Anything else, a bundle or a
 * malformed packet included, is skipped. */
static lo_message await(int s, uint8_t *buf, size_t cap, int ms, const char *a1,
                        const char *a2, const char **addr)
{
    tutti_time end = tutti_net_now() + (tutti_time)ms * TUTTI_MS;
    for (;;) {
        int left = (int)((end - tutti_net_now()) / TUTTI_MS);
        if (left <= 0) return NULL;
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, left) <= 0) continue;
        ssize_t n = recv(s, buf, cap, 0);
        if (n <= 0 || tutti__osc_check(buf, (size_t)n) || buf[0] != '/')
            continue; /* nothing, malformed, a bundle or an integer command */
        int err = 0;
        lo_message m = lo_message_deserialise(buf, (size_t)n, &err);
        if (!m) continue;
        const char *a = lo_get_path(buf, n);
        if (a && (!strcmp(a, a1) || (a2 && !strcmp(a, a2)))) {
            *addr = a;
            return m;
        }
        lo_message_free(m);
    }
}

/* Prints /tutti/status's key/value pairs to `out` (NULL: nowhere), one
 * "key value" per line, or as one JSON object. Returns the value of "mode" in
 * `mode`. */
static void print_status(lo_message m, FILE *out, bool json, char *mode, size_t cap)
{
    const char *tags = lo_message_get_types(m);
    lo_arg **argv = lo_message_get_argv(m);
    if (out && json) fputc('{', out);
    for (size_t i = 0; tags[i] == 's' && tags[i + 1]; i += 2) {
        /* liblo's arguments point into the message as sent: a string or a
         * number at any 4-byte boundary, so they are read through memcpy
         * or as bytes, never through a member of the 8-byte lo_arg */
        const char *key = (const char *)argv[i];
        const lo_arg *v = argv[i + 1];
        char val[160];
        if (tags[i + 1] == 's') {
            snprintf(val, sizeof val, "%s", (const char *)v);
            if (!strcmp(key, "mode")) snprintf(mode, cap, "%.*s", (int)cap - 1, val);
        } else if (tags[i + 1] == 'i') {
            int32_t n32;
            memcpy(&n32, v, sizeof n32);
            snprintf(val, sizeof val, "%d", (int)n32);
        } else if (tags[i + 1] == 'f') {
            float f32;
            memcpy(&f32, v, sizeof f32);
            snprintf(val, sizeof val, "%.3f", f32);
        } else if (tags[i + 1] == 'd') {
            double f64;
            memcpy(&f64, v, sizeof f64);
            snprintf(val, sizeof val, "%.17g", f64); /* exactly the double sent */
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
    const char *args[] = {"tutti", "status"};
    size_t n = write_cmd(req, sizeof req, args, 2);
    const char *addr;
    lo_message m = NULL;
    if (!n || send(s, req, n, 0) < 0 ||
        !(m = await(s, buf, sizeof buf, 1000, "/tutti/status", NULL, &addr))) {
        fprintf(stderr,
                "tutti: no answer from a tutti proxy on 127.0.0.1:%d (is scsynth running "
                "with the plugin? TUTTI_PROXY_PORT sets its port)\n",
                port);
        return CLI_FAIL;
    }
    mode[0] = 0;
    print_status(m, print ? stdout : NULL, json, mode, cap);
    lo_message_free(m);
    return CLI_OK;
}

static const char join_usage[] =
    "usage: tutti join --hub URL --name NAME [--session NAME] [--journal FILE]\n"
    "                  [--role ROLE] [--invite FILE] [--passphrase-file FILE]\n"
    "                  [--hub-key HEX] [--proxy PORT] [--wait S] [--json]\n"
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
    "  --invite FILE   join with this invitation (tutti invite made it): the\n"
    "                  link to the hub is then encrypted and the hub checked\n"
    "  --passphrase-file FILE  join with the session passphrase (first line)\n"
    "  --hub-key HEX   the hub's key (its log prints it): refuse any other hub\n"
    "                  (an invitation carries it already)\n"
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
    const char *invite_file = NULL, *pass_file = NULL, *hub_key = "";
    double wait_s = 10;
    int port = -1;
    bool json = false;
    cli_opt opts[] = {{"hub", CLI_DIAL, &hub, 0, 0, NULL},
                      {"name", CLI_STRING, &name, 0, 0, NULL},
                      {"session", CLI_STRING, &session, 0, 0, NULL},
                      {"journal", CLI_STRING, &journal, 0, 0, NULL},
                      {"role", CLI_STRING, &role, 0, 0, NULL},
                      {"invite", CLI_STRING, &invite_file, 0, 0, NULL},
                      {"passphrase-file", CLI_STRING, &pass_file, 0, 0, NULL},
                      {"hub-key", CLI_STRING, &hub_key, 0, 0, NULL},
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
    /* The credential is read here, by the user who has it, and goes to the
     * server as text over the loopback proxy port (session.h). */
    char inv[512] = "", pass[1024] = "";
    if (invite_file) {
        tutti_invite parsed;
        char err[300];
        if (cli_invite_read(invite_file, &parsed, err, sizeof err) != 0) {
            fprintf(stderr, "tutti join: --invite: %s\n", err);
            return CLI_FAIL;
        }
        tutti__invite_format(&parsed, inv, sizeof inv);
        tutti__auth_wipe(&parsed, sizeof parsed);
    }
    if (pass_file && cli_read_line_file(pass_file, pass, sizeof pass) != 0) {
        fprintf(stderr, "tutti join: cannot read a passphrase from %s\n", pass_file);
        return CLI_FAIL;
    }
    if (*hub_key && strlen(hub_key) != 64) {
        fprintf(stderr, "tutti join: --hub-key is 64 hex digits\n");
        return CLI_USAGE;
    }
    int s = proxy_socket(port);
    if (s < 0) {
        perror("tutti join: socket");
        return CLI_FAIL;
    }
    /* This one request is written with the project's own encoder, not
     * liblo's: it carries the invitation and the passphrase, and a buffer of
     * our own can be wiped once sent (liblo keeps copies in its own heap). */
    uint8_t req[8192], buf[4096];
    size_t n = tutti__osc_write(req, sizeof req, "/cmd", "sssssssssssss", "tutti", "join",
                                hub, session, name, journal, role, "invite", inv,
                                "passphrase", pass, "hub_key", hub_key);
    tutti__auth_wipe(inv, sizeof inv);
    tutti__auth_wipe(pass, sizeof pass);
    const char *addr;
    lo_message m = NULL;
    if (!n || send(s, req, n, 0) < 0 ||
        !(m = await(s, buf, sizeof buf, 5000, "/done", "/fail", &addr))) {
        tutti__auth_wipe(req, sizeof req);
        fprintf(stderr, "tutti join: no answer from a tutti proxy on 127.0.0.1:%d\n",
                port);
        close(s);
        return CLI_FAIL;
    }
    tutti__auth_wipe(req, sizeof req);
    if (!strcmp(addr, "/fail")) {
        /* /fail, the command's name, the reason */
        const char *tags = lo_message_get_types(m);
        lo_arg **got = lo_message_get_argv(m);
        fprintf(stderr, "tutti join: the server refused: %s\n",
                tags[0] && tags[1] == 's' ? (const char *)got[1] : "(no reason given)");
        lo_message_free(m);
        close(s);
        return CLI_FAIL;
    }
    lo_message_free(m);
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
    const char *args[] = {"tutti", "leave"};
    size_t n = write_cmd(req, sizeof req, args, 2);
    const char *addr;
    lo_message m = NULL;
    rc = !n || send(s, req, n, 0) < 0 ||
                 !(m = await(s, buf, sizeof buf, 3000, "/done", "/fail", &addr))
             ? CLI_FAIL
             : CLI_OK;
    if (m) lo_message_free(m);
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

static const char gain_usage[] =
    "usage: tutti gain --part WHO (--gain G | --mute | --unmute) [--proxy PORT]\n"
    "\n"
    "How loud this server plays one part of the session: WHO is a member's name\n"
    "or its part's number, G from 0 (silent) to 1 (as played, the default).\n"
    "A local monitoring choice: no other server changes, nothing goes into the\n"
    "session or its journals, and the server check does not see it. The gain\n"
    "comes after the part's safety limiter (docs/security.md); tutti status\n"
    "shows each part's gain and how often its limiter acted (\"guard\").\n";

int cmd_gain(int argc, char **argv)
{
    const char *who = NULL;
    double gain = -1;
    bool mute = false, unmute = false;
    int port = -1;
    cli_opt opts[] = {{"part", CLI_STRING, &who, 0, 0, NULL},
                      {"gain", CLI_NUMBER, &gain, 0, 1, "a gain"},
                      {"mute", CLI_FLAG, &mute, 0, 0, NULL},
                      {"unmute", CLI_FLAG, &unmute, 0, 0, NULL},
                      {"proxy", CLI_PORT, &port, 1, 65535, NULL},
                      {NULL, 0, NULL, 0, 0, NULL}};
    int rc = cli_parse("gain", gain_usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((port = default_port("gain", port)) < 0) return CLI_USAGE;
    if (!who || (gain < 0) + !mute + !unmute != 2) {
        fprintf(stderr, "tutti gain: --part and one of --gain, --mute, --unmute\n\n%s",
                gain_usage);
        return CLI_USAGE;
    }
    int s = proxy_socket(port);
    if (s < 0) return CLI_FAIL;
    uint8_t req[256], buf[1024];
    size_t n =
        mute ? tutti__osc_write(req, sizeof req, "/cmd", "sss", "tutti", "mute", who)
        : unmute
            ? tutti__osc_write(req, sizeof req, "/cmd", "sss", "tutti", "unmute", who)
            : tutti__osc_write(req, sizeof req, "/cmd", "sssf", "tutti", "gain", who,
                               gain);
    const char *addr;
    lo_message m = NULL;
    if (!n || send(s, req, n, 0) < 0 ||
        !(m = await(s, buf, sizeof buf, 2000, "/done", "/fail", &addr))) {
        fprintf(stderr, "tutti gain: no answer from a tutti proxy on 127.0.0.1:%d\n",
                port);
        close(s);
        return CLI_FAIL;
    }
    close(s);
    if (!strcmp(addr, "/fail")) {
        /* /fail, the command's name, the reason */
        const char *tags = lo_message_get_types(m);
        lo_arg **got = lo_message_get_argv(m);
        fprintf(stderr, "tutti gain: %s\n",
                tags[0] && tags[1] == 's' ? (const char *)got[1] : "refused");
        lo_message_free(m);
        return CLI_FAIL;
    }
    lo_message_free(m);
    printf("tutti gain: part %s at %s on this server\n", who,
           mute     ? "0 (muted)"
           : unmute ? "1"
                    : "the gain asked");
    return CLI_OK;
}
