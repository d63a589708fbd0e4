/*
 * Tests of the server check (plugin/check.c): digests of node trees and
 * failures, their text form, and what the comparison reports and forgives.
 */
#include "check.h"
#include "osc.h"
#include "test.h"
#include "tutti/tutti.h"

#include <string.h>

#define SPAN (1 << 26)
#define P TUTTI_CHECK_PERIOD

static char reports[8][3 * TUTTI_CHECK_TEXT];
static int nreports;

static void on_report(void *arg, const tutti__check_diff *d)
{
    (void)arg;
    if (nreports < 8) snprintf(reports[nreports], sizeof reports[0], "%s", d->text);
    nreports++;
}

/* A /g_queryTree.reply of the root: the server's own group 1 with a synth,
 * then part 1's group holding group 1 with the synths `ids` (def "beep.p1"),
 * and part 2's group holding one synth 1000 ("pad.p2"). */
static size_t tree(uint8_t *out, size_t cap, const int32_t *ids, int n)
{
    char types[256] = "";
    int32_t v[256];
    const char *s[256];
    int nv = 0, ns = 0, k = 0;
#define I(x) (types[k++] = 'i', v[nv++] = (x))
#define S(x) (types[k++] = 's', s[ns++] = (x))
    I(0), I(0), I(3);                   /* flag, root, three children */
    I(1), I(1), I(1001), I(-1), S("default"); /* the server's own */
    I(SPAN), I(1), I(2 * SPAN - 1), I(n);     /* part 1: its group, group 1 */
    for (int i = 0; i < n; i++) I(ids[i] < 0 ? ids[i] : SPAN + ids[i]), I(-1), S("beep.p1");
    I(2 * SPAN), I(1), I(2 * SPAN + 1000), I(-1), S("pad.p2");
    types[k] = 0;
    /* write by hand: tutti__osc_write takes varargs */
    size_t at = 0;
    const char *addr = "/g_queryTree.reply";
    size_t al = strlen(addr) + 1, ap = (al + 3) & ~(size_t)3;
    memset(out, 0, cap);
    memcpy(out, addr, al - 1);
    at = ap;
    out[at] = ',';
    memcpy(out + at + 1, types, (size_t)k);
    at += ((size_t)k + 2 + 3) & ~(size_t)3;
    int iv = 0, is = 0;
    for (int i = 0; i < k; i++) {
        if (types[i] == 'i') {
            tutti__osc_wr32(out + at, (uint32_t)v[iv++]);
            at += 4;
        } else {
            size_t l = strlen(s[is]) + 1;
            memcpy(out + at, s[is++], l - 1);
            at += (l + 3) & ~(size_t)3;
        }
    }
    return at;
}

/* The digest of a server holding `ids` in part 1, with `fails` /fail
 * replies to part 1's events, sent by member `origin` as its event. */
static void digest(tutti__checker *c, int64_t round, uint32_t origin, const char *name,
                   const int32_t *ids, int n, int fails)
{
    uint8_t buf[4096], enc[65536];
    size_t len = tree(buf, sizeof buf, ids, n);
    tutti__digest d, w, back;
    tutti__digest_init(&d, round, origin, name);
    CHECK(tutti__digest_tree(&d, buf, len) == 0);
    tutti__digest_init(&w, 0, 0, "");
    for (int i = 0; i < fails; i++) {
        uint8_t f[128];
        size_t fl = tutti__osc_write(f, sizeof f, "/fail", "ss", "/n_set",
                                     "Node 67109864 not found");
        tutti__digest_fail(&w, 1, f, fl);
    }
    tutti__digest_add_fails(&d, &w);
    tutti__digest_clear(&w);
    size_t m = tutti__digest_encode(&d, enc, sizeof enc);
    CHECK(m > 0 && tutti__digest_is(enc, m));
    tutti__digest_clear(&d);
    CHECK(tutti__digest_decode(&back, enc, m, origin) == 0);
    CHECK_EQ_I64(back.round, round);
    tutti__checker_time(c, (round + 1) * P + 1);
    tutti__checker_digest(c, &back);
}

static uint32_t told[64][TUTTI_CHECK_SLOTS];
static int ntold;

static void on_nodes(void *arg, int64_t round, uint32_t slot, uint32_t nodes)
{
    (void)arg;
    if (round >= 0 && round < 64 && slot < TUTTI_CHECK_SLOTS) told[round][slot] = nodes + 1;
    ntold++;
}

/* The node counts the budget is given: per decided round and part, the
 * lower median of the servers' counts, so one server cannot inflate
 * another's part. */
static void test_node_counts(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    tutti__checker_on_nodes(c, on_nodes, NULL);
    memset(told, 0, sizeof told);
    ntold = 0;
    int32_t few[] = {1000, 1001}, many[40];
    for (int i = 0; i < 40; i++) many[i] = 2000 + i;
    for (int64_t r = 0; r < 4; r++) {
        /* anna and bruno hold two synths of part 1; carla claims forty */
        digest(c, r, 1, "anna", few, 2, 0);
        digest(c, r, 2, "bruno", few, 2, 0);
        digest(c, r, 3, "carla", many, 40, 0);
    }
    CHECK(ntold > 0);
    /* part 1: group 1 and two synths (3 nodes), whatever carla says */
    CHECK_EQ_I64(told[1][1], 3 + 1);
    CHECK_EQ_I64(told[2][1], 3 + 1);
    CHECK_EQ_I64(told[1][2], 1 + 1); /* part 2: one synth everywhere */
    CHECK_EQ_I64(told[1][5], 0 + 1); /* a part nowhere: 0, so a budget can let go */
    /* two of three agree on forty: then it is forty */
    tutti__checker *d = tutti__checker_new(on_report, NULL);
    tutti__checker_on_nodes(d, on_nodes, NULL);
    memset(told, 0, sizeof told);
    for (int64_t r = 0; r < 4; r++) {
        digest(d, r, 1, "anna", many, 40, 0);
        digest(d, r, 2, "bruno", many, 40, 0);
        digest(d, r, 3, "carla", few, 2, 0);
    }
    CHECK_EQ_I64(told[2][1], 41 + 1);
    tutti__checker_free(c);
    tutti__checker_free(d);
    nreports = 0;
}

static void test_digest_text(void)
{
    uint8_t buf[4096], enc[65536];
    int32_t ids[] = {1002, 1000, -5};
    size_t len = tree(buf, sizeof buf, ids, 3);
    tutti__digest d, back;
    tutti__digest_init(&d, 42, 1, "anna");
    CHECK(tutti__digest_tree(&d, buf, len) == 0);
    CHECK_EQ_I64(d.nparts, 2);
    CHECK_EQ_I64(d.part[0].slot, 1);
    CHECK_EQ_I64(d.part[0].nodes, 4); /* group 1 and three synths */
    CHECK_EQ_I64(d.part[0].ids[0], -1); /* the server chose it: no id */
    CHECK_EQ_I64(d.part[0].ids[1], 1);
    CHECK_EQ_I64(d.part[0].ids[2], 1000);
    CHECK_EQ_I64(d.part[1].slot, 2);
    CHECK_EQ_I64(d.part[1].ids[0], 1000);
    uint8_t f[128];
    size_t fl = tutti__osc_write(f, sizeof f, "/fail", "ss", "/s_new", "SynthDef not found");
    tutti__digest_fail(&d, 2, f, fl);
    size_t m = tutti__digest_encode(&d, enc, sizeof enc);
    CHECK(m > 0);
    CHECK(tutti__digest_decode(&back, enc, m, 7) == 0);
    CHECK_EQ_I64(back.origin, 7);
    CHECK_EQ_I64(back.round, 42);
    CHECK(!strcmp(back.name, "anna"));
    CHECK_EQ_I64(back.part[0].tree, d.part[0].tree);
    CHECK_EQ_I64(back.part[1].fails, 1);
    CHECK(!strcmp(back.part[1].fail, "/s_new SynthDef not found"));
    /* sibling order does not matter, the synthdef and the parent do */
    int32_t other[] = {1000, -7, 1002};
    tutti__digest e;
    tutti__digest_init(&e, 42, 1, "anna");
    len = tree(buf, sizeof buf, other, 3);
    CHECK(tutti__digest_tree(&e, buf, len) == 0);
    CHECK_EQ_I64(e.part[0].tree, d.part[0].tree);
    tutti__digest_clear(&e);
    tutti__digest_clear(&d);
    tutti__digest_clear(&back);
    /* hostile text */
    m = tutti__osc_write(enc, sizeof enc, "/tutti/check", "b", "part 99 1 2 3 4 5\n", 18);
    CHECK(tutti__digest_decode(&back, enc, m, 1) != 0);
    m = tutti__osc_write(enc, sizeof enc, "/tutti/check", "s", "round 1");
    CHECK(tutti__digest_decode(&back, enc, m, 1) != 0);
}

/* As digest(), for a newcomer whose server started part 1's synths
 * `carried` from a state (group 1 of part 1, "beep"). */
static void digest_carried(tutti__checker *c, int64_t round, uint32_t origin, const char *name,
                           const int32_t *ids, int n, const int32_t *carried, int nc)
{
    uint8_t buf[4096], enc[65536];
    size_t len = tree(buf, sizeof buf, ids, n);
    tutti__digest d, back;
    tutti__digest_init(&d, round, origin, name);
    CHECK(tutti__digest_tree(&d, buf, len) == 0);
    for (int i = 0; i < nc; i++)
        tutti__digest_carried(
            &d, 1, SPAN + carried[i],
            tutti__digest_term(1, SPAN + carried[i], 2 * SPAN - 1, "beep.p1"));
    size_t m = tutti__digest_encode(&d, enc, sizeof enc);
    CHECK(m > 0);
    tutti__digest_clear(&d);
    CHECK(tutti__digest_decode(&back, enc, m, origin) == 0);
    tutti__checker_time(c, (round + 1) * P + 1);
    tutti__checker_digest(c, &back);
}

/* A newcomer's copies of synths a state carried (started at its join, so
 * ending later, or earlier for notes sent ahead) are left out of every
 * server's tree, with their terms of the hash; other nodes are not. */
static void test_carried(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    nreports = 0;
    int32_t all[] = {1000, 1001, 1002}, old[] = {1000, 1002}, mine[] = {1000, 1001},
            carried[] = {1001, 1002};
    for (int64_t k = 100; k < 108; k++) {
        /* the others' 1001 ended at round 101; the newcomer's 1002 ended
         * (it started early) while theirs plays on */
        digest(c, k, 1, "anna", k < 101 ? all : old, k < 101 ? 3 : 2, 0);
        digest(c, k, 2, "bruno", k < 101 ? all : old, k < 101 ? 3 : 2, 0);
        digest_carried(c, k, 3, "dora", mine, 2, carried, 2);
    }
    for (int i = 0; i < nreports && i < 8; i++) printf("  %s\n", reports[i]);
    CHECK_EQ_I64(nreports, 0);
    /* not carried: reported */
    for (int64_t k = 108; k < 112; k++) {
        digest(c, k, 1, "anna", old, 2, 0);
        digest(c, k, 2, "bruno", old, 2, 0);
        digest_carried(c, k, 3, "dora", mine, 2, carried, 1);
    }
    CHECK(nreports >= 1);
    CHECK(strstr(reports[0], "server dora differs from anna, bruno: node 1002 missing") != NULL);
    tutti__checker_free(c);
}

static void test_identical(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    nreports = 0;
    int32_t ids[] = {1000, 1001};
    for (int64_t k = 100; k < 110; k++)
        for (uint32_t o = 1; o <= 3; o++) digest(c, k, o, o == 1 ? "a" : o == 2 ? "b" : "c", ids, 2, 0);
    tutti__checker_stats st;
    tutti__checker_stats_get(c, &st);
    CHECK_EQ_I64(nreports, 0);
    CHECK(st.rounds >= 8);
    CHECK_EQ_I64(st.identical, st.rounds);
    CHECK_EQ_I64(st.servers, 3);
    tutti__checker_free(c);
}

/* A node one server lost is reported from its second round, naming the
 * part, the node and the server; a node seen in one round only (timing at
 * the round's edge) is not. */
static void test_missing_node(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    nreports = 0;
    int32_t all[] = {1000, 1001}, lost[] = {1000}, late[] = {1000, 1001, 1002};
    for (int64_t k = 100; k < 106; k++) {
        digest(c, k, 1, "anna", all, 2, 0);
        digest(c, k, 2, "bruno", k == 101 ? late : all, k == 101 ? 3 : 2, 0);
        digest(c, k, 3, "carla", k >= 103 ? lost : all, k >= 103 ? 1 : 2, 0);
    }
    CHECK(nreports >= 1);
    CHECK(strstr(reports[0], "round 104") != NULL);
    CHECK(strstr(reports[0], "part 1 (anna)") != NULL);
    CHECK(strstr(reports[0], "server carla differs from anna, bruno") != NULL);
    CHECK(strstr(reports[0], "node 1001 missing") != NULL);
    tutti__checker_free(c);
}

/* Notes that end within a block of a round's time, on a different server
 * each round (as a Sonic Pi bass line whose notes ended 21 ms before T did
 * under load): two rounds in a row differ, but never by the same node, so
 * nothing is reported; a node one server lacks in both is. */
static void test_edges_in_a_row(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    nreports = 0;
    for (int64_t k = 100; k < 108; k++) {
        int32_t base[] = {1000, 1001}, edge[] = {1000, 1001, (int32_t)(2000 + k)};
        digest(c, k, 1, "anna", k == 101 ? edge : base, k == 101 ? 3 : 2, 0);
        digest(c, k, 2, "bruno", k == 102 || k == 104 ? edge : base, k == 102 || k == 104 ? 3 : 2,
               0);
        digest(c, k, 3, "carla", k == 103 ? edge : base, k == 103 ? 3 : 2, 0);
    }
    for (int i = 0; i < nreports && i < 8; i++) printf("  %s\n", reports[i]);
    CHECK_EQ_I64(nreports, 0);
    /* bruno keeps node 3000 from round 110 on: reported at round 111 */
    for (int64_t k = 108; k < 114; k++) {
        int32_t base[] = {1000, 1001}, kept[] = {1000, 1001, 3000};
        digest(c, k, 1, "anna", base, 2, 0);
        digest(c, k, 2, "bruno", k >= 110 ? kept : base, k >= 110 ? 3 : 2, 0);
        digest(c, k, 3, "carla", base, 2, 0);
    }
    CHECK(nreports >= 1);
    CHECK(strstr(reports[0], "round 111") != NULL);
    CHECK(strstr(reports[0], "server bruno differs from anna, carla: node 3000 not on the others") !=
          NULL);
    tutti__checker_free(c);
}

/* A failure on one server is reported; one that falls into the next round
 * on another server is not. */
static void test_fail_windows(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    nreports = 0;
    int32_t ids[] = {1000};
    for (int64_t k = 100; k < 106; k++) {
        digest(c, k, 1, "anna", ids, 1, k == 101);
        digest(c, k, 2, "bruno", ids, 1, k == 102); /* the same failure, a round later */
        digest(c, k, 3, "carla", ids, 1, k == 101 || k == 104);
    }
    for (int i = 0; i < nreports && i < 8; i++) printf("  %s\n", reports[i]);
    CHECK_EQ_I64(nreports, 1);
    CHECK(strstr(reports[0], "round 104") != NULL);
    CHECK(strstr(reports[0], "server carla had 1 failure against 0 on anna, bruno") != NULL);
    CHECK(strstr(reports[0], "/n_set Node 1000 not found") != NULL);
    tutti__checker_free(c);
}

/* A server that stops sending digests does not stop the others' rounds;
 * one that starts later is compared from its second round. */
static void test_comings_and_goings(void)
{
    tutti__checker *c = tutti__checker_new(on_report, NULL);
    nreports = 0;
    int32_t ids[] = {1000}, other[] = {1000, 1003};
    for (int64_t k = 100; k < 110; k++) {
        digest(c, k, 1, "anna", ids, 1, 0);
        if (k < 104) digest(c, k, 2, "bruno", ids, 1, 0);
        if (k >= 105) digest(c, k, 3, "carla", k >= 107 ? other : ids, k >= 107 ? 2 : 1, 0);
    }
    tutti__checker_time(c, INT64_MAX);
    tutti__checker_stats st;
    tutti__checker_stats_get(c, &st);
    CHECK(nreports >= 1);
    CHECK(strstr(reports[0], "round 108") != NULL);
    CHECK(strstr(reports[0], "node 1003 not on the others") != NULL);
    tutti__checker_free(c);
}

int main(void)
{
    RUN(test_digest_text);
    RUN(test_identical);
    RUN(test_missing_node);
    RUN(test_edges_in_a_row);
    RUN(test_carried);
    RUN(test_fail_windows);
    RUN(test_comings_and_goings);
    RUN(test_node_counts);
    TEST_END();
}
