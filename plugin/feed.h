/*
 * The session feed: what the plugin tells subscribed clients about the
 * session, without their asking (docs/plugin.md, "The session feed").
 *
 * Design notes
 * ------------
 * - A client subscribes with `/cmd tutti notify 1` on the proxy port (0 to
 *   stop), as it would with /notify: one subscription per UDP address or TCP
 *   connection (a TCP one ends with its connection), at most
 *   TUTTI__FEED_MAX. A subscription outlives joins and leaves.
 * - The feed is a function of a view (session.h: mode, L, members, the
 *   timeline schedule and session time's offset from this machine's wall
 *   clock). Each poll compares the view with what was last sent and sends
 *   what differs to every subscriber; a new subscriber gets all of it at
 *   once. So a message lost on UDP is repaired by the next change, and the
 *   feed never depends on seeing every intermediate state.
 * - /tutti/timeline describes the timeline from its instant on, until the
 *   next one's. Whenever the schedule changes, or this machine's estimate of
 *   session time moves the local mapping by more than 0.01 ms, the feed sends
 *   the timeline in force and then every agreed change still ahead, in the
 *   order they take effect, each in a bundle timetagged with its instant on
 *   this machine's wall clock. A change is agreed at least the hub's change
 *   lead before it takes effect (tutti.h), so clients hear of it in time to
 *   schedule on it.
 * - Commands: `/cmd tutti notify|transport|bpm ...` are parsed here
 *   (tutti__feed_parse) from a checked message; every argument may come as
 *   an int, a float or a double (Sonic Pi sends floats, sclang ints).
 *
 * Thread rules: everything runs on the proxy's loop thread.
 */
#ifndef TUTTI_PLUGIN_FEED_H
#define TUTTI_PLUGIN_FEED_H

#include "session.h"
#include "tutti/tutti.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI__FEED_MAX 16
/* The local mapping moved by more than this: the timeline is sent again
 * (10 us: half a sample at 48 kHz, so a note a client schedules on the
 * feed's timeline and the UGens' beat stay within a sample). */
#define TUTTI__FEED_MOVE (10 * 1000)
/* The schedule-ahead the feed recommends without a session (sclang's own
 * default): in a session it is L + TUTTI_CLIENT_MARGIN. */
#define TUTTI__FEED_SOLO_LATENCY (200 * TUTTI_MS)

enum { TUTTI__FEED_NOTIFY = 1, TUTTI__FEED_TRANSPORT = 2, TUTTI__FEED_BPM = 3 };

typedef struct tutti__feed_cmd {
    int what;     /* TUTTI__FEED_* */
    double value; /* notify: 1/0, transport: 1/0, bpm: beats per minute */
} tutti__feed_cmd;

/* A checked OSC message (osc.h) that may be one of the feed's commands:
 * 1 and *out when it is `/cmd "tutti" <command> <number>` with a command of
 * this file, 0 when it is another message or command (not the feed's), or
 * TUTTI_EINVAL with a sentence in `why` when it is one of them with a
 * missing or wrong argument. */
int tutti__feed_parse(const uint8_t *p, size_t len, tutti__feed_cmd *out, char *why,
                      size_t cap);

/* Where the feed's messages go (the proxy's send_to). */
typedef void (*tutti__feed_send_fn)(uint64_t ctx, const uint8_t *p, size_t len);
void tutti__feed_init(tutti__feed_send_fn send);

/* Subscribes (on) or unsubscribes `ctx`; answers it (/done or /fail) and, on
 * subscribing, sends it the whole state. */
void tutti__feed_subscribe(uint64_t ctx, bool on);
/* The client is gone (its TCP connection closed). */
void tutti__feed_forget(uint64_t ctx);
uint32_t tutti__feed_subscribers(void);

/* Compares the session's view (tutti__session_view_get) with what was sent
 * and sends the difference. Called after the session signals a change and
 * every 100 ms. */
void tutti__feed_poll(const tutti__session_view *v);
/* Session time less this machine's wall clock (ns) as clients were last
 * told: the view's offset, moved only by more than TUTTI__FEED_MOVE or with
 * the timeline. */
int64_t tutti__feed_offset(void);
/* The session signalled a change since the last poll. */
bool tutti__feed_stale(void);

/* The messages of a view, for tests: writes the /tutti/timeline bundle of
 * entry `i` of the schedule into out; its length (0: cap too small). */
size_t tutti__feed_timeline_bundle(const tutti__session_view *v, uint32_t i, uint8_t *out,
                                   size_t cap);

#ifdef __cplusplus
}
#endif

#endif
