/*
 * Tests of a part's state for newcomers (plugin/state.c): what is kept, what
 * dies with what, completion messages, and what is sent, as text.
 */
#include "ns.h"
#include "osc.h"
#include "state.h"
#include "test.h"
#include "tutti/tutti.h"

static char text[1 << 16];

/* One emitted message as "/name a b c", messages joined by "; ". */
static int describe(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    CHECK(tutti__osc_check(p, len) == 0);
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m)) return 1;
    size_t at = strlen(text);
    const char *name = tutti__ns_command_name(p, len);
    at += (size_t)snprintf(text + at, sizeof text - at, "%s%s", at ? "; " : "",
                           name ? name : "?");
    const uint8_t *a = m.args;
    for (const char *t = m.tags ? m.tags : ""; *t; t++) {
        switch (*t) {
        case 'i':
            at += (size_t)snprintf(text + at, sizeof text - at, " %d",
                                   (int32_t)tutti__osc_rd32(a));
            a += 4;
            break;
        case 'f': {
            uint32_t u = tutti__osc_rd32(a);
            float f;
            memcpy(&f, &u, 4);
            at += (size_t)snprintf(text + at, sizeof text - at, " %g", (double)f);
            a += 4;
            break;
        }
        case 's':
            at += (size_t)snprintf(text + at, sizeof text - at, " %s", (const char *)a);
            a += (strlen((const char *)a) + 4) & ~(size_t)3;
            break;
        case 'b': {
            uint32_t n = tutti__osc_rd32(a);
            at += (size_t)snprintf(text + at, sizeof text - at, " <%u>", n);
            a += 4 + tutti__osc_pad4(n);
            break;
        }
        default: break;
        }
    }
    return 0;
}

static const char *sent(const tutti__state *s)
{
    text[0] = 0;
    tutti__state_each(s, describe, NULL);
    return text;
}

#define NOTE(s, addr, types, ...)                                                   \
    do {                                                                            \
        uint8_t b_[512];                                                            \
        size_t n_ = tutti__osc_write(b_, sizeof b_, addr, types, __VA_ARGS__);      \
        CHECK(n_ > 0);                                                              \
        tutti__state_note(s, b_, n_);                                               \
    } while (0)

#define EXPECT(s, want)                                                             \
    do {                                                                            \
        const char *got_ = sent(s);                                                 \
        if (strcmp(got_, want)) fprintf(stderr, "  got:  %s\n  want: %s\n", got_, want); \
        CHECK(!strcmp(got_, want));                                                 \
    } while (0)

/* What Sonic Pi makes: groups, a mixer, notes that end by themselves. */
static void test_studio(void)
{
    tutti__state *s;
    CHECK(tutti__state_create(&s) == 0);
    NOTE(s, "/g_new", "iii", 2, 0, 0);
    NOTE(s, "/g_new", "iii", 3, 2, 2);
    NOTE(s, "/s_new", "siiisf", "sonic-pi-mixer", 5, 0, 2, "in_bus", 10.0);
    NOTE(s, "/s_new", "siiisf", "sonic-pi-beep", 100, 0, 3, "note", 60.0);
    NOTE(s, "/s_new", "siii", "sonic-pi-beep", 101, 0, 3);
    NOTE(s, "/n_set", "isf", 100, "amp", 0.5);
    NOTE(s, "/n_set", "isf", 999, "amp", 0.5); /* not a node the part made */
    NOTE(s, "/s_new", "siii", "sonic-pi-beep", -1, 0, 3); /* auto-numbered */
    EXPECT(s, "/g_new 2 0 0; /g_new 3 2 2; /s_new sonic-pi-mixer 5 0 2 in_bus 10; "
              "/s_new sonic-pi-beep 100 0 3 note 60; /s_new sonic-pi-beep 101 0 3; "
              "/n_set 100 amp 0.5");
    CHECK_EQ_I64(tutti__state_nodes(s), 5);
    tutti__state_node_end(s, 100);
    tutti__state_node_end(s, 101);
    EXPECT(s, "/g_new 2 0 0; /g_new 3 2 2; /s_new sonic-pi-mixer 5 0 2 in_bus 10");
    CHECK_EQ_I64(tutti__state_count(s), 3);
    tutti__state_destroy(s);
}

/* Freeing a group frees what is in it, at any depth; /g_freeAll keeps the
 * group, /g_deepFree keeps groups. */
static void test_free_groups(void)
{
    tutti__state *s;
    CHECK(tutti__state_create(&s) == 0);
    NOTE(s, "/g_new", "iiiiii", 10, 0, 1, 11, 0, 10); /* two groups, one message */
    NOTE(s, "/g_new", "iii", 12, 1, 11);
    NOTE(s, "/s_new", "siii", "a", 20, 0, 12);
    NOTE(s, "/s_new", "siii", "b", 21, 1, 11);
    NOTE(s, "/s_new", "siii", "c", 22, 0, 1);
    NOTE(s, "/g_deepFree", "i", 11);
    EXPECT(s, "/g_new 10 0 1; /g_new 11 0 10; /g_new 12 1 11; /s_new c 22 0 1");
    NOTE(s, "/s_new", "siii", "d", 23, 0, 12);
    NOTE(s, "/g_freeAll", "i", 10);
    EXPECT(s, "/g_new 10 0 1; /s_new c 22 0 1");
    NOTE(s, "/g_new", "iii", 13, 0, 10);
    NOTE(s, "/n_free", "ii", 10, 22);
    EXPECT(s, "");
    CHECK_EQ_I64(tutti__state_nodes(s), 0);
    tutti__state_destroy(s);
}

/* Buffers: the commands since the last allocation; freed, nothing. Completion
 * messages follow their command as messages of their own. */
static void test_buffers(void)
{
    tutti__state *s;
    CHECK(tutti__state_create(&s) == 0);
    uint8_t done[64], msg[256];
    size_t dn = tutti__osc_write(done, sizeof done, "/s_new", "siii", "player", 30, 0, 1);
    size_t n = tutti__osc_write(msg, sizeof msg, "/b_allocRead", "isiib", 4,
                                "tutti-asset:0123456789abcdef/kick.wav", 0, 0, done, dn);
    tutti__state_note(s, msg, n);
    NOTE(s, "/b_alloc", "iii", 5, 1024, 1);
    NOTE(s, "/b_setn", "iiiff", 5, 0, 2, 0.25, 0.5);
    NOTE(s, "/b_alloc", "iii", 6, 8, 1);
    NOTE(s, "/b_free", "i", 6);
    EXPECT(s, "/b_allocRead 4 tutti-asset:0123456789abcdef/kick.wav 0 0; "
              "/s_new player 30 0 1; /b_alloc 5 1024 1; /b_setn 5 0 2 0.25 0.5");
    NOTE(s, "/b_alloc", "iii", 5, 16, 2); /* again: what it held is gone */
    EXPECT(s, "/b_allocRead 4 tutti-asset:0123456789abcdef/kick.wav 0 0; "
              "/s_new player 30 0 1; /b_alloc 5 16 2");
    tutti__state_destroy(s);
}

/* Synthdefs once each; /d_freeAll forgets them. Control buses: the last
 * value of each. */
static void test_defs_and_buses(void)
{
    tutti__state *s;
    CHECK(tutti__state_create(&s) == 0);
    uint8_t def[40] = "SCgf";
    NOTE(s, "/d_recv", "b", def, sizeof def);
    NOTE(s, "/d_recv", "b", def, sizeof def);
    NOTE(s, "/c_set", "if", 3, 0.5);
    NOTE(s, "/c_set", "if", 3, 0.75);
    NOTE(s, "/c_set", "if", 4, 1.0);
    EXPECT(s, "/d_recv <40>; /c_set 3 0.75; /c_set 4 1");
    NOTE(s, "/d_freeAll", "", 0);
    EXPECT(s, "/c_set 3 0.75; /c_set 4 1");
    tutti__state_destroy(s);
}

/* Placement: a replaced node is gone; a node placed beside one that is gone
 * by the time the state is sent goes to the tail of its parent. Moves are
 * kept while both nodes live. */
static void test_placement(void)
{
    tutti__state *s;
    CHECK(tutti__state_create(&s) == 0);
    NOTE(s, "/g_new", "iii", 40, 0, 1);
    NOTE(s, "/s_new", "siii", "x", 41, 0, 40);
    NOTE(s, "/s_new", "siii", "y", 42, 3, 41); /* after 41, in 40 */
    NOTE(s, "/s_new", "siii", "z", 43, 4, 42); /* replaces 42 */
    /* 42 is gone: 43 goes to the tail of 40, its parent */
    EXPECT(s, "/g_new 40 0 1; /s_new x 41 0 40; /s_new z 43 1 40");
    tutti__state_node_end(s, 41);
    EXPECT(s, "/g_new 40 0 1; /s_new z 43 1 40");
    NOTE(s, "/g_new", "iii", 44, 0, 1);
    NOTE(s, "/g_head", "ii", 44, 43);
    NOTE(s, "/n_before", "ii", 40, 44);
    EXPECT(s, "/g_new 40 0 1; /s_new z 43 1 40; /g_new 44 0 1; /g_head 44 43; "
              "/n_before 40 44");
    NOTE(s, "/n_free", "i", 40); /* made in 40 but moved to 44, it stays */
    EXPECT(s, "/s_new z 43 1 0; /g_new 44 0 1; /g_head 44 43");
    NOTE(s, "/n_free", "i", 44); /* 43 is in it: both go */
    EXPECT(s, "");
    tutti__state_destroy(s);
}

/* sclang's integer commands and bundles are read like the rest. */
static void test_bundles_and_numbers(void)
{
    tutti__state *s;
    CHECK(tutti__state_create(&s) == 0);
    uint8_t m2[64], b[256];
    /* sclang's /g_new 1 0 0: command number 21 in place of the address */
    uint8_t sc[24] = {0, 0, 0, 21, ',', 'i', 'i', 'i', 0, 0, 0, 0};
    tutti__osc_wr32(sc + 12, 1), tutti__osc_wr32(sc + 16, 0), tutti__osc_wr32(sc + 20, 0);
    size_t n2 = tutti__osc_write(m2, sizeof m2, "/s_new", "siii", "default", 1000, 0, 1);
    memcpy(b, "#bundle\0", 8);
    memset(b + 8, 0, 8);
    b[15] = 1;
    size_t at = 16;
    tutti__osc_wr32(b + at, 24);
    memcpy(b + at + 4, sc, 24);
    at += 28;
    tutti__osc_wr32(b + at, (uint32_t)n2);
    memcpy(b + at + 4, m2, n2);
    at += 4 + n2;
    CHECK(tutti__osc_check(b, at) == 0);
    tutti__state_note(s, b, at);
    EXPECT(s, "/g_new 1 0 0; /s_new default 1000 0 1");
    tutti__state_reset(s);
    EXPECT(s, "");
    tutti__state_destroy(s);
}

int main(void)
{
    RUN(test_studio);
    RUN(test_free_groups);
    RUN(test_buffers);
    RUN(test_defs_and_buses);
    RUN(test_placement);
    RUN(test_bundles_and_numbers);
    TEST_END();
}
