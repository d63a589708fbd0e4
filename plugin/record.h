/*
 * Recording through the proxy in a session: s.record records this server,
 * here, and starts nothing on the other members' machines.
 *
 * sclang's Recorder (Server.record, s.record) sends, as plain messages:
 * /b_alloc B frames channels with the completion /b_write B path header
 * sample 0 0 1 (the file left open for DiskOut), a /d_recv of its synthdef,
 * a /sync, then /s_new DEF N 1 0 bufnum B in BUS...; to stop, /n_free N,
 * /d_free DEF, /b_close B with the completion /b_free B. In a session every
 * one of them would be an event on every server, and the /b_write is
 * refused there (it would write a file on every machine).
 *
 * Design notes
 * ------------
 * - A buffer is a recording's when the part's client opens a file for
 *   writing and leaves it open (a /b_write with leaveOpen 1, alone or as the
 *   completion of a /b_alloc of the same buffer). From then until it is
 *   freed, the commands on that buffer run on this server alone, with the
 *   part's numbers (slot * buf_span + B: no other part, and no session event
 *   of this part, uses that buffer here).
 * - A synth is a recording's when its /s_new gives a buffer control (a
 *   control name the namespace rules call a buffer) a recording's buffer. It
 *   runs here alone, with the part's node id, its synthdef renamed as the
 *   part's (the Recorder sends it with /d_recv, which is a session event and
 *   has played here before the Recorder's /sync is answered), its bus and
 *   buffer controls mapped. Its target 0 is the server's root, not the
 *   part's group, so a synth added at the tail records every part (the
 *   parts' groups are at the head). Later /n_free, /n_run and /n_set of it
 *   run here alone too.
 * - Such a synth is outside every part's group, so the server check (which
 *   compares the parts' groups) does not see it; the buffer is never in a
 *   part's state, so a member that joins later gets neither.
 * - Only plain messages are read (the Recorder sends no bundles); a bundle
 *   goes to the session as before. At most TUTTI_RECORD_MAX buffers and nodes
 *   at once; past that a recording goes to the session as before (and its
 *   /b_write is refused there).
 *
 * Not thread-safe: one tutti__record per thread (the proxy's loop). Pure:
 * no I/O, no allocation.
 */
#ifndef TUTTI_PLUGIN_RECORD_H
#define TUTTI_PLUGIN_RECORD_H

#include "ns.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_RECORD_MAX 16

typedef struct tutti__record {
    int32_t bufs[TUTTI_RECORD_MAX]; /* recording buffers, the client's numbers */
    uint32_t nbufs;
    int32_t nodes[TUTTI_RECORD_MAX]; /* recording synths, the client's ids */
    uint32_t nnodes;
} tutti__record;

/* Forgets every recording (a new session). */
void tutti__record_clear(tutti__record *r);

/* Whether node `id` (the client's id) is a recording's synth. */
bool tutti__record_has_node(const tutti__record *r, int32_t id);

/* When `msg` (one message that passes tutti__osc_check, from a client of
 * part `slot`) belongs to a recording, writes into `out` the message to run
 * on this server alone and returns its length; 0 when it is not a
 * recording's (it goes to the session as usual); TUTTI_EFULL when `cap` is
 * too small. `ns` gives the configuration and the control-name rules (read
 * only, as tutti__ns_reply does). */
ssize_t tutti__record_local(tutti__record *r, const tutti__ns *ns, uint32_t slot,
                            const uint8_t *msg, size_t len, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
