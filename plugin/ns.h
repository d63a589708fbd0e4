/*
 * Namespaces: each member's part runs on every server in a space of its own.
 *
 * Every member's server executes the whole session: the parts of all members,
 * merged into one schedule. The clients of a part (sclang, Sonic Pi) were
 * written for a server of their own, so they all use node 1000, buffer 0,
 * private bus 16, control bus 0 and a synthdef called "kick". This module
 * rewrites a part's OSC so that those numbers and names land in the part's own
 * space on every server, and translates the server's replies back into the
 * numbers that part's clients know. The user-facing rules are in
 * docs/namespaces.md.
 *
 * Design notes
 * ------------
 * - A part is named by a slot, 1 .. TUTTI_NS_SLOTS - 1, chosen by the caller.
 *   Slot 0 is the local server's own space (what the server's solo clients
 *   use) and is never given to a session part.
 * - Mapping is stateless arithmetic, so every server, a member that joined
 *   late included, rewrites the same event to the same bytes, and a reply is
 *   translated back without any table:
 *     node      id >= 0:  slot * 2^26 + (id mod 2^26)      (-1 and other
 *                          negative ids are not part ids, see below)
 *     buffer    b < buf_span:   slot * buf_span + b
 *     audio bus b < hw:         b (hardware inputs and outputs are shared:
 *                               everyone plays to the same speakers)
 *               b - hw < abus_span:  hw + slot * abus_span + (b - hw)
 *     control   c < cbus_span:  slot * cbus_span + c
 *   Node 0 (the root group) thus becomes slot * 2^26, the part's own root
 *   group, which the caller creates with tutti__ns_part_setup() before the
 *   part's first event. Node 1 (sclang's default group) trades places with
 *   the part's last id, 2^26 - 1 (slots >= 1 only): a sclang Server object
 *   on scsynth's own port, beside the proxy, makes a group k * 2^26 + 1 in
 *   the root for every client id k (Server.initTree), at any time; at
 *   slot * 2^26 + 1 that group would take the part's default group's place
 *   on that server alone. Every other id maps by the arithmetic above.
 *   Ids of 2^26 and above (sclang with a clientID above 0) are reduced mod
 *   2^26, so every node id of a part, after mapping, lies in
 *   [slot * 2^26, (slot + 1) * 2^26): a part cannot name another part's node
 *   by construction. Numbers outside a span (buffers, buses) are left as they
 *   are and counted (TUTTI_NS_MAP_RANGE); negative numbers are not ids and
 *   pass unchanged.
 * - Synthdef names are the one piece of state. A part's /d_recv has every
 *   def name in its SCgf blob (versions 0, 1, 2; variants too) renamed to
 *   "<name>.p<slot>", and the part's set of loaded names remembers the
 *   original. /s_new and /d_free of a name in the set use the renamed def;
 *   other names (a def every server has: "default", Sonic Pi's synths) pass
 *   unchanged. The set is deterministic because every server rewrites the
 *   same events in the same order; a rewrite that fails leaves it as it was.
 *   A name that would exceed scsynth's limit (255 bytes, 31 for variants) or
 *   a set that is full (TUTTI_NS_MAX_DEFS per slot) leaves the name as it is
 *   and counts it.
 * - Which argument carries what is command-by-command knowledge of scsynth
 *   3.13 (SC_MiscCmds.cpp, SC_SequencedCommand.cpp, Graph_Ctor). The rewriter
 *   reads arguments the way scsynth does and passes only messages it reads
 *   the same way: in a session message, arguments must be of types i, f, s or
 *   b (and [ ] around control arrays of /s_new and /n_set); a number where a
 *   node, buffer or bus is expected must be i or f (an f is truncated, as
 *   scsynth does, and written as i). Anything else is refused: the message is
 *   removed from the packet and counted. This also removes inputs that make
 *   scsynth misread its arguments (an unbalanced '[' loops its real-time
 *   thread forever).
 * - Confinement. Within a rewritten packet a part can never: free its own
 *   root group or move it (/n_free of it, or it as the node moved by
 *   /n_before, /n_after, /n_order, /g_head, /g_tail: that argument or pair is
 *   removed); put a node beside or in place of it (add actions 2, 3, 4 with
 *   it as target: the message is refused); create a node with its id; name a
 *   server-assigned node (negative ids other than -1 as targets: refused);
 *   reach past it with a node path string ("u", "p", "n": refused); name the
 *   "most recently created node" (-1 as a target) unless an earlier message
 *   of the same packet created a node; free a def it did not load (/d_free of
 *   any other name: removed). Missing arguments that scsynth would default to
 *   node 0 (the add action and target of /s_new, /g_new, /p_new) are written
 *   out so they default to the part's root group.
 * - Completion messages (the blob of /b_alloc, /d_recv, ...) are rewritten
 *   recursively with the same rules; one that is not a well-formed OSC packet
 *   is refused with its command.
 * - tutti__ns_classify() says where a message belongs (session, local server
 *   only, a local file the caller must read, or nowhere); the rewriter keeps
 *   only the classes the caller asks for (SESSION by default), and reports
 *   what it removed in flags and counters.
 * - Replies are translated with the inverse arithmetic, no state: node ids of
 *   the part come back as the ids its clients used (its root group as 0),
 *   notifications about another part's nodes are dropped.
 * - All session members must use the same configuration and rule table,
 *   since each server rewrites the events itself.
 *
 * Thread rules: an ns object belongs to one thread (the one that hands session
 * events to the server); tutti__ns_rewrite() allocates (the def-name sets) and
 * is not real-time safe. tutti__ns_reply() reads only the configuration and
 * the rule table and never allocates, locks or makes system calls: it may run
 * on another thread at the same time as tutti__ns_rewrite() as long as nobody
 * changes the rules meanwhile. The mapping helpers are pure.
 */
#ifndef TUTTI_PLUGIN_NS_H
#define TUTTI_PLUGIN_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_NS_SLOTS 32
#define TUTTI_NS_NODE_BITS 26
#define TUTTI_NS_NODE_SPAN ((int32_t)1 << TUTTI_NS_NODE_BITS)
/* Def names remembered per slot; beyond this, defs keep their names. */
#define TUTTI_NS_MAX_DEFS 4096
/* Control-name rules, and the longest rule name (scsynth's control names
 * are at most 31 bytes). */
#define TUTTI_NS_MAX_RULES 64
#define TUTTI_NS_RULE_NAME_MAX 31
/* Completion messages nested inside completion messages. */
#define TUTTI_NS_MAX_NEST 8

/* Where a message belongs (tutti__ns_classify). */
enum {
    TUTTI_NS_SESSION = 0,    /* rewrite, then execute on every server */
    TUTTI_NS_LOCAL = 1,      /* execute on the local server only, unchanged */
    TUTTI_NS_LOCAL_FILE = 2, /* names a file on this machine: the caller reads it */
    TUTTI_NS_DROP = 3        /* meaningless in a session */
};
#define TUTTI_NS_KEEP(cls) (1u << (cls))

/* What a control name (rule table) or a number carries. */
enum {
    TUTTI_NS_KIND_NONE = 0,
    TUTTI_NS_KIND_BUF = 1,
    TUTTI_NS_KIND_ABUS = 2,
    TUTTI_NS_KIND_CBUS = 3
};

/* Results of the buffer and bus mappings. */
enum {
    TUTTI_NS_MAP_OK = 0,     /* mapped into (or back from) a slot's space */
    TUTTI_NS_MAP_SHARED = 1, /* left as is on purpose: hardware bus, negative */
    TUTTI_NS_MAP_RANGE = 2   /* left as is: outside the span (counted) */
};

/* Flags a rewrite reports (tutti__ns_rewrite_ex). */
enum {
    TUTTI_NS_F_OUT_OF_RANGE = 1u
                              << 0, /* a bus or buffer outside its span kept its number */
    TUTTI_NS_F_LOCAL = 1u << 1,     /* a LOCAL message was removed */
    TUTTI_NS_F_LOCAL_FILE = 1u << 2, /* a LOCAL_FILE message was removed */
    TUTTI_NS_F_DROPPED = 1u << 3,    /* a DROP message was removed */
    TUTTI_NS_F_REFUSED = 1u << 4,    /* a message or argument was refused (confinement) */
    TUTTI_NS_F_NOT_RENAMED = 1u << 5 /* a def kept its name (too long, or set full) */
};

typedef struct tutti__ns_config {
    int32_t buf_span;       /* buffers per slot (default 1024) */
    int32_t abus_span;      /* private audio buses per slot (default 128) */
    int32_t cbus_span;      /* control buses per slot (default 1024) */
    int32_t hw_audio_buses; /* hardware outputs + inputs, shared (default 16,
                             * scsynth's -o 8 -i 8); the same on every member */
} tutti__ns_config;

/* Counters since creation. */
typedef struct tutti__ns_stats {
    uint64_t packets;      /* packets rewritten successfully */
    uint64_t out_of_range; /* bus and buffer numbers left unchanged */
    uint64_t local;        /* LOCAL messages removed */
    uint64_t local_file;   /* LOCAL_FILE messages removed */
    uint64_t dropped;      /* DROP messages removed */
    uint64_t refused;      /* messages or arguments refused */
    uint64_t not_renamed;  /* def names left as they were */
} tutti__ns_stats;

typedef struct tutti__ns tutti__ns;

/* ---- configuration ---------------------------------------------------- */

void tutti__ns_config_init(tutti__ns_config *cfg);

/* 0 when a server with these numbers of buffers (-b), audio bus channels
 * (-a, hardware included) and control bus channels (-c) can host a session
 * with `cfg`; otherwise TUTTI_EINVAL and, in `why`, one sentence per option
 * that is too small, naming the value it needs. All three sentences fit in
 * TUTTI__NS_WHY_MAX bytes; a smaller `why` gets what fits, cut. */
#define TUTTI__NS_WHY_MAX 512
int tutti__ns_check_server(const tutti__ns_config *cfg, int32_t num_buffers,
                           int32_t num_audio_buses, int32_t num_control_buses, char *why,
                           size_t cap);

/* ---- lifetime --------------------------------------------------------- */

/* Creates an ns with the default rule table and empty def-name sets. The
 * caller owns it and frees it with tutti__ns_destroy(). 0, TUTTI_EINVAL (a
 * span not positive, or 32 spans overflowing int32) or TUTTI_ENOMEM. */
int tutti__ns_create(tutti__ns **out, const tutti__ns_config *cfg);
void tutti__ns_destroy(tutti__ns *ns);

const tutti__ns_config *tutti__ns_get_config(const tutti__ns *ns);
void tutti__ns_get_stats(const tutti__ns *ns, tutti__ns_stats *st);

/* Forgets the def names of a slot (when the slot is given to a new part). */
void tutti__ns_forget(tutti__ns *ns, uint32_t slot);
/* Number of def names a slot has loaded, and whether `name` is one. */
uint32_t tutti__ns_def_count(const tutti__ns *ns, uint32_t slot);
bool tutti__ns_def_known(const tutti__ns *ns, uint32_t slot, const char *name);

/* ---- control-name rules ----------------------------------------------- */

/* The values of controls named by a rule are bus or buffer numbers, rewritten
 * in /s_new, /n_set, /n_setn, /n_fill (and translated back in /n_set and
 * /g_queryTree.reply replies). A rule name matches a control name exactly; a
 * name ending in '*' matches every control name that starts with the rest.
 * An exact rule wins over a prefix rule, a longer prefix over a shorter one.
 * Matching is case-sensitive, as scsynth's control names are.
 * Defaults: buf* bufnum buffer sndbuf -> buffer; out in out_bus in_bus outbus
 * inbus bus -> audio bus; cbus ctl_bus kbus -> control bus.
 *
 * Adds or replaces the rule for `control_name`; TUTTI_NS_KIND_NONE removes it
 * ("*" with TUTTI_NS_KIND_NONE removes every rule). 0, TUTTI_EINVAL (empty or
 * longer than TUTTI_NS_RULE_NAME_MAX, or containing ',' ':' or white space;
 * unknown kind) or TUTTI_EFULL (TUTTI_NS_MAX_RULES). */
int tutti__ns_rule(tutti__ns *ns, const char *control_name, int kind);
/* The kind of a control name under the current rules. */
int tutti__ns_rule_kind(const tutti__ns *ns, const char *control_name);
/* Applies a spec such as "buf:buffer,out:audio,lfo:control,bus:none" (kinds:
 * buffer|buf, audio|abus, control|cbus|kbus, none; spaces around items are
 * ignored; "*:none" clears the table). All or nothing: on error the table is
 * unchanged. 0, TUTTI_EINVAL or TUTTI_EFULL. */
int tutti__ns_rules_parse(tutti__ns *ns, const char *spec);

/* ---- mapping (pure) --------------------------------------------------- */

/* In a part's space (slot >= 1) node 1 and node 2^26 - 1 trade places: a
 * part's node 1 (sclang's default group) is slot * 2^26 + 2^26 - 1 on the
 * servers, and its 2^26 - 1 is slot * 2^26 + 1. A sclang Server object on
 * scsynth's own port makes, in its initTree, a group k * 2^26 + 1 in the
 * root for every client id k: those stay outside every part, whenever it
 * connects. The trade is its own inverse. Real-time safe. */
static inline int32_t tutti__ns_node_swap(int32_t low)
{
    return low == 1 ? TUTTI_NS_NODE_SPAN - 1 : low == TUTTI_NS_NODE_SPAN - 1 ? 1 : low;
}

/* The part's root group, slot * 2^26 (-1 for a slot >= TUTTI_NS_SLOTS). */
int32_t tutti__ns_part_group(uint32_t slot);
/* Node ids: id >= 0 -> slot * 2^26 + (id mod 2^26, with 1 and 2^26 - 1
 * traded in slots >= 1: tutti__ns_node_swap); negative ids unchanged.
 * A slot >= TUTTI_NS_SLOTS leaves the id unchanged. */
int32_t tutti__ns_node(uint32_t slot, int32_t id);
/* True for session_id >= 0, with its slot and the id the part knows. */
bool tutti__ns_node_inv(int32_t session_id, uint32_t *slot, int32_t *id);

/* Buffers, audio and control buses: a TUTTI_NS_MAP_* result; *out is the
 * mapped number, or the number unchanged when not TUTTI_NS_MAP_OK. The
 * inverses give the slot and the number the part knows. */
int tutti__ns_buf(const tutti__ns_config *cfg, uint32_t slot, int32_t b, int32_t *out);
int tutti__ns_buf_inv(const tutti__ns_config *cfg, int32_t session_b, uint32_t *slot,
                      int32_t *b);
int tutti__ns_abus(const tutti__ns_config *cfg, uint32_t slot, int32_t b, int32_t *out);
int tutti__ns_abus_inv(const tutti__ns_config *cfg, int32_t session_b, uint32_t *slot,
                       int32_t *b);
int tutti__ns_cbus(const tutti__ns_config *cfg, uint32_t slot, int32_t c, int32_t *out);
int tutti__ns_cbus_inv(const tutti__ns_config *cfg, int32_t session_c, uint32_t *slot,
                       int32_t *c);

/* Writes "/g_new <part group> 0 0": the part's root group at the head of the
 * server's root group, so the parts' groups sit side by side, ahead of what
 * the server's own clients put at the tail (a recorder, a limiter). Returns its
 * length, or 0 when `cap` is too small or the slot is not 1..31. */
size_t tutti__ns_part_setup(uint32_t slot, uint8_t *out, size_t cap);

/* ---- messages --------------------------------------------------------- */

/* The class of one well-formed message (TUTTI_NS_SESSION ...), or
 * TUTTI_EPROTO for a bundle or bytes that are not a message. The table is in
 * docs/namespaces.md; commands scsynth does not know are LOCAL (the local
 * server answers them with its usual failure). */
int tutti__ns_classify(const uint8_t *msg, size_t len);

/* The command's name ("/b_allocRead") whether its address is the name or
 * sclang's command number; NULL for a command scsynth does not know. */
const char *tutti__ns_command_name(const uint8_t *msg, size_t len);

/* Rewrites a packet of part `slot` (1..31) for the session. `in` is one
 * packet that passes tutti__osc_check (checked again here). The output is a
 * packet of the same shape that passes tutti__osc_check: the messages that
 * are not SESSION are removed (a bundle keeps its place, even emptied), as
 * are refused ones; the others have their ids, names and completion messages
 * rewritten. Returns the output length, 0 when the packet was a single
 * message that was removed, TUTTI_EFULL when `cap` is too small,
 * TUTTI_EPROTO for bytes that are not a packet, TUTTI_EINVAL for a bad slot,
 * TUTTI_ENOMEM. Deterministic: the same def-name sets, slot and input give
 * the same bytes. On error nothing changes (def names, counters), so after
 * TUTTI_EFULL the caller retries with a larger buffer. Outputs can grow
 * (renamed defs, written-out defaults, /d_freeAll listing the part's defs),
 * and while a message is written its tag string is reserved at full size, so
 * give `cap` some room beyond `len` (twice `len` plus 1 KiB is ample for
 * anything but /d_freeAll). */
ssize_t tutti__ns_rewrite(tutti__ns *ns, uint32_t slot, const uint8_t *in, size_t len,
                          uint8_t *out, size_t cap);
/* The same, keeping (and rewriting) the classes in `keep` (a mask of
 * TUTTI_NS_KEEP(class); TUTTI_NS_SESSION is always kept), and reporting
 * TUTTI_NS_F_* flags in *flags (may be NULL). Keeping TUTTI_NS_LOCAL_FILE
 * lets the caller run /b_read, /b_write ... on its own server with the part's
 * buffer numbers; a kept /d_load or /d_loadDir cannot have its defs renamed
 * (they are in a file), so the caller should turn it into /d_recv instead. */
ssize_t tutti__ns_rewrite_ex(tutti__ns *ns, uint32_t slot, const uint8_t *in, size_t len,
                             uint8_t *out, size_t cap, unsigned keep, uint32_t *flags);

/* Translates a reply or notification from the server into the ids the
 * clients of part `slot` know: /n_go /n_end /n_off /n_on /n_move /n_info,
 * /done and /fail (buffer numbers of /b_ commands, node ids in the failure
 * text), /b_info, /b_set, /b_setn, /c_set, /c_setn, /n_set, /n_setn (with
 * rule-named control values), /g_queryTree.reply (nodes of other parts keep
 * their session ids; def names lose the part's ".p<slot>"), /d_removed, /tr
 * and any other message whose first argument is an int (SendReply: a node
 * id). Returns the output length (never more than `len`), 0 to drop it (a
 * notification about another part's node or def), TUTTI_EFULL, TUTTI_EPROTO
 * or TUTTI_EINVAL. Never allocates; real-time safe. */
ssize_t tutti__ns_reply(const tutti__ns *ns, uint32_t slot, const uint8_t *in, size_t len,
                        uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
