/* Credentials on disk (see credentials.c). */
#ifndef TUTTI_CLI_CREDENTIALS_H
#define TUTTI_CLI_CREDENTIALS_H

#include "tutti/tutti.h"

#include <fcntl.h>
#include <stddef.h>

/* The first line of a file, without its newline. 0 or -1 (errno). */
int cli_read_line_file(const char *path, char *buf, size_t cap);
/* DIR/hub.key: read it, or make DIR (0700) and a new key (0600). */
int cli_hub_key(const char *dir, uint8_t sk[64], char *err, size_t errlen);
/* DIR/invites (missing: none). *out is malloc'd (free it). */
int cli_invites_load(const char *dir, tutti_invite **out, uint32_t *n, char *err,
                     size_t errlen);
/* An invitation from a file, or the invitation text itself. */
int cli_invite_read(const char *path, tutti_invite *inv, char *err, size_t errlen);
void cli_hex_key(char out[65], const uint8_t pk[32]);
bool cli_parse_key(const char *hex, uint8_t out[32]);
int cli_role(const char *name); /* -1 if unknown */
int cmd_invite(int argc, char **argv);

#endif
