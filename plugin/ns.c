/*
 * Namespaces: the arithmetic, the control-name rules, the def-name sets, the
 * SCgf renamer, and the command-by-command rewriter and reply translator.
 * The rules are in ns.h; the argument layouts follow scsynth 3.13
 * (SC_MiscCmds.cpp, SC_SequencedCommand.cpp, SC_Graph.cpp, SC_GraphDef.cpp).
 */
#include "ns.h"

#include "osc.h"
#include "tutti/tutti.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message handler's verdict besides 0 and the negative TUTTI_E* codes: the
 * message is removed and counted as refused. */
#define REFUSE 1

/* 2 * TUTTI_NS_MAX_DEFS, a power of two: the open-addressing index of a def
 * set never fills up, so a probe always ends. */
#define DEF_INDEX 8192
#define DEF_NAME_MAX 255    /* scsynth: kSCNodeDefNameByteLen - 1 */
#define VARIANT_NAME_MAX 31 /* scsynth: kSCNameByteLen - 1 */

#define NODE_MASK (TUTTI_NS_NODE_SPAN - 1)

/* ---------------------------------------------------------------- bytes */

#define pad4 tutti__osc_pad4
#define rd32 tutti__osc_rd32
#define wr32 tutti__osc_wr32

static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t u32_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* sc_msg_iter::geti of an f argument: truncation; x86's INT32_MIN where C++
 * leaves the conversion undefined (as osc.c computes it). */
static int32_t trunc_i32(float f)
{
    return (isfinite(f) && f > -2147483649.0f && f < 2147483648.0f) ? (int32_t)f
                                                                    : INT32_MIN;
}

/* ------------------------------------------------------------ arithmetic */

int32_t tutti__ns_part_group(uint32_t slot)
{
    return slot < TUTTI_NS_SLOTS ? (int32_t)(slot << TUTTI_NS_NODE_BITS) : -1;
}

int32_t tutti__ns_node(uint32_t slot, int32_t id)
{
    if (id < 0 || slot >= TUTTI_NS_SLOTS) return id;
    int32_t low = (int32_t)((uint32_t)id & NODE_MASK);
    if (slot) low = tutti__ns_node_swap(low);
    return (int32_t)(slot << TUTTI_NS_NODE_BITS | (uint32_t)low);
}

bool tutti__ns_node_inv(int32_t session_id, uint32_t *slot, int32_t *id)
{
    if (session_id < 0) return false;
    *slot = (uint32_t)session_id >> TUTTI_NS_NODE_BITS;
    *id = session_id & NODE_MASK;
    if (*slot) *id = tutti__ns_node_swap(*id);
    return true;
}

/* A number v >= base of a space of `span` per slot starting at `base`. */
static int span_map(int32_t base, int32_t span, uint32_t slot, int32_t v, int32_t *out)
{
    *out = v;
    if (v < 0 || v < base) return TUTTI_NS_MAP_SHARED;
    if (slot >= TUTTI_NS_SLOTS || span <= 0 || v - base >= span)
        return TUTTI_NS_MAP_RANGE;
    int64_t m = (int64_t)base + (int64_t)slot * span + (v - base);
    if (m > INT32_MAX) return TUTTI_NS_MAP_RANGE;
    *out = (int32_t)m;
    return TUTTI_NS_MAP_OK;
}

static int span_inv(int32_t base, int32_t span, int32_t sv, uint32_t *slot, int32_t *v)
{
    *v = sv;
    *slot = 0;
    if (sv < 0 || sv < base) return TUTTI_NS_MAP_SHARED;
    int64_t rel = (int64_t)sv - base;
    if (span <= 0 || rel >= (int64_t)span * TUTTI_NS_SLOTS) return TUTTI_NS_MAP_RANGE;
    *slot = (uint32_t)(rel / span);
    *v = (int32_t)(base + rel % span);
    return TUTTI_NS_MAP_OK;
}

int tutti__ns_buf(const tutti__ns_config *cfg, uint32_t slot, int32_t b, int32_t *out)
{
    return span_map(0, cfg->buf_span, slot, b, out);
}

int tutti__ns_buf_inv(const tutti__ns_config *cfg, int32_t session_b, uint32_t *slot,
                      int32_t *b)
{
    return span_inv(0, cfg->buf_span, session_b, slot, b);
}

int tutti__ns_abus(const tutti__ns_config *cfg, uint32_t slot, int32_t b, int32_t *out)
{
    return span_map(cfg->hw_audio_buses, cfg->abus_span, slot, b, out);
}

int tutti__ns_abus_inv(const tutti__ns_config *cfg, int32_t session_b, uint32_t *slot,
                       int32_t *b)
{
    return span_inv(cfg->hw_audio_buses, cfg->abus_span, session_b, slot, b);
}

int tutti__ns_cbus(const tutti__ns_config *cfg, uint32_t slot, int32_t c, int32_t *out)
{
    return span_map(0, cfg->cbus_span, slot, c, out);
}

int tutti__ns_cbus_inv(const tutti__ns_config *cfg, int32_t session_c, uint32_t *slot,
                       int32_t *c)
{
    return span_inv(0, cfg->cbus_span, session_c, slot, c);
}

static int map_kind(const tutti__ns_config *cfg, int kind, uint32_t slot, int32_t v,
                    int32_t *out)
{
    switch (kind) {
    case TUTTI_NS_KIND_BUF:
        return tutti__ns_buf(cfg, slot, v, out);
    case TUTTI_NS_KIND_ABUS:
        return tutti__ns_abus(cfg, slot, v, out);
    case TUTTI_NS_KIND_CBUS:
        return tutti__ns_cbus(cfg, slot, v, out);
    default:
        *out = v;
        return TUTTI_NS_MAP_SHARED;
    }
}

static int inv_kind(const tutti__ns_config *cfg, int kind, int32_t v, uint32_t *slot,
                    int32_t *out)
{
    switch (kind) {
    case TUTTI_NS_KIND_BUF:
        return tutti__ns_buf_inv(cfg, v, slot, out);
    case TUTTI_NS_KIND_ABUS:
        return tutti__ns_abus_inv(cfg, v, slot, out);
    case TUTTI_NS_KIND_CBUS:
        return tutti__ns_cbus_inv(cfg, v, slot, out);
    default:
        *out = v;
        *slot = 0;
        return TUTTI_NS_MAP_SHARED;
    }
}

/* The span a local number of `kind` must stay below (relative to its base). */
static int32_t kind_span(const tutti__ns_config *cfg, int kind)
{
    return kind == TUTTI_NS_KIND_BUF    ? cfg->buf_span
           : kind == TUTTI_NS_KIND_ABUS ? cfg->abus_span
                                        : cfg->cbus_span;
}

/* -------------------------------------------------------- configuration */

void tutti__ns_config_init(tutti__ns_config *cfg)
{
    cfg->buf_span = 1024;
    cfg->abus_span = 128;
    cfg->cbus_span = 1024;
    cfg->hw_audio_buses = 16;
}

static bool config_ok(const tutti__ns_config *cfg)
{
    return cfg->buf_span > 0 && cfg->abus_span > 0 && cfg->cbus_span > 0 &&
           cfg->hw_audio_buses >= 0 &&
           (int64_t)cfg->buf_span * TUTTI_NS_SLOTS <= INT32_MAX &&
           (int64_t)cfg->cbus_span * TUTTI_NS_SLOTS <= INT32_MAX &&
           cfg->hw_audio_buses + (int64_t)cfg->abus_span * TUTTI_NS_SLOTS <= INT32_MAX;
}

/* Appends one sentence to `why`. A sentence that does not fit is cut and
 * nothing more is written (*at becomes cap), rather than the next sentence
 * being squeezed into the last byte. */
static void say(char *why, size_t cap, size_t *at, const char *fmt, long long have,
                long long need)
{
    if (!why || *at >= cap) return;
    int n = snprintf(why + *at, cap - *at, fmt, have, need, need);
    if (n < 0 || (size_t)n >= cap - *at)
        *at = cap;
    else
        *at += (size_t)n;
}

int tutti__ns_check_server(const tutti__ns_config *cfg, int32_t num_buffers,
                           int32_t num_audio_buses, int32_t num_control_buses, char *why,
                           size_t cap)
{
    size_t at = 0;
    if (why && cap) why[0] = 0;
    if (!config_ok(cfg)) {
        if (why && cap) snprintf(why, cap, "The namespace configuration is not valid.");
        return TUTTI_EINVAL;
    }
    int64_t need_b = (int64_t)cfg->buf_span * TUTTI_NS_SLOTS;
    int64_t need_a = cfg->hw_audio_buses + (int64_t)cfg->abus_span * TUTTI_NS_SLOTS;
    int64_t need_c = (int64_t)cfg->cbus_span * TUTTI_NS_SLOTS;
    bool ok = true;
    if (num_buffers < need_b) {
        say(why, cap, &at,
            "The server has %lld buffers; a session needs %lld: start scsynth with -b "
            "%lld or more. ",
            num_buffers, need_b);
        ok = false;
    }
    if (num_audio_buses < need_a) {
        say(why, cap, &at,
            "The server has %lld audio bus channels; a session needs %lld (hardware "
            "inputs and outputs, then 32 slots of private buses): start scsynth with -a "
            "%lld or more. ",
            num_audio_buses, need_a);
        ok = false;
    }
    if (num_control_buses < need_c) {
        say(why, cap, &at,
            "The server has %lld control bus channels; a session needs %lld: start "
            "scsynth with -c %lld or more. ",
            num_control_buses, need_c);
        ok = false;
    }
    if (why && at && at < cap && why[at - 1] == ' ') why[at - 1] = 0;
    return ok ? 0 : TUTTI_EINVAL;
}

/* ---------------------------------------------------------------- rules */

typedef struct ns_rule {
    char name[TUTTI_NS_RULE_NAME_MAX + 1];
    uint8_t len;
    bool prefix;
    uint8_t kind;
} ns_rule;

typedef struct ns_rules {
    ns_rule r[TUTTI_NS_MAX_RULES];
    uint32_t n;
} ns_rules;

/* ------------------------------------------------------------- def sets */

typedef struct ns_def {
    char *name; /* the name the part used, NUL-terminated */
    uint8_t len;
    bool variant; /* as first loaded; never changes (a failed rewrite must
                   * be undone by truncation alone) */
} ns_def;

typedef struct ns_defs {
    ns_def *d; /* in the order the part loaded them */
    uint32_t n, cap;
    uint16_t *index; /* DEF_INDEX slots: 0 empty, else position + 1 */
} ns_defs;

struct tutti__ns {
    tutti__ns_config cfg;
    ns_rules rules;
    ns_defs defs[TUTTI_NS_SLOTS];
    tutti__ns_stats stats;
};

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int32_t defs_find(const ns_defs *d, const char *s, size_t n)
{
    if (!d->index || n > DEF_NAME_MAX) return -1;
    for (uint32_t h = fnv1a(s, n) & (DEF_INDEX - 1);; h = (h + 1) & (DEF_INDEX - 1)) {
        uint16_t e = d->index[h];
        if (!e) return -1;
        const ns_def *x = &d->d[e - 1];
        if (x->len == n && !memcmp(x->name, s, n)) return e - 1;
    }
}

static void defs_index_put(ns_defs *d, uint32_t i)
{
    uint32_t h = fnv1a(d->d[i].name, d->d[i].len) & (DEF_INDEX - 1);
    while (d->index[h])
        h = (h + 1) & (DEF_INDEX - 1);
    d->index[h] = (uint16_t)(i + 1);
}

/* Adds a name known not to be there. 0 or TUTTI_ENOMEM. */
static int defs_add(ns_defs *d, const char *s, size_t n, bool variant)
{
    if (!d->index) {
        d->index = calloc(DEF_INDEX, sizeof *d->index);
        if (!d->index) return TUTTI_ENOMEM;
    }
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 16;
        if (cap > TUTTI_NS_MAX_DEFS) cap = TUTTI_NS_MAX_DEFS;
        ns_def *x = realloc(d->d, cap * sizeof *x);
        if (!x) return TUTTI_ENOMEM;
        d->d = x;
        d->cap = cap;
    }
    char *name = malloc(n + 1);
    if (!name) return TUTTI_ENOMEM;
    memcpy(name, s, n);
    name[n] = 0;
    d->d[d->n] = (ns_def){name, (uint8_t)n, variant};
    defs_index_put(d, d->n);
    d->n++;
    return 0;
}

/* Undoes the names added since the set held `n`. */
static void defs_truncate(ns_defs *d, uint32_t n)
{
    if (d->n <= n) return;
    for (uint32_t i = n; i < d->n; i++)
        free(d->d[i].name);
    d->n = n;
    memset(d->index, 0, DEF_INDEX * sizeof *d->index);
    for (uint32_t i = 0; i < n; i++)
        defs_index_put(d, i);
}

static void defs_free(ns_defs *d)
{
    for (uint32_t i = 0; i < d->n; i++)
        free(d->d[i].name);
    free(d->d);
    free(d->index);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------- lifetime */

static const struct {
    const char *name;
    int kind;
} default_rules[] = {
    {"buf*", TUTTI_NS_KIND_BUF},     {"bufnum", TUTTI_NS_KIND_BUF},
    {"buffer", TUTTI_NS_KIND_BUF},   {"sndbuf", TUTTI_NS_KIND_BUF},
    {"out", TUTTI_NS_KIND_ABUS},     {"in", TUTTI_NS_KIND_ABUS},
    {"out_bus", TUTTI_NS_KIND_ABUS}, {"in_bus", TUTTI_NS_KIND_ABUS},
    {"outbus", TUTTI_NS_KIND_ABUS},  {"inbus", TUTTI_NS_KIND_ABUS},
    {"bus", TUTTI_NS_KIND_ABUS},     {"i_out", TUTTI_NS_KIND_ABUS},
    {"cbus", TUTTI_NS_KIND_CBUS},
    {"ctl_bus", TUTTI_NS_KIND_CBUS}, {"kbus", TUTTI_NS_KIND_CBUS},
};

static int rules_set(ns_rules *t, const char *name, int kind);

int tutti__ns_create(tutti__ns **out, const tutti__ns_config *cfg)
{
    if (!cfg || !out || !config_ok(cfg)) return TUTTI_EINVAL;
    tutti__ns *ns = calloc(1, sizeof *ns);
    if (!ns) return TUTTI_ENOMEM;
    ns->cfg = *cfg;
    for (size_t i = 0; i < sizeof default_rules / sizeof default_rules[0]; i++)
        rules_set(&ns->rules, default_rules[i].name, default_rules[i].kind);
    *out = ns;
    return 0;
}

void tutti__ns_destroy(tutti__ns *ns)
{
    if (!ns) return;
    for (uint32_t s = 0; s < TUTTI_NS_SLOTS; s++)
        defs_free(&ns->defs[s]);
    free(ns);
}

const tutti__ns_config *tutti__ns_get_config(const tutti__ns *ns)
{
    return &ns->cfg;
}

void tutti__ns_get_stats(const tutti__ns *ns, tutti__ns_stats *st)
{
    *st = ns->stats;
}

void tutti__ns_forget(tutti__ns *ns, uint32_t slot)
{
    if (slot < TUTTI_NS_SLOTS) defs_free(&ns->defs[slot]);
}

uint32_t tutti__ns_def_count(const tutti__ns *ns, uint32_t slot)
{
    return slot < TUTTI_NS_SLOTS ? ns->defs[slot].n : 0;
}

bool tutti__ns_def_known(const tutti__ns *ns, uint32_t slot, const char *name)
{
    return slot < TUTTI_NS_SLOTS && name &&
           defs_find(&ns->defs[slot], name, strlen(name)) >= 0;
}

/* ---------------------------------------------------------- rule table */

static bool rule_char_ok(char ch)
{
    return ch != ',' && ch != ':' && ch != '*' && ch != ' ' && ch != '\t' && ch != '\n' &&
           ch != '\r' && ch != '\f' && ch != '\v';
}

/* Splits "name" or "name*" into its base and prefix flag. False when the
 * name is not a valid rule name ("*" alone is valid: everything). */
static bool rule_name(const char *s, size_t n, char *base, uint8_t *len, bool *prefix)
{
    *prefix = n > 0 && s[n - 1] == '*';
    if (*prefix) n--;
    if (n > TUTTI_NS_RULE_NAME_MAX || (n == 0 && !*prefix)) return false;
    for (size_t i = 0; i < n; i++)
        if (!rule_char_ok(s[i])) return false;
    memcpy(base, s, n);
    base[n] = 0;
    *len = (uint8_t)n;
    return true;
}

static int rules_set_n(ns_rules *t, const char *s, size_t n, int kind)
{
    if (kind < TUTTI_NS_KIND_NONE || kind > TUTTI_NS_KIND_CBUS) return TUTTI_EINVAL;
    ns_rule r;
    if (!rule_name(s, n, r.name, &r.len, &r.prefix)) return TUTTI_EINVAL;
    r.kind = (uint8_t)kind;
    if (r.prefix && r.len == 0) { /* "*" */
        if (kind != TUTTI_NS_KIND_NONE) return TUTTI_EINVAL;
        t->n = 0;
        return 0;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->r[i].prefix != r.prefix || strcmp(t->r[i].name, r.name)) continue;
        if (kind == TUTTI_NS_KIND_NONE) {
            memmove(&t->r[i], &t->r[i + 1], (t->n - i - 1) * sizeof r);
            t->n--;
        } else {
            t->r[i].kind = r.kind;
        }
        return 0;
    }
    if (kind == TUTTI_NS_KIND_NONE) return 0;
    if (t->n == TUTTI_NS_MAX_RULES) return TUTTI_EFULL;
    t->r[t->n++] = r;
    return 0;
}

static int rules_set(ns_rules *t, const char *name, int kind)
{
    return rules_set_n(t, name, strlen(name), kind);
}

static int rules_kind(const ns_rules *t, const char *name)
{
    size_t n = strlen(name);
    int best = TUTTI_NS_KIND_NONE, best_len = -1;
    for (uint32_t i = 0; i < t->n; i++) {
        const ns_rule *r = &t->r[i];
        if (!r->prefix) {
            if (r->len == n && !memcmp(r->name, name, n)) return r->kind;
        } else if (r->len <= n && (int)r->len > best_len &&
                   !memcmp(r->name, name, r->len)) {
            best = r->kind;
            best_len = r->len;
        }
    }
    return best;
}

int tutti__ns_rule(tutti__ns *ns, const char *control_name, int kind)
{
    if (!ns || !control_name) return TUTTI_EINVAL;
    return rules_set(&ns->rules, control_name, kind);
}

int tutti__ns_rule_kind(const tutti__ns *ns, const char *control_name)
{
    return control_name ? rules_kind(&ns->rules, control_name) : TUTTI_NS_KIND_NONE;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int kind_word(const char *s, size_t n)
{
    static const struct {
        const char *w;
        int kind;
    } words[] = {
        {"buffer", TUTTI_NS_KIND_BUF},   {"buf", TUTTI_NS_KIND_BUF},
        {"audio", TUTTI_NS_KIND_ABUS},   {"abus", TUTTI_NS_KIND_ABUS},
        {"control", TUTTI_NS_KIND_CBUS}, {"cbus", TUTTI_NS_KIND_CBUS},
        {"kbus", TUTTI_NS_KIND_CBUS},    {"none", TUTTI_NS_KIND_NONE},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].w) == n && !memcmp(words[i].w, s, n)) return words[i].kind;
    return -1;
}

int tutti__ns_rules_parse(tutti__ns *ns, const char *spec)
{
    if (!ns || !spec) return TUTTI_EINVAL;
    ns_rules t = ns->rules; /* applied to a copy: all or nothing */
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && is_space(*a))
            a++;
        while (b > a && is_space(b[-1]))
            b--;
        if (a < b) {
            const char *colon = memchr(a, ':', (size_t)(b - a));
            if (!colon) return TUTTI_EINVAL;
            const char *ne = colon, *ks = colon + 1;
            while (ne > a && is_space(ne[-1]))
                ne--;
            while (ks < b && is_space(*ks))
                ks++;
            int kind = kind_word(ks, (size_t)(b - ks));
            if (kind < 0) return TUTTI_EINVAL;
            int r = rules_set_n(&t, a, (size_t)(ne - a), kind);
            if (r) return r;
        }
        p = *end ? end + 1 : end;
    }
    ns->rules = t;
    return 0;
}

/* ------------------------------------------------------------ commands */

/* scsynth's commands (SC_OSC_Commands.h; 65 and 66 from later versions) and
 * where each belongs in a session. The reasons are in docs/namespaces.md. */
enum {
    C_NONE = 0,
    C_NOTIFY = 1,
    C_STATUS = 2,
    C_QUIT = 3,
    C_CMD = 4,
    C_D_RECV = 5,
    C_D_LOAD = 6,
    C_D_LOADDIR = 7,
    C_D_FREEALL = 8,
    C_S_NEW = 9,
    C_N_TRACE = 10,
    C_N_FREE = 11,
    C_N_RUN = 12,
    C_N_CMD = 13,
    C_N_MAP = 14,
    C_N_SET = 15,
    C_N_SETN = 16,
    C_N_FILL = 17,
    C_N_BEFORE = 18,
    C_N_AFTER = 19,
    C_U_CMD = 20,
    C_G_NEW = 21,
    C_G_HEAD = 22,
    C_G_TAIL = 23,
    C_G_FREEALL = 24,
    C_C_SET = 25,
    C_C_SETN = 26,
    C_C_FILL = 27,
    C_B_ALLOC = 28,
    C_B_ALLOCREAD = 29,
    C_B_READ = 30,
    C_B_WRITE = 31,
    C_B_FREE = 32,
    C_B_CLOSE = 33,
    C_B_ZERO = 34,
    C_B_SET = 35,
    C_B_SETN = 36,
    C_B_FILL = 37,
    C_B_GEN = 38,
    C_DUMPOSC = 39,
    C_C_GET = 40,
    C_C_GETN = 41,
    C_B_GET = 42,
    C_B_GETN = 43,
    C_S_GET = 44,
    C_S_GETN = 45,
    C_N_QUERY = 46,
    C_B_QUERY = 47,
    C_N_MAPN = 48,
    C_S_NOID = 49,
    C_G_DEEPFREE = 50,
    C_CLEARSCHED = 51,
    C_SYNC = 52,
    C_D_FREE = 53,
    C_B_ALLOCREADCHANNEL = 54,
    C_B_READCHANNEL = 55,
    C_G_DUMPTREE = 56,
    C_G_QUERYTREE = 57,
    C_ERROR = 58,
    C_S_NEWARGS = 59,
    C_N_MAPA = 60,
    C_N_MAPAN = 61,
    C_N_ORDER = 62,
    C_P_NEW = 63,
    C_VERSION = 64,
    C_RTMEMORYSTATUS = 65,
    C_B_SETSAMPLERATE = 66,
    C_COUNT = 67
};

static const struct {
    const char *name;
    uint8_t cls;
} cmds[C_COUNT] = {
    [C_NONE] = {"/none", TUTTI_NS_DROP},
    [C_NOTIFY] = {"/notify", TUTTI_NS_LOCAL},
    [C_STATUS] = {"/status", TUTTI_NS_LOCAL},
    [C_QUIT] = {"/quit", TUTTI_NS_LOCAL},
    [C_CMD] = {"/cmd", TUTTI_NS_LOCAL},
    [C_D_RECV] = {"/d_recv", TUTTI_NS_SESSION},
    [C_D_LOAD] = {"/d_load", TUTTI_NS_LOCAL_FILE},
    [C_D_LOADDIR] = {"/d_loadDir", TUTTI_NS_LOCAL_FILE},
    [C_D_FREEALL] = {"/d_freeAll", TUTTI_NS_SESSION},
    [C_S_NEW] = {"/s_new", TUTTI_NS_SESSION},
    [C_N_TRACE] = {"/n_trace", TUTTI_NS_SESSION},
    [C_N_FREE] = {"/n_free", TUTTI_NS_SESSION},
    [C_N_RUN] = {"/n_run", TUTTI_NS_SESSION},
    [C_N_CMD] = {NULL, TUTTI_NS_LOCAL}, /* not implemented by scsynth */
    [C_N_MAP] = {"/n_map", TUTTI_NS_SESSION},
    [C_N_SET] = {"/n_set", TUTTI_NS_SESSION},
    [C_N_SETN] = {"/n_setn", TUTTI_NS_SESSION},
    [C_N_FILL] = {"/n_fill", TUTTI_NS_SESSION},
    [C_N_BEFORE] = {"/n_before", TUTTI_NS_SESSION},
    [C_N_AFTER] = {"/n_after", TUTTI_NS_SESSION},
    [C_U_CMD] = {"/u_cmd", TUTTI_NS_SESSION},
    [C_G_NEW] = {"/g_new", TUTTI_NS_SESSION},
    [C_G_HEAD] = {"/g_head", TUTTI_NS_SESSION},
    [C_G_TAIL] = {"/g_tail", TUTTI_NS_SESSION},
    [C_G_FREEALL] = {"/g_freeAll", TUTTI_NS_SESSION},
    [C_C_SET] = {"/c_set", TUTTI_NS_SESSION},
    [C_C_SETN] = {"/c_setn", TUTTI_NS_SESSION},
    [C_C_FILL] = {"/c_fill", TUTTI_NS_SESSION},
    [C_B_ALLOC] = {"/b_alloc", TUTTI_NS_SESSION},
    [C_B_ALLOCREAD] = {"/b_allocRead", TUTTI_NS_LOCAL_FILE},
    [C_B_READ] = {"/b_read", TUTTI_NS_LOCAL_FILE},
    [C_B_WRITE] = {"/b_write", TUTTI_NS_LOCAL_FILE},
    [C_B_FREE] = {"/b_free", TUTTI_NS_SESSION},
    [C_B_CLOSE] = {"/b_close", TUTTI_NS_SESSION},
    [C_B_ZERO] = {"/b_zero", TUTTI_NS_SESSION},
    [C_B_SET] = {"/b_set", TUTTI_NS_SESSION},
    [C_B_SETN] = {"/b_setn", TUTTI_NS_SESSION},
    [C_B_FILL] = {"/b_fill", TUTTI_NS_SESSION},
    [C_B_GEN] = {"/b_gen", TUTTI_NS_SESSION},
    [C_DUMPOSC] = {"/dumpOSC", TUTTI_NS_LOCAL},
    [C_C_GET] = {"/c_get", TUTTI_NS_SESSION},
    [C_C_GETN] = {"/c_getn", TUTTI_NS_SESSION},
    [C_B_GET] = {"/b_get", TUTTI_NS_SESSION},
    [C_B_GETN] = {"/b_getn", TUTTI_NS_SESSION},
    [C_S_GET] = {"/s_get", TUTTI_NS_SESSION},
    [C_S_GETN] = {"/s_getn", TUTTI_NS_SESSION},
    [C_N_QUERY] = {"/n_query", TUTTI_NS_SESSION},
    [C_B_QUERY] = {"/b_query", TUTTI_NS_SESSION},
    [C_N_MAPN] = {"/n_mapn", TUTTI_NS_SESSION},
    [C_S_NOID] = {"/s_noid", TUTTI_NS_SESSION},
    [C_G_DEEPFREE] = {"/g_deepFree", TUTTI_NS_SESSION},
    [C_CLEARSCHED] = {"/clearSched", TUTTI_NS_DROP},
    [C_SYNC] = {"/sync", TUTTI_NS_SESSION},
    [C_D_FREE] = {"/d_free", TUTTI_NS_SESSION},
    [C_B_ALLOCREADCHANNEL] = {"/b_allocReadChannel", TUTTI_NS_LOCAL_FILE},
    [C_B_READCHANNEL] = {"/b_readChannel", TUTTI_NS_LOCAL_FILE},
    [C_G_DUMPTREE] = {"/g_dumpTree", TUTTI_NS_SESSION},
    [C_G_QUERYTREE] = {"/g_queryTree", TUTTI_NS_SESSION},
    [C_ERROR] = {"/error", TUTTI_NS_LOCAL}, /* SESSION for -1 and -2 */
    [C_S_NEWARGS] = {"/s_newargs", TUTTI_NS_SESSION},
    [C_N_MAPA] = {"/n_mapa", TUTTI_NS_SESSION},
    [C_N_MAPAN] = {"/n_mapan", TUTTI_NS_SESSION},
    [C_N_ORDER] = {"/n_order", TUTTI_NS_SESSION},
    [C_P_NEW] = {"/p_new", TUTTI_NS_SESSION},
    [C_VERSION] = {"/version", TUTTI_NS_LOCAL},
    [C_RTMEMORYSTATUS] = {"/rtMemoryStatus", TUTTI_NS_LOCAL},
    [C_B_SETSAMPLERATE] = {"/b_setSampleRate", TUTTI_NS_SESSION},
};

/* The command number of a message, or -1 for a command scsynth does not
 * know. */
static int cmd_of(const tutti__osc_msg *m)
{
    if (!m->addr)
        return m->cmd >= 0 && m->cmd < C_COUNT && cmds[m->cmd].name ? m->cmd : -1;
    for (int i = 0; i < C_COUNT; i++)
        if (cmds[i].name && !strcmp(cmds[i].name, m->addr)) return i;
    return -1;
}

/* ------------------------------------------------------ argument cursor */

/* Walks the arguments of a checked message by their type tags. */
typedef struct ar {
    const char *tags; /* NULL: no type tag string, hence no arguments */
    size_t i;
    const uint8_t *d, *end;
} ar;

static void ar_init(ar *a, const tutti__osc_msg *m)
{
    a->tags = m->tags;
    a->i = 0;
    a->d = m->args;
    a->end = m->end;
}

static char ar_tag(const ar *a)
{
    return a->tags ? a->tags[a->i] : 0;
}

static bool ar_done(const ar *a)
{
    return ar_tag(a) == 0;
}

static size_t ar_left(const ar *a)
{
    return (size_t)(a->end - a->d);
}

/* Bytes the current argument takes (the message is checked). */
static size_t ar_len(const ar *a)
{
    switch (ar_tag(a)) {
    case 'i':
    case 'f':
    case 'c':
    case 'r':
    case 'm':
        return 4;
    case 'h':
    case 't':
    case 'd':
        return 8;
    case 's':
    case 'S':
        return pad4(strnlen((const char *)a->d, ar_left(a)) + 1);
    case 'b':
        return 4 + pad4(rd32(a->d));
    default:
        return 0;
    }
}

static void ar_next(ar *a)
{
    if (ar_done(a)) return;
    a->d += ar_len(a);
    a->i++;
}

/* The current argument as sc_msg_iter::geti reads an i or f; false for any
 * other tag. */
static bool ar_int(const ar *a, int32_t *v)
{
    char t = ar_tag(a);
    if (t == 'i')
        *v = (int32_t)rd32(a->d);
    else if (t == 'f')
        *v = trunc_i32(f32_of(rd32(a->d)));
    else
        return false;
    return true;
}

/* --------------------------------------------------------- message writer */

/* Writes one message into caller memory: the address, a tag string reserved
 * for up to `max_tags` tags, then the arguments; mw_end() closes the tag
 * string and moves the arguments down when fewer tags were written. */
typedef struct mw {
    uint8_t *p;
    size_t cap, tags_at, room, ntags, max_tags, at;
    bool had_tags;
    int err;
} mw;

static void mw_init(mw *w, uint8_t *out, size_t cap, const uint8_t *addr, size_t addr_len,
                    size_t max_tags, bool had_tags)
{
    w->p = out;
    w->cap = cap;
    w->ntags = 0;
    w->max_tags = max_tags;
    w->had_tags = had_tags;
    w->err = 0;
    w->tags_at = addr_len;
    /* a message without a tag string has no arguments and gets none */
    w->room = had_tags ? pad4(max_tags + 2) : 0;
    if (!had_tags) w->max_tags = 0;
    w->at = addr_len + w->room;
    if (addr_len > cap || w->room > cap - addr_len) {
        w->err = TUTTI_EFULL;
        return;
    }
    memcpy(out, addr, addr_len);
}

static bool mw_need(mw *w, size_t n)
{
    if (w->err) return false;
    if (n > w->cap - w->at) {
        w->err = TUTTI_EFULL;
        return false;
    }
    return true;
}

static void mw_tag(mw *w, char t)
{
    if (w->err) return;
    if (w->ntags >= w->max_tags) {
        w->err = TUTTI_EPROTO; /* a handler wrote more than it reserved */
        return;
    }
    w->p[w->tags_at + 1 + w->ntags++] = (uint8_t)t;
}

static void mw_raw(mw *w, const void *d, size_t n)
{
    if (!mw_need(w, n)) return;
    memcpy(w->p + w->at, d, n);
    w->at += n;
}

static void mw_i32(mw *w, int32_t v)
{
    mw_tag(w, 'i');
    if (!mw_need(w, 4)) return;
    wr32(w->p + w->at, (uint32_t)v);
    w->at += 4;
}

static void mw_f32(mw *w, float f)
{
    mw_tag(w, 'f');
    if (!mw_need(w, 4)) return;
    wr32(w->p + w->at, u32_of(f));
    w->at += 4;
}

static void mw_str(mw *w, const char *s, size_t n)
{
    mw_tag(w, 's');
    size_t padded = pad4(n + 1);
    if (!mw_need(w, padded)) return;
    memcpy(w->p + w->at, s, n);
    memset(w->p + w->at + n, 0, padded - n);
    w->at += padded;
}

/* Copies the current argument and moves on. */
static void mw_copy(mw *w, ar *a)
{
    mw_tag(w, ar_tag(a));
    mw_raw(w, a->d, ar_len(a));
    ar_next(a);
}

/* Starts a blob whose content the caller writes at the returned pointer (at
 * most *avail bytes); mw_blob_end() gives its length. */
static uint8_t *mw_blob_begin(mw *w, size_t *avail)
{
    mw_tag(w, 'b');
    if (!mw_need(w, 4)) return NULL;
    *avail = w->cap - w->at - 4;
    return w->p + w->at + 4;
}

static void mw_blob_end(mw *w, size_t n)
{
    size_t padded = pad4(n);
    if (!mw_need(w, 4 + padded)) return;
    wr32(w->p + w->at, (uint32_t)n);
    memset(w->p + w->at + 4 + n, 0, padded - n);
    w->at += 4 + padded;
}

/* Closes the message; its length, or 0 with w->err set. */
static size_t mw_end(mw *w)
{
    if (w->err) return 0;
    if (!w->had_tags && w->ntags == 0) return w->tags_at; /* no arguments either */
    size_t tl = pad4(w->ntags + 2);
    w->p[w->tags_at] = ',';
    memset(w->p + w->tags_at + 1 + w->ntags, 0, tl - 1 - w->ntags);
    size_t data = w->at - (w->tags_at + w->room);
    memmove(w->p + w->tags_at + tl, w->p + w->tags_at + w->room, data);
    return w->tags_at + tl + data;
}

/* ---------------------------------------------------------- the rewriter */

typedef struct rw {
    tutti__ns *ns;
    uint32_t slot;
    unsigned keep;
    int32_t pg;   /* the part's root group */
    bool created; /* a node was created earlier in this execution unit */
    int nest;     /* completion messages inside completion messages */
    uint32_t flags;
    tutti__ns_stats st; /* added to the ns's counters on success */
} rw;

static int rw_packet(rw *c, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                     size_t *n);

static void count_range(rw *c)
{
    c->st.out_of_range++;
    c->flags |= TUTTI_NS_F_OUT_OF_RANGE;
}

static void count_refused(rw *c)
{
    c->st.refused++;
    c->flags |= TUTTI_NS_F_REFUSED;
}

/* An argument that is read with geti and carries nothing to rewrite: any tag
 * that keeps sc_msg_iter's tag and data positions together. */
static int cp_plain(ar *a, mw *w)
{
    char t = ar_tag(a);
    if (t != 'i' && t != 'f' && t != 's' && t != 'b') return REFUSE;
    mw_copy(w, a);
    return 0;
}

static int cp_rest(ar *a, mw *w)
{
    while (!ar_done(a)) {
        int r = cp_plain(a, w);
        if (r) return r;
    }
    return 0;
}

/* An argument read with gets (a path, a format name): only s keeps scsynth's
 * cursor in step. Absent is fine. */
static int cp_str(ar *a, mw *w)
{
    if (ar_done(a)) return 0;
    if (ar_tag(a) != 's') return REFUSE;
    mw_copy(w, a);
    return 0;
}

/* A number of `kind` read with geti: i or f, written as i. *out_st is the
 * mapping's result. */
static int rw_num(rw *c, ar *a, mw *w, int kind, int32_t *local, int *out_st)
{
    int32_t v, m;
    if (!ar_int(a, &v)) return REFUSE;
    ar_next(a);
    int st = map_kind(&c->ns->cfg, kind, c->slot, v, &m);
    if (st == TUTTI_NS_MAP_RANGE) count_range(c);
    mw_i32(w, m);
    if (local) *local = v;
    if (out_st) *out_st = st;
    return 0;
}

/* A range start..start+n-1 of `kind` that starts inside the span but runs
 * past it spills into the next slot's space: counted, not clipped. */
static void check_run(rw *c, int kind, int st, int32_t start, int32_t n)
{
    if (st != TUTTI_NS_MAP_OK || n <= 1) return;
    int32_t base = kind == TUTTI_NS_KIND_ABUS ? c->ns->cfg.hw_audio_buses : 0;
    if ((int64_t)start - base + n > kind_span(&c->ns->cfg, kind)) count_range(c);
}

/* A control value (i or f) of a control whose name has rule `kind`; the tag
 * is kept. */
static void rw_value(rw *c, ar *a, mw *w, int kind)
{
    char t = ar_tag(a);
    if (kind == TUTTI_NS_KIND_NONE) {
        mw_copy(w, a);
        return;
    }
    if (t == 'i') {
        int32_t v = (int32_t)rd32(a->d), m;
        ar_next(a);
        if (map_kind(&c->ns->cfg, kind, c->slot, v, &m) == TUTTI_NS_MAP_RANGE)
            count_range(c);
        mw_i32(w, m);
        return;
    }
    float f = f32_of(rd32(a->d));
    ar_next(a);
    int32_t m;
    if (!(f >= 0.0f)) { /* negative or NaN: not an id */
        mw_f32(w, f);
        return;
    }
    if (f != floorf(f) || f >= 2147483648.0f) {
        count_range(c);
        mw_f32(w, f);
        return;
    }
    int st = map_kind(&c->ns->cfg, kind, c->slot, (int32_t)f, &m);
    if (st == TUTTI_NS_MAP_OK && (float)m != (double)m) st = TUTTI_NS_MAP_RANGE;
    if (st == TUTTI_NS_MAP_RANGE) count_range(c);
    mw_f32(w, st == TUTTI_NS_MAP_OK ? (float)m : f);
}

/* sc_atoi as scsynth has it: "" is -1; digits until the first non-digit. */
static int32_t sc_atoi(const char *s)
{
    if (!*s) return -1;
    uint32_t v = 0;
    for (uint32_t d; (d = (uint32_t)(uint8_t)*s - '0') <= 9; s++)
        v = v * 10 + d;
    return (int32_t)v;
}

/* A string control value: "c<bus>" maps the control to a control bus,
 * "a<bus>" to an audio bus (any other string is ignored by scsynth). */
static void rw_bus_string(rw *c, ar *a, mw *w)
{
    const char *s = (const char *)a->d;
    int kind = s[0] == 'c' ? TUTTI_NS_KIND_CBUS : s[0] == 'a' ? TUTTI_NS_KIND_ABUS : 0;
    int32_t v = kind ? sc_atoi(s + 1) : -1, m;
    int st = v >= 0 ? map_kind(&c->ns->cfg, kind, c->slot, v, &m) : TUTTI_NS_MAP_SHARED;
    if (st == TUTTI_NS_MAP_RANGE) count_range(c);
    if (st != TUTTI_NS_MAP_OK) {
        mw_copy(w, a);
        return;
    }
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%c%d", s[0], (int)m);
    ar_next(a);
    mw_str(w, buf, (size_t)n);
}

static int key_kind(rw *c, const ar *a)
{
    return ar_tag(a) == 's' ? rules_kind(&c->ns->rules, (const char *)a->d)
                            : TUTTI_NS_KIND_NONE;
}

/* The control list of /s_new and /n_set, read as Graph_Ctor and meth_n_set
 * do: while 8 bytes remain, a name (s) or index (i, f), then a value (i, f),
 * a bus string (s) or an array [ ... ] of those. Unbalanced brackets, which
 * loop scsynth forever, are refused. */
static int rw_controls(rw *c, ar *a, mw *w)
{
    while (ar_left(a) >= 8) {
        char t = ar_tag(a);
        if (t != 's' && t != 'i' && t != 'f') return REFUSE;
        int kind = key_kind(c, a);
        mw_copy(w, a);
        t = ar_tag(a);
        if (t == 'i' || t == 'f') {
            rw_value(c, a, w, kind);
        } else if (t == 's') {
            rw_bus_string(c, a, w);
        } else if (t == '[') {
            int depth = 0;
            do {
                t = ar_tag(a);
                if (t == '[' || t == ']') {
                    depth += t == '[' ? 1 : -1;
                    mw_copy(w, a);
                } else if (t == 'i' || t == 'f') {
                    rw_value(c, a, w, kind);
                } else if (t == 's') {
                    rw_bus_string(c, a, w);
                } else {
                    return REFUSE;
                }
            } while (depth > 0);
        } else if (t != 0) {
            return REFUSE;
        }
    }
    return cp_rest(a, w);
}

/* /n_setn: (name|index, n, n values)*. */
static int rw_setn(rw *c, ar *a, mw *w)
{
    while (!ar_done(a)) {
        char t = ar_tag(a);
        if (t != 's' && t != 'i' && t != 'f') return REFUSE;
        int kind = key_kind(c, a);
        mw_copy(w, a);
        int32_t n = 0;
        if (ar_done(a)) break;
        if (!ar_int(a, &n)) return REFUSE;
        mw_copy(w, a);
        for (int32_t k = 0; k < n && !ar_done(a); k++) {
            t = ar_tag(a);
            if (t == 's')
                rw_bus_string(c, a, w);
            else if (t == 'i' || t == 'f')
                rw_value(c, a, w, kind);
            else
                return REFUSE;
        }
    }
    return 0;
}

/* /n_fill: (name|index, n, value)* while 12 bytes remain. */
static int rw_fill(rw *c, ar *a, mw *w)
{
    while (ar_left(a) >= 12) {
        char t = ar_tag(a);
        if (t != 's' && t != 'i' && t != 'f') return REFUSE;
        int kind = key_kind(c, a);
        mw_copy(w, a);
        int32_t n;
        if (!ar_int(a, &n)) return REFUSE;
        mw_copy(w, a);
        t = ar_tag(a);
        if (t == 's')
            rw_bus_string(c, a, w);
        else if (t == 'i' || t == 'f')
            rw_value(c, a, w, kind);
        else
            return REFUSE;
    }
    return cp_rest(a, w);
}

/* ---- nodes */

typedef struct nref {
    const uint8_t *path; /* Msg_GetNode's path string (h, t only), or NULL */
    size_t path_size;
    int32_t id;
    bool present;
} nref;

/* Whether the reference names the part's root group itself. */
static bool nref_is_pg(const rw *c, const nref *r)
{
    if (r->id != c->pg) return false;
    if (r->path)
        for (const uint8_t *s = r->path; *s; s++)
            if (*s == 'h' || *s == 't') return false;
    return true;
}

/* Reads a node reference as Msg_GetNode does: an int, or a path string and
 * an int. Refuses what could leave the part's space. */
static int rd_nref(rw *c, ar *a, nref *r)
{
    *r = (nref){NULL, 0, 0, false};
    if (ar_done(a)) return 0;
    if (ar_tag(a) == 's') {
        for (const uint8_t *s = a->d; *s; s++)
            if (*s == 'u' || *s == 'p' || *s == 'n') return REFUSE;
        r->path = a->d;
        r->path_size = ar_len(a);
        ar_next(a);
        if (ar_done(a)) return REFUSE; /* scsynth would start from node 0 */
    }
    int32_t v;
    if (!ar_int(a, &v)) return REFUSE;
    ar_next(a);
    if (v == -1) {
        if (!c->created) return REFUSE; /* the server's most recent node */
        r->id = -1;
    } else if (v < 0) {
        return REFUSE; /* a server-assigned node: whose? */
    } else {
        r->id = tutti__ns_node(c->slot, v);
    }
    r->present = true;
    return 0;
}

static void wr_nref(mw *w, const nref *r)
{
    if (r->path) {
        mw_tag(w, 's');
        mw_raw(w, r->path, r->path_size);
    }
    mw_i32(w, r->id);
}

/* The id of a node to create: -1 (the server picks) and other negative ids
 * (scsynth refuses them) stay; the part's root group is refused. Absent is
 * scsynth's default 0, the root group. */
static int rw_new_id(rw *c, ar *a, mw *w)
{
    int32_t v;
    if (ar_done(a) || !ar_int(a, &v)) return REFUSE;
    ar_next(a);
    v = tutti__ns_node(c->slot, v);
    if (v == c->pg) return REFUSE;
    mw_i32(w, v);
    return 0;
}

/* An add action and its target; missing ones are written out as scsynth
 * would default them (0, node 0), so they default to the part's group. */
static int rw_action_target(rw *c, ar *a, mw *w)
{
    int32_t action = 0;
    if (!ar_done(a)) {
        if (!ar_int(a, &action)) return REFUSE;
        ar_next(a);
    }
    mw_i32(w, action);
    nref t;
    int r = rd_nref(c, a, &t);
    if (r) return r;
    if (!t.present) t = (nref){NULL, 0, c->pg, true};
    if ((action == 2 || action == 3 || action == 4) && nref_is_pg(c, &t)) return REFUSE;
    wr_nref(w, &t);
    return 0;
}

/* A list of node references; with `drop_pg`, references to the part's root
 * group are removed. */
static int rw_nodes(rw *c, ar *a, mw *w, bool drop_pg)
{
    while (!ar_done(a)) {
        nref r;
        int e = rd_nref(c, a, &r);
        if (e) return e;
        if (drop_pg && nref_is_pg(c, &r)) {
            count_refused(c);
            continue;
        }
        wr_nref(w, &r);
    }
    return 0;
}

/* (node, plain int)*: /n_run, /g_dumpTree, /g_queryTree. */
static int rw_node_flag(rw *c, ar *a, mw *w)
{
    while (!ar_done(a)) {
        nref r;
        int e = rd_nref(c, a, &r);
        if (e) return e;
        wr_nref(w, &r);
        if (!ar_done(a) && (e = cp_plain(a, w))) return e;
    }
    return 0;
}

/* Pairs of nodes: /n_before and /n_after (node, target), /g_head and
 * /g_tail (group, node). A pair that would move the part's root group, put
 * a node beside it, or lacks its second node (scsynth would use node 0) is
 * removed. */
static int rw_pairs(rw *c, ar *a, mw *w, bool group_first)
{
    while (!ar_done(a)) {
        nref x, y;
        int e = rd_nref(c, a, &x);
        if (!e) e = rd_nref(c, a, &y);
        if (e) return e;
        bool bad = !y.present || (group_first ? nref_is_pg(c, &y)
                                              : nref_is_pg(c, &x) || nref_is_pg(c, &y));
        if (bad) {
            count_refused(c);
            continue;
        }
        wr_nref(w, &x);
        wr_nref(w, &y);
    }
    return 0;
}

/* /n_order: add action, target, then the nodes to move. */
static int rw_order(rw *c, ar *a, mw *w)
{
    if (ar_done(a)) return 0; /* scsynth finds no node to move */
    int32_t action = 0;
    if (!ar_done(a)) {
        if (!ar_int(a, &action)) return REFUSE;
        ar_next(a);
    }
    mw_i32(w, action);
    nref t;
    int e = rd_nref(c, a, &t);
    if (e) return e;
    if (!t.present) t = (nref){NULL, 0, c->pg, true};
    if ((action == 2 || action == 3) && nref_is_pg(c, &t)) return REFUSE;
    wr_nref(w, &t);
    return rw_nodes(c, a, w, true);
}

/* ---- synthdefs */

/* "<name>.p<slot>" */
static size_t def_rename(const rw *c, const char *name, size_t n, char *buf)
{
    memcpy(buf, name, n);
    return n + (size_t)sprintf(buf + n, ".p%u", (unsigned)c->slot);
}

static size_t suffix_len(const rw *c)
{
    return c->slot < 10 ? 3 : 4;
}

/* The name a part's /s_new or /d_free means, renamed when the part loaded it.
 * Returns the def's position in the set or -1. */
static int32_t def_lookup(const rw *c, const char *name)
{
    return defs_find(&c->ns->defs[c->slot], name, strlen(name));
}

/* Decides whether a def name from a part's SCgf file is renamed, adding it
 * to the part's set: 1 renamed, 0 kept (counted), or TUTTI_ENOMEM. */
static int def_register(rw *c, const char *name, size_t n, bool variant)
{
    size_t limit = variant ? VARIANT_NAME_MAX : DEF_NAME_MAX;
    ns_defs *d = &c->ns->defs[c->slot];
    if (n + suffix_len(c) > limit) goto keep;
    if (defs_find(d, name, n) >= 0) return 1;
    if (d->n >= TUTTI_NS_MAX_DEFS) goto keep;
    int r = defs_add(d, name, n, variant);
    return r ? r : 1;
keep:
    c->st.not_renamed++;
    c->flags |= TUTTI_NS_F_NOT_RENAMED;
    return 0;
}

/* A bounded reader over an SCgf file. */
typedef struct gr {
    const uint8_t *p;
    size_t n, at;
} gr;

static bool g_need(const gr *r, size_t k)
{
    return k <= r->n - r->at;
}

static bool g_skip(gr *r, int32_t count, size_t each)
{
    if (count < 0 || (size_t)count > (r->n - r->at) / each) return false;
    r->at += (size_t)count * each;
    return true;
}

/* A count: int16 (versions 0, 1) or int32 (version 2), read signed as
 * scsynth does, so a negative one (which scsynth turns into a huge unsigned
 * count) is refused. */
static bool g_count(gr *r, bool wide, int32_t *v)
{
    if (!g_need(r, wide ? 4 : 2)) return false;
    const uint8_t *p = r->p + r->at;
    if (wide) {
        *v = (int32_t)rd32(p);
        r->at += 4;
    } else {
        int32_t x = p[0] << 8 | p[1];
        *v = x >= 0x8000 ? x - 0x10000 : x;
        r->at += 2;
    }
    return *v >= 0;
}

static bool g_pstring(gr *r, const uint8_t **s, size_t *len)
{
    if (!g_need(r, 1)) return false;
    size_t n = r->p[r->at];
    if (!g_need(r, 1 + n)) return false;
    *s = r->p + r->at + 1;
    *len = n;
    r->at += 1 + n;
    return true;
}

/* A def's body after its name, up to (not including) its variants, as
 * GraphDef_Read (wide) and GraphDef_ReadVer1 read it. */
static bool g_body(gr *r, bool wide, int32_t *nparams)
{
    size_t w = wide ? 4 : 2;
    int32_t n;
    const uint8_t *s;
    size_t len;
    if (!g_count(r, wide, &n) || !g_skip(r, n, 4)) return false; /* constants */
    if (!g_count(r, wide, nparams) || !g_skip(r, *nparams, 4)) return false;
    if (!g_count(r, wide, &n)) return false; /* parameter names */
    for (int32_t i = 0; i < n; i++)
        if (!g_pstring(r, &s, &len) || !g_skip(r, 1, w)) return false;
    if (!g_count(r, wide, &n)) return false; /* unit generators */
    for (int32_t i = 0; i < n; i++) {
        int32_t nin, nout;
        if (!g_pstring(r, &s, &len) || !g_skip(r, 1, 1)) return false; /* class, rate */
        if (!g_count(r, wide, &nin) || !g_count(r, wide, &nout)) return false;
        if (!g_skip(r, 1, 2) || !g_skip(r, nin, 2 * w) || !g_skip(r, nout, 1))
            return false;
    }
    return true;
}

typedef struct ob {
    uint8_t *p;
    size_t cap, at;
    bool full;
} ob;

static void ob_put(ob *o, const void *d, size_t n)
{
    if (o->full || n > o->cap - o->at) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->at, d, n);
    o->at += n;
}

static int put_def_name(rw *c, ob *o, const uint8_t *raw, size_t rawlen, bool variant)
{
    size_t n = strnlen((const char *)raw, rawlen); /* scsynth stops at a NUL */
    if (variant && rawlen > VARIANT_NAME_MAX) {    /* scsynth refuses the file */
        uint8_t l = (uint8_t)rawlen;
        ob_put(o, &l, 1);
        ob_put(o, raw, rawlen);
        return 0;
    }
    int r = def_register(c, (const char *)raw, n, variant);
    if (r < 0) return r;
    if (r == 0) {
        uint8_t l = (uint8_t)rawlen;
        ob_put(o, &l, 1);
        ob_put(o, raw, rawlen);
        return 0;
    }
    char buf[DEF_NAME_MAX + 8];
    uint8_t l = (uint8_t)def_rename(c, (const char *)raw, n, buf);
    ob_put(o, &l, 1);
    ob_put(o, buf, l);
    return 0;
}

/* Checks an SCgf file (versions 0, 1, 2, as scsynth reads them) and, with
 * `apply`, writes it with every def and variant name renamed, registering
 * the names. Bytes after the last def are kept. REFUSE for a file scsynth
 * would read past the end of, or ignore. */
static int scgf_rename(rw *c, const uint8_t *p, size_t n, bool apply, uint8_t *out,
                       size_t cap, size_t *out_n)
{
    if (n < 10 || memcmp(p, "SCgf", 4)) return REFUSE;
    int32_t version = (int32_t)rd32(p + 4);
    if (version < 0 || version > 2) return REFUSE;
    gr r = {p, n, 8};
    int32_t ndefs;
    if (!g_count(&r, false, &ndefs)) return REFUSE;
    bool wide = version == 2;
    ob o = {out, cap, 0, false};
    if (apply) ob_put(&o, p, 10);
    for (int32_t d = 0; d < ndefs; d++) {
        const uint8_t *name;
        size_t len;
        if (!g_pstring(&r, &name, &len)) return REFUSE;
        int e;
        if (apply && (e = put_def_name(c, &o, name, len, false))) return e;
        size_t body = r.at;
        int32_t nparams;
        if (!g_body(&r, wide, &nparams)) return REFUSE;
        if (apply) ob_put(&o, p + body, r.at - body);
        if (version == 0) continue;
        int32_t nvar;
        if (!g_count(&r, false, &nvar)) return REFUSE;
        if (apply) ob_put(&o, p + r.at - 2, 2);
        for (int32_t v = 0; v < nvar; v++) {
            if (!g_pstring(&r, &name, &len)) return REFUSE;
            if (apply && (e = put_def_name(c, &o, name, len, true))) return e;
            size_t vals = r.at;
            if (!g_skip(&r, nparams, 4)) return REFUSE;
            if (apply) ob_put(&o, p + vals, r.at - vals);
        }
    }
    if (apply) {
        ob_put(&o, p + r.at, n - r.at);
        if (o.full) return TUTTI_EFULL;
        *out_n = o.at;
    }
    return 0;
}

/* The synthdef blob of /d_recv. */
static int rw_synthdefs(rw *c, ar *a, mw *w)
{
    if (ar_tag(a) != 'b') return REFUSE;
    size_t n = rd32(a->d);
    const uint8_t *blob = a->d + 4;
    int e = scgf_rename(c, blob, n, false, NULL, 0, NULL);
    if (e) return e;
    size_t avail, k = 0;
    uint8_t *dst = mw_blob_begin(w, &avail);
    if (!dst) return w->err;
    e = scgf_rename(c, blob, n, true, dst, avail, &k);
    if (e) return e;
    ar_next(a);
    mw_blob_end(w, k);
    return 0;
}

/* ---- completion messages */

/* The argument scsynth reads as a completion message (GET_COMPLETION_MSG):
 * a blob is a packet, rewritten as a separate execution unit; an i is
 * skipped; anything else is left for the next read. */
static int rw_completion(rw *c, ar *a, mw *w)
{
    if (ar_done(a)) return 0;
    if (ar_tag(a) != 'b') return cp_plain(a, w);
    size_t n = rd32(a->d);
    const uint8_t *blob = a->d + 4;
    if (n == 0) {
        mw_copy(w, a);
        return 0;
    }
    if (c->nest >= TUTTI_NS_MAX_NEST || tutti__osc_check(blob, n)) return REFUSE;
    size_t avail, k = 0;
    uint8_t *dst = mw_blob_begin(w, &avail);
    if (!dst) return w->err;
    bool created = c->created;
    c->created = false;
    c->nest++;
    int e = rw_packet(c, blob, n, dst, avail, &k);
    c->nest--;
    c->created = created;
    if (e) return e;
    ar_next(a);
    mw_blob_end(w, k);
    return 0;
}

/* ---- buffers */

static int rw_buf(rw *c, ar *a, mw *w)
{
    if (ar_done(a)) return REFUSE; /* scsynth would use buffer 0 */
    return rw_num(c, a, w, TUTTI_NS_KIND_BUF, NULL, NULL);
}

/* `k` plain arguments (read with geti), when present. */
static int cp_plain_n(ar *a, mw *w, int k)
{
    for (int i = 0; i < k && !ar_done(a); i++) {
        int e = cp_plain(a, w);
        if (e) return e;
    }
    return 0;
}

/* Channel numbers of /b_*Channel: read while the tag is i. */
static void cp_channels(ar *a, mw *w)
{
    while (ar_tag(a) == 'i')
        mw_copy(w, a);
}

/* The /b_ commands: the buffer, then their own layout up to the completion
 * message. */
static int rw_b(rw *c, int cmd, ar *a, mw *w)
{
    int e = rw_buf(c, a, w);
    if (e) return e;
    switch (cmd) {
    case C_B_ALLOC: /* frames channels completion samplerate */
        if ((e = cp_plain_n(a, w, 2))) return e;
        break;
    case C_B_FREE:
    case C_B_CLOSE:
    case C_B_ZERO:
        break;
    case C_B_ALLOCREAD: /* path start frames completion */
        if ((e = cp_str(a, w)) || (e = cp_plain_n(a, w, 2))) return e;
        break;
    case C_B_READ: /* path fstart frames bstart leaveOpen completion */
        if ((e = cp_str(a, w)) || (e = cp_plain_n(a, w, 4))) return e;
        break;
    case C_B_ALLOCREADCHANNEL: /* path start frames channels... completion */
        if ((e = cp_str(a, w)) || (e = cp_plain_n(a, w, 2))) return e;
        cp_channels(a, w);
        break;
    case C_B_READCHANNEL: /* path fstart frames bstart leaveOpen channels... */
        if ((e = cp_str(a, w)) || (e = cp_plain_n(a, w, 4))) return e;
        cp_channels(a, w);
        break;
    case C_B_WRITE: /* path header sample frames start leaveOpen completion */
        if ((e = cp_str(a, w)) || (e = cp_str(a, w)) || (e = cp_str(a, w))) return e;
        if ((e = cp_plain_n(a, w, 3))) return e;
        break;
    default: /* no completion message: /b_set /b_setn /b_fill /b_get ... */
        return cp_rest(a, w);
    }
    if ((e = rw_completion(c, a, w))) return e;
    return cp_rest(a, w);
}

/* /b_gen buffer generator args: "copy" names a source buffer (dstStart,
 * srcBuf, srcStart, n) and so does PreparePartConv (srcBuf, fftsize). */
static int rw_b_gen(rw *c, ar *a, mw *w)
{
    int e = rw_buf(c, a, w);
    if (e) return e;
    if (ar_tag(a) != 's') return REFUSE;
    const char *gen = (const char *)a->d;
    int src = !strcmp(gen, "copy") ? 1 : !strcmp(gen, "PreparePartConv") ? 0 : -1;
    mw_copy(w, a);
    if (src >= 0) {
        if ((e = cp_plain_n(a, w, src))) return e;
        if ((e = rw_buf(c, a, w))) return e;
    }
    return cp_rest(a, w);
}

/* ---- control buses */

/* /c_set (bus value)*, /c_fill (bus n value)*, /c_get bus*: groups of
 * `group` arguments while group * 4 bytes remain; /c_setn (bus n values)*
 * and /c_getn (bus n)* while anything remains. */
static int rw_c(rw *c, int cmd, ar *a, mw *w)
{
    size_t group = cmd == C_C_SET ? 2 : cmd == C_C_FILL ? 3 : cmd == C_C_GET ? 1 : 0;
    while (!ar_done(a) && (!group || ar_left(a) >= group * 4)) {
        int32_t start, n = 1;
        int st, e = rw_num(c, a, w, TUTTI_NS_KIND_CBUS, &start, &st);
        if (e) return e;
        if (cmd != C_C_SET && cmd != C_C_GET && !ar_done(a)) {
            if (!ar_int(a, &n)) return REFUSE;
            mw_copy(w, a);
            check_run(c, TUTTI_NS_KIND_CBUS, st, start, n);
        }
        int values = cmd == C_C_SET || cmd == C_C_FILL ? 1 : cmd == C_C_SETN ? n : 0;
        for (int32_t k = 0; k < values && !ar_done(a); k++) {
            char t = ar_tag(a);
            if (t != 'i' && t != 'f') return REFUSE;
            mw_copy(w, a);
        }
    }
    return cp_rest(a, w);
}

/* /n_map (name|index bus)*, /n_mapn (name|index bus n)*, and the audio
 * versions /n_mapa /n_mapan. A bus of -1 unmaps and stays. */
static int rw_map(rw *c, int cmd, ar *a, mw *w)
{
    bool audio = cmd == C_N_MAPA || cmd == C_N_MAPAN;
    bool runs = cmd == C_N_MAPN || cmd == C_N_MAPAN;
    int kind = audio ? TUTTI_NS_KIND_ABUS : TUTTI_NS_KIND_CBUS;
    nref r;
    int e = rd_nref(c, a, &r);
    if (e) return e;
    if (!r.present) return 0;
    wr_nref(w, &r);
    while (ar_left(a) >= (runs ? 12u : 8u)) {
        char t = ar_tag(a);
        if (t != 's' && t != 'i' && t != 'f') return REFUSE;
        mw_copy(w, a);
        int32_t bus, n;
        int st;
        if ((e = rw_num(c, a, w, kind, &bus, &st))) return e;
        if (runs) {
            if (!ar_int(a, &n)) return REFUSE;
            mw_copy(w, a);
            check_run(c, kind, st, bus, n);
        }
    }
    return cp_rest(a, w);
}

/* ---- the rest of /d_ */

static int rw_d_free(rw *c, ar *a, mw *w)
{
    while (!ar_done(a)) {
        if (ar_tag(a) != 's') return REFUSE;
        const char *name = (const char *)a->d;
        int32_t i = def_lookup(c, name);
        if (i < 0 || c->ns->defs[c->slot].d[i].variant) {
            /* not the part's, or a variant (freeing one alone frees memory
             * that belongs to its def in scsynth) */
            count_refused(c);
            ar_next(a);
            continue;
        }
        char buf[DEF_NAME_MAX + 8];
        size_t n = def_rename(c, name, strlen(name), buf);
        ar_next(a);
        mw_str(w, buf, n);
    }
    return 0;
}

/* /d_freeAll becomes /d_free of the part's own defs. */
static int rw_d_freeall(rw *c, const tutti__osc_msg *m, uint8_t *out, size_t cap,
                        size_t *n_out)
{
    const ns_defs *d = &c->ns->defs[c->slot];
    size_t count = 0;
    for (uint32_t i = 0; i < d->n; i++)
        count += !d->d[i].variant;
    *n_out = 0;
    if (!count) return 0;
    static const uint8_t int_addr[4] = {0, 0, 0, C_D_FREE};
    const uint8_t *addr = m->addr ? (const uint8_t *)"/d_free\0" : int_addr;
    mw w;
    mw_init(&w, out, cap, addr, m->addr ? 8 : 4, count, true);
    for (uint32_t i = 0; i < d->n; i++) {
        if (d->d[i].variant) continue;
        char buf[DEF_NAME_MAX + 8];
        mw_str(&w, buf, def_rename(c, d->d[i].name, d->d[i].len, buf));
    }
    *n_out = mw_end(&w);
    return w.err;
}

/* ---- one message */

static int class_of(int cmd, const tutti__osc_msg *m)
{
    if (cmd < 0) return TUTTI_NS_LOCAL;
    if (cmd == C_ERROR) {
        ar a;
        ar_init(&a, m);
        int32_t mode;
        if (ar_int(&a, &mode) && (mode == -1 || mode == -2)) return TUTTI_NS_SESSION;
    }
    return cmds[cmd].cls;
}

static bool creates_node(int cmd)
{
    return cmd == C_S_NEW || cmd == C_S_NEWARGS || cmd == C_G_NEW || cmd == C_P_NEW;
}

static int rw_body(rw *c, int cmd, ar *a, mw *w)
{
    int e;
    switch (cmd) {
    case C_S_NEW:
    case C_S_NEWARGS: {
        if (ar_tag(a) != 's') return REFUSE;
        const char *name = (const char *)a->d;
        size_t n = strlen(name);
        char buf[DEF_NAME_MAX + 8];
        if (def_lookup(c, name) >= 0) {
            n = def_rename(c, name, n, buf);
            name = buf;
        }
        mw_str(w, name, n);
        ar_next(a);
        if ((e = rw_new_id(c, a, w)) || (e = rw_action_target(c, a, w))) return e;
        /* /s_newargs: scsynth reads no controls */
        return cmd == C_S_NEW ? rw_controls(c, a, w) : cp_rest(a, w);
    }
    case C_G_NEW:
    case C_P_NEW:
        while (!ar_done(a))
            if ((e = rw_new_id(c, a, w)) || (e = rw_action_target(c, a, w))) return e;
        return 0;
    case C_N_FREE:
        return rw_nodes(c, a, w, true);
    case C_N_QUERY:
    case C_N_TRACE:
    case C_S_NOID:
    case C_G_FREEALL:
    case C_G_DEEPFREE:
        return rw_nodes(c, a, w, false);
    case C_N_RUN:
    case C_G_DUMPTREE:
    case C_G_QUERYTREE:
        return rw_node_flag(c, a, w);
    case C_N_BEFORE:
    case C_N_AFTER:
        return rw_pairs(c, a, w, false);
    case C_G_HEAD:
    case C_G_TAIL:
        return rw_pairs(c, a, w, true);
    case C_N_ORDER:
        return rw_order(c, a, w);
    case C_N_SET:
    case C_N_SETN:
    case C_N_FILL:
    case C_S_GET:
    case C_S_GETN:
    case C_U_CMD: {
        nref r;
        if ((e = rd_nref(c, a, &r))) return e;
        if (!r.present) return 0;
        wr_nref(w, &r);
        return cmd == C_N_SET    ? rw_controls(c, a, w)
               : cmd == C_N_SETN ? rw_setn(c, a, w)
               : cmd == C_N_FILL ? rw_fill(c, a, w)
                                 : cp_rest(a, w);
    }
    case C_N_MAP:
    case C_N_MAPN:
    case C_N_MAPA:
    case C_N_MAPAN:
        return rw_map(c, cmd, a, w);
    case C_C_SET:
    case C_C_SETN:
    case C_C_FILL:
    case C_C_GET:
    case C_C_GETN:
        return rw_c(c, cmd, a, w);
    case C_B_ALLOC:
    case C_B_ALLOCREAD:
    case C_B_ALLOCREADCHANNEL:
    case C_B_READ:
    case C_B_READCHANNEL:
    case C_B_WRITE:
    case C_B_FREE:
    case C_B_CLOSE:
    case C_B_ZERO:
    case C_B_SET:
    case C_B_SETN:
    case C_B_FILL:
    case C_B_GET:
    case C_B_GETN:
    case C_B_SETSAMPLERATE:
        return rw_b(c, cmd, a, w);
    case C_B_GEN:
        return rw_b_gen(c, a, w);
    case C_B_QUERY:
        while (!ar_done(a))
            if ((e = rw_num(c, a, w, TUTTI_NS_KIND_BUF, NULL, NULL))) return e;
        return 0;
    case C_D_RECV:
        if ((e = rw_synthdefs(c, a, w)) || (e = rw_completion(c, a, w))) return e;
        return cp_rest(a, w);
    case C_D_LOAD:
    case C_D_LOADDIR:
        if ((e = cp_str(a, w)) || (e = rw_completion(c, a, w))) return e;
        return cp_rest(a, w);
    case C_D_FREE:
        return rw_d_free(c, a, w);
    default: /* /sync, /error -1|-2: nothing to rewrite */
        return cp_rest(a, w);
    }
}

static void count_removed(rw *c, int cls)
{
    if (cls == TUTTI_NS_LOCAL) {
        c->st.local++;
        c->flags |= TUTTI_NS_F_LOCAL;
    } else if (cls == TUTTI_NS_LOCAL_FILE) {
        c->st.local_file++;
        c->flags |= TUTTI_NS_F_LOCAL_FILE;
    } else {
        c->st.dropped++;
        c->flags |= TUTTI_NS_F_DROPPED;
    }
}

static int rw_message(rw *c, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                      size_t *n)
{
    *n = 0;
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(in, len, &m)) return TUTTI_EPROTO;
    int cmd = cmd_of(&m);
    int cls = class_of(cmd, &m);
    if (!(c->keep & TUTTI_NS_KEEP(cls))) {
        count_removed(c, cls);
        return 0;
    }
    if (cls == TUTTI_NS_LOCAL || cls == TUTTI_NS_DROP) { /* kept as it is */
        if (len > cap) return TUTTI_EFULL;
        memcpy(out, in, len);
        *n = len;
        return 0;
    }
    if (cmd == C_D_FREEALL) return rw_d_freeall(c, &m, out, cap, n);

    size_t addr_len = (size_t)((m.tags ? (const uint8_t *)m.tags - 1 : m.args) - in);
    size_t ntags = m.tags ? strlen(m.tags) : 0;
    ar a;
    ar_init(&a, &m);
    /* Only an add action and target can be added (written out when
     * missing); other commands write at most as many arguments as they read,
     * so the reserved tag room is exact unless arguments are refused. */
    bool appends = creates_node(cmd) || cmd == C_N_ORDER;
    mw w;
    mw_init(&w, out, cap, in, addr_len, ntags + (appends ? 2 : 0), m.tags != NULL);
    int e = w.err ? w.err : rw_body(c, cmd, &a, &w);
    if (e == REFUSE) {
        count_refused(c);
        return 0;
    }
    if (e) return e;
    bool had_args = ntags > 0;
    size_t k = mw_end(&w);
    if (w.err) return w.err;
    if (had_args && w.ntags == 0) return 0; /* every argument was refused */
    if (creates_node(cmd)) c->created = true;
    *n = k;
    return 0;
}

static int rw_one(void *c, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                  size_t *n)
{
    return rw_message(c, in, len, out, cap, n);
}

static int rw_packet(rw *c, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                     size_t *n)
{
    return tutti__osc_map(in, len, rw_one, c, out, cap, n);
}

static void stats_add(tutti__ns_stats *to, const tutti__ns_stats *d)
{
    to->packets += d->packets;
    to->out_of_range += d->out_of_range;
    to->local += d->local;
    to->local_file += d->local_file;
    to->dropped += d->dropped;
    to->refused += d->refused;
    to->not_renamed += d->not_renamed;
}

ssize_t tutti__ns_rewrite_ex(tutti__ns *ns, uint32_t slot, const uint8_t *in, size_t len,
                             uint8_t *out, size_t cap, unsigned keep, uint32_t *flags)
{
    if (flags) *flags = 0;
    if (!ns || !in || !out || slot == 0 || slot >= TUTTI_NS_SLOTS) return TUTTI_EINVAL;
    if (tutti__osc_check(in, len)) return TUTTI_EPROTO;
    rw c = {
        .ns = ns,
        .slot = slot,
        .keep = keep | TUTTI_NS_KEEP(TUTTI_NS_SESSION),
        .pg = tutti__ns_part_group(slot),
    };
    uint32_t before = ns->defs[slot].n;
    size_t n = 0;
    int r = rw_packet(&c, in, len, out, cap, &n);
    /* Never hand the server bytes the proxy would not pass itself. */
    if (!r && n && tutti__osc_check(out, n)) r = TUTTI_EPROTO;
    if (r) {
        defs_truncate(&ns->defs[slot], before);
        return r;
    }
    c.st.packets = 1;
    stats_add(&ns->stats, &c.st);
    if (flags) *flags = c.flags;
    return (ssize_t)n;
}

ssize_t tutti__ns_rewrite(tutti__ns *ns, uint32_t slot, const uint8_t *in, size_t len,
                          uint8_t *out, size_t cap)
{
    return tutti__ns_rewrite_ex(ns, slot, in, len, out, cap, 0, NULL);
}

int tutti__ns_classify(const uint8_t *msg, size_t len)
{
    if (!msg || tutti__osc_is_bundle(msg, len)) return TUTTI_EPROTO;
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(msg, len, &m)) return TUTTI_EPROTO;
    return class_of(cmd_of(&m), &m);
}

const char *tutti__ns_command_name(const uint8_t *msg, size_t len)
{
    tutti__osc_msg m;
    if (!msg || tutti__osc_is_bundle(msg, len) || tutti__osc_msg_parse(msg, len, &m))
        return NULL;
    int c = cmd_of(&m);
    return c < 0 ? NULL : cmds[c].name;
}

size_t tutti__ns_part_setup(uint32_t slot, uint8_t *out, size_t cap)
{
    if (slot == 0 || slot >= TUTTI_NS_SLOTS || !out) return 0;
    return tutti__osc_write(out, cap, "/g_new", "iii", tutti__ns_part_group(slot), 0, 0);
}

/* ------------------------------------------------------------- replies */

typedef struct rp {
    const tutti__ns *ns;
    uint32_t slot;
} rp;

enum { RP_KEEP = 0, RP_DROP = 1 };

/* A node id: this part's come back as the part knows them (its root group
 * as 0); negative ids stay. *other is set for another space's node. */
static int32_t rp_node(const rp *c, int32_t id, bool *other)
{
    uint32_t s;
    int32_t local;
    *other = false;
    if (!tutti__ns_node_inv(id, &s, &local)) return id;
    if (s == c->slot) return local;
    *other = true;
    return id;
}

/* A node next to the notified one (parent, prev, next, head, tail): outside
 * the part's space, the part sees none (-1). */
static int32_t rp_related(const rp *c, int32_t id)
{
    bool other;
    int32_t v = rp_node(c, id, &other);
    return other ? -1 : v;
}

static void rp_num(const rp *c, ar *a, mw *w, int kind)
{
    if (ar_tag(a) != 'i') {
        mw_copy(w, a);
        return;
    }
    int32_t v = (int32_t)rd32(a->d), local;
    uint32_t s;
    ar_next(a);
    if (inv_kind(&c->ns->cfg, kind, v, &s, &local) == TUTTI_NS_MAP_OK && s == c->slot)
        v = local;
    mw_i32(w, v);
}

static void rp_bus_string(const rp *c, ar *a, mw *w)
{
    const char *s = (const char *)a->d;
    int kind = s[0] == 'c' ? TUTTI_NS_KIND_CBUS : s[0] == 'a' ? TUTTI_NS_KIND_ABUS : 0;
    int32_t v = kind ? sc_atoi(s + 1) : -1, local;
    uint32_t slot;
    if (v < 0 || inv_kind(&c->ns->cfg, kind, v, &slot, &local) != TUTTI_NS_MAP_OK ||
        slot != c->slot) {
        mw_copy(w, a);
        return;
    }
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%c%d", s[0], (int)local);
    ar_next(a);
    mw_str(w, buf, (size_t)n);
}

/* A control value in a reply: rule-named numbers and bus strings back into
 * the part's numbers. */
static void rp_value(const rp *c, ar *a, mw *w, int kind)
{
    char t = ar_tag(a);
    if (t == 's') {
        rp_bus_string(c, a, w);
        return;
    }
    if (kind == TUTTI_NS_KIND_NONE || (t != 'f' && t != 'i')) {
        mw_copy(w, a);
        return;
    }
    if (t == 'i') {
        rp_num(c, a, w, kind);
        return;
    }
    float f = f32_of(rd32(a->d));
    int32_t local;
    uint32_t s;
    if (f >= 0.0f && f < 2147483648.0f && f == floorf(f) &&
        inv_kind(&c->ns->cfg, kind, (int32_t)f, &s, &local) == TUTTI_NS_MAP_OK &&
        s == c->slot) {
        ar_next(a);
        mw_f32(w, (float)local);
        return;
    }
    mw_copy(w, a);
}

static int rp_key_kind(const rp *c, const ar *a)
{
    return ar_tag(a) == 's' ? rules_kind(&c->ns->rules, (const char *)a->d)
                            : TUTTI_NS_KIND_NONE;
}

/* A def name: the part's own lose their suffix. *other is set for a name
 * with another slot's suffix. */
static size_t rp_def_name(const rp *c, const char *s, bool *other)
{
    size_t n = strlen(s);
    *other = false;
    const char *dot = strrchr(s, '.');
    if (!dot || dot[1] != 'p' || !dot[2] || dot[2] == '0') return n;
    unsigned k = 0;
    for (const char *q = dot + 2; *q; q++) {
        if (*q < '0' || *q > '9' || k >= TUTTI_NS_SLOTS) return n;
        k = k * 10 + (unsigned)(*q - '0');
    }
    if (k == 0 || k >= TUTTI_NS_SLOTS) return n;
    if (k != c->slot) {
        *other = true;
        return n;
    }
    return (size_t)(dot - s);
}

static void rp_def(const rp *c, ar *a, mw *w)
{
    bool other;
    const char *s = (const char *)a->d;
    size_t n = rp_def_name(c, s, &other);
    ar_next(a);
    mw_str(w, s, n);
}

/* "Node 67108865 not found" and the like (SC_Errors.cpp) in a /fail. */
static void rp_fail_text(const rp *c, ar *a, mw *w)
{
    const char *s = (const char *)a->d;
    static const char *const pats[] = {"Node ", "Group "};
    for (size_t i = 0; i < 2; i++) {
        const char *p = strstr(s, pats[i]);
        if (!p) continue;
        const char *q = p + strlen(pats[i]), *digits = q;
        if (*q == '-') q++;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == digits || strncmp(q, " not found", 10) || q - digits > 11) continue;
        long long v = strtoll(digits, NULL, 10);
        if (v < INT32_MIN || v > INT32_MAX) continue;
        bool other;
        int32_t id = rp_node(c, (int32_t)v, &other);
        char buf[512];
        int n = snprintf(buf, sizeof buf, "%.*s%d%s", (int)(digits - s), s, (int)id, q);
        if (n < 0 || (size_t)n >= sizeof buf) continue;
        ar_next(a);
        mw_str(w, buf, (size_t)n);
        return;
    }
    mw_copy(w, a);
}

/* /g_queryTree.reply: the controls flag, then the tree in pre-order: a group
 * is (id, number of children), a synth (id, -1, def name [, number of
 * controls, (name|index, value)*]). */
static void rp_tree(const rp *c, ar *a, mw *w)
{
    int32_t flag;
    if (ar_tag(a) != 'i') return;
    flag = (int32_t)rd32(a->d);
    mw_copy(w, a);
    int64_t pending = 1;
    while (pending > 0 && ar_tag(a) == 'i') {
        bool other;
        int32_t id = rp_node(c, (int32_t)rd32(a->d), &other);
        ar_next(a);
        mw_i32(w, id);
        if (ar_tag(a) != 'i') return;
        int32_t children = (int32_t)rd32(a->d);
        mw_copy(w, a);
        pending--;
        if (children >= 0) {
            pending += children;
            continue;
        }
        if (ar_tag(a) != 's') return;
        rp_def(c, a, w);
        if (!flag) continue;
        if (ar_tag(a) != 'i') return;
        int32_t ncontrols = (int32_t)rd32(a->d);
        mw_copy(w, a);
        for (int32_t k = 0; k < ncontrols && !ar_done(a); k++) {
            int kind = rp_key_kind(c, a);
            mw_copy(w, a);
            if (ar_done(a)) return;
            rp_value(c, a, w, kind);
        }
    }
}

static bool addr_is(const tutti__osc_msg *m, const char *s)
{
    return m->addr && !strcmp(m->addr, s);
}

static int rp_body(const rp *c, const tutti__osc_msg *m, ar *a, mw *w)
{
    static const char *const notes[] = {"/n_go", "/n_end",  "/n_off",
                                        "/n_on", "/n_move", "/n_info"};
    static const char *const plain[] = {"/synced", "/status.reply", "/version.reply",
                                        "/rtMemoryStatus.reply"};
    bool other;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (addr_is(m, plain[i])) return RP_KEEP;
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) {
        if (!addr_is(m, notes[i])) continue;
        /* node parent prev next isGroup [head tail] */
        for (int k = 0; !ar_done(a); k++) {
            if (ar_tag(a) != 'i' || k == 4 || k > 6) {
                mw_copy(w, a);
                continue;
            }
            int32_t v = (int32_t)rd32(a->d);
            if (k == 0) {
                /* the part's own root group is the session's doing: its
                 * clients never made nor freed it, and hear of neither */
                if (v == tutti__ns_part_group(c->slot) && i <= 1) return RP_DROP;
                v = rp_node(c, v, &other);
                if (other) return RP_DROP;
            } else {
                v = rp_related(c, v);
            }
            ar_next(a);
            mw_i32(w, v);
        }
        return RP_KEEP;
    }
    if (addr_is(m, "/n_set") || addr_is(m, "/n_setn")) {
        bool setn = addr_is(m, "/n_setn");
        if (ar_tag(a) == 'i') {
            int32_t v = rp_node(c, (int32_t)rd32(a->d), &other);
            ar_next(a);
            mw_i32(w, v);
        }
        while (!ar_done(a)) {
            int kind = rp_key_kind(c, a);
            mw_copy(w, a);
            int32_t n = 1;
            if (setn) {
                if (ar_tag(a) != 'i') break;
                n = (int32_t)rd32(a->d);
                mw_copy(w, a);
            }
            for (int32_t k = 0; k < n && !ar_done(a); k++)
                rp_value(c, a, w, kind);
        }
        return RP_KEEP;
    }
    if (addr_is(m, "/b_info")) {
        for (int k = 0; !ar_done(a); k++) {
            if (k % 4 == 0)
                rp_num(c, a, w, TUTTI_NS_KIND_BUF);
            else
                mw_copy(w, a);
        }
        return RP_KEEP;
    }
    if (addr_is(m, "/b_set") || addr_is(m, "/b_setn")) {
        if (!ar_done(a)) rp_num(c, a, w, TUTTI_NS_KIND_BUF);
        return RP_KEEP;
    }
    if (addr_is(m, "/c_set")) {
        for (int k = 0; !ar_done(a); k++) {
            if (k % 2 == 0)
                rp_num(c, a, w, TUTTI_NS_KIND_CBUS);
            else
                mw_copy(w, a);
        }
        return RP_KEEP;
    }
    if (addr_is(m, "/c_setn")) {
        while (!ar_done(a)) {
            rp_num(c, a, w, TUTTI_NS_KIND_CBUS);
            if (ar_tag(a) != 'i') break;
            int32_t n = (int32_t)rd32(a->d);
            mw_copy(w, a);
            for (int32_t k = 0; k < n && !ar_done(a); k++)
                mw_copy(w, a);
        }
        return RP_KEEP;
    }
    if (addr_is(m, "/done") || addr_is(m, "/fail")) {
        if (ar_tag(a) != 's') return RP_KEEP;
        bool buf = !strncmp((const char *)a->d, "/b_", 3);
        mw_copy(w, a);
        if (addr_is(m, "/fail") && ar_tag(a) == 's') rp_fail_text(c, a, w);
        if (buf && ar_tag(a) == 'i') rp_num(c, a, w, TUTTI_NS_KIND_BUF);
        return RP_KEEP;
    }
    if (addr_is(m, "/d_removed")) {
        if (ar_tag(a) != 's') return RP_KEEP;
        rp_def_name(c, (const char *)a->d, &other);
        if (other) return RP_DROP;
        rp_def(c, a, w);
        return RP_KEEP;
    }
    if (addr_is(m, "/g_queryTree.reply")) {
        rp_tree(c, a, w);
        return RP_KEEP;
    }
    /* /tr and SendReply: the node id first, then the reply id and values. */
    if (m->addr && ar_tag(a) == 'i') {
        int32_t v = rp_node(c, (int32_t)rd32(a->d), &other);
        if (other) return RP_DROP;
        ar_next(a);
        mw_i32(w, v);
    }
    return RP_KEEP;
}

static int rp_message(const rp *c, const uint8_t *in, size_t len, uint8_t *out,
                      size_t cap, size_t *n)
{
    *n = 0;
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(in, len, &m)) return TUTTI_EPROTO;
    size_t addr_len = (size_t)((m.tags ? (const uint8_t *)m.tags - 1 : m.args) - in);
    size_t ntags = m.tags ? strlen(m.tags) : 0;
    ar a;
    ar_init(&a, &m);
    mw w;
    mw_init(&w, out, cap, in, addr_len, ntags, m.tags != NULL);
    if (w.err) return w.err;
    if (rp_body(c, &m, &a, &w) == RP_DROP) return 0;
    while (!ar_done(&a))
        mw_copy(&w, &a);
    size_t k = mw_end(&w);
    if (w.err) return w.err;
    *n = k;
    return 0;
}

static int rp_one(void *c, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                  size_t *n)
{
    return rp_message(c, in, len, out, cap, n);
}

static int rp_packet(const rp *c, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                     size_t *n)
{
    return tutti__osc_map(in, len, rp_one, (void *)c, out, cap, n);
}

ssize_t tutti__ns_reply(const tutti__ns *ns, uint32_t slot, const uint8_t *in, size_t len,
                        uint8_t *out, size_t cap)
{
    if (!ns || !in || !out || slot == 0 || slot >= TUTTI_NS_SLOTS) return TUTTI_EINVAL;
    if (tutti__osc_check(in, len)) return TUTTI_EPROTO;
    rp c = {ns, slot};
    size_t n = 0;
    int r = rp_packet(&c, in, len, out, cap, &n);
    return r ? r : (ssize_t)n;
}
