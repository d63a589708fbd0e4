/*
 * tutti verify: are these journals the same performance?
 */
#include "cli.h"
#include "journal.h"

#include <stdlib.h>

static const char usage[] =
    "usage: tutti verify JOURNAL JOURNAL [JOURNAL...]\n"
    "\n"
    "Checks that members' journals (written by tutti member --journal) record the\n"
    "same events in the same order over the time they all cover: from the latest\n"
    "first event to the earliest last event. Prints \"identical\" or the first\n"
    "difference, with both lines and their line numbers.\n"
    "\n"
    "Exit status: 0 identical, 1 different (or out of order), 2 a journal could\n"
    "not be read, 3 the journals share no time at all.\n";

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
    free(paths);
    return rc;
}
