/*
 * The node's loop side on real sockets: a session member on the posix
 * platform (tutti/net.h) and a poll thread that calls tutti_node_poll on the
 * member's loop every 2 ms and hands MIDI bytes to a writer.
 *
 * Design notes
 * ------------
 * - Nothing here runs on the audio thread. The audio thread only calls
 *   tutti_node_process; it never wakes this side (the poll thread sleeps on
 *   its own timer), as on Bela where a wake-up would be a Linux system call
 *   and a Xenomai mode switch.
 * - The block interface's host clock may be another clock than the member's
 *   (on Bela the audio thread reads Xenomai's CLOCK_HOST_REALTIME, which
 *   costs no system call; the member's loop reads CLOCK_MONOTONIC). The
 *   runner measures the difference on each poll (host_minus_local) and the
 *   node folds it into the published mapping.
 * - MIDI: the audio thread emits bytes with their frames into the node's
 *   ring; a writer callback given here takes them on the poll thread (on
 *   Bela the adapter writes them from render instead, through Bela's Midi
 *   library, which hands them to its own non-real-time task; either way the
 *   ring has one consumer).
 * Thread rules: start and stop from a non-real-time thread (Bela: setup and
 * cleanup).
 */
#ifndef TUTTI_HW_RUN_H
#define TUTTI_HW_RUN_H

#include "hw/node.h"
#include "tutti/net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti_node_runner tutti_node_runner;

typedef struct tutti_node_run_config {
    const tutti_member_config *member; /* copied by tutti_net_member_start */
    const char *hub_url;
    /* host clock - member's local clock, ns; NULL: the same clock */
    tutti_time (*host_minus_local)(void);
    /* MIDI bytes for the port (NULL: the ring is left to another reader) */
    void (*midi_write)(void *ctx, const tutti_node_midi *m, uint32_t n);
    void *midi_ctx;
    tutti_time poll_every; /* 0: 2 ms */
} tutti_node_run_config;

int tutti_node_run_start(tutti_node_runner **out, tutti_node *node,
                         const tutti_node_run_config *cfg);
/* Leaves the session (up to 1 s), stops the poll thread and the member. */
void tutti_node_run_stop(tutti_node_runner *r);
/* The member's node (for its status). */
tutti_net *tutti_node_run_net(tutti_node_runner *r);
/* The node's status, read on the loop thread (tutti_node_status_get is a
 * loop-side call). Any non-real-time thread; blocks briefly. */
int tutti_node_run_status(tutti_node_runner *r, tutti_node_status *st);

#ifdef __cplusplus
}
#endif
#endif
