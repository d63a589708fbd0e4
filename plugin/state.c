/*
 * A part's state, for members that join later (see state.h).
 */
#include "state.h"

#include "ns.h"
#include "osc.h"
#include "tutti/tutti.h"

#include <stdlib.h>
#include <string.h>

enum { E_DEF = 1, E_BUF, E_NODE, E_BUS, E_OTHER };

#define NO_NODE INT32_MIN

typedef struct entry {
    uint8_t *msg;
    uint32_t len;
    uint8_t kind;
    bool dead;
    bool creation; /* a node's /s_new, /g_new or /p_new */
    int32_t key;   /* the node, buffer or bus it is about */
    int32_t dep;   /* another node it names (a move's reference), or NO_NODE */
    int32_t parent; /* creations: the parent the node was made in */
    uint64_t hash; /* synthdefs: of the message */
} entry;

typedef struct node {
    int32_t id, parent;
    bool group, dead;
} node;

struct tutti__state {
    entry *e;
    size_t n, cap, dead, bytes;
    node *nodes;
    size_t nn, ncap;
    bool overflow;
};

int tutti__state_create(tutti__state **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : TUTTI_ENOMEM;
}

void tutti__state_reset(tutti__state *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].msg);
    s->n = s->dead = s->bytes = 0;
    s->nn = 0;
    s->overflow = false;
}

void tutti__state_destroy(tutti__state *s)
{
    if (!s) return;
    tutti__state_reset(s);
    free(s->e);
    free(s->nodes);
    free(s);
}

size_t tutti__state_count(const tutti__state *s)
{
    return s->n - s->dead;
}

size_t tutti__state_nodes(const tutti__state *s)
{
    return s->nn;
}

size_t tutti__state_roots(const tutti__state *s, int32_t *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nn; i++) {
        bool inside = false;
        for (size_t j = 0; j < s->nn && !inside; j++)
            inside = j != i && s->nodes[j].id == s->nodes[i].parent && s->nodes[j].group;
        if (inside) continue;
        if (k < cap) out[k] = s->nodes[i].id;
        k++;
    }
    return k;
}

bool tutti__state_overflowed(const tutti__state *s)
{
    return s->overflow;
}

/* ------------------------------------------------------------ arguments */

/* The arguments of a checked message, one at a time. */
typedef struct cur {
    const char *t;
    const uint8_t *a;
} cur;

static void cur_init(cur *c, const tutti__osc_msg *m)
{
    c->t = m->tags ? m->tags : "";
    c->a = m->args;
}

static size_t arg_size(char t, const uint8_t *a)
{
    switch (t) {
    case 'i': case 'f': case 'c': case 'r': case 'm': return 4;
    case 'h': case 't': case 'd': return 8;
    case 's': case 'S': return (strlen((const char *)a) + 4) & ~(size_t)3;
    case 'b': return 4 + tutti__osc_pad4(tutti__osc_rd32(a));
    default: return 0;
    }
}

/* The next argument's type (0 when none is left) and place. */
static char cur_next(cur *c, const uint8_t **at)
{
    char t = *c->t;
    if (!t) return 0;
    *at = c->a;
    c->a += arg_size(t, c->a);
    c->t++;
    return t;
}

/* The next argument as scsynth reads a number (i, or f truncated). */
static bool cur_int(cur *c, int32_t *v)
{
    const uint8_t *a;
    char t = cur_next(c, &a);
    if (t == 'i') {
        *v = (int32_t)tutti__osc_rd32(a);
        return true;
    }
    if (t == 'f') {
        uint32_t u = tutti__osc_rd32(a);
        float f;
        memcpy(&f, &u, 4);
        if (!(f > -2147483648.0f && f < 2147483648.0f)) return false;
        *v = (int32_t)f;
        return true;
    }
    return false;
}

static bool cur_skip(cur *c)
{
    const uint8_t *a;
    return cur_next(c, &a) != 0;
}

/* ---------------------------------------------------------------- nodes */

static node *node_find(tutti__state *s, int32_t id)
{
    for (size_t i = 0; i < s->nn; i++)
        if (s->nodes[i].id == id) return &s->nodes[i];
    return NULL;
}

/* The parent a node placed by `action` at `target` gets. */
static int32_t parent_for(tutti__state *s, int32_t action, int32_t target)
{
    if (action == 0 || action == 1) return target;
    node *t = node_find(s, target);
    return t ? t->parent : 0;
}

static bool node_add(tutti__state *s, int32_t id, int32_t parent, bool group)
{
    node *old = node_find(s, id);
    if (old) { /* a client reusing an id: the old node is gone */
        old->parent = parent;
        old->group = group;
        return true;
    }
    if (s->nn == s->ncap) {
        if (s->ncap >= TUTTI_STATE_MAX_ENTRIES) return false;
        size_t cap = s->ncap ? 2 * s->ncap : 64;
        node *n = realloc(s->nodes, cap * sizeof *n);
        if (!n) return false;
        s->nodes = n;
        s->ncap = cap;
    }
    s->nodes[s->nn++] = (node){id, parent, group, false};
    return true;
}

static void compact(tutti__state *s)
{
    size_t j = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].dead) {
            s->bytes -= s->e[i].len;
            free(s->e[i].msg);
        } else {
            s->e[j++] = s->e[i];
        }
    }
    s->n = j;
    s->dead = 0;
}

static void drop_where(tutti__state *s, int kind, int32_t key)
{
    for (size_t i = 0; i < s->n; i++) {
        entry *e = &s->e[i];
        if (e->dead || e->kind != kind) continue;
        if (e->key == key || (kind == E_NODE && e->dep == key)) {
            e->dead = true;
            s->dead++;
        }
    }
}

/* Removes the nodes marked dead (and everything logged about them). */
static void sweep_nodes(tutti__state *s)
{
    /* descendants of dead groups die with them (a synth that ended, the
     * common case, has none: no pass over the table then) */
    bool groups = false;
    for (size_t i = 0; i < s->nn && !groups; i++)
        groups = s->nodes[i].dead && s->nodes[i].group;
    for (bool more = groups; more;) {
        more = false;
        for (size_t i = 0; i < s->nn; i++) {
            node *n = &s->nodes[i];
            if (n->dead) continue;
            node *p = node_find(s, n->parent);
            if (p && p->dead) n->dead = more = true;
        }
    }
    size_t j = 0;
    for (size_t i = 0; i < s->nn; i++) {
        if (s->nodes[i].dead)
            drop_where(s, E_NODE, s->nodes[i].id);
        else
            s->nodes[j++] = s->nodes[i];
    }
    s->nn = j;
    if (s->dead > 64 && s->dead > s->n / 2) compact(s);
}

/* Marks `id` dead; `self` false: only what is in it (all of it, or its
 * synths when `synths_only`). */
static void mark(tutti__state *s, int32_t id, bool self, bool synths_only)
{
    node *n = node_find(s, id);
    if (self) {
        if (n) n->dead = true;
        return;
    }
    /* the contents: every node with `id` as an ancestor */
    for (size_t i = 0; i < s->nn; i++) {
        int32_t p = s->nodes[i].parent;
        for (int depth = 0; depth < 1024 && p != NO_NODE; depth++) {
            if (p == id) {
                if (!synths_only || !s->nodes[i].group) s->nodes[i].dead = true;
                break;
            }
            node *up = node_find(s, p);
            if (!up) break;
            p = up->parent;
        }
    }
}

void tutti__state_node_end(tutti__state *s, int32_t id)
{
    mark(s, id, true, false);
    sweep_nodes(s);
}

/* ------------------------------------------------------------------ log */

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static entry *append(tutti__state *s, const uint8_t *msg, size_t len, int kind, int32_t key)
{
    if (s->overflow) return NULL;
    if (s->n - s->dead >= TUTTI_STATE_MAX_ENTRIES || s->bytes + len > TUTTI_STATE_MAX_BYTES) {
        compact(s);
        if (s->n >= TUTTI_STATE_MAX_ENTRIES || s->bytes + len > TUTTI_STATE_MAX_BYTES) {
            s->overflow = true;
            return NULL;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        entry *e = realloc(s->e, cap * sizeof *e);
        if (!e) {
            s->overflow = true;
            return NULL;
        }
        s->e = e;
        s->cap = cap;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        s->overflow = true;
        return NULL;
    }
    memcpy(copy, msg, len);
    entry *e = &s->e[s->n++];
    *e = (entry){copy, (uint32_t)len, (uint8_t)kind, false, false, key, NO_NODE, 0, 0};
    s->bytes += len;
    return e;
}

/* Commands whose last blob argument is a completion message (the message
 * scsynth runs when the command is done). */
static bool has_completion(const char *name, const tutti__osc_msg *m)
{
    static const char *const with[] = {"/d_recv", "/b_alloc", "/b_allocRead",
                                       "/b_allocReadChannel", "/b_read", "/b_readChannel",
                                       "/b_free", "/b_zero", "/b_close"};
    size_t nt = m->tags ? strlen(m->tags) : 0;
    if (!nt || m->tags[nt - 1] != 'b') return false;
    for (size_t i = 0; i < sizeof with / sizeof with[0]; i++) {
        if (strcmp(name, with[i])) continue;
        if (!strcmp(name, "/d_recv")) return nt >= 2; /* the first blob is the defs */
        return true;
    }
    return false;
}

/* The message without its last argument (a blob) into `out`; its length. */
static size_t strip_last(const uint8_t *p, const tutti__osc_msg *m, uint8_t *out,
                         const uint8_t **blob, size_t *blen)
{
    size_t nt = strlen(m->tags);
    cur c;
    cur_init(&c, m);
    const uint8_t *a = NULL;
    for (size_t i = 0; i < nt; i++)
        cur_next(&c, &a);
    *blob = a + 4;
    *blen = tutti__osc_rd32(a);
    size_t head = (size_t)((const uint8_t *)m->tags - 1 - p); /* address */
    memcpy(out, p, head);
    size_t tl = tutti__osc_pad4(nt + 1); /* ',' + tags - 1 + NUL */
    memset(out + head, 0, tl);
    out[head] = ',';
    memcpy(out + head + 1, m->tags, nt - 1);
    size_t args = (size_t)(a - m->args);
    memcpy(out + head + tl, m->args, args);
    return head + tl + args;
}

static void note_message(tutti__state *s, const uint8_t *p, size_t len, int depth);

static int visit(void *ctx, const uint8_t *p, size_t len)
{
    void **c = ctx;
    note_message(c[0], p, len, (int)(intptr_t)c[1]);
    return 0;
}

/* `p` is checked already at depth 0 (the caller's promise); a completion
 * message inside it is checked here. */
static void note_packet(tutti__state *s, const uint8_t *p, size_t len, int depth)
{
    if (depth > 4 || (depth > 0 && tutti__osc_check(p, len))) return;
    void *c[2] = {s, (void *)(intptr_t)depth};
    tutti__osc_each_message(p, len, visit, c);
}

static void note_def(tutti__state *s, const uint8_t *p, size_t len)
{
    uint64_t h = fnv(p, len);
    for (size_t i = 0; i < s->n; i++)
        if (!s->e[i].dead && s->e[i].kind == E_DEF && s->e[i].hash == h &&
            s->e[i].len == len && !memcmp(s->e[i].msg, p, len))
            return;
    entry *e = append(s, p, len, E_DEF, 0);
    if (e) e->hash = h;
}

static void drop_kind(tutti__state *s, int kind)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->e[i].dead && s->e[i].kind == kind) {
            s->e[i].dead = true;
            s->dead++;
        }
}

static bool starts(const char *name, const char *prefix)
{
    return !strncmp(name, prefix, strlen(prefix));
}

/* A node made by `msg` (its creation, logged), placed by ACTION at TARGET;
 * a replaced target (action 4) dies. */
static void create_node(tutti__state *s, int32_t id, int32_t action, int32_t target, bool group,
                        const uint8_t *msg, size_t len)
{
    if (action == 4) mark(s, target, true, false);
    int32_t parent = parent_for(s, action, target);
    if (action == 4) sweep_nodes(s);
    if (!node_add(s, id, parent, group)) {
        s->overflow = true;
        return;
    }
    drop_where(s, E_NODE, id); /* a reused id */
    entry *e = append(s, msg, len, E_NODE, id);
    if (e) e->creation = true, e->parent = parent;
}

/* /s_new NAME ID ACTION TARGET ... */
static void note_s_new(tutti__state *s, const uint8_t *p, size_t len, const tutti__osc_msg *m)
{
    cur c;
    cur_init(&c, m);
    int32_t id, action = 0, target = 0;
    if (!cur_skip(&c) || !cur_int(&c, &id) || id < 0) return;
    if (*c.t) cur_int(&c, &action);
    if (*c.t) cur_int(&c, &target);
    create_node(s, id, action, target, false, p, len);
}

/* /g_new and /p_new: (ID ACTION TARGET)..., one message each. */
static void note_groups(tutti__state *s, const char *name, const tutti__osc_msg *m)
{
    cur c;
    cur_init(&c, m);
    int32_t id, action, target;
    while (!s->overflow && cur_int(&c, &id) && cur_int(&c, &action) && cur_int(&c, &target)) {
        if (id < 0) continue;
        uint8_t one[64];
        size_t n = tutti__osc_write(one, sizeof one, name, "iii", id, action, target);
        if (n) create_node(s, id, action, target, true, one, n);
    }
}

/* Node commands kept while their node lives. */
static void note_node_cmd(tutti__state *s, const char *name, const uint8_t *p, size_t len,
                          const tutti__osc_msg *m)
{
    cur c;
    cur_init(&c, m);
    int32_t a, b;
    bool order = !strcmp(name, "/n_order");
    if (order) {
        /* ACTION TARGET NODE...: the first node moved is the key */
        int32_t action, target, first = NO_NODE;
        if (!cur_int(&c, &action) || !cur_int(&c, &target)) return;
        int32_t parent = parent_for(s, action, target);
        while (cur_int(&c, &a)) {
            node *n = node_find(s, a);
            if (!n) continue;
            n->parent = parent;
            if (first == NO_NODE) first = a;
        }
        if (first == NO_NODE) return;
        entry *e = append(s, p, len, E_NODE, first);
        if (e) e->dep = target;
        return;
    }
    if (!cur_int(&c, &a)) return;
    if (!strcmp(name, "/g_head") || !strcmp(name, "/g_tail")) {
        /* GROUP NODE pairs; the first pair's node is the key */
        int32_t g = a, n;
        if (!cur_int(&c, &n)) return;
        node *nd = node_find(s, n);
        if (!nd) return;
        nd->parent = g;
        entry *e = append(s, p, len, E_NODE, n);
        if (e) e->dep = g;
        return;
    }
    if (!strcmp(name, "/n_before") || !strcmp(name, "/n_after")) {
        if (!cur_int(&c, &b)) return;
        node *na = node_find(s, a), *nb = node_find(s, b);
        if (!na) return;
        na->parent = nb ? nb->parent : na->parent;
        entry *e = append(s, p, len, E_NODE, a);
        if (e) e->dep = b;
        return;
    }
    if (!node_find(s, a)) return; /* not a node of ours the model knows */
    append(s, p, len, E_NODE, a);
}

static void note_message(tutti__state *s, const uint8_t *p, size_t len, int depth)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m)) return;
    const char *name = tutti__ns_command_name(p, len);
    if (!name) return;

    /* a completion message: logged after its command, as a message of its own */
    uint8_t *cut = NULL;
    const uint8_t *done = NULL;
    size_t done_len = 0;
    if (has_completion(name, &m)) {
        cut = malloc(len);
        if (!cut) return;
        len = strip_last(p, &m, cut, &done, &done_len);
        p = cut;
        if (tutti__osc_msg_parse(p, len, &m)) goto out;
    }

    if (!strcmp(name, "/d_recv")) {
        note_def(s, p, len);
    } else if (!strcmp(name, "/d_freeAll")) {
        drop_kind(s, E_DEF);
    } else if (starts(name, "/b_")) {
        cur c;
        cur_init(&c, &m);
        int32_t buf;
        bool alloc = starts(name, "/b_alloc");
        if (!strcmp(name, "/b_free")) {
            if (cur_int(&c, &buf)) drop_where(s, E_BUF, buf);
        } else if (alloc || !strcmp(name, "/b_read") || !strcmp(name, "/b_readChannel") ||
                   !strcmp(name, "/b_set") || !strcmp(name, "/b_setn") ||
                   !strcmp(name, "/b_fill") || !strcmp(name, "/b_gen") ||
                   !strcmp(name, "/b_zero")) {
            if (cur_int(&c, &buf)) {
                if (alloc) drop_where(s, E_BUF, buf);
                append(s, p, len, E_BUF, buf);
            }
        }
    } else if (!strcmp(name, "/c_set") || !strcmp(name, "/c_setn") ||
               !strcmp(name, "/c_fill")) {
        cur c;
        cur_init(&c, &m);
        int32_t bus;
        bool one = !strcmp(name, "/c_set") && m.tags && strlen(m.tags) == 2;
        if (one && cur_int(&c, &bus)) {
            drop_where(s, E_BUS, bus); /* only the last value of a bus matters */
            append(s, p, len, E_BUS, bus);
        } else {
            append(s, p, len, E_OTHER, 0);
        }
    } else if (!strcmp(name, "/s_new")) {
        note_s_new(s, p, len, &m);
    } else if (!strcmp(name, "/g_new") || !strcmp(name, "/p_new")) {
        note_groups(s, name, &m);
    } else if (!strcmp(name, "/n_free") || !strcmp(name, "/g_freeAll") ||
               !strcmp(name, "/g_deepFree") || !strcmp(name, "/s_noid")) {
        cur c;
        cur_init(&c, &m);
        int32_t id;
        bool self = !strcmp(name, "/n_free") || !strcmp(name, "/s_noid");
        if (self) { /* the node and everything in it */
            while (cur_int(&c, &id)) {
                mark(s, id, false, false);
                mark(s, id, true, false);
            }
        } else {
            while (cur_int(&c, &id))
                mark(s, id, false, !strcmp(name, "/g_deepFree"));
        }
        sweep_nodes(s);
    } else if (!strcmp(name, "/n_set") || !strcmp(name, "/n_setn") ||
               !strcmp(name, "/n_fill") || starts(name, "/n_map") ||
               !strcmp(name, "/n_run") || !strcmp(name, "/n_before") ||
               !strcmp(name, "/n_after") || !strcmp(name, "/n_order") ||
               !strcmp(name, "/g_head") || !strcmp(name, "/g_tail")) {
        note_node_cmd(s, name, p, len, &m);
    }
    if (done && done_len) note_packet(s, done, done_len, depth + 1);
out:
    free(cut);
}

void tutti__state_note(tutti__state *s, const uint8_t *p, size_t len)
{
    note_packet(s, p, len, 0);
}

/* ------------------------------------------------------------- sending */

/* A creation whose reference node is gone: at the tail of the parent it was
 * made in (later moves put it where it is now), or of the part's root group
 * when that is gone too. */
static size_t reparent(const tutti__state *s, const entry *e, uint8_t *out, size_t cap)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(e->msg, e->len, &m) || !m.tags) return 0;
    const char *name = tutti__ns_command_name(e->msg, e->len);
    cur c;
    cur_init(&c, &m);
    bool synth = name && !strcmp(name, "/s_new");
    if (synth) cur_skip(&c);
    int32_t id, action, target;
    const uint8_t *at_action = NULL;
    if (!cur_int(&c, &id)) return 0;
    at_action = c.a;
    const char *t_action = c.t;
    if (!cur_int(&c, &action) || !cur_int(&c, &target)) return 0;
    if (action < 2) return 0;
    bool target_alive = false, parent_alive = false;
    for (size_t i = 0; i < s->nn; i++) {
        target_alive |= s->nodes[i].id == target;
        parent_alive |= s->nodes[i].id == e->parent;
    }
    if (target_alive && action != 4) return 0;
    int32_t parent = parent_alive ? e->parent : 0;
    if (e->len > cap) return 0;
    memcpy(out, e->msg, e->len);
    uint8_t *w = out + (at_action - e->msg);
    /* action, then target, each as the type it had */
    for (int k = 0; k < 2; k++) {
        int32_t v = k == 0 ? 1 : parent;
        if (t_action[k] == 'i') {
            tutti__osc_wr32(w, (uint32_t)v);
        } else {
            float f = (float)v;
            uint32_t u;
            memcpy(&u, &f, 4);
            tutti__osc_wr32(w, u);
        }
        w += 4;
    }
    return e->len;
}

int tutti__state_each(const tutti__state *s, tutti__state_emit_fn emit, void *ctx)
{
    uint8_t *tmp = NULL;
    int rc = 0;
    for (size_t i = 0; i < s->n && !rc; i++) {
        const entry *e = &s->e[i];
        if (e->dead) continue;
        size_t n = 0;
        if (e->creation) {
            if (!tmp) tmp = malloc(65536);
            if (tmp) n = reparent(s, e, tmp, 65536);
        }
        rc = n ? emit(ctx, tmp, n) : emit(ctx, e->msg, e->len);
    }
    free(tmp);
    return rc;
}

/* --------------------------------------------- buffers a packet changes */

static bool is_buffer_read(const char *name)
{
    return !strcmp(name, "/b_query") || !strcmp(name, "/b_get") || !strcmp(name, "/b_getn");
}

static void buffers_in(const uint8_t *p, size_t len, tutti__state_buf_fn fn, void *arg,
                       int depth);

/* The buffer a /b_ command that changes it names (its first argument), and
 * those of the messages in its blobs (completion messages). */
static int buffers_in_msg(const uint8_t *p, size_t len, tutti__state_buf_fn fn, void *arg,
                          int depth)
{
    const char *name = tutti__ns_command_name(p, len);
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m) || !m.tags) return 0;
    bool changes = name && !strncmp(name, "/b_", 3) && !is_buffer_read(name);
    const uint8_t *a = m.args;
    for (size_t k = 0; m.tags[k] && a < m.end; k++) {
        switch (m.tags[k]) {
        case 'i':
            if (k == 0 && changes) fn(arg, (int32_t)tutti__osc_rd32(a));
            /* fall through */
        case 'f':
            a += 4;
            break;
        case 'd': case 't': case 'h':
            a += 8;
            break;
        case 's': case 'S': {
            size_t n = strnlen((const char *)a, (size_t)(m.end - a));
            a += (n + 4) & ~(size_t)3;
            break;
        }
        case 'b': {
            if (m.end - a < 4) return 0;
            uint32_t n = tutti__osc_rd32(a);
            if (n > (size_t)(m.end - a) - 4) return 0;
            if (depth < 2 && tutti__osc_check(a + 4, n) == 0)
                buffers_in(a + 4, n, fn, arg, depth + 1);
            a += 4 + ((n + 3) & ~3u);
            break;
        }
        default:
            break; /* no bytes: T F N I */
        }
    }
    return 0;
}

typedef struct buf_walk {
    tutti__state_buf_fn fn;
    void *arg;
    int depth;
} buf_walk;

static int visit_buffers(void *arg, const uint8_t *p, size_t len)
{
    const buf_walk *w = arg;
    return buffers_in_msg(p, len, w->fn, w->arg, w->depth);
}

static void buffers_in(const uint8_t *p, size_t len, tutti__state_buf_fn fn, void *arg,
                       int depth)
{
    buf_walk w = {fn, arg, depth};
    tutti__osc_each_message(p, len, visit_buffers, &w);
}

void tutti__state_buffers_changed(const uint8_t *p, size_t len, tutti__state_buf_fn fn,
                                  void *arg)
{
    buffers_in(p, len, fn, arg, 0);
}
