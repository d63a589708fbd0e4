/*
 * tutti verify: are these journals the same performance?
 */
#define _GNU_SOURCE /* getline */
#include "check.h"
#include "cli.h"
#include "journal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tutti verify JOURNAL JOURNAL [JOURNAL...]\n"
    "\n"
    "Checks that members' journals (written by tutti member --journal) record the\n"
    "same events in the same order over the time they all cover: from the latest\n"
    "first event to the earliest last event. Prints \"identical\" or the first\n"
    "difference, with both lines and their line numbers.\n"
    "\n"
    "Journals of servers (the plugin's) also hold every member's server-check\n"
    "digests: what each server's node tree held and which commands failed there,\n"
    "round after round. They are compared as the members compared them live;\n"
    "servers that did different things with the same stream make the journals\n"
    "\"not coherent\" too, each difference named (round, part, node or command,\n"
    "which server).\n"
    "\n"
    "Exit status: 0 identical, 1 different (or out of order, or servers that\n"
    "did different things), 2 a journal could not be read, 3 the journals share\n"
    "no time at all.\n";

typedef struct found {
    char (*text)[3 * TUTTI_CHECK_TEXT];
    size_t n, cap;
} found;

/* The text without its round ("round K, "): a difference that lasts is
 * listed once, at its first round. */
static const char *what(const char *text)
{
    const char *c = strchr(text, ',');
    return c ? c : text;
}

static void on_diff(void *arg, const tutti__check_diff *d)
{
    found *f = arg;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(what(f->text[i]), what(d->text))) return;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        void *p = realloc(f->text, cap * sizeof *f->text);
        if (!p) return;
        f->text = p;
        f->cap = cap;
    }
    snprintf(f->text[f->n++], sizeof f->text[0], "%s", d->text);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The server-check digests of one journal, compared in its order. How
 * many digests it held, or -1 when it cannot be read. */
static long check_journal(const char *path, found *f, tutti__checker_stats *st)
{
    FILE *in = fopen(path, "r");
    if (!in) return -1;
    tutti__checker *c = tutti__checker_new(on_diff, f);
    if (!c) {
        fclose(in);
        return -1;
    }
    static const char prefix[] = "2f74757474692f636865636b"; /* "/tutti/check" */
    char *line = NULL;
    size_t cap = 0;
    uint8_t *bytes = NULL;
    size_t bcap = 0;
    long digests = 0;
    ssize_t k;
    while ((k = getline(&line, &cap, in)) > 0) {
        if (line[k - 1] != '\n') break; /* cut off */
        long long t;
        unsigned long origin, kind;
        unsigned long long seq;
        int at = 0;
        if (sscanf(line, "%lld %lu %llu %lu %n", &t, &origin, &seq, &kind, &at) < 4 || !at)
            continue;
        tutti__checker_time(c, (tutti_time)t);
        const char *hex = line + at;
        if (kind != 0 || strncmp(hex, prefix, sizeof prefix - 1)) continue;
        size_t n = strcspn(hex, "\n") / 2;
        if (n > bcap) {
            uint8_t *p = realloc(bytes, n);
            if (!p) break;
            bytes = p;
            bcap = n;
        }
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            bytes[i] = (uint8_t)(hi << 4 | lo);
        }
        tutti__digest d;
        if (!ok || tutti__digest_decode(&d, bytes, n, (uint32_t)origin)) continue;
        digests++;
        tutti__checker_digest(c, &d);
        tutti__digest_clear(&d);
    }
    tutti__checker_time(c, INT64_MAX);
    tutti__checker_stats_get(c, st);
    tutti__checker_free(c);
    free(line);
    free(bytes);
    fclose(in);
    return digests;
}

int cmd_verify(int argc, char **argv)
{
    static const cli_opt opts[] = {{NULL, 0, NULL, 0, 0, NULL}};
    char **paths = calloc((size_t)argc + 1, sizeof *paths);
    int n = 0;
    if (!paths) return CLI_FAIL;
    int rc = cli_parse("verify", usage, argc, argv, opts, paths, &n);
    if (rc) {
        free(paths);
        return rc < 0 ? CLI_OK : rc;
    }
    if (n < 2) {
        fprintf(stderr, "tutti verify: give at least two journals to compare\n");
        free(paths);
        return CLI_USAGE;
    }
    rc = cli_journal_compare((const char *const *)paths, n, stdout, NULL);
    if (rc == CLI_JOURNALS_IDENTICAL || rc == CLI_JOURNALS_DIFFER) {
        /* what the servers did: every journal's digests, compared */
        found f = {NULL, 0, 0};
        uint64_t rounds = 0, identical = 0;
        long digests = 0;
        for (int i = 0; i < n; i++) {
            tutti__checker_stats st;
            long d = check_journal(paths[i], &f, &st);
            if (d <= 0) continue;
            digests += d;
            if (st.rounds > rounds) rounds = st.rounds, identical = st.identical;
        }
        if (f.n) {
            printf("not coherent: the servers did different things with the same stream "
                   "(%zu difference%s over %" PRIu64 " rounds of the server check):\n",
                   f.n, f.n == 1 ? "" : "s", rounds);
            for (size_t i = 0; i < f.n; i++) printf("  %s\n", f.text[i]);
            rc = CLI_JOURNALS_DIFFER;
        } else if (digests) {
            printf("servers: identical in %" PRIu64 " rounds of the server check (%" PRIu64
                   " compared without a difference)\n",
                   rounds, identical);
        }
        free(f.text);
    }
    free(paths);
    return rc;
}
