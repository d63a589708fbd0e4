/*
 * Tests of the small pure functions: error names, NTP timetag conversion, the
 * event order and role names.
 */
#include "test.h"
#include "tutti/tutti.h"

#define NTP_ONE_S (UINT64_C(1) << 32)

static void test_strerror(void)
{
    const char *seen[16];
    int n = 0;
    for (int e = TUTTI_OK; e >= TUTTI_ETIMEDOUT; e--) {
        const char *s = tutti_strerror(e);
        CHECK(s != NULL && s[0] != '\0');
        CHECK(strcmp(s, tutti_strerror(-1000)) != 0);
        for (int i = 0; i < n; i++)
            CHECK(strcmp(s, seen[i]) != 0); /* every code has its own text */
        seen[n++] = s;
    }
    CHECK(strcmp(tutti_strerror(TUTTI_EPROTO), "malformed message") == 0);
    CHECK(tutti_strerror(1) != NULL);
    CHECK(tutti_strerror(-11) != NULL);
    CHECK(tutti_strerror(INT32_MIN) != NULL);
}

static void test_ntp_known_values(void)
{
    CHECK_EQ_I64(tutti_time_from_ntp(0), 0);
    CHECK_EQ_I64(tutti_time_from_ntp(NTP_ONE_S), TUTTI_S);
    CHECK_EQ_I64(tutti_time_from_ntp(NTP_ONE_S / 2), TUTTI_S / 2);
    CHECK_EQ_I64(tutti_time_from_ntp(NTP_ONE_S / 4), TUTTI_S / 4);
    CHECK_EQ_I64(tutti_time_from_ntp(3 * NTP_ONE_S + (NTP_ONE_S >> 3)),
                 3 * TUTTI_S + 125 * TUTTI_MS);
    /* The OSC "immediately" timetag is 0.23 ns: 0. */
    CHECK_EQ_I64(tutti_time_from_ntp(1), 0);
    /* 2 units = 0.47 ns rounds to 0, 3 units = 0.70 ns rounds to 1. */
    CHECK_EQ_I64(tutti_time_from_ntp(2), 0);
    CHECK_EQ_I64(tutti_time_from_ntp(3), 1);
    /* The largest fraction rounds up to a whole second. */
    CHECK_EQ_I64(tutti_time_from_ntp(UINT32_MAX), TUTTI_S);
    /* The end of era 0. */
    CHECK_EQ_I64(tutti_time_from_ntp(UINT64_MAX),
                 (int64_t)UINT32_MAX * TUTTI_S + TUTTI_S);
    /* 2025-01-01T00:00:00Z is 3944678400 s after 1900. */
    CHECK_EQ_I64(tutti_time_from_ntp(UINT64_C(3944678400) << 32),
                 INT64_C(3944678400) * TUTTI_S);

    CHECK(tutti_time_to_ntp(0) == 0);
    CHECK(tutti_time_to_ntp(TUTTI_S) == NTP_ONE_S);
    CHECK(tutti_time_to_ntp(TUTTI_S / 2) == NTP_ONE_S / 2);
    CHECK(tutti_time_to_ntp(1) == 4); /* 4.29 units */
    CHECK(tutti_time_to_ntp(TUTTI_S - 1) == NTP_ONE_S - 4);
    CHECK(tutti_time_to_ntp(INT64_C(3944678400) * TUTTI_S + 250 * TUTTI_MS) ==
          ((UINT64_C(3944678400) << 32) | (NTP_ONE_S / 4)));
}

static void test_ntp_eras(void)
{
    const int64_t era = (int64_t)NTP_ONE_S * TUTTI_S; /* 2^32 s in ns */
    /* A time in era 1 maps to the era-relative timetag; so does a negative one. */
    CHECK(tutti_time_to_ntp(era) == 0);
    CHECK(tutti_time_to_ntp(era + TUTTI_S) == NTP_ONE_S);
    CHECK(tutti_time_to_ntp(-TUTTI_S) == (UINT64_C(0xffffffff) << 32));
    CHECK(tutti_time_to_ntp(-1) == UINT64_MAX - 3); /* 2^32 s - 1 ns */
    /* The extremes do not overflow. */
    CHECK(tutti_time_to_ntp(INT64_MAX) == tutti_time_to_ntp(INT64_MAX % era));
    CHECK(tutti_time_to_ntp(INT64_MIN) == tutti_time_to_ntp(INT64_MIN % era + era));
}

static void test_ntp_round_trips(void)
{
    /* ns -> timetag -> ns is exact everywhere in era 0. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    const int64_t era = (int64_t)NTP_ONE_S * TUTTI_S;
    int bad = 0;
    for (int i = 0; i < 1000000; i++) {
        int64_t t;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t = (int64_t)(x % (uint64_t)era);
        if (i < 2000) t = i < 1000 ? i : era - 1 - (i - 1000); /* both ends of the era */
        if (tutti_time_from_ntp(tutti_time_to_ntp(t)) != t) bad++;
    }
    CHECK_EQ_I64(bad, 0);

    /* timetag -> ns -> timetag is within half a nanosecond (2.15 units). */
    bad = 0;
    for (int i = 0; i < 1000000; i++) {
        uint64_t ntp, back;
        int64_t diff;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ntp = x;
        if ((ntp >> 32) == UINT32_MAX) continue; /* rounding up may leave era 0 */
        back = tutti_time_to_ntp(tutti_time_from_ntp(ntp));
        diff = (int64_t)(back - ntp);
        if (diff < -3 || diff > 3) bad++;
    }
    CHECK_EQ_I64(bad, 0);

    /* Monotonic: a later timetag is never an earlier time. */
    bad = 0;
    for (uint64_t ntp = (UINT64_C(5) << 32) - 5000; ntp < (UINT64_C(5) << 32) + 5000;
         ntp++)
        if (tutti_time_from_ntp(ntp + 1) < tutti_time_from_ntp(ntp)) bad++;
    CHECK_EQ_I64(bad, 0);
}

static void test_key_cmp(void)
{
    /* Sorted ascending; every pair must compare consistently with the index. */
    const tutti_key keys[] = {
        {INT64_MIN, 0, 0},
        {INT64_MIN, UINT32_MAX, UINT64_MAX},
        {-1, 5, 0},
        {0, 0, 0},
        {0, 0, 1},
        {0, 0, UINT64_MAX},
        {0, 1, 0},
        {0, 0x80000000u, 0},
        {0, UINT32_MAX, 0},
        {1, 0, 0},
        {TUTTI_S, 2, 7},
        {INT64_MAX, 0, 0},
        {INT64_MAX, UINT32_MAX, UINT64_MAX},
    };
    const int n = sizeof keys / sizeof keys[0];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int c = tutti_key_cmp(&keys[i], &keys[j]);
            int want = i < j ? -1 : i > j ? 1 : 0;
            CHECK((c < 0 ? -1 : c > 0 ? 1 : 0) == want);
        }
}

static void test_role_name(void)
{
    CHECK(strcmp(tutti_role_name(TUTTI_ROLE_PERFORMER), "performer") == 0);
    CHECK(strcmp(tutti_role_name(TUTTI_ROLE_LISTENER), "listener") == 0);
    CHECK(strcmp(tutti_role_name(TUTTI_ROLE_CONDUCTOR), "conductor") == 0);
    CHECK(strcmp(tutti_role_name(TUTTI_ROLE_ADMIN), "admin") == 0);
    CHECK(strcmp(tutti_role_name(4), "unknown") == 0);
    CHECK(strcmp(tutti_role_name(-1), "unknown") == 0);
}

int main(void)
{
    RUN(test_strerror);
    RUN(test_ntp_known_values);
    RUN(test_ntp_eras);
    RUN(test_ntp_round_trips);
    RUN(test_key_cmp);
    RUN(test_role_name);
    TEST_END();
}
