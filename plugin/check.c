/*
 * The server check (see check.h).
 */
#define _GNU_SOURCE
#include "check.h"
#include "ns.h"

#include "osc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPAN ((int32_t)1 << 26)
#define ROUNDS 6 /* rounds kept: the two before the last decided, and those open */
#define MAX_DIGESTS 64  /* digests of one round */
#define TEXT_MAX (60 * 1024)

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* ------------------------------------------------------------ digests */

void tutti__digest_init(tutti__digest *d, int64_t round, uint32_t slot, const char *name)
{
    memset(d, 0, sizeof *d);
    d->round = round;
    d->slot = slot;
    snprintf(d->name, sizeof d->name, "%s", name ? name : "");
}

void tutti__digest_clear(tutti__digest *d)
{
    for (uint32_t i = 0; i < d->nparts; i++) {
        free(d->part[i].ids);
        free(d->part[i].carried);
        free(d->part[i].carried_term);
    }
    d->nparts = 0;
}

static tutti__digest_part *part_of(tutti__digest *d, uint32_t slot)
{
    for (uint32_t i = 0; i < d->nparts; i++)
        if (d->part[i].slot == slot) return &d->part[i];
    if (d->nparts == TUTTI_CHECK_SLOTS || slot >= TUTTI_CHECK_SLOTS) return NULL;
    tutti__digest_part *p = &d->part[d->nparts++];
    memset(p, 0, sizeof *p);
    p->slot = slot;
    return p;
}

/* A node id in part `slot`'s own numbers: -1 for an id the server chose. */
static int32_t own_id(int32_t id, uint32_t slot)
{
    if (id < 0) return -1;
    if ((uint32_t)id / (uint32_t)SPAN == slot)
        return slot ? tutti__ns_node_swap(id % SPAN) : id % SPAN;
    return id; /* another part's id, or the server's own: as it is */
}

/* The synthdef name without the part's ".p<slot>". */
static size_t own_def(const char *def, uint32_t slot, char *out, size_t cap)
{
    char suffix[16];
    snprintf(suffix, sizeof suffix, ".p%" PRIu32, slot);
    size_t n = strlen(def), s = strlen(suffix);
    if (n > s && !strcmp(def + n - s, suffix)) n -= s;
    if (n >= cap) n = cap - 1;
    memcpy(out, def, n);
    out[n] = 0;
    return n;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

uint64_t tutti__digest_term(uint32_t slot, int32_t id, int32_t parent, const char *def)
{
    int32_t own = own_id(id, slot), up = own_id(parent, slot);
    char name[256];
    size_t n = def ? own_def(def, slot, name, sizeof name) : 0;
    uint64_t h = fnv(&own, sizeof own, 0xcbf29ce484222325ull);
    h = fnv(&up, sizeof up, h);
    h = fnv(name, n, h);
    h = fnv(def ? "s" : "g", 1, h);
    return mix(h);
}

void tutti__digest_carried(tutti__digest *d, uint32_t slot, int32_t id, uint64_t term)
{
    tutti__digest_part *p = part_of(d, slot);
    if (!p || p->ncarried == TUTTI_CHECK_CARRIED || id < 0) return;
    if (!p->carried) {
        p->carried = malloc(TUTTI_CHECK_CARRIED * sizeof *p->carried);
        p->carried_term = malloc(TUTTI_CHECK_CARRIED * sizeof *p->carried_term);
        if (!p->carried || !p->carried_term) {
            free(p->carried);
            free(p->carried_term);
            p->carried = NULL;
            p->carried_term = NULL;
            return;
        }
    }
    p->carried[p->ncarried] = own_id(id, slot);
    p->carried_term[p->ncarried++] = term;
}

static void add_node(tutti__digest_part *p, int32_t id, int32_t parent, const char *def)
{
    int32_t own = own_id(id, p->slot);
    p->tree += tutti__digest_term(p->slot, id, parent, def);
    p->nodes++;
    if (p->nids == TUTTI_CHECK_IDS) {
        p->cut = true;
        return;
    }
    if (!p->ids && !(p->ids = malloc(TUTTI_CHECK_IDS * sizeof *p->ids))) {
        p->cut = true;
        return;
    }
    p->ids[p->nids++] = own;
}

typedef struct tree_rd {
    tutti__osc_msg m;
    tutti__osc_iter it;
    bool flag;
} tree_rd;

static bool rd_int(tree_rd *r, int32_t *v)
{
    if (!r->m.tags || r->m.tags[r->it.count] != 'i') return false;
    *v = tutti__osc_iter_geti(&r->it, 0);
    return true;
}

/* Skips a synth's controls (flag 1): count, then name/index and value. */
static bool skip_controls(tree_rd *r)
{
    int32_t n;
    if (!rd_int(r, &n) || n < 0 || n > 100000) return false;
    for (int32_t i = 0; i < 2 * n; i++) {
        char t = r->m.tags[r->it.count];
        if (!t) return false;
        if (t == 's')
            tutti__osc_iter_gets(&r->it, NULL);
        else
            tutti__osc_iter_geti(&r->it, 0);
    }
    return true;
}

/* One node and its subtree; `slot` 0 outside every part. Depth-first,
 * iterative: each level keeps its group's id, its part and how many of
 * its children are still to read. */
int tutti__digest_tree(tutti__digest *d, const uint8_t *p, size_t len)
{
    tree_rd r;
    if (tutti__osc_msg_parse(p, len, &r.m) || !r.m.addr ||
        strcmp(r.m.addr, "/g_queryTree.reply") || !r.m.tags)
        return -1;
    tutti__osc_iter_init(&r.it, &r.m);
    int32_t flag, root, count;
    if (!rd_int(&r, &flag) || !rd_int(&r, &root) || !rd_int(&r, &count) || count < 0) return -1;
    r.flag = flag != 0;
    enum { DEPTH = 256 };
    struct {
        int32_t id, left;
        uint32_t slot;
    } st[DEPTH];
    int top = 0;
    st[0].id = root;
    st[0].left = count;
    st[0].slot = 0;
    while (top >= 0) {
        if (st[top].left == 0) {
            top--;
            continue;
        }
        st[top].left--;
        int32_t id, n;
        if (!rd_int(&r, &id) || !rd_int(&r, &n)) return -1;
        uint32_t slot = st[top].slot;
        if (top == 0 && root == 0 && id > 0 && id % SPAN == 0 && id / SPAN < TUTTI_CHECK_SLOTS)
            slot = (uint32_t)(id / SPAN); /* a part's group: its subtree is the part */
        else if (slot) {
            tutti__digest_part *dp = part_of(d, slot);
            const char *def = NULL;
            if (n == -1 && r.m.tags[r.it.count] == 's') def = tutti__osc_iter_gets(&r.it, "");
            if (dp) add_node(dp, id, st[top].id, n == -1 ? (def ? def : "") : NULL);
            if (n == -1 && r.flag && !skip_controls(&r)) return -1;
            if (n == -1) continue;
        }
        if (n == -1) { /* a synth outside the parts */
            if (r.m.tags[r.it.count] == 's') tutti__osc_iter_gets(&r.it, NULL);
            if (r.flag && !skip_controls(&r)) return -1;
            continue;
        }
        if (n < 0 || top + 1 >= DEPTH) return -1;
        top++;
        st[top].id = id;
        st[top].left = n;
        st[top].slot = slot;
    }
    /* An empty part group is no part: drop parts without nodes or fails. */
    for (uint32_t i = 0; i < d->nparts; i++)
        if (d->part[i].ids) qsort(d->part[i].ids, d->part[i].nids, sizeof(int32_t), cmp_i32);
    return 0;
}

/* `text` with every number of 2^26 or more written modulo 2^26 (a node id
 * of a part, in the part's own numbers). */
static void own_numbers(const char *text, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *s = text; *s && k + 1 < cap;) {
        if (*s >= '0' && *s <= '9') {
            char *e;
            unsigned long long v = strtoull(s, &e, 10);
            if (v >= (unsigned long long)SPAN && v < (1ull << 31))
                v = (unsigned long long)tutti__ns_node_swap(
                    (int32_t)(v % (unsigned)SPAN));
            int w = snprintf(out + k, cap - k, "%llu", v);
            if (w < 0 || (size_t)w >= cap - k) break;
            k += (size_t)w;
            s = e;
            continue;
        }
        out[k++] = *s++;
    }
    out[k] = 0;
}

void tutti__digest_fail(tutti__digest *d, uint32_t slot, const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m) || !m.addr || strcmp(m.addr, "/fail")) return;
    tutti__digest_part *dp = part_of(d, slot);
    if (!dp) return;
    char raw[TUTTI_CHECK_TEXT] = "", text[TUTTI_CHECK_TEXT];
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    size_t k = 0;
    for (int i = 0; i < 3 && m.tags && m.tags[it.count]; i++) {
        char t = m.tags[it.count];
        if (t == 's') {
            const char *s = tutti__osc_iter_gets(&it, "");
            k += (size_t)snprintf(raw + k, sizeof raw - k, "%s%s", k ? " " : "", s);
        } else if (t == 'i') {
            k += (size_t)snprintf(raw + k, sizeof raw - k, " %d", tutti__osc_iter_geti(&it, 0));
        } else {
            break;
        }
        if (k >= sizeof raw) break;
    }
    own_numbers(raw, text, sizeof text);
    for (char *c = text; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    dp->fails++;
    dp->fail_hash += mix(fnv(text, strlen(text), 0xcbf29ce484222325ull));
    if (!dp->fail[0]) snprintf(dp->fail, sizeof dp->fail, "%s", text);
}

void tutti__digest_add_fails(tutti__digest *d, const tutti__digest *window)
{
    for (uint32_t i = 0; i < window->nparts; i++) {
        const tutti__digest_part *w = &window->part[i];
        if (!w->fails) continue;
        tutti__digest_part *p = part_of(d, w->slot);
        if (!p) continue;
        p->fails += w->fails;
        p->fail_hash += w->fail_hash;
        if (!p->fail[0]) snprintf(p->fail, sizeof p->fail, "%s", w->fail);
    }
}

bool tutti__digest_is(const uint8_t *p, size_t len)
{
    return len >= 16 && !memcmp(p, "/tutti/check\0\0\0\0", 16);
}

/*
 * The text inside the blob, one record a line:
 *   round <k> period_ms <ms> slot <s> name <name>
 *   part <slot> <nodes> <tree hex> <fails> <fail hash hex> <cut 0|1>
 *   ids <slot> <id> <id> ...
 *   fail <slot> <text>
 *   carried <slot> <id>:<term hex> ...
 */
size_t tutti__digest_encode(const tutti__digest *d, uint8_t *out, size_t cap)
{
    static char text[TEXT_MAX];
    size_t budget = cap > 64 ? cap - 64 : 0;
    if (budget > sizeof text) budget = sizeof text;
    int k = snprintf(text, budget, "round %" PRId64 " period_ms %d slot %" PRIu32 " name %s\n",
                     d->round, (int)(TUTTI_CHECK_PERIOD / TUTTI_MS), d->slot, d->name);
    if (k < 0 || (size_t)k >= budget) return 0;
    size_t n = (size_t)k;
    for (uint32_t i = 0; i < d->nparts; i++) {
        const tutti__digest_part *p = &d->part[i];
        if (!p->nodes && !p->fails) continue;
        int w = snprintf(text + n, budget - n,
                         "part %" PRIu32 " %" PRIu32 " %016" PRIx64 " %" PRIu32 " %016" PRIx64
                         " %d\n",
                         p->slot, p->nodes, p->tree, p->fails, p->fail_hash, p->cut);
        if (w < 0 || (size_t)w >= budget - n) return 0;
        n += (size_t)w;
        if (p->fails) {
            w = snprintf(text + n, budget - n, "fail %" PRIu32 " %s\n", p->slot, p->fail);
            if (w > 0 && (size_t)w < budget - n) n += (size_t)w;
        }
    }
    for (uint32_t i = 0; i < d->nparts; i++) {
        const tutti__digest_part *p = &d->part[i];
        if (!p->ncarried) continue;
        /* before the id lists: without them the comparison would take the
         * newcomer's copies for differences */
        int w = snprintf(text + n, budget - n, "carried %" PRIu32, p->slot);
        if (w < 0 || (size_t)w + 2 >= budget - n) break;
        n += (size_t)w;
        for (uint32_t j = 0; j < p->ncarried; j++) {
            w = snprintf(text + n, budget - n, " %" PRId32 ":%016" PRIx64, p->carried[j],
                         p->carried_term[j]);
            if (w < 0 || (size_t)w + 2 >= budget - n) break;
            n += (size_t)w;
        }
        text[n++] = '\n';
    }
    /* the id lists last, each cut where the room ends */
    for (uint32_t i = 0; i < d->nparts; i++) {
        const tutti__digest_part *p = &d->part[i];
        if (!p->nids) continue;
        int w = snprintf(text + n, budget - n, "ids %" PRIu32, p->slot);
        if (w < 0 || (size_t)w + 16 >= budget - n) break;
        n += (size_t)w;
        for (uint32_t j = 0; j < p->nids; j++) {
            w = snprintf(text + n, budget - n, " %" PRId32, p->ids[j]);
            if (w < 0 || (size_t)w + 2 >= budget - n) break;
            n += (size_t)w;
        }
        text[n++] = '\n';
    }
    return tutti__osc_write(out, cap, "/tutti/check", "b", text, n);
}

int tutti__digest_decode(tutti__digest *d, const uint8_t *p, size_t len, uint32_t origin)
{
    memset(d, 0, sizeof *d);
    tutti__osc_msg m;
    if (!tutti__digest_is(p, len) || tutti__osc_check(p, len) ||
        tutti__osc_msg_parse(p, len, &m) || !m.tags || strcmp(m.tags, "b"))
        return -1;
    uint32_t n = tutti__osc_rd32(m.args);
    if (n > (size_t)(m.end - m.args) - 4 || n > TEXT_MAX) return -1;
    char *text = malloc(n + 1);
    if (!text) return -1;
    memcpy(text, m.args + 4, n);
    text[n] = 0;
    d->origin = origin;
    int rc = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "round ", 6)) {
            int64_t round;
            int ms, at = 0;
            unsigned slot;
            if (sscanf(line, "round %" SCNd64 " period_ms %d slot %u name %n", &round, &ms, &slot,
                       &at) < 3 ||
                ms != (int)(TUTTI_CHECK_PERIOD / TUTTI_MS) || slot >= TUTTI_CHECK_SLOTS)
                goto out;
            d->round = round;
            d->slot = slot;
            if (at) snprintf(d->name, sizeof d->name, "%s", line + at);
            rc = 0;
        } else if (!strncmp(line, "part ", 5)) {
            unsigned slot, nodes, fails;
            uint64_t tree, fh;
            int cut;
            if (sscanf(line, "part %u %u %" SCNx64 " %u %" SCNx64 " %d", &slot, &nodes, &tree,
                       &fails, &fh, &cut) != 6)
                goto bad;
            tutti__digest_part *dp = part_of(d, slot);
            if (!dp) goto bad;
            dp->nodes = nodes;
            dp->tree = tree;
            dp->fails = fails;
            dp->fail_hash = fh;
            dp->cut = cut != 0;
        } else if (!strncmp(line, "fail ", 5)) {
            unsigned slot;
            int at = 0;
            if (sscanf(line, "fail %u %n", &slot, &at) < 1 || !at) goto bad;
            tutti__digest_part *dp = part_of(d, slot);
            if (dp) snprintf(dp->fail, sizeof dp->fail, "%s", line + at);
        } else if (!strncmp(line, "carried ", 8)) {
            char *e;
            unsigned long slot = strtoul(line + 8, &e, 10);
            if (slot >= TUTTI_CHECK_SLOTS) goto bad;
            for (char *s = e; *s;) {
                long v = strtol(s, &e, 10);
                if (e == s || *e != ':') break;
                s = e + 1;
                unsigned long long term = strtoull(s, &e, 16);
                if (e == s) break;
                s = e;
                if (v < 0 || v >= SPAN) continue;
                tutti__digest_part *dp = part_of(d, (uint32_t)slot);
                if (!dp || dp->ncarried == TUTTI_CHECK_CARRIED) break;
                uint32_t before = dp->ncarried;
                /* ids are read in the part's own numbers already */
                tutti__digest_carried(d, (uint32_t)slot, (int32_t)v, (uint64_t)term);
                if (dp->ncarried == before) break;
            }
        } else if (!strncmp(line, "ids ", 4)) {
            char *e;
            unsigned long slot = strtoul(line + 4, &e, 10);
            tutti__digest_part *dp = slot < TUTTI_CHECK_SLOTS ? part_of(d, (uint32_t)slot) : NULL;
            if (!dp || dp->ids) goto bad;
            dp->ids = malloc(TUTTI_CHECK_IDS * sizeof *dp->ids);
            if (!dp->ids) goto bad;
            for (char *s = e; *s && dp->nids < TUTTI_CHECK_IDS;) {
                long v = strtol(s, &e, 10);
                if (e == s) break;
                dp->ids[dp->nids++] = (int32_t)v;
                s = e;
            }
            if (dp->nids < dp->nodes) dp->cut = true;
        }
    }
    goto out;
bad:
    rc = -1;
out:
    free(text);
    if (rc) tutti__digest_clear(d);
    return rc;
}

/* ------------------------------------------------------------ comparing */

typedef struct round_slot {
    bool used, decided;
    int64_t round;
    uint32_t n;
    tutti__digest *d[MAX_DIGESTS];
} round_slot;

struct tutti__checker {
    tutti__check_report_fn report;
    void *arg;
    tutti__check_nodes_fn nodes;
    void *nodes_arg;
    round_slot r[ROUNDS];
    tutti__checker_stats st;
    int64_t last_decided; /* the latest round decided, or INT64_MIN */
};

tutti__checker *tutti__checker_new(tutti__check_report_fn report, void *arg)
{
    tutti__checker *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->report = report;
    c->arg = arg;
    c->last_decided = INT64_MIN;
    c->st.last_round = c->st.last_diff_round = -1;
    return c;
}

void tutti__checker_on_nodes(tutti__checker *c, tutti__check_nodes_fn fn, void *arg)
{
    c->nodes = fn;
    c->nodes_arg = arg;
}

static void slot_clear(round_slot *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        tutti__digest_clear(s->d[i]);
        free(s->d[i]);
    }
    memset(s, 0, sizeof *s);
}

void tutti__checker_free(tutti__checker *c)
{
    if (!c) return;
    for (int i = 0; i < ROUNDS; i++) slot_clear(&c->r[i]);
    free(c);
}

static round_slot *find(tutti__checker *c, int64_t round)
{
    for (int i = 0; i < ROUNDS; i++)
        if (c->r[i].used && c->r[i].round == round) return &c->r[i];
    return NULL;
}

/* The round before `round` that has digests (decided), or NULL. */
static round_slot *before(tutti__checker *c, int64_t round)
{
    round_slot *best = NULL;
    for (int i = 0; i < ROUNDS; i++)
        if (c->r[i].used && c->r[i].round < round && (!best || c->r[i].round > best->round))
            best = &c->r[i];
    return best;
}

static const tutti__digest *of(const round_slot *s, uint32_t origin)
{
    for (uint32_t i = 0; s && i < s->n; i++)
        if (s->d[i]->origin == origin) return s->d[i];
    return NULL;
}

static const tutti__digest_part *part_in(const tutti__digest *d, uint32_t slot)
{
    for (uint32_t i = 0; d && i < d->nparts; i++)
        if (d->part[i].slot == slot && (d->part[i].nodes || d->part[i].fails))
            return &d->part[i];
    return NULL;
}

static bool same_tree(const tutti__digest_part *a, const tutti__digest_part *b)
{
    uint32_t na = a ? a->nodes : 0, nb = b ? b->nodes : 0;
    return na == nb && (!na || a->tree == b->tree);
}

static bool same_fails(const tutti__digest_part *a, const tutti__digest_part *b)
{
    uint32_t na = a ? a->fails : 0, nb = b ? b->fails : 0;
    return na == nb && (!na || a->fail_hash == b->fail_hash);
}

static bool same_fails2(const tutti__digest_part *a0, const tutti__digest_part *a1,
                        const tutti__digest_part *b0, const tutti__digest_part *b1)
{
    uint32_t na = (a0 ? a0->fails : 0) + (a1 ? a1->fails : 0);
    uint32_t nb = (b0 ? b0->fails : 0) + (b1 ? b1->fails : 0);
    uint64_t ha = (a0 && a0->fails ? a0->fail_hash : 0) + (a1 && a1->fails ? a1->fail_hash : 0);
    uint64_t hb = (b0 && b0->fails ? b0->fail_hash : 0) + (b1 && b1->fails ? b1->fail_hash : 0);
    return na == nb && ha == hb;
}

static bool has_id(const tutti__digest_part *p, int32_t id)
{
    return p && p->ids && bsearch(&id, p->ids, p->nids, sizeof id, cmp_i32);
}

/* Up to a few ids in `a` and not in `b`, written to `out`; how many. */
static int ids_not_in(const tutti__digest_part *a, const tutti__digest_part *b, char *out,
                      size_t cap)
{
    int n = 0;
    size_t k = 0;
    if (cap) out[0] = 0;
    for (uint32_t i = 0; a && a->ids && i < a->nids; i++) {
        if (a->ids[i] < 0 || has_id(b, a->ids[i])) continue;
        if (i && a->ids[i] == a->ids[i - 1]) continue;
        if (n < 4 && k < cap)
            k += (size_t)snprintf(out + k, cap - k, "%s%" PRId32, n ? ", " : "", a->ids[i]);
        n++;
    }
    if (n > 4 && k < cap) snprintf(out + k, cap - k, " and %d more", n - 4);
    return n;
}

/* Up to a few ids in `a` and not in `b` that were also in `a2` and not in
 * `b2` (the same two servers a round before), written to `out`; how many. */
static int ids_lasting(const tutti__digest_part *a, const tutti__digest_part *b,
                       const tutti__digest_part *a2, const tutti__digest_part *b2, char *out,
                       size_t cap)
{
    int n = 0;
    size_t k = 0;
    out[0] = 0;
    for (uint32_t i = 0; a && a->ids && i < a->nids; i++) {
        int32_t id = a->ids[i];
        if (id < 0 || has_id(b, id) || !has_id(a2, id) || has_id(b2, id)) continue;
        if (i && id == a->ids[i - 1]) continue;
        if (n < 4 && k < cap)
            k += (size_t)snprintf(out + k, cap - k, "%s%" PRId32, n ? ", " : "", id);
        n++;
    }
    if (n > 4 && k < cap) snprintf(out + k, cap - k, " and %d more", n - 4);
    return n;
}

/* Whether a part's id list is whole (no part at all counts as whole). */
static bool ids_listed(const tutti__digest_part *p)
{
    return !p || (!p->cut && p->nids == p->nodes);
}

/* The name of the member playing part `slot`, from the digests. */
static const char *part_name(const round_slot *s, uint32_t slot)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->d[i]->slot == slot) return s->d[i]->name;
    return "";
}

static void names(const round_slot *s, const uint32_t *idx, uint32_t n, char *out, size_t cap)
{
    size_t k = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? ", " : "", s->d[idx[i]]->name);
}

/* Groups the digests of `cur` (those in `both`) by part `slot`'s value
 * (same_tree or same_fails): group[i] is the group of digest both[i];
 * returns the group that is the majority (the largest; among equals the one
 * holding the first digest). */
static int groups(const tutti__digest_part *const *parts, uint32_t n, bool fails, int *group)
{
    int ng = 0, size[MAX_DIGESTS] = {0};
    uint32_t rep[MAX_DIGESTS];
    for (uint32_t i = 0; i < n; i++) {
        const tutti__digest_part *p = parts[i];
        group[i] = -1;
        for (int g = 0; g < ng && group[i] < 0; g++) {
            const tutti__digest_part *q = parts[rep[g]];
            if (fails ? same_fails(p, q) : same_tree(p, q)) group[i] = g;
        }
        if (group[i] < 0) {
            rep[ng] = i;
            group[i] = ng++;
        }
        size[group[i]]++;
    }
    int best = 0;
    for (int g = 1; g < ng; g++)
        if (size[g] > size[best]) best = g;
    return best;
}

typedef struct carried_id {
    int32_t id;
    uint64_t term;
} carried_id;

static int cmp_carried(const void *a, const void *b)
{
    int32_t x = ((const carried_id *)a)->id, y = ((const carried_id *)b)->id;
    return (x > y) - (x < y);
}

/* The carried synths (tutti__digest_part) of part `slot` that any of the
 * digests `d[0..n)` lists, sorted by id, one each (the first listed): how
 * many, at most `cap`. Sorted, so that a hostile list costs a log, not a
 * product of lengths. */
static uint32_t carried_of(const tutti__digest *const *d, uint32_t n, uint32_t slot,
                           carried_id *out, uint32_t cap)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; d[i] && j < d[i]->nparts; j++) {
            const tutti__digest_part *p = &d[i]->part[j];
            if (p->slot != slot) continue;
            for (uint32_t c = 0; c < p->ncarried && k < cap; c++)
                out[k++] = (carried_id){p->carried[c], p->carried_term[c]};
        }
    if (k < 2) return k;
    /* stable for equal ids is not needed: equal ids of honest servers have
     * equal terms */
    qsort(out, k, sizeof *out, cmp_carried);
    uint32_t m = 1;
    for (uint32_t i = 1; i < k; i++)
        if (out[i].id != out[m - 1].id) out[m++] = out[i];
    return m;
}

/* Part `p` without the carried synths `c[0..k)` (their terms taken out of
 * its hash, their ids out of its list), in `out`; `p` itself when it holds
 * none of them. The caller frees out->ids when the result is `out`. */
static const tutti__digest_part *without(const tutti__digest_part *p, const carried_id *c,
                                         uint32_t k, tutti__digest_part *out)
{
    if (!p || !k || !p->ids || !p->nids) return p;
    bool any = false;
    for (uint32_t i = 0; i < p->nids && !any; i++) {
        carried_id key = {p->ids[i], 0};
        any = p->ids[i] >= 0 && bsearch(&key, c, k, sizeof *c, cmp_carried);
    }
    if (!any) return p;
    *out = *p;
    out->carried = NULL;
    out->carried_term = NULL;
    out->ncarried = 0;
    out->ids = malloc(p->nids * sizeof *out->ids);
    if (!out->ids) return p;
    out->nids = 0;
    for (uint32_t i = 0; i < p->nids; i++) {
        carried_id key = {p->ids[i], 0};
        const carried_id *hit =
            p->ids[i] >= 0 ? bsearch(&key, c, k, sizeof *c, cmp_carried) : NULL;
        if (!hit) {
            out->ids[out->nids++] = p->ids[i];
        } else if (!i || p->ids[i] != p->ids[i - 1]) {
            out->nodes--;
            out->tree -= hit->term;
        }
    }
    return out;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Each part's node count in a decided round, as the servers agree on it:
 * the lower median of the digests' counts (a server without the part counts
 * 0: a part with no nodes is in no digest), so a minority of servers cannot
 * make a part look bigger than it is. Every part, every round. */
static void tell_nodes(tutti__checker *c, const round_slot *cur)
{
    if (!c->nodes || !cur->n) return;
    for (uint32_t slot = 1; slot < TUTTI_CHECK_SLOTS; slot++) {
        uint32_t counts[MAX_DIGESTS], k = 0;
        for (uint32_t i = 0; i < cur->n; i++) {
            const tutti__digest_part *p = part_in(cur->d[i], slot);
            counts[k++] = p ? p->nodes : 0;
        }
        qsort(counts, k, sizeof counts[0], cmp_u32);
        c->nodes(c->nodes_arg, cur->round, slot, counts[(k - 1) / 2]);
    }
}

static void decide(tutti__checker *c, round_slot *cur)
{
    cur->decided = true;
    c->last_decided = cur->round;
    tell_nodes(c, cur);
    round_slot *prev = before(c, cur->round), *prev2 = prev ? before(c, prev->round) : NULL;
    /* the servers with a digest in both rounds */
    uint32_t both[MAX_DIGESTS], n = 0;
    for (uint32_t i = 0; i < cur->n; i++)
        if (!prev || of(prev, cur->d[i]->origin)) both[n++] = i;
    c->st.servers = cur->n;
    c->st.last_round = cur->round;
    if (n < 2 || !prev) return;
    c->st.rounds++;
    uint64_t before_diffs = c->st.diffs;
    bool seen[TUTTI_CHECK_SLOTS] = {false};
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < cur->d[both[i]]->nparts; j++)
            seen[cur->d[both[i]]->part[j].slot] = true;
    for (uint32_t i = 0; i < prev->n; i++)
        for (uint32_t j = 0; j < prev->d[i]->nparts; j++) seen[prev->d[i]->part[j].slot] = true;
    for (uint32_t slot = 1; slot < TUTTI_CHECK_SLOTS; slot++) {
        if (!seen[slot]) continue;
        /* failures: the earlier round's window differs, and so do that
         * window and each of its neighbours taken together (a /fail close
         * to a round's end can fall on either side of it) */
        bool tree_now = true, tree_then = true, fails_then = true, fails_sum = true,
             fails_sum2 = true;
        /* the trees without the synths a state carried to a newcomer (each
         * round's own list: what any of its digests lists) */
        const tutti__digest *dc[MAX_DIGESTS], *dp[MAX_DIGESTS];
        for (uint32_t i = 0; i < n; i++) {
            dc[i] = cur->d[both[i]];
            dp[i] = of(prev, dc[i]->origin);
        }
        static carried_id cc[2][4 * TUTTI_CHECK_CARRIED];
        uint32_t kc = carried_of(dc, n, slot, cc[0], 4 * TUTTI_CHECK_CARRIED),
                 kp = carried_of(dp, n, slot, cc[1], 4 * TUTTI_CHECK_CARRIED);
        tutti__digest_part adj[2][MAX_DIGESTS];
        const tutti__digest_part *pc[MAX_DIGESTS], *pp[MAX_DIGESTS];
        for (uint32_t i = 0; i < n; i++) {
            pc[i] = without(part_in(dc[i], slot), cc[0], kc, &adj[0][i]);
            pp[i] = without(part_in(dp[i], slot), cc[1], kp, &adj[1][i]);
        }
        const tutti__digest *a = cur->d[both[0]], *ap = of(prev, a->origin),
                            *aq = of(prev2, a->origin);
        for (uint32_t i = 1; i < n; i++) {
            const tutti__digest *b = cur->d[both[i]], *bp = of(prev, b->origin),
                                *bq = of(prev2, b->origin);
            tree_now &= same_tree(pc[0], pc[i]);
            tree_then &= same_tree(pp[0], pp[i]);
            fails_then &= same_fails(part_in(ap, slot), part_in(bp, slot));
            fails_sum &= same_fails2(part_in(ap, slot), part_in(a, slot), part_in(bp, slot),
                                     part_in(b, slot));
            if (aq && bq)
                fails_sum2 &= same_fails2(part_in(aq, slot), part_in(ap, slot),
                                          part_in(bq, slot), part_in(bp, slot));
            else
                fails_sum2 = false;
        }
        const char *owner = part_name(cur, slot);
        char pname[64];
        if (*owner)
            snprintf(pname, sizeof pname, "part %" PRIu32 " (%s)", slot, owner);
        else
            snprintf(pname, sizeof pname, "part %" PRIu32, slot);
        int group[MAX_DIGESTS];
        if (!tree_now && !tree_then) {
            int maj = groups(pc, n, false, group);
            uint32_t mi = 0;
            for (uint32_t i = 0; i < n; i++)
                if (group[i] == maj) {
                    mi = i;
                    break;
                }
            const tutti__digest_part *mp = pc[mi], *mpp = pp[mi];
            for (uint32_t i = 0; i < n; i++) {
                if (group[i] == maj) continue;
                const tutti__digest *b = cur->d[both[i]];
                const tutti__digest_part *bp = pc[i], *bpp = pp[i];
                /* Lasting: the same node missing (or extra) on this server
                 * in both rounds, against the same server of the majority.
                 * Two different nodes at two rounds' edges (a note that
                 * ends within a block of T on one server, the next one at
                 * the next round's on another) are timing, not a
                 * difference. Trees with the same ids that differ (placed
                 * differently, other synthdefs, ids the server chose) or
                 * id lists cut short: the trees must differ in both. */
                char miss[96], extra[96];
                int nm = ids_lasting(mp, bp, mpp, bpp, miss, sizeof miss);
                int ne = ids_lasting(bp, mp, bpp, mpp, extra, sizeof extra);
                bool exact = ids_listed(mp) && ids_listed(bp) && ids_listed(mpp) &&
                             ids_listed(bpp);
                bool ids_now = ids_not_in(mp, bp, NULL, 0) || ids_not_in(bp, mp, NULL, 0);
                bool ids_then =
                    ids_not_in(mpp, bpp, NULL, 0) || ids_not_in(bpp, mpp, NULL, 0);
                bool lasting = nm || ne || ((!exact || (!ids_now && !ids_then)) &&
                                            !same_tree(mp, bp) && !same_tree(mpp, bpp));
                if (!lasting) continue;
                uint32_t agree[MAX_DIGESTS], na = 0;
                for (uint32_t j = 0; j < n; j++)
                    if (group[j] == maj) agree[na++] = both[j];
                char others[TUTTI_CHECK_TEXT];
                names(cur, agree, na, others, sizeof others);
                tutti__check_diff df = {cur->round, slot, false, ""};
                size_t k = (size_t)snprintf(df.text, sizeof df.text,
                                            "round %" PRId64 ", %s: server %s differs from %s:",
                                            cur->round, pname, b->name, others);
                if (nm)
                    k += (size_t)snprintf(df.text + k, sizeof df.text - k,
                                          " node%s %s missing", nm > 1 ? "s" : "", miss);
                if (ne && k < sizeof df.text)
                    k += (size_t)snprintf(df.text + k, sizeof df.text - k,
                                          "%s node%s %s not on the others", nm ? ";" : "",
                                          ne > 1 ? "s" : "", extra);
                if (!nm && !ne && k < sizeof df.text)
                    snprintf(df.text + k, sizeof df.text - k,
                             " %u nodes against %u (the same ids placed differently, or "
                             "other synthdefs)",
                             bp ? bp->nodes : 0, mp ? mp->nodes : 0);
                c->st.diffs++;
                if (c->report) c->report(c->arg, &df);
            }
        }
        if (!fails_then && !fails_sum && !fails_sum2) {
            /* the earlier round's windows, grouped */
            round_slot *ps = prev;
            uint32_t pb[MAX_DIGESTS];
            for (uint32_t i = 0; i < n; i++) {
                const tutti__digest *pd = of(prev, cur->d[both[i]]->origin);
                pb[i] = 0;
                for (uint32_t j = 0; j < ps->n; j++)
                    if (ps->d[j] == pd) pb[i] = j;
            }
            const tutti__digest_part *pf[MAX_DIGESTS];
            for (uint32_t i = 0; i < n; i++) pf[i] = part_in(ps->d[pb[i]], slot);
            int maj = groups(pf, n, true, group);
            const tutti__digest_part *mp = NULL;
            uint32_t agree[MAX_DIGESTS], na = 0;
            for (uint32_t i = 0; i < n; i++)
                if (group[i] == maj) {
                    if (!na) mp = part_in(ps->d[pb[i]], slot);
                    agree[na++] = pb[i];
                }
            for (uint32_t i = 0; i < n; i++) {
                if (group[i] == maj) continue;
                const tutti__digest *b = ps->d[pb[i]];
                const tutti__digest_part *bp = part_in(b, slot);
                char others[TUTTI_CHECK_TEXT];
                names(ps, agree, na, others, sizeof others);
                tutti__check_diff df = {ps->round, slot, true, ""};
                const char *example = bp && bp->fails ? bp->fail : mp && mp->fails ? mp->fail : "";
                snprintf(df.text, sizeof df.text,
                         "round %" PRId64 ", %s: server %s had %u failure%s against %u on %s "
                         "(%s)",
                         ps->round, pname, b->name, bp ? bp->fails : 0,
                         bp && bp->fails == 1 ? "" : "s", mp ? mp->fails : 0, others, example);
                c->st.diffs++;
                if (c->report) c->report(c->arg, &df);
            }
        }
        for (uint32_t i = 0; i < n; i++) {
            if (pc[i] == &adj[0][i]) free(adj[0][i].ids);
            if (pp[i] == &adj[1][i]) free(adj[1][i].ids);
        }
    }
    if (c->st.diffs == before_diffs)
        c->st.identical++;
    else
        c->st.last_diff_round = cur->round;
}

/* Frees rounds that can no longer matter: older than the round before the
 * latest decided one. */
static void prune(tutti__checker *c)
{
    round_slot *keep = before(c, c->last_decided);
    round_slot *keep2 = keep ? before(c, keep->round) : NULL;
    for (int i = 0; i < ROUNDS; i++) {
        round_slot *s = &c->r[i];
        if (s->used && s->decided && s->round < c->last_decided && s != keep && s != keep2)
            slot_clear(s);
    }
}

static round_slot *open_round(tutti__checker *c, int64_t round)
{
    round_slot *s = find(c, round);
    if (s) return s;
    for (int i = 0; i < ROUNDS; i++)
        if (!c->r[i].used) {
            s = &c->r[i];
            break;
        }
    if (!s) { /* no room: the oldest round goes (decided, or overdue) */
        for (int i = 0; i < ROUNDS; i++)
            if (!s || c->r[i].round < s->round) s = &c->r[i];
        if (!s->decided) decide(c, s);
        slot_clear(s);
    }
    s->used = true;
    s->round = round;
    return s;
}

void tutti__checker_time(tutti__checker *c, tutti_time t)
{
    for (;;) {
        round_slot *due = NULL;
        for (int i = 0; i < ROUNDS; i++) {
            round_slot *s = &c->r[i];
            if (s->used && !s->decided &&
                t > (s->round + 1) * (int64_t)TUTTI_CHECK_PERIOD + 1 &&
                (!due || s->round < due->round))
                due = s;
        }
        if (!due) break;
        decide(c, due);
    }
    prune(c);
}

void tutti__checker_digest(tutti__checker *c, tutti__digest *d)
{
    round_slot *s;
    bool late = d->round <= c->last_decided;
    if (late) {
        /* not compared; kept, so that the next round waits for its sender */
        c->st.late++;
        s = find(c, d->round);
        if (!s) {
            tutti__digest_clear(d);
            return;
        }
    } else {
        s = open_round(c, d->round);
    }
    if (of(s, d->origin) || s->n == MAX_DIGESTS) {
        tutti__digest_clear(d);
        return;
    }
    tutti__digest *own = malloc(sizeof *own);
    if (!own) {
        tutti__digest_clear(d);
        return;
    }
    *own = *d;
    d->nparts = 0; /* the id lists are the checker's now */
    s->d[s->n++] = own;
    if (late) return;
    /* complete: every server of the round before has sent this one */
    round_slot *prev = before(c, d->round);
    if (!prev) return;
    for (uint32_t i = 0; i < prev->n; i++)
        if (!of(s, prev->d[i]->origin)) return;
    /* rounds before this one still open are overdue by now */
    for (;;) {
        round_slot *old = NULL;
        for (int i = 0; i < ROUNDS; i++)
            if (c->r[i].used && !c->r[i].decided && c->r[i].round < d->round &&
                (!old || c->r[i].round < old->round))
                old = &c->r[i];
        if (!old) break;
        decide(c, old);
    }
    decide(c, s);
    prune(c);
}

void tutti__checker_stats_get(const tutti__checker *c, tutti__checker_stats *st)
{
    *st = c->st;
}
