/*
 * `tutti bench node`: what the stage node's render path costs (hw/node.h).
 *
 * A node in a simulated session (a hub and two members, joined and locked, a
 * tempo change ahead) renders blocks of 16 frames at 44.1 kHz, the Bela's
 * default, with a click channel, two analog and three digital outputs, the
 * footswitch input and MIDI clock: tutti_node_process is timed over
 * --blocks blocks (default 200000, 72 s of audio), --repeat times (default
 * 5); ns per block is the total over the blocks. The session is set up
 * before the clock starts, so running it with two --blocks values under an
 * instruction counter and dividing the difference gives instructions per
 * block (docs/benchmarks.md: how, for armhf under qemu-arm).
 */
#include "bench.h"
#include "cli.h"
#include "hw/node.h"
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static tutti_time mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (tutti_time)ts.tv_sec * TUTTI_S + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int tutti_bench_node(int argc, char **argv)
{
    long blocks = 200000, repeat = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--blocks") && i + 1 < argc)
            blocks = atol(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: tutti bench node [--blocks N] [--repeat R]\n");
            return CLI_USAGE;
        }
    }
    if (blocks < 0 || repeat < 1 || repeat > 100) return CLI_USAGE;
    tutti_sim_config sc;
    tutti_sim_config_init(&sc);
    sc.members = 2;
    sc.role = TUTTI_ROLE_CONDUCTOR;
    tutti_sim *sim;
    tutti_node *node;
    tutti_node_config nc;
    tutti_node_config_init(&nc);
    if (tutti_sim_create(&sim, &sc) || tutti_node_create(&node, &nc)) return CLI_FAIL;
    tutti_sim_start(sim, 1, 0);
    tutti_sim_start(sim, 2, 0);
    tutti_sim_run_until(sim, 3 * TUTTI_S);
    tutti_member_propose_bpm(tutti_sim_member(sim, 1), 140);
    tutti_sim_run_until(sim, 3 * TUTTI_S + 200 * TUTTI_MS);
    tutti_node_poll(node, tutti_sim_member(sim, 2),
                    tutti_sim_node_clock(sim, 2, tutti_sim_now(sim)), 0);

    float audio[2 * 16], analog[2 * 8];
    uint16_t din[16] = {0}, dout[16];
    tutti_node_block b = {.frames = 16,
                          .sample_rate = 44100,
                          .audio_out = audio,
                          .audio_channels = 2,
                          .analog_out = analog,
                          .analog_channels = 2,
                          .analog_frames = 8,
                          .digital_in = din,
                          .digital_out = dout};
    tutti_time t0 = tutti_sim_now(sim);
    uint64_t frame = 0;
    double *ns = calloc((size_t)repeat, sizeof *ns);
    tutti_node_midi m[256];
    for (long r = 0; r < repeat; r++) {
        tutti_time start = mono_ns();
        for (long i = 0; i < blocks; i++) {
            b.frames_elapsed = frame;
            b.host_now = tutti_sim_node_clock(
                sim, 2, t0 + (tutti_time)((double)frame * 1e9 / 44100));
            tutti_node_process(node, &b);
            frame += 16;
            if ((i & 63) == 63)
                while (tutti_node_midi_read(node, m, 256))
                    continue;
        }
        ns[r] = blocks ? (double)(mono_ns() - start) / (double)blocks : 0;
    }
    tutti_node_status st;
    tutti_node_status_get(node, &st);
    qsort(ns, (size_t)repeat, sizeof *ns, cmp_double);
    double med = ns[repeat / 2];
    printf("tutti_node_process, 16 frames at 44.1 kHz: %.0f ns a block (median of %ld "
           "runs of "
           "%ld blocks; %.0f..%.0f), %.2f %% of a block's 363 us\n",
           med, repeat, blocks, ns[0], ns[repeat - 1], med / 362812.0 * 100);
    printf("rendered %llu pulses, %llu midi ticks, %llu blocks\n",
           (unsigned long long)st.pulses, (unsigned long long)st.midi_ticks,
           (unsigned long long)st.blocks);
    printf("{\"bench\":\"node\",\"frames\":16,\"blocks\":%ld,\"repeat\":%ld,"
           "\"ns_per_block\":%.1f,\"ns_min\":%.1f,\"ns_max\":%.1f,\"pulses\":%llu,"
           "\"midi_ticks\":%llu}\n",
           blocks, repeat, med, ns[0], ns[repeat - 1], (unsigned long long)st.pulses,
           (unsigned long long)st.midi_ticks);
    free(ns);
    tutti_node_destroy(node);
    tutti_sim_destroy(sim);
    return CLI_OK;
}
