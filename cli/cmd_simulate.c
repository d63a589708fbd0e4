/*
 * `tutti simulate`: the full simulation sweep of the distributed logic.
 *
 * Every (profile, session size, seed) runs a seeded session in virtual time and
 * is checked for coherence on full delivered sequences, order, late accounting
 * and the timeline. A failing case prints the command that replays it exactly.
 */
#include "sim/sim.h"
#include "simulate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: tutti simulate [--seeds N] [--first-seed S] [--members 3,8,32]\n"
            "                      [--profiles lan,wan40,wan150,partition,crash,churn,\n"
            "                                  freeze,silent,cut] [--verbose]\n"
            "Runs seeded sessions in virtual time and checks that every member delivered\n"
            "the same events in the same order. Exit status 1 if any case failed.\n");
    return 2;
}

int tutti_cmd_simulate(int argc, char **argv)
{
    int seeds = 500;
    uint64_t first = 1000;
    char members[64] = "3,8,32";
    char profiles[128] = "lan,wan40,wan150,partition,crash,churn,freeze,silent,cut";
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--first-seed") && i + 1 < argc)
            first = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--members") && i + 1 < argc)
            snprintf(members, sizeof members, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--profiles") && i + 1 < argc)
            snprintf(profiles, sizeof profiles, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--verbose")) verbose = true;
        else return usage();
    }
    if (seeds <= 0) return usage();
    uint64_t cases = 0, failed = 0, events = 0, late = 0, late_honest = 0, moved = 0;
    printf("%-10s %7s %6s %10s %10s %10s %8s %8s %s\n", "profile", "members", "seeds", "events",
           "late", "at honest", "moved", "failed", "max delay / L");
    char pbuf[128];
    snprintf(pbuf, sizeof pbuf, "%s", profiles);
    for (char *sp, *p = strtok_r(pbuf, ",", &sp); p; p = strtok_r(NULL, ",", &sp)) {
        char mbuf[64];
        snprintf(mbuf, sizeof mbuf, "%s", members);
        for (char *sm, *ms = strtok_r(mbuf, ",", &sm); ms; ms = strtok_r(NULL, ",", &sm)) {
            uint32_t n = (uint32_t)atoi(ms);
            if (n == 0) return usage();
            uint64_t c_fail = 0, c_events = 0, c_late = 0, c_honest = 0, c_moved = 0;
            tutti_time c_delay = 0, horizon = 0;
            for (int k = 0; k < seeds; k++) {
                tutti_scenario_result r;
                if (tutti_sim_scenario(p, n, first + (uint64_t)k, &r) != 0) {
                    fprintf(stderr, "tutti simulate: unknown profile \"%s\"\n", p);
                    return 2;
                }
                bool ok = r.coherent && r.late_ok && r.timeline_ok;
                c_events += r.report.user_events;
                c_late += r.report.late;
                c_honest += r.late_honest;
                c_moved += r.report.moved;
                if (r.report.max_delay > c_delay) c_delay = r.report.max_delay;
                horizon = r.horizon;
                if (!ok) {
                    c_fail++;
                    printf("FAILED %s\n  %s\n  replay: tutti simulate --profiles %s "
                           "--members %u --seeds 1 --first-seed %llu\n",
                           r.verdict, r.report.first_problem, p, (unsigned)n,
                           (unsigned long long)(first + (uint64_t)k));
                } else if (verbose) {
                    printf("  %s\n", r.verdict);
                }
            }
            printf("%-10s %7u %6d %10llu %10llu %10llu %8llu %8llu %.1f / %.0f ms\n", p,
                   (unsigned)n, seeds, (unsigned long long)c_events, (unsigned long long)c_late,
                   (unsigned long long)c_honest, (unsigned long long)c_moved,
                   (unsigned long long)c_fail, c_delay / 1e6, horizon / 1e6);
            fflush(stdout);
            cases += (uint64_t)seeds;
            failed += c_fail;
            events += c_events;
            late += c_late;
            late_honest += c_honest;
            moved += c_moved;
        }
    }
    printf("{\"simulate\":{\"cases\":%llu,\"failed\":%llu,\"events\":%llu,\"late\":%llu,"
           "\"late_at_honest_members\":%llu,\"moved\":%llu}}\n",
           (unsigned long long)cases, (unsigned long long)failed,
           (unsigned long long)events, (unsigned long long)late,
           (unsigned long long)late_honest, (unsigned long long)moved);
    return failed ? 1 : 0;
}
