/*
 * libFuzzer target for the namespace rewriter (plugin/ns.c). Every packet the
 * OSC checker accepts is rewritten for a slot derived from its bytes and
 * translated as a reply; neither may read outside the input, and:
 *   - the rewrite never fails on a checked packet except with TUTTI_EFULL
 *     (outputs can grow), and then leaves the def-name set as it was;
 *   - every output passes the checker again;
 *   - a second ns with the same history gives the same bytes;
 *   - a buffer one byte short of the output gives TUTTI_EFULL;
 *   - a reply never grows, and every message classifies;
 *   - a part's state (state.c) that notes the packet (twice, and the first
 *     int of it as a node that ended) sends only messages that pass the
 *     checker;
 *   - the buffers a packet changes are found the same way twice (the plugin
 *     counts them up when it submits and down when it plays);
 *   - an asset chunk's journal form passes the checker and fits its bound;
 *   - a recording's local form of a message (record.c), after the recording
 *     was opened, passes the checker and keeps the message's length (its
 *     def name aside).
 * Each input gets fresh ns objects, so a crash replays from its file alone.
 */
#include "asset.h"
#include "ns.h"
#include "osc.h"
#include "record.h"
#include "state.h"
#include "tutti/tutti.h"

#include <stdlib.h>
#include <string.h>

static int classify_each(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    int c = tutti__ns_classify(p, len);
    if (c < TUTTI_NS_SESSION || c > TUTTI_NS_DROP) abort();
    return 0;
}

static int check_state_msg(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    if (tutti__osc_check(p, len) != 0 || tutti__osc_is_bundle(p, len)) abort();
    return 0;
}

static void count_buffer(void *arg, int32_t buf)
{
    uint64_t *sum = arg;
    *sum = *sum * 31 + (uint32_t)buf + 1;
}

static void check_out(const uint8_t *out, ssize_t n)
{
    if (n > 0 && tutti__osc_check(out, (size_t)n) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so AddressSanitizer sees any over-read */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    /* A member's asset token (a path from the network): as a string. */
    char *tok = malloc(size + 1);
    if (!tok) abort();
    memcpy(tok, data, size);
    tok[size] = 0;
    uint64_t th;
    if (tutti__asset_token_parse(tok, &th)) {
        char again_tok[TUTTI_ASSET_TOKEN_MAX + 16];
        tutti__asset_token(th, tok, again_tok, sizeof again_tok);
        if (!tutti__asset_token_parse(again_tok, NULL)) abort();
    }
    free(tok);
    if (tutti__osc_check(p, size) != 0) {
        free(p);
        return 0;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 16777619u;
    uint32_t slot = 1 + h % (TUTTI_NS_SLOTS - 1);

    tutti__ns_config cfg;
    tutti__ns_config_init(&cfg);
    tutti__ns *a = NULL, *b = NULL;
    if (tutti__ns_create(&a, &cfg) || tutti__ns_create(&b, &cfg)) abort();
    size_t cap = 4 * size + 4096;
    uint8_t *out = malloc(cap), *again = malloc(cap);
    if (!out || !again) abort();

    tutti__osc_each_message(p, size, classify_each, NULL);

    /* the session's path substitution on whatever message this is */
    if (!tutti__osc_is_bundle(p, size)) {
        uint8_t *r = malloc(size + 64);
        if (!r) abort();
        size_t m = tutti__osc_replace_string(p, size, "/tmp/x.wav", r, size + 64);
        if (m && tutti__osc_check(r, m) != 0) abort();
        free(r);
    }

    /* as a recording's message: buffer 0 to 15 open for recording, node
     * 1000 a recording's synth first */
    if (!tutti__osc_is_bundle(p, size)) {
        tutti__record rec;
        tutti__record_clear(&rec);
        for (int32_t bnum = 0; bnum < 16; bnum++)
            rec.bufs[rec.nbufs++] = bnum;
        rec.nodes[rec.nnodes++] = 1000;
        ssize_t r = tutti__record_local(&rec, a, slot, p, size, out, cap);
        if (r < 0 && r != TUTTI_EFULL) abort();
        check_out(out, r);
        if (r > 0 && tutti__ns_command_name(p, size) &&
            strcmp(tutti__ns_command_name(p, size), "/s_new") && (size_t)r != size)
            abort();
    }

    /* the full class mask on `b` first: it must not change what `a` does */
    unsigned all = TUTTI_NS_KEEP(TUTTI_NS_LOCAL) | TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE) |
                   TUTTI_NS_KEEP(TUTTI_NS_DROP);
    ssize_t k = tutti__ns_rewrite_ex(b, slot, p, size, again, cap, all, NULL);
    if (k < 0 && k != TUTTI_EFULL) abort();
    check_out(again, k);
    tutti__ns_forget(b, slot);

    ssize_t n = tutti__ns_rewrite(a, slot, p, size, out, cap);
    if (n < 0) {
        if (n != TUTTI_EFULL || tutti__ns_def_count(a, slot) != 0) abort();
    } else {
        check_out(out, n);
        if (n > 0) {
            /* one byte short: EFULL, and the set as it was */
            uint32_t defs = tutti__ns_def_count(b, slot);
            if (tutti__ns_rewrite(b, slot, p, size, again, (size_t)n - 1) != TUTTI_EFULL)
                abort();
            if (tutti__ns_def_count(b, slot) != defs) abort();
        }
        /* the same history on another server: the same bytes */
        ssize_t m = tutti__ns_rewrite(b, slot, p, size, again, cap);
        if (m != n || (n > 0 && memcmp(out, again, (size_t)n))) abort();
    }

    ssize_t r = tutti__ns_reply(a, slot, p, size, out, size);
    if (r < 0 || (size_t)r > size) abort();
    check_out(out, r);

    tutti__state *st;
    if (tutti__state_create(&st)) abort();
    tutti__state_note(st, p, size);
    tutti__state_note(st, p, size);
    tutti__state_each(st, check_state_msg, NULL);
    tutti__state_node_end(st, (int32_t)h);
    tutti__state_node_end(st, size >= 4 ? (int32_t)tutti__osc_rd32(p + size - 4) : 0);
    tutti__state_each(st, check_state_msg, NULL);
    tutti__state_destroy(st);

    if (tutti__osc_check(p, size) == 0) {
        uint64_t s1 = 0, s2 = 0;
        tutti__state_buffers_changed(p, size, count_buffer, &s1);
        tutti__state_buffers_changed(p, size, count_buffer, &s2);
        if (s1 != s2) abort();
        uint8_t dg[TUTTI_ASSET_DIGEST_MAX];
        size_t dn = tutti__asset_digest_msg(p, size, dg, sizeof dg);
        if (dn > sizeof dg || (dn && tutti__osc_check(dg, dn) != 0)) abort();
    }

    free(out);
    free(again);
    tutti__ns_destroy(a);
    tutti__ns_destroy(b);
    free(p);
    return 0;
}
