/*
 * tutti — the command-line program: a hub, a member, a whole local session,
 * journal verification and benchmarks.
 */
#include "bench.h"
#include "cli.h"
#include "credentials.h"
#include "netsim.h"
#include "simulate.h"
#include "sonicpi.h"

#include <nng/nng.h>
#include <string.h>
#include <uv.h>

static const char usage[] =
    "usage: tutti COMMAND [OPTIONS]\n"
    "\n"
    "One live performance, many places: every member hears every member's\n"
    "events in one identical order, on one shared clock.\n"
    "\n"
    "commands:\n"
    "  session   run a hub and several members on this machine, let them play,\n"
    "            and report whether they all heard the same performance\n"
    "  play      play an example as a local session with real scsynth servers\n"
    "            (the main job; needs the plugin)\n"
    "  hub       relay and coordinate a session (members connect to it)\n"
    "  member    join a session, play test events, journal what is heard\n"
    "  invite    issue or revoke an invitation to a hub's session\n"
    "  verify    compare members' journals\n"
    "  join      make a server with the tutti plugin join a session\n"
    "  leave     make it leave (it plays solo again)\n"
    "  status    what a server's tutti plugin is doing\n"
    "  gain      mute a part on this server, or turn it down (monitoring only)\n"
    "  sonicpi   set Sonic Pi up to join sessions: install | uninstall | status\n"
    "  simulate  run the seeded simulation sweep (virtual time, many seeds)\n"
    "  netsim    relay TCP through a modelled network path (delay, jitter, loss,\n"
    "            partitions) to try a session under bad conditions\n"
    "  bench     measure: tutti bench clock | merge | proxy | netsim | seal | node\n"
    "  version   print the version\n"
    "  help      this text\n"
    "\n"
    "\"tutti COMMAND --help\" describes a command's options.\n";

static int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "clock"))
        return tutti_bench_clock(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "merge"))
        return tutti_bench_merge(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "proxy"))
        return tutti_bench_proxy(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "netsim"))
        return tutti_bench_netsim(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "seal"))
        return tutti_bench_seal(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "node"))
        return tutti_bench_node(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        puts("usage: tutti bench clock|merge|proxy|netsim|seal|node [OPTIONS]\n"
             "Each prints its figures, with one JSON object on the last line.");
        return CLI_OK;
    }
    fprintf(
        stderr,
        "tutti bench: say which benchmark: tutti bench clock, merge, proxy, netsim, seal or node\n");
    return CLI_USAGE;
}

static int cmd_version(void)
{
    printf("tutti %d.%d.%d (nng %s, libuv %s)\n", TUTTI_VERSION_MAJOR,
           TUTTI_VERSION_MINOR, TUTTI_VERSION_PATCH, nng_version(), uv_version_string());
    return CLI_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *c = argv[1];
    if (!strcmp(c, "play")) return cmd_play(argc - 1, argv + 1);
    if (!strcmp(c, "hub")) return cmd_hub(argc - 1, argv + 1);
    if (!strcmp(c, "member")) return cmd_member(argc - 1, argv + 1);
    if (!strcmp(c, "invite")) return cmd_invite(argc - 1, argv + 1);
    if (!strcmp(c, "session")) return cmd_session(argc - 1, argv + 1);
    if (!strcmp(c, "verify")) return cmd_verify(argc - 1, argv + 1);
    if (!strcmp(c, "join")) return cmd_join(argc - 1, argv + 1);
    if (!strcmp(c, "leave")) return cmd_leave(argc - 1, argv + 1);
    if (!strcmp(c, "status")) return cmd_status(argc - 1, argv + 1);
    if (!strcmp(c, "gain")) return cmd_gain(argc - 1, argv + 1);
    if (!strcmp(c, "sonicpi")) return cmd_sonicpi(argc - 1, argv + 1);
    if (!strcmp(c, "simulate")) return tutti_cmd_simulate(argc - 1, argv + 1);
    if (!strcmp(c, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(c, "netsim")) return cmd_netsim(argc - 1, argv + 1);
    if (!strcmp(c, "link")) return cmd_link(argc - 1, argv + 1);
    if (!strcmp(c, "version") || !strcmp(c, "--version")) return cmd_version();
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    fprintf(stderr, "tutti: there is no command \"%s\"\n\n%s", c, usage);
    return CLI_USAGE;
}
