/*
 * Credentials on disk: the hub's key, its invitation store, invitation and
 * passphrase files; and `tutti invite` (docs/security.md).
 *
 * Files holding secrets are written 0600 inside a 0700 folder and replaced
 * by rename, so a reader never sees half of one.
 */
#include "auth.h"
#include "cli.h"
#include "credentials.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int write_private(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    ok &= fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
    return ok ? 0 : -1;
}

int cli_read_line_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(buf, (int)cap, f)) {
        fclose(f);
        buf[0] = 0;
        return -1;
    }
    fclose(f);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    return 0;
}

int cli_hub_key(const char *dir, uint8_t sk[64], char *err, size_t errlen)
{
    char path[4096], line[256];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/hub.key", dir);
    if (cli_read_line_file(path, line, sizeof line) == 0) {
        uint8_t seed[32], pk[32];
        bool ok = tutti__hex32(line, strlen(line), seed);
        if (ok) tutti__auth_keypair(pk, sk, seed);
        tutti__auth_wipe(seed, sizeof seed);
        tutti__auth_wipe(line, sizeof line);
        if (!ok) snprintf(err, errlen, "%s is not a hub key (64 hex digits)", path);
        return ok ? 0 : -1;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t seed[32], pk[32];
    randombytes_buf(seed, sizeof seed);
    tutti__auth_keypair(pk, sk, seed);
    char hex[65], text[80];
    tutti__to_hex(hex, seed, 32);
    snprintf(text, sizeof text, "%s\n", hex);
    int rc = write_private(path, text);
    tutti__auth_wipe(seed, sizeof seed);
    tutti__auth_wipe(hex, sizeof hex);
    tutti__auth_wipe(text, sizeof text);
    if (rc) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return rc;
}

/* The store: invitation lines, "revoked ID" lines, comments. */
int cli_invites_load(const char *dir, tutti_invite **out, uint32_t *n, char *err,
                     size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/invites", dir);
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    tutti_invite *list = NULL;
    uint32_t cnt = 0, cap = 0;
    char line[512];
    int no = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len || line[0] == '#') continue;
        if (!strncmp(line, "revoked ", 8)) {
            for (uint32_t i = 0; i < cnt; i++)
                if (!strcmp(list[i].id, line + 8)) list[i--] = list[--cnt];
            continue;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            tutti_invite *p = realloc(list, cap * sizeof *p);
            if (!p) {
                rc = -1;
                snprintf(err, errlen, "out of memory");
                break;
            }
            list = p;
        }
        const char *why;
        if (tutti__invite_parse(line, len, &list[cnt], &why) != 0) {
            snprintf(err, errlen, "%s line %d: %s", path, no, why);
            rc = -1;
            break;
        }
        cnt++;
    }
    tutti__auth_wipe(line, sizeof line);
    fclose(f);
    if (rc) {
        if (list) tutti__auth_wipe(list, cap * sizeof *list);
        free(list);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

int cli_invite_read(const char *path, tutti_invite *inv, char *err, size_t errlen)
{
    char line[512];
    const char *why = NULL;
    /* the argument may be the invitation itself rather than a file */
    if (!strncmp(path, "tutti-invite-1 ", 15)) {
        if (tutti__invite_parse(path, strlen(path), inv, &why) == 0) return 0;
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (cli_read_line_file(path, line, sizeof line) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = tutti__invite_parse(line, strlen(line), inv, &why);
    tutti__auth_wipe(line, sizeof line);
    if (rc) snprintf(err, errlen, "%s: %s", path, why);
    return rc ? -1 : 0;
}

void cli_hex_key(char out[65], const uint8_t pk[32])
{
    tutti__to_hex(out, pk, 32);
}

bool cli_parse_key(const char *hex, uint8_t out[32])
{
    return tutti__hex32(hex, strlen(hex), out);
}

int cli_role(const char *name)
{
    return tutti__role_from_name(name, strlen(name));
}

static const char invite_usage[] =
    "usage: tutti invite --keys DIR [--role ROLE] [--expires S] [--hub URL] [--out FILE]\n"
    "       tutti invite --keys DIR --revoke ID\n"
    "       tutti invite --keys DIR --list\n"
    "\n"
    "Issues an invitation to the session of the hub whose keys are in DIR (the\n"
    "folder given to tutti hub --keys; its key is made there if there is none\n"
    "yet). The invitation is one line: give it to one musician, who joins with\n"
    "tutti member --invite FILE. It holds a secret: send it privately.\n"
    "\n"
    "  --role ROLE   performer (default), listener, conductor or admin\n"
    "  --expires S   it can be used to join for S seconds (default 86400; 0:\n"
    "                until revoked)\n"
    "  --hub URL     written into the invitation, for the musician's convenience\n"
    "  --out FILE    write it to FILE (0600) instead of stdout\n"
    "  --revoke ID   revoke an invitation: nobody joins with it any more, and\n"
    "                members admitted with it are removed (within a second)\n"
    "  --list        the invitations in force (ids, roles, expiry; no secrets)\n";

int cmd_invite(int argc, char **argv)
{
    const char *dir = NULL, *role = "performer", *hub = NULL, *out = NULL, *revoke = NULL;
    double expires = 86400;
    bool list = false;
    const cli_opt opts[] = {
        {"keys", CLI_STRING, &dir, 0, 0, NULL},
        {"role", CLI_STRING, &role, 0, 0, NULL},
        {"expires", CLI_NUMBER, &expires, 0, 1e10, "seconds"},
        {"hub", CLI_STRING, &hub, 0, 0, NULL},
        {"out", CLI_STRING, &out, 0, 0, NULL},
        {"revoke", CLI_STRING, &revoke, 0, 0, NULL},
        {"list", CLI_FLAG, &list, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse("invite", invite_usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!dir) {
        fprintf(stderr, "tutti invite: say which hub's keys folder (--keys DIR)\n");
        return CLI_USAGE;
    }
    if (tutti__auth_init() != 0) return CLI_FAIL;
    char err[300], path[4096];
    uint8_t sk[64];
    if (cli_hub_key(dir, sk, err, sizeof err) != 0) {
        fprintf(stderr, "tutti invite: %s\n", err);
        return CLI_FAIL;
    }
    snprintf(path, sizeof path, "%s/invites", dir);
    tutti_invite *inv;
    uint32_t n;
    if (cli_invites_load(dir, &inv, &n, err, sizeof err) != 0) {
        fprintf(stderr, "tutti invite: %s\n", err);
        return CLI_FAIL;
    }
    /* the store as it is, to append to */
    size_t cap = 512 * (n + 2) + 64;
    char *text = calloc(1, cap), line[512];
    if (!text) return CLI_FAIL;
    strcat(text, "# tutti invitations issued by this hub (tutti invite); secrets: keep 0600\n");
    for (uint32_t i = 0; i < n; i++) {
        tutti__invite_format(&inv[i], line, sizeof line);
        strcat(text, line);
        strcat(text, "\n");
    }
    int status = CLI_OK;
    if (list) {
        for (uint32_t i = 0; i < n; i++) {
            char when[64] = "never";
            if (inv[i].expires) {
                time_t t = (time_t)inv[i].expires;
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
            }
            printf("%s %s expires %s%s\n", inv[i].id, tutti_role_name(inv[i].role), when,
                   inv[i].expires && inv[i].expires < (int64_t)time(NULL) ? " (expired)" : "");
        }
    } else if (revoke) {
        bool found = false;
        for (uint32_t i = 0; i < n; i++) found |= !strcmp(inv[i].id, revoke);
        if (!found) {
            fprintf(stderr, "tutti invite: no invitation %s in %s\n", revoke, path);
            status = CLI_FAIL;
        } else {
            snprintf(line, sizeof line, "revoked %s\n", revoke);
            strcat(text, line);
            if (write_private(path, text) != 0) {
                fprintf(stderr, "tutti invite: cannot write %s: %s\n", path, strerror(errno));
                status = CLI_FAIL;
            } else {
                printf("tutti invite: revoked %s\n", revoke);
            }
        }
    } else {
        int r = cli_role(role);
        if (r < 0) {
            fprintf(stderr, "tutti invite: --role is performer, listener, conductor or admin\n");
            status = CLI_USAGE;
        } else if (hub && strlen(hub) >= sizeof inv[0].url) {
            fprintf(stderr, "tutti invite: --hub URL too long\n");
            status = CLI_USAGE;
        } else {
            tutti_invite ni;
            memset(&ni, 0, sizeof ni);
            uint8_t idb[8];
            randombytes_buf(idb, sizeof idb);
            tutti__to_hex(ni.id, idb, sizeof idb);
            ni.role = r;
            ni.expires = expires > 0 ? (int64_t)time(NULL) + (int64_t)expires : 0;
            randombytes_buf(ni.secret, sizeof ni.secret);
            memcpy(ni.hub_pk, sk + 32, 32);
            if (hub) strcpy(ni.url, hub);
            tutti__invite_format(&ni, line, sizeof line);
            strcat(text, line);
            strcat(text, "\n");
            strcat(line, "\n");
            if (write_private(path, text) != 0 || (out && write_private(out, line) != 0)) {
                fprintf(stderr, "tutti invite: cannot write %s: %s\n", out ? out : path,
                        strerror(errno));
                status = CLI_FAIL;
            } else if (out) {
                printf("tutti invite: %s (%s) written to %s\n", ni.id, role, out);
            } else {
                fputs(line, stdout);
            }
            tutti__auth_wipe(&ni, sizeof ni);
        }
    }
    tutti__auth_wipe(text, cap);
    tutti__auth_wipe(line, sizeof line);
    tutti__auth_wipe(sk, sizeof sk);
    if (inv) tutti__auth_wipe(inv, n * sizeof *inv);
    free(inv);
    free(text);
    return status;
}
