/*
 * plugin/linkhost.h — the server's member as its LAN's Ableton Link bridge
 * (link/bridge.h, docs/link.md): a setting of the plugin, on where the plugin
 * was built with Link (Debian's ableton-link-dev; the armhf build has none).
 *
 * Design notes
 * ------------
 * - The setting. TUTTI_LINK=1 in scsynth's environment turns it on at load;
 *   `/cmd tutti link 1|0` (or on|off) turns it on and off later. While it is
 *   on and the plugin is in a session, a bridge runs on the session's member:
 *   it starts when the member has started (a join) and stops before the
 *   member leaves (a leave, a join elsewhere, the plugin's unload). The
 *   setting outlives sessions: the next join starts a bridge again.
 * - Threads. The bridge has a thread of its own (never the audio thread,
 *   never the proxy's or the member's loop): it steps the bridge when the
 *   bridge asks (every 2 ms, and just after an agreed change takes effect)
 *   and publishes its status under a mutex the status readers take too. It
 *   reaches the member only through tutti_net's thread-safe calls, as
 *   `tutti link` does. Nothing here is real-time safe.
 * - Calls come from the proxy's loop thread (the setting, the status, a
 *   join's attach) and from the thread that unloads the plugin (detach);
 *   they serialise on one mutex, and detach joins the bridge's thread before
 *   it returns, so the member it stepped may be stopped then.
 */
#ifndef TUTTI_PLUGIN_LINKHOST_H
#define TUTTI_PLUGIN_LINKHOST_H

#include "bridge.h"
#include "tutti/net.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti__linkhost_status {
    bool available;   /* this plugin was built with Ableton Link */
    bool enabled;     /* the setting */
    bool running;     /* a bridge runs (enabled, and in a session) */
    tutti_bridge_status b; /* its figures (zero when none runs) */
    char error[160];  /* why the last start failed ("" when it did not) */
} tutti__linkhost_status;

/* Reads TUTTI_LINK from the environment. Once, at load. */
void tutti__linkhost_init(void);

/* Turns the setting on or off; starts or stops the bridge of a member
 * attached now. 0, or TUTTI_EINVAL with a sentence in `why` (no Link in
 * this build) or TUTTI_ETRANSPORT (Link could not start; the setting stays
 * on and the next join tries again). */
int tutti__linkhost_enable(bool on, char *why, size_t cap);

/* The member of a session started (`n`, not owned): a bridge starts on it
 * if the setting is on. */
void tutti__linkhost_attach(tutti_net *n);

/* The member is about to stop: its bridge stops first (joined here). */
void tutti__linkhost_detach(void);

void tutti__linkhost_status_get(tutti__linkhost_status *st);

/* The bridge's state in one word for the status: "off", "unavailable",
 * "waiting" (on, no session), "joining", "active", "standby", "failed". */
const char *tutti__linkhost_state_name(const tutti__linkhost_status *st);

#ifdef __cplusplus
}
#endif
#endif
