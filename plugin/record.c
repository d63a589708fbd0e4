/*
 * Recording through the proxy in a session (see record.h).
 */
#include "record.h"

#include "osc.h"
#include "tutti/tutti.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void tutti__record_clear(tutti__record *r)
{
    memset(r, 0, sizeof *r);
}

static bool has(const int32_t *a, uint32_t n, int32_t v)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] == v) return true;
    return false;
}

bool tutti__record_has_node(const tutti__record *r, int32_t id)
{
    return has(r->nodes, r->nnodes, id);
}

static bool add(int32_t *a, uint32_t *n, int32_t v)
{
    if (has(a, *n, v)) return true;
    if (*n == TUTTI_RECORD_MAX) return false;
    a[(*n)++] = v;
    return true;
}

static void del(int32_t *a, uint32_t *n, int32_t v)
{
    for (uint32_t i = 0; i < *n; i++)
        if (a[i] == v) {
            a[i] = a[--*n];
            return;
        }
}

/* Bytes of one argument of a checked message. */
static size_t arg_size(char t, const uint8_t *a)
{
    switch (t) {
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
        return tutti__osc_pad4(strlen((const char *)a) + 1);
    case 'b':
        return 4 + tutti__osc_pad4(tutti__osc_rd32(a));
    default:
        return 0;
    }
}

/* The k-th argument: its bytes and tag, NULL past the end. */
static const uint8_t *arg(const tutti__osc_msg *m, unsigned k, char *tag)
{
    const uint8_t *a = m->args;
    for (unsigned i = 0; m->tags && m->tags[i]; i++) {
        if (i == k) {
            *tag = m->tags[i];
            return a;
        }
        a += arg_size(m->tags[i], a);
    }
    return NULL;
}

/* A number argument (i, or f truncated as scsynth reads it). */
static bool num(const tutti__osc_msg *m, unsigned k, int32_t *v)
{
    char t;
    const uint8_t *a = arg(m, k, &t);
    if (!a) return false;
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

/* Writes number `v` over argument k of `m` (which lies in `src`) in the copy
 * `dst`, in the argument's own type. */
static void put(uint8_t *dst, const uint8_t *src, const tutti__osc_msg *m, unsigned k,
                int32_t v)
{
    char t;
    const uint8_t *a = arg(m, k, &t);
    if (!a) return;
    uint32_t u = (uint32_t)v;
    if (t == 'f') {
        float f = (float)v;
        memcpy(&u, &f, 4);
    }
    tutti__osc_wr32(dst + (a - src), u);
}

/* The blob argument k of `m` parsed as a message (a completion message). */
static bool completion(const tutti__osc_msg *m, unsigned k, tutti__osc_msg *c,
                       const char **name)
{
    char t;
    const uint8_t *a = arg(m, k, &t);
    if (!a || t != 'b') return false;
    size_t n = tutti__osc_rd32(a);
    if (tutti__osc_check(a + 4, n) || tutti__osc_is_bundle(a + 4, n) ||
        tutti__osc_msg_parse(a + 4, n, c))
        return false;
    *name = tutti__ns_command_name(a + 4, n);
    return *name != NULL;
}

static bool is(const char *name, const char *cmd)
{
    return name && !strcmp(name, cmd);
}

/* A buffer command (/b_alloc, /b_write, /b_close, /b_free, /b_query, ...):
 * ours when its buffer is a recording's or it opens one. */
static ssize_t buffer_cmd(tutti__record *r, const tutti__ns_config *cfg, uint32_t slot,
                          const char *name, const tutti__osc_msg *m, const uint8_t *msg,
                          size_t len, uint8_t *out, size_t cap)
{
    int32_t b, mapped, leave = 0;
    if (!num(m, 0, &b) || tutti__ns_buf(cfg, slot, b, &mapped) != TUTTI_NS_MAP_OK)
        return 0;
    const char *blob = strchr(m->tags, 'b'); /* the completion message */
    unsigned blob_at = blob ? (unsigned)(blob - m->tags) : 0;
    tutti__osc_msg c;
    const char *cname = NULL;
    int32_t cb = -1;
    bool has_c = blob && completion(m, blob_at, &c, &cname) && num(&c, 0, &cb);
    bool opens = (is(name, "/b_write") && num(m, 6, &leave) && leave == 1) ||
                 (is(name, "/b_alloc") && has_c && is(cname, "/b_write") && cb == b &&
                  num(&c, 6, &leave) && leave == 1);
    if (!opens && !has(r->bufs, r->nbufs, b)) return 0;
    if (opens && !add(r->bufs, &r->nbufs, b)) return 0;
    if (len > cap) return TUTTI_EFULL;
    memcpy(out, msg, len);
    put(out, msg, m, 0, mapped);
    if (has_c && cb == b) {
        put(out, msg, &c, 0, mapped); /* c lies inside msg */
        if (is(cname, "/b_free")) del(r->bufs, &r->nbufs, b);
    }
    if (is(name, "/b_free")) del(r->bufs, &r->nbufs, b);
    return (ssize_t)len;
}

/* Rewrites the control values of a /s_new or /n_set in `out` (a copy of
 * `src` of the same layout) from argument `from` on: numbers of controls
 * the rules name as buffers or buses are mapped into the part's space.
 * Returns whether a buffer control holds a recording's buffer. */
static bool controls(const tutti__record *r, const tutti__ns *ns, uint32_t slot,
                     const tutti__osc_msg *m, unsigned from, const uint8_t *src,
                     uint8_t *out)
{
    const tutti__ns_config *cfg = tutti__ns_get_config(ns);
    bool rec = false;
    for (unsigned k = from;; k += 2) {
        char t;
        const uint8_t *a = arg(m, k, &t);
        int32_t v, mapped;
        if (!a) break;
        if (t != 's' || !num(m, k + 1, &v)) continue;
        int kind = tutti__ns_rule_kind(ns, (const char *)a), res = TUTTI_NS_MAP_RANGE;
        if (kind == TUTTI_NS_KIND_BUF) {
            res = tutti__ns_buf(cfg, slot, v, &mapped);
            rec |= has(r->bufs, r->nbufs, v);
        } else if (kind == TUTTI_NS_KIND_ABUS) {
            res = tutti__ns_abus(cfg, slot, v, &mapped);
        } else if (kind == TUTTI_NS_KIND_CBUS) {
            res = tutti__ns_cbus(cfg, slot, v, &mapped);
        }
        if (res == TUTTI_NS_MAP_OK && out) put(out, src, m, k + 1, mapped);
    }
    return rec;
}

/* /s_new DEF N ACTION TARGET controls...: ours when a buffer control holds
 * a recording's buffer. */
static ssize_t synth_new(tutti__record *r, const tutti__ns *ns, uint32_t slot,
                         const tutti__osc_msg *m, const uint8_t *msg, size_t len,
                         uint8_t *out, size_t cap)
{
    char t;
    const uint8_t *def = arg(m, 0, &t);
    int32_t node, action, target;
    if (!def || t != 's' || strchr(m->tags, '[') || !num(m, 1, &node) || node < 0 ||
        !num(m, 2, &action) || !num(m, 3, &target) || target < 0)
        return 0;
    if (!controls(r, ns, slot, m, 4, msg, NULL)) return 0;
    char name[300];
    int w = snprintf(name, sizeof name, "%s.p%u", (const char *)def, (unsigned)slot);
    if (w < 0 || (size_t)w >= sizeof name) return 0;
    size_t n = tutti__osc_replace_string(msg, len, name, out, cap);
    if (!n) return TUTTI_EFULL;
    tutti__osc_msg o;
    if (tutti__osc_msg_parse(out, n, &o)) return 0;
    if (!add(r->nodes, &r->nnodes, node)) return 0;
    put(out, out, &o, 1, tutti__ns_node(slot, node));
    /* target 0 (head or tail) is the server's root: the recording hears
     * every part */
    if (!(target == 0 && action <= 1)) put(out, out, &o, 3, tutti__ns_node(slot, target));
    uint8_t *copy = out; /* controls() writes values at o's offsets */
    controls(r, ns, slot, &o, 4, out, copy);
    return (ssize_t)n;
}

/* /n_free, /n_run, /n_set of a recording's synth. */
static ssize_t node_cmd(tutti__record *r, const tutti__ns *ns, uint32_t slot,
                        const char *name, const tutti__osc_msg *m, const uint8_t *msg,
                        size_t len, uint8_t *out, size_t cap)
{
    int32_t node;
    if (!num(m, 0, &node) || !has(r->nodes, r->nnodes, node)) return 0;
    unsigned step = is(name, "/n_free") ? 1 : is(name, "/n_run") ? 2 : 0;
    if (step) /* every node of the message must be a recording's */
        for (unsigned k = 0; arg(m, k, &(char){0}); k += step)
            if (!num(m, k, &node) || !has(r->nodes, r->nnodes, node)) return 0;
    if (len > cap) return TUTTI_EFULL;
    memcpy(out, msg, len);
    for (unsigned k = 0; arg(m, k, &(char){0}) && (step || k == 0);
         k += step ? step : 1) {
        num(m, k, &node);
        put(out, msg, m, k, tutti__ns_node(slot, node));
        if (step == 1) del(r->nodes, &r->nnodes, node);
    }
    if (!step) controls(r, ns, slot, m, 1, msg, out);
    return (ssize_t)len;
}

ssize_t tutti__record_local(tutti__record *r, const tutti__ns *ns, uint32_t slot,
                            const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
    if (!ns || slot == 0 || slot >= TUTTI_NS_SLOTS || tutti__osc_is_bundle(msg, len))
        return 0;
    const char *name = tutti__ns_command_name(msg, len);
    tutti__osc_msg m;
    if (!name || tutti__osc_msg_parse(msg, len, &m) || !m.tags) return 0;
    if (is(name, "/b_alloc") || is(name, "/b_write"))
        return buffer_cmd(r, tutti__ns_get_config(ns), slot, name, &m, msg, len, out,
                          cap);
    if (!r->nbufs && !r->nnodes) return 0;
    if (is(name, "/b_close") || is(name, "/b_free") || is(name, "/b_query") ||
        is(name, "/b_zero"))
        return buffer_cmd(r, tutti__ns_get_config(ns), slot, name, &m, msg, len, out,
                          cap);
    if (is(name, "/s_new")) return synth_new(r, ns, slot, &m, msg, len, out, cap);
    if (is(name, "/n_free") || is(name, "/n_run") || is(name, "/n_set"))
        return node_cmd(r, ns, slot, name, &m, msg, len, out, cap);
    return 0;
}
