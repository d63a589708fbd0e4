/*
 * Writing and comparing journals (see journal.h).
 *
 * Comparison streams: two passes over each file (find the ranges, then walk
 * them in lockstep), one line of each file in memory at a time, so journals of
 * any length compare in constant memory.
 */
#define _GNU_SOURCE /* getline */
#include "journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ writing */

int cli_journal_open(cli_journal *j, const char *path)
{
    memset(j, 0, sizeof *j);
    if (!path) return 0;
    j->f = fopen(path, "w");
    if (!j->f) return -1;
    setvbuf(j->f, NULL, _IOFBF, 1 << 16);
    return 0;
}

void cli_journal_write(cli_journal *j, const tutti_event *ev)
{
    j->lines++;
    if (ev->kind == TUTTI_EV_USER) j->user_events++;
    if (!j->f) return;
    size_t need = 80 + 2 * (size_t)ev->len;
    if (need > j->cap) {
        char *p = realloc(j->line, need);
        if (!p) {
            j->failed = true;
            return;
        }
        j->line = p;
        j->cap = need;
    }
    static const char hex[] = "0123456789abcdef";
    int k = snprintf(j->line, j->cap, "%" PRId64 " %" PRIu32 " %" PRIu64 " %" PRIu32 " ",
                     ev->key.t, ev->key.origin, ev->key.seq, ev->kind);
    char *p = j->line + k;
    if (ev->len == 0) *p++ = '-';
    for (uint32_t i = 0; i < ev->len; i++) {
        *p++ = hex[ev->data[i] >> 4];
        *p++ = hex[ev->data[i] & 15];
    }
    *p++ = '\n';
    if (fwrite(j->line, 1, (size_t)(p - j->line), j->f) != (size_t)(p - j->line))
        j->failed = true;
}

int cli_journal_close(cli_journal *j)
{
    int rc = j->failed ? -1 : 0;
    if (j->f && fclose(j->f) != 0) rc = -1;
    free(j->line);
    memset(j, 0, sizeof *j);
    return rc;
}

/* ------------------------------------------------------------ reading */

typedef struct reader {
    const char *path;
    FILE *f;
    char *line;
    size_t cap;
    size_t len; /* without the newline */
    uint64_t lineno;
    tutti_key key;
    uint32_t kind;
} reader;

/* Next line into r; 1 read, 0 end of file, -1 malformed or unreadable. */
static int next_line(reader *r, FILE *out)
{
    errno = 0;
    ssize_t k = getline(&r->line, &r->cap, r->f);
    if (k < 0) {
        if (errno && out) fprintf(out, "%s: cannot read: %s\n", r->path, strerror(errno));
        return errno ? -1 : 0;
    }
    /* A last line without its newline was cut off (the process writing it
     * was killed mid-write): the journal ends before it. */
    if (r->line[k - 1] != '\n') return 0;
    r->lineno++;
    r->line[--k] = 0;
    r->len = (size_t)k;
    char *p = r->line, *e;
    errno = 0;
    r->key.t = strtoll(p, &e, 10);
    bool ok = e != p && *e == ' ';
    p = e;
    unsigned long o = strtoul(p, &e, 10);
    ok = ok && e != p && *e == ' ' && o <= UINT32_MAX;
    p = e;
    r->key.seq = strtoull(p, &e, 10);
    ok = ok && e != p && *e == ' ';
    p = e;
    unsigned long kind = strtoul(p, &e, 10);
    ok = ok && e != p && *e == ' ' && errno == 0;
    if (!ok) {
        if (out)
            fprintf(out, "%s line %" PRIu64 ": not a journal line: %.80s\n", r->path,
                    r->lineno, r->line);
        return -1;
    }
    r->key.origin = (uint32_t)o;
    r->kind = (uint32_t)kind;
    return 1;
}

static int reader_open(reader *r, const char *path, FILE *out)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "r");
    if (!r->f) {
        if (out) fprintf(out, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void reader_close(reader *r)
{
    if (r->f) fclose(r->f);
    free(r->line);
    r->f = NULL;
    r->line = NULL;
}

static void fmt_key(char *buf, size_t cap, const tutti_key *k)
{
    snprintf(buf, cap, "(t %" PRId64 ", origin %" PRIu32 ", seq %" PRIu64 ")", k->t,
             k->origin, k->seq);
}

/* Pass 1: counts, first and last key, and the order of the lines. */
static int scan(const char *path, FILE *out, cli_journal_summary *s)
{
    reader r;
    if (reader_open(&r, path, out)) return CLI_JOURNALS_UNREADABLE;
    memset(s, 0, sizeof *s);
    int rc = CLI_JOURNALS_IDENTICAL, k;
    tutti_key prev = {0, 0, 0};
    while ((k = next_line(&r, out)) == 1) {
        if (s->lines && tutti_key_cmp(&r.key, &prev) <= 0) {
            if (out)
                fprintf(out,
                        "%s line %" PRIu64
                        ": out of order: this event does not come after "
                        "the one on the line before\n",
                        path, r.lineno);
            rc = CLI_JOURNALS_DIFFER;
            break;
        }
        if (!s->lines) s->first = r.key;
        s->last = prev = r.key;
        s->lines++;
        if (r.kind == TUTTI_EV_USER) s->user_events++;
    }
    if (k < 0) rc = CLI_JOURNALS_UNREADABLE;
    reader_close(&r);
    return rc;
}

/* Advance r to its next line inside [.., hi]; false at the end of the range. */
static int step(reader *r, const tutti_key *hi, FILE *out)
{
    int k = next_line(r, out);
    if (k <= 0) return k;
    return tutti_key_cmp(&r->key, hi) <= 0 ? 1 : 0;
}

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int cli_journal_compare(const char *const *paths, int n, FILE *out,
                        cli_journal_summary *sum)
{
    if (n < 2) return CLI_JOURNALS_UNREADABLE;
    cli_journal_summary *s = sum ? sum : calloc((size_t)n, sizeof *s);
    reader *r = calloc((size_t)n, sizeof *r);
    bool *live = calloc((size_t)n, sizeof *live);
    int rc = CLI_JOURNALS_IDENTICAL;
    if (!s || !r || !live) {
        rc = CLI_JOURNALS_UNREADABLE;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int k = scan(paths[i], out, &s[i]);
        if (k > rc) rc = k;
    }
    if (rc != CLI_JOURNALS_IDENTICAL) goto done;
    tutti_key lo = s[0].first, hi = s[0].last;
    for (int i = 0; i < n; i++) {
        if (!s[i].lines) {
            if (out) fprintf(out, "%s is empty: nothing to compare\n", paths[i]);
            rc = CLI_JOURNALS_DISJOINT;
            goto done;
        }
        if (tutti_key_cmp(&s[i].first, &lo) > 0) lo = s[i].first;
        if (tutti_key_cmp(&s[i].last, &hi) < 0) hi = s[i].last;
    }
    char klo[96], khi[96];
    fmt_key(klo, sizeof klo, &lo);
    fmt_key(khi, sizeof khi, &hi);
    if (tutti_key_cmp(&lo, &hi) > 0) {
        if (out)
            fprintf(out, "the journals share no time: one ends before another begins\n");
        rc = CLI_JOURNALS_DISJOINT;
        goto done;
    }
    /* Pass 2: position every reader on its first line >= lo. */
    for (int i = 0; i < n; i++) {
        s[i].shared_hash = 0xcbf29ce484222325ull;
        if (reader_open(&r[i], paths[i], out)) {
            rc = CLI_JOURNALS_UNREADABLE;
            goto done;
        }
        int k;
        while ((k = next_line(&r[i], out)) == 1 && tutti_key_cmp(&r[i].key, &lo) < 0) {
        }
        if (k < 0) {
            rc = CLI_JOURNALS_UNREADABLE;
            goto done;
        }
        live[i] = k == 1 && tutti_key_cmp(&r[i].key, &hi) <= 0;
    }
    for (uint64_t event = 1;; event++) {
        int nlive = 0;
        for (int i = 0; i < n; i++)
            nlive += live[i];
        if (nlive == 0) break;
        int bad = -1;
        for (int i = 1; i < n && bad < 0; i++) {
            if (live[i] != live[0] ||
                (live[0] &&
                 (r[i].len != r[0].len || memcmp(r[i].line, r[0].line, r[0].len))))
                bad = i;
        }
        if (bad >= 0) {
            if (out) {
                fprintf(out, "the journals differ at shared event %" PRIu64 ":\n", event);
                int who[2] = {0, bad};
                for (int w = 0; w < 2; w++) {
                    reader *x = &r[who[w]];
                    if (live[who[w]])
                        fprintf(out, "  %s line %" PRIu64 ": %s\n", x->path, x->lineno,
                                x->line);
                    else
                        fprintf(out, "  %s: (no more events up to %s)\n", x->path, khi);
                }
            }
            rc = CLI_JOURNALS_DIFFER;
            goto done;
        }
        for (int i = 0; i < n; i++) {
            s[i].shared_lines++;
            s[i].shared_hash = fnv1a(s[i].shared_hash, r[i].line, r[i].len);
            s[i].shared_hash = fnv1a(s[i].shared_hash, "\n", 1);
            int k = step(&r[i], &hi, out);
            if (k < 0) {
                rc = CLI_JOURNALS_UNREADABLE;
                goto done;
            }
            live[i] = k == 1;
        }
    }
    if (out)
        fprintf(out,
                "identical: %d journals agree on all %" PRIu64
                " events they share, %.3f s of session time\n  from %s\n  to   %s\n",
                n, s[0].shared_lines, (double)(hi.t - lo.t) / 1e9, klo, khi);
done:
    for (int i = 0; r && i < n; i++)
        reader_close(&r[i]);
    free(r);
    free(live);
    if (s != sum) free(s);
    return rc;
}
