/*
 * Journals: every delivered event, one line each, in the order delivered.
 *
 *   <t_ns> <origin> <seq> <kind> <payload as lowercase hex, "-" if empty>
 *
 * A last line without its newline (a writer killed mid-line) is not read.
 * t_ns is session time (ns since 1900-01-01), so the lines of a correct
 * journal are sorted by (t, origin, seq) — the session's total order. Two
 * members are coherent when their journals are identical, byte for byte, over
 * the key range both cover.
 */
#ifndef TUTTI_CLI_JOURNAL_H
#define TUTTI_CLI_JOURNAL_H

#include "tutti/tutti.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_journal {
    FILE *f;
    char *line;
    size_t cap;
    uint64_t lines, user_events;
    bool failed; /* a write failed (disk full, ...) */
} cli_journal;

/* Open for writing (truncates). path NULL: a journal that only counts.
 * Returns 0 or -1 with errno set. */
int cli_journal_open(cli_journal *j, const char *path);
void cli_journal_write(cli_journal *j, const tutti_event *ev);
/* Flush and close; returns 0, or -1 if anything failed to reach the file. */
int cli_journal_close(cli_journal *j);

typedef struct cli_journal_summary {
    uint64_t lines, user_events;
    tutti_key first, last;
    uint64_t shared_lines; /* lines inside the shared range */
    uint64_t shared_hash;  /* FNV-1a 64 of those lines */
} cli_journal_summary;

enum {
    CLI_JOURNALS_IDENTICAL = 0,
    CLI_JOURNALS_DIFFER = 1, /* includes a journal out of order */
    CLI_JOURNALS_UNREADABLE = 2,
    CLI_JOURNALS_DISJOINT = 3, /* no key range in common */
};

/*
 * Compare n >= 2 journals over the key range they share, from the largest
 * first key to the smallest last key. Writes a verdict, or the first
 * difference with both lines and their line numbers, to `out` (may be NULL).
 * `sum`, if not NULL, receives n summaries. Returns a CLI_JOURNALS_* value.
 */
int cli_journal_compare(const char *const *paths, int n, FILE *out,
                        cli_journal_summary *sum);

#endif
