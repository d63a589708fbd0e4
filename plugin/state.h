/*
 * A part's state, for members that join later.
 *
 * A member that joins a session mid-way has none of what the others built
 * before it came: their synthdefs, buffers (and the sound files in them),
 * groups and long-lived synths (a mixer, an effect). Their later events use
 * all of that, so its server would answer them with FAILURE. Each member
 * therefore keeps a model of its own part, built from the packets its clients
 * submit, and when a member joins it sends the model as events of its own
 * stream, marked for the newcomer (session.c): placed after everything it
 * submitted before, so the newcomer can skip the part's events up to there and
 * then run the model instead.
 *
 * Design notes
 * ------------
 * - The model is an ordered log of messages (in the clients' own ids, before
 *   any rewriting), compacted as things die: a buffer's commands since it was
 *   last allocated; each live node's creation and the node commands on it
 *   (/n_set, /n_map..., moves); synthdefs (identical ones once);
 *   /c_set of one bus (the last value only). Completion messages are cut off
 *   their command and logged as messages of their own.
 * - Nodes die when the clients free them (/n_free, /g_freeAll, /g_deepFree,
 *   a replacing /s_new) together with their descendants (the model keeps each
 *   node's parent), and when the server says they ended (/n_end: a synth that
 *   freed itself). A synth that is still sounding is created again on the
 *   newcomer's server, from its start.
 * - Creations placed before or after a node (add actions 2, 3, 4) whose
 *   reference is gone by the time the model is sent are placed at the tail of
 *   the node's parent instead.
 * - Auto-numbered synths (/s_new with id -1), queries and anything that is not
 *   state are not logged. The log is bounded (TUTTI_STATE_MAX_*); past that
 *   it stops growing and says so (tutti__state_overflowed).
 *
 * Thread rules: none; the caller serialises (session.c holds a mutex).
 */
#ifndef TUTTI_PLUGIN_STATE_H
#define TUTTI_PLUGIN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_STATE_MAX_ENTRIES 65536
#define TUTTI_STATE_MAX_BYTES ((size_t)64 << 20)

typedef struct tutti__state tutti__state;

/* 0, or TUTTI_ENOMEM. */
int tutti__state_create(tutti__state **out);
void tutti__state_destroy(tutti__state *s);
/* Forgets everything (a new session). */
void tutti__state_reset(tutti__state *s);

/* A packet this member's clients submitted (it passes tutti__osc_check). */
void tutti__state_note(tutti__state *s, const uint8_t *p, size_t len);
/* The server says node `id` (a client id of this part) ended. */
void tutti__state_node_end(tutti__state *s, int32_t id);

/* Calls `emit` with each logged message, in order (a copy it may keep only
 * for the call). Stops at, and returns, the first non-zero result. */
typedef int (*tutti__state_emit_fn)(void *ctx, const uint8_t *msg, size_t len);
int tutti__state_each(const tutti__state *s, tutti__state_emit_fn emit, void *ctx);

/* Messages and nodes the model holds; whether it had to stop growing. */
size_t tutti__state_count(const tutti__state *s);
size_t tutti__state_nodes(const tutti__state *s);
bool tutti__state_overflowed(const tutti__state *s);
/* The nodes the model holds that are in no group it holds (made in the
 * server's root group, or in a node it does not know): up to `cap` into
 * `out`; how many there are. Freeing them frees every node of the model. */
size_t tutti__state_roots(const tutti__state *s, int32_t *out, size_t cap);

/* Calls fn(arg, buffer) for every buffer a checked packet changes: the
 * first argument of each /b_ command that is not a read (/b_query, /b_get,
 * /b_getn), completion messages included, in the client's numbers. */
typedef void (*tutti__state_buf_fn)(void *arg, int32_t buf);
void tutti__state_buffers_changed(const uint8_t *p, size_t len, tutti__state_buf_fn fn,
                                  void *arg);

#ifdef __cplusplus
}
#endif

#endif
