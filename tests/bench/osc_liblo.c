/*
 * The project's OSC reader and writer (plugin/osc.c) against liblo's
 * (Debian 12: liblo 0.31), on the fuzz corpora: what each accepts, whether
 * liblo reads back exactly the bytes it accepted, time per message and heap
 * allocations per message. docs/osc.md records the figures and the decision
 * they support.
 *
 *   bench_osc_liblo [--iterations N] [--mutations N] [--seed S] [--dump DIR]
 *                   [--checked-only] DIR...
 *
 * --dump writes every input the two disagree on there (only-tutti-N,
 * only-liblo-N), to look at. --checked-only hands liblo only the inputs
 * tutti__osc_check() accepts: under valgrind, that shows whether the check in
 * front of liblo keeps it inside its input (liblo 0.31 reads past the end of
 * some malformed packets: docs/osc.md).
 *
 * Inputs: every file in the DIRs (the checked-in seeds of tests/fuzz/corpus/
 * osc and ns: raw OSC packets as clients and servers send them) and, for
 * each, deterministic mutations: every truncation, and N random edits (a
 * byte flipped, a 32-bit word set to 0, -1, INT_MAX or a size near the
 * packet's, 4 bytes inserted or removed). A packet is "accepted" by the
 * project when tutti__osc_check() passes, and by liblo when
 * lo_message_deserialise() returns a message (for a message) or
 * lo_server_dispatch_data() consumes it (for a bundle: liblo has no bundle
 * decoder of its own).
 *
 * Allocations are counted by this program's own malloc/calloc/realloc/free,
 * which forward to glibc's (so it is built without sanitizers).
 *
 * The last line is one JSON object.
 */
#include "osc.h"

#include <dirent.h>
#include <lo/lo.h>
#include <lo/lo_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------- counting allocator */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long long allocs;

/* Exported (the build hides symbols by default), so liblo's calls come here. */
#define EXPORTED __attribute__((visibility("default")))
EXPORTED void *malloc(size_t n)
{
    allocs++;
    return __libc_malloc(n);
}
EXPORTED void *calloc(size_t k, size_t n)
{
    allocs++;
    return __libc_calloc(k, n);
}
EXPORTED void *realloc(void *p, size_t n)
{
    allocs++;
    return __libc_realloc(p, n);
}
EXPORTED void free(void *p)
{
    __libc_free(p);
}

/* ------------------------------------------------------------ inputs */

typedef struct input {
    uint8_t *p;
    size_t n;
} input;

static input *inputs;
static size_t ninputs, cap_inputs;

static void add(const uint8_t *p, size_t n)
{
    if (ninputs == cap_inputs) {
        cap_inputs = cap_inputs ? 2 * cap_inputs : 1024;
        inputs = realloc(inputs, cap_inputs * sizeof *inputs);
        if (!inputs) abort();
    }
    inputs[ninputs].p = malloc(n ? n : 1);
    if (!inputs[ninputs].p) abort();
    memcpy(inputs[ninputs].p, p, n);
    inputs[ninputs++].n = n;
}

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void mutate(const uint8_t *p, size_t n, int count)
{
    uint8_t *b = malloc(n + 8);
    if (!b) abort();
    for (size_t k = 0; k < n; k++)
        add(p, k); /* every truncation */
    for (int i = 0; i < count && n >= 8; i++) {
        memcpy(b, p, n);
        size_t m = n;
        size_t at = rnd() % n, w = (at & ~(size_t)3) % (n - 3);
        uint32_t vals[] = {0, 0xffffffffu, 0x7fffffffu, (uint32_t)n, (uint32_t)n - 4,
                           (uint32_t)n + 4};
        switch (rnd() % 4) {
        case 0: b[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
        case 1: tutti__osc_wr32(b + w, vals[rnd() % 6]); break;
        case 2: /* 4 bytes inserted */
            memmove(b + w + 4, b + w, n - w);
            tutti__osc_wr32(b + w, rnd() % 3 ? 0 : rnd());
            m = n + 4;
            break;
        default: /* 4 bytes removed */
            memmove(b + w, b + w + 4, n - w - 4);
            m = n - 4;
            break;
        }
        add(b, m);
    }
    free(b);
}

static int load_dir(const char *dir, int mutations)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench_osc_liblo: cannot read %s\n", dir);
        return -1;
    }
    struct dirent *e;
    int seeds = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        uint8_t buf[65536];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        add(buf, n);
        mutate(buf, n, mutations);
        seeds++;
    }
    closedir(d);
    return seeds;
}

/* ---------------------------------------------------------- verdicts */

static void lo_error_quiet(int num, const char *msg, const char *where)
{
    (void)num, (void)msg, (void)where;
}

static unsigned long long dispatched;
static int count_handler(const char *path, const char *types, lo_arg **argv, int argc,
                         lo_message msg, void *ctx)
{
    (void)path, (void)types, (void)argv, (void)argc, (void)msg, (void)ctx;
    dispatched++;
    return 0;
}

static lo_server srv;

static bool liblo_accepts(const uint8_t *p, size_t n, bool *roundtrip)
{
    *roundtrip = true;
    uint8_t *copy = malloc(n ? n : 1); /* liblo takes a non-const pointer */
    if (!copy) abort();
    memcpy(copy, p, n);
    bool ok;
    if (n >= 8 && !memcmp(copy, "#bundle", 8)) {
        ok = lo_server_dispatch_data(srv, copy, n) >= 0;
    } else {
        int err = 0;
        lo_message m = lo_message_deserialise(copy, n, &err);
        ok = m != NULL;
        if (m) {
            /* what liblo read, written again, must be what came in */
            const char *path = lo_get_path(copy, (ssize_t)n);
            size_t len = lo_message_length(m, path);
            uint8_t *out = malloc(len);
            if (!out) abort();
            *roundtrip = len == n && lo_message_serialise(m, path, out, &len) &&
                         !memcmp(out, p, n);
            free(out);
            lo_message_free(m);
        }
    }
    free(copy);
    return ok;
}

typedef struct example {
    int kept;
    char hex[3][200];
} example;

static void keep(example *e, const uint8_t *p, size_t n)
{
    if (e->kept >= 3) return;
    char *o = e->hex[e->kept++];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < 200; i++) {
        uint8_t c = p[i];
        k += (size_t)snprintf(o + k, 200 - k, c >= 32 && c < 127 && c != '\\' ? "%c" : "\\x%02x",
                              c);
    }
}

/* ------------------------------------------------------------ timing */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef struct figure {
    double ns;
    double allocs;
} figure;

static volatile size_t sink;

static figure decode_tutti(const uint8_t *p, size_t n, long iters)
{
    unsigned long long a0 = allocs;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        tutti__osc_msg m;
        if (tutti__osc_check(p, n) || tutti__osc_msg_parse(p, n, &m)) abort();
        tutti__osc_iter it;
        tutti__osc_iter_init(&it, &m);
        size_t s = 0;
        for (const char *t = m.tags; t && *t; t++)
            s += *t == 's' ? (size_t)tutti__osc_iter_gets(&it, "")[0]
                           : (size_t)tutti__osc_iter_geti(&it, 0);
        sink += s;
    }
    return (figure){(now_ns() - t0) / (double)iters, (double)(allocs - a0) / (double)iters};
}

static figure decode_liblo(const uint8_t *p, size_t n, long iters)
{
    uint8_t *copy = malloc(n);
    if (!copy) abort();
    memcpy(copy, p, n);
    unsigned long long a0 = allocs;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        int err;
        lo_message m = lo_message_deserialise(copy, n, &err);
        if (!m) abort();
        const char *t = lo_message_get_types(m);
        lo_arg **argv = lo_message_get_argv(m);
        size_t s = 0;
        for (int k = 0; t[k]; k++)
            s += t[k] == 's' ? (size_t)argv[k]->s : t[k] == 'i' ? (size_t)argv[k]->i
                                                                : (size_t)argv[k]->f;
        sink += s;
        lo_message_free(m);
    }
    figure f = {(now_ns() - t0) / (double)iters, (double)(allocs - a0) / (double)iters};
    free(copy);
    return f;
}

/* An /s_new as a client sends it: "default", id, action, target, "freq", 440. */
static figure encode_tutti(long iters)
{
    uint8_t out[256];
    unsigned long long a0 = allocs;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++)
        sink += tutti__osc_write(out, sizeof out, "/s_new", "siiisf", "default", (int32_t)i,
                                 0, 1, "freq", 440.0);
    return (figure){(now_ns() - t0) / (double)iters, (double)(allocs - a0) / (double)iters};
}

static figure encode_liblo(long iters)
{
    uint8_t out[256];
    unsigned long long a0 = allocs;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        lo_message m = lo_message_new();
        lo_message_add_string(m, "default");
        lo_message_add_int32(m, (int32_t)i);
        lo_message_add_int32(m, 0);
        lo_message_add_int32(m, 1);
        lo_message_add_string(m, "freq");
        lo_message_add_float(m, 440.0f);
        size_t n = lo_message_length(m, "/s_new");
        if (n > sizeof out || !lo_message_serialise(m, "/s_new", out, &n)) abort();
        sink += n;
        lo_message_free(m);
    }
    return (figure){(now_ns() - t0) / (double)iters, (double)(allocs - a0) / (double)iters};
}

/* the median of 5 runs */
static figure best_of(figure (*fn)(const uint8_t *, size_t, long), const uint8_t *p,
                      size_t n, long iters)
{
    figure r[5];
    for (int i = 0; i < 5; i++)
        r[i] = fn(p, n, iters);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (r[j].ns < r[i].ns) {
                figure t = r[i];
                r[i] = r[j];
                r[j] = t;
            }
    return r[2];
}

static figure best_of_enc(figure (*fn)(long), long iters)
{
    figure r[5];
    for (int i = 0; i < 5; i++)
        r[i] = fn(iters);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (r[j].ns < r[i].ns) {
                figure t = r[i];
                r[i] = r[j];
                r[j] = t;
            }
    return r[2];
}

static const input *find_seed(const char *addr)
{
    for (size_t i = 0; i < ninputs; i++)
        if (inputs[i].n > strlen(addr) && !strcmp((const char *)inputs[i].p, addr) &&
            !tutti__osc_check(inputs[i].p, inputs[i].n))
            return &inputs[i];
    return NULL;
}

int main(int argc, char **argv)
{
    long iters = 200000;
    int mutations = 400;
    rng_state = 0x9e3779b97f4a7c15ull;
    int ndirs = 0, seeds = 0;
    const char *dump = NULL;
    bool checked_only = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iters = atol(argv[++i]);
        else if (!strcmp(argv[i], "--mutations") && i + 1 < argc)
            mutations = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--checked-only"))
            checked_only = true;
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
            dump = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 0) | 1;
        else {
            int k = load_dir(argv[i], mutations);
            if (k < 0) return 2;
            seeds += k;
            ndirs++;
        }
    }
    if (!ndirs || iters < 1) {
        fputs("usage: bench_osc_liblo [--iterations N] [--mutations N] [--seed S] [--dump DIR] "
              "DIR...\n",
              stderr);
        return 2;
    }
    srv = lo_server_new(NULL, lo_error_quiet);
    if (!srv) {
        fputs("bench_osc_liblo: lo_server_new failed\n", stderr);
        return 1;
    }
    lo_server_enable_queue(srv, 0, 1); /* bundles at once, whatever their time */
    lo_server_add_method(srv, NULL, NULL, count_handler, NULL);

    /* correctness */
    size_t both = 0, neither = 0, only_tutti = 0, only_liblo = 0, not_roundtrip = 0,
           only_tutti_int = 0;
    example ex_tutti = {0}, ex_liblo = {0}, ex_round = {0};
    for (size_t i = 0; i < ninputs; i++) {
        const uint8_t *p = inputs[i].p;
        size_t n = inputs[i].n;
        bool t = tutti__osc_check(p, n) == 0, rt = true;
        if (checked_only && !t) {
            neither++;
            continue;
        }
        bool l = liblo_accepts(p, n, &rt);
        if (dump && t != l) {
            char path[4096];
            snprintf(path, sizeof path, "%s/only-%s-%zu", dump, t ? "tutti" : "liblo", i);
            FILE *f = fopen(path, "wb");
            if (f) {
                fwrite(p, 1, n, f);
                fclose(f);
            }
        }
        if (t && l) both++;
        if (!t && !l) neither++;
        if (t && !l) {
            only_tutti++;
            if (p[0] == 0)
                only_tutti_int++;
            else
                keep(&ex_tutti, p, n);
        }
        if (!t && l) {
            only_liblo++;
            keep(&ex_liblo, p, n);
        }
        if (l && !rt) {
            not_roundtrip++;
            keep(&ex_round, p, n);
        }
    }
    printf("inputs: %zu (%d seeds from %d folders, their truncations, %d edits each)\n",
           ninputs, seeds, ndirs, mutations);
    printf("  both accept %zu, both refuse %zu\n", both, neither);
    printf("  only tutti accepts %zu (%zu of them scsynth's integer commands)\n", only_tutti,
           only_tutti_int);
    for (int k = 0; k < ex_tutti.kept; k++) printf("    e.g. %s\n", ex_tutti.hex[k]);
    printf("  only liblo accepts %zu\n", only_liblo);
    for (int k = 0; k < ex_liblo.kept; k++) printf("    e.g. %s\n", ex_liblo.hex[k]);
    printf("  liblo accepts but writes back other bytes %zu\n", not_roundtrip);
    for (int k = 0; k < ex_round.kept; k++) printf("    e.g. %s\n", ex_round.hex[k]);

    /* speed and allocations, per message */
    const char *names[] = {"/s_new", "/d_recv", "/notify", "/status"};
    printf("decode, per message (median of 5 runs of %ld):\n", iters);
    char json[2048];
    size_t j = (size_t)snprintf(json, sizeof json,
                                "{\"inputs\":%zu,\"both_accept\":%zu,\"both_refuse\":%zu,"
                                "\"only_tutti\":%zu,\"only_tutti_int_cmd\":%zu,"
                                "\"only_liblo\":%zu,\"liblo_not_roundtrip\":%zu,\"decode\":{",
                                ninputs, both, neither, only_tutti, only_tutti_int, only_liblo,
                                not_roundtrip);
    int first = 1;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const input *in = find_seed(names[k]);
        if (!in) continue;
        figure t = best_of(decode_tutti, in->p, in->n, iters);
        figure l = best_of(decode_liblo, in->p, in->n, iters);
        printf("  %-8s %4zu bytes: tutti %7.1f ns, %.1f allocations; liblo %7.1f ns, %.1f "
               "allocations\n",
               names[k], in->n, t.ns, t.allocs, l.ns, l.allocs);
        j += (size_t)snprintf(json + j, sizeof json - j,
                              "%s\"%s\":{\"bytes\":%zu,\"tutti_ns\":%.1f,\"tutti_allocs\":%.1f,"
                              "\"liblo_ns\":%.1f,\"liblo_allocs\":%.1f}",
                              first ? "" : ",", names[k], in->n, t.ns, t.allocs, l.ns,
                              l.allocs);
        first = 0;
    }
    figure et = best_of_enc(encode_tutti, iters), el = best_of_enc(encode_liblo, iters);
    printf("encode an /s_new (siiisf): tutti %.1f ns, %.1f allocations; liblo %.1f ns, %.1f "
           "allocations\n",
           et.ns, et.allocs, el.ns, el.allocs);
    snprintf(json + j, sizeof json - j,
             "},\"encode_s_new\":{\"tutti_ns\":%.1f,\"tutti_allocs\":%.1f,\"liblo_ns\":%.1f,"
             "\"liblo_allocs\":%.1f}}",
             et.ns, et.allocs, el.ns, el.allocs);
    puts(json);
    lo_server_free(srv);
    return 0;
}
