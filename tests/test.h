/*
 * A small test harness: CHECK records a failure and goes on; a test file is
 * one process, its exit status is the number of failed checks (capped).
 */
#ifndef TUTTI_TEST_H
#define TUTTI_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        test_checks++;                                                               \
        if (!(cond)) {                                                               \
            test_failures++;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_EQ_I64(a, b)                                                           \
    do {                                                                             \
        long long va_ = (long long)(a), vb_ = (long long)(b);                        \
        test_checks++;                                                               \
        if (va_ != vb_) {                                                            \
            test_failures++;                                                         \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
                    __LINE__, #a, #b, va_, vb_);                                     \
        }                                                                            \
    } while (0)

#define RUN(fn)                                                                      \
    do {                                                                             \
        int before_ = test_failures;                                                 \
        fn();                                                                        \
        fprintf(stderr, "%-40s %s\n", #fn, test_failures == before_ ? "ok" : "FAILED"); \
    } while (0)

#define TEST_END()                                                                   \
    do {                                                                             \
        fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);       \
        return test_failures > 100 ? 100 : test_failures;                            \
    } while (0)

#endif
