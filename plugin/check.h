/*
 * The server check: did every member's server do the same thing with the
 * session's events? (issue 15, item 3)
 *
 * Design notes
 * ------------
 * - Rounds. Session time is cut into rounds of TUTTI_CHECK_PERIOD; round k
 *   is session time T_k = k * PERIOD. A member checks round k at a place of
 *   the delivered stream, not at a moment of its clock: when it delivers the
 *   first event stamped after T_k, it asks its server for the node tree
 *   (/g_queryTree 0) in a bundle timed at T_k, so the server answers after
 *   every event stamped at or before T_k and before any later one, the same
 *   place in the order on every member. Each member's digest of round k is
 *   an ordinary session event of its own stream, stamped just after
 *   T_(k+1): it is the next round's trigger on every member, so rounds run
 *   on while nobody plays.
 * - A digest holds, for each part (slot) with anything on this server: its
 *   nodes (ids in the part's own numbers, below 2^26; ids the server chose
 *   itself as -1), a hash over (node, parent, synthdef without its .p<slot>)
 *   that does not depend on sibling order (the state a newcomer gets does
 *   not keep it), and the /fail replies this server sent to events of that
 *   part since the previous round (a count, an order-free hash, one example).
 *   An empty part group counts as no part (groups are made when a part is
 *   first heard, not at an agreed time).
 * - Comparing is done by every member on the digests as delivered, so every
 *   member reaches the same verdict at the same place in the stream, and
 *   `tutti verify` reaches it again from a journal. Round k is decided when
 *   every member that sent a digest for the round before has sent one for
 *   k, or, failing that, when an event stamped after its digests' stamp
 *   (T_(k+1) + 1 ns) is delivered. A digest that comes after its round was
 *   decided (its sender was too slow and the engine stamped it later) is
 *   not compared, but it is kept, so that the next round waits for its
 *   sender.
 * - A difference is reported when it is not explained by timing: nodes
 *   that start or end within a few ms of T_k may be there on one server and
 *   not on another (each maps T_k to its own clock), so a server differs
 *   when the same node is missing there (or there alone) in two rounds in
 *   a row, not when two different nodes were at two rounds' edges; trees
 *   with the same ids that differ (placement, synthdefs, ids the server
 *   chose) must differ in two rounds in a row. Synths a state carried to a
 *   newcomer (listed in its digests, tutti__digest_part) are taken out of
 *   every server's tree: the newcomer started them at its join, not when
 *   the others did. So are synths an event started late on one server (it
 *   was cut off or stalled, scsynth said `late`): they end that much later
 *   there. A /fail sent close to a round's end may
 *   fall into the next window on another server, so the failures of a
 *   round's window must differ, and so must that window and each of its
 *   neighbours taken together (reported once the next round is in).
 * - The report names the round, the part, the nodes that are missing or
 *   extra (or the command that failed), and which servers differ from the
 *   others (the largest group of servers that agree counts as the others).
 *
 * Not thread-safe: one checker per thread. No I/O.
 */
#ifndef TUTTI_PLUGIN_CHECK_H
#define TUTTI_PLUGIN_CHECK_H

#include "tutti/tutti.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_CHECK_PERIOD (500 * TUTTI_MS)
#define TUTTI_CHECK_SLOTS 32
#define TUTTI_CHECK_IDS 4096 /* node ids listed per part, at most */
#define TUTTI_CHECK_TEXT 160
#define TUTTI_CHECK_CARRIED 512 /* carried synths listed per part, at most */

typedef struct tutti__digest_part {
    uint32_t slot, nodes, fails;
    uint64_t tree, fail_hash;
    int32_t *ids; /* sorted; -1 for ids the server chose */
    uint32_t nids;
    bool cut; /* more nodes than listed */
    char fail[TUTTI_CHECK_TEXT]; /* one failure of the window: "/cmd message" */
    /* Synths a state carried to this server started (a newcomer's copies
     * of the others' synths start when it joins, not when the others'
     * did, and end that much later, or earlier for notes sent ahead): their
     * ids and their terms of `tree` (tutti__digest_term), whether or not
     * they are still there. The comparison leaves these ids out of every
     * server's tree of the part. */
    int32_t *carried;
    uint64_t *carried_term;
    uint32_t ncarried;
} tutti__digest_part;

typedef struct tutti__digest {
    int64_t round;
    uint32_t origin; /* the member that sent it (from the event, not the text) */
    uint32_t slot;   /* that member's own part */
    char name[32];
    uint32_t nparts;
    tutti__digest_part part[TUTTI_CHECK_SLOTS];
} tutti__digest;

/* A fresh digest of round `round` for member `name` playing part `slot`. */
void tutti__digest_init(tutti__digest *d, int64_t round, uint32_t slot, const char *name);
/* Frees the id lists (the digest itself is the caller's). */
void tutti__digest_clear(tutti__digest *d);
/* Reads a /g_queryTree.reply of the root group (flag 0 or 1) into `d`: the
 * subtree of every part group (slot * 2^26). 0, or -1 when it is not such a
 * reply. */
int tutti__digest_tree(tutti__digest *d, const uint8_t *p, size_t len);
/* A node's term of its part's tree hash: node `id`, in group `parent`
 * (server ids), a synth of `def` (NULL: a group). */
uint64_t tutti__digest_term(uint32_t slot, int32_t id, int32_t parent, const char *def);
/* Lists node `id` (a server id) of part `slot` as carried (see
 * tutti__digest_part), with its term. */
void tutti__digest_carried(tutti__digest *d, uint32_t slot, int32_t id, uint64_t term);
/* Counts one /fail (its OSC) a session event of part `slot` caused. Ids in
 * the text are written in the part's own numbers. */
void tutti__digest_fail(tutti__digest *d, uint32_t slot, const uint8_t *p, size_t len);
/* Adds the failures counted in `window` (tutti__digest_fail) to `d`. */
void tutti__digest_add_fails(tutti__digest *d, const tutti__digest *window);
/* The digest as one OSC message (/tutti/check with a text blob): its length,
 * 0 when it does not fit `cap` (parts' id lists are cut to fit first). */
size_t tutti__digest_encode(const tutti__digest *d, uint8_t *out, size_t cap);
/* Reads an encoded digest (untrusted bytes) sent by `origin`. 0 or -1. */
int tutti__digest_decode(tutti__digest *d, const uint8_t *p, size_t len, uint32_t origin);
/* Whether an OSC packet is a digest (/tutti/check). */
bool tutti__digest_is(const uint8_t *p, size_t len);

/* One difference between servers. */
typedef struct tutti__check_diff {
    int64_t round;
    uint32_t slot;
    bool fails;                   /* failures, not nodes */
    char text[3 * TUTTI_CHECK_TEXT]; /* the whole sentence */
} tutti__check_diff;

typedef void (*tutti__check_report_fn)(void *arg, const tutti__check_diff *d);

typedef struct tutti__checker tutti__checker;

/* NULL when out of memory. `report` is called for each difference. */
tutti__checker *tutti__checker_new(tutti__check_report_fn report, void *arg);
void tutti__checker_free(tutti__checker *c);
/* Every delivered event's session time, in delivery order (decides rounds
 * whose digests are overdue). */
void tutti__checker_time(tutti__checker *c, tutti_time t);
/* A delivered digest (the checker takes its id lists; `d` is cleared). */
void tutti__checker_digest(tutti__checker *c, tutti__digest *d);

typedef struct tutti__checker_stats {
    uint64_t rounds;    /* rounds decided with two servers or more */
    uint64_t identical; /* of them, with no difference */
    uint64_t diffs;     /* differences reported */
    uint64_t late;      /* digests that came after their round was decided */
    uint32_t servers;   /* servers compared in the last round decided */
    int64_t last_round, last_diff_round; /* -1: none */
} tutti__checker_stats;

void tutti__checker_stats_get(const tutti__checker *c, tutti__checker_stats *st);

/* Called, for every part (slot 1 and up), whenever a round is decided: the part's node count as the servers agree on it (the lower
 * median of the round's digests). Decided at the same place of the stream
 * on every member, so whatever the callee does with it (the plugin's node
 * budget, session.c) it does the same everywhere. */
typedef void (*tutti__check_nodes_fn)(void *arg, int64_t round, uint32_t slot, uint32_t nodes);
void tutti__checker_on_nodes(tutti__checker *c, tutti__check_nodes_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
