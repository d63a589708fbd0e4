/*
 * Tests of the asset cache's protections (plugin/asset.c): what a client may
 * share (confined to allowed folders, links resolved), the cache's modes,
 * and partial uploads (a chunk that starts nothing is not stored; a
 * stream's partial files are counted and removed).
 */
#include "asset.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[256];

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_shareable(void)
{
    char allowed[300], outside[300], file[400], secret[400], link[400], ssh[400],
        why[300];
    snprintf(allowed, sizeof allowed, "%s/allowed", top);
    snprintf(outside, sizeof outside, "%s/outside", top);
    mkdir(allowed, 0700);
    mkdir(outside, 0700);
    snprintf(file, sizeof file, "%s/kick.wav", allowed);
    snprintf(secret, sizeof secret, "%s/shadow", outside);
    snprintf(link, sizeof link, "%s/innocent.wav", allowed);
    put_file(file, "RIFF");
    put_file(secret, "root:x:");
    CHECK(symlink(secret, link) == 0);
    setenv("TUTTI_SHARE_DIRS", allowed, 1);
    CHECK(tutti__asset_shareable(file, why, sizeof why) == 0);
    CHECK(tutti__asset_shareable(secret, why, sizeof why) == -EACCES);
    CHECK(strstr(why, "not shared with the session") != NULL);
    /* a link inside an allowed folder to a file outside it */
    CHECK(tutti__asset_shareable(link, why, sizeof why) == -EACCES);
    CHECK(tutti__asset_shareable("/etc/shadow", why, sizeof why) != 0);
    CHECK(tutti__asset_shareable("/etc/passwd", why, sizeof why) == -EACCES);
    /* a folder whose name starts like an allowed one is not inside it */
    char sibling[320], sfile[400];
    snprintf(sibling, sizeof sibling, "%s/allowed2", top);
    mkdir(sibling, 0700);
    snprintf(sfile, sizeof sfile, "%s/x.wav", sibling);
    put_file(sfile, "RIFF");
    CHECK(tutti__asset_shareable(sfile, why, sizeof why) == -EACCES);
    /* .ssh never, even inside an allowed folder */
    snprintf(ssh, sizeof ssh, "%s/.ssh", allowed);
    mkdir(ssh, 0700);
    strcat(ssh, "/id_ed25519");
    put_file(ssh, "KEY");
    CHECK(tutti__asset_shareable(ssh, why, sizeof why) == -EACCES);
    /* several folders */
    char both[700];
    snprintf(both, sizeof both, "%s:%s", outside, allowed);
    setenv("TUTTI_SHARE_DIRS", both, 1);
    CHECK(tutti__asset_shareable(secret, why, sizeof why) == 0);
    /* the default: $HOME, /usr/share, /usr/local/share, the temporary folder */
    unsetenv("TUTTI_SHARE_DIRS");
    setenv("HOME", allowed, 1);
    setenv("TMPDIR", allowed, 1);
    CHECK(tutti__asset_shareable(file, why, sizeof why) == 0);
    CHECK(tutti__asset_shareable(secret, why, sizeof why) == -EACCES);
    CHECK(tutti__asset_shareable("/etc/passwd", why, sizeof why) == -EACCES);
    CHECK(strstr(why, "TUTTI_SHARE_DIRS unset") != NULL);
}

static void test_cache_private_and_partials(void)
{
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cache", top);
    mkdir(cache, 0755); /* made wide before: it becomes private when used */
    setenv("TUTTI_CACHE", cache, 1);
    const uint8_t data[] = "0123456789abcdef";
    char token[TUTTI_ASSET_TOKEN_MAX + 16], path[4200];
    tutti__asset_token(tutti__asset_hash(data, 16), "x.wav", token, sizeof token);
    /* a chunk that does not start the file is not stored */
    CHECK(tutti__asset_put(token, 7, 16, 8, data + 8, 8) == -ENOENT);
    CHECK_EQ_I64(tutti__asset_partials(7), 0);
    CHECK(tutti__asset_put(token, 7, 16, 0, data, 8) == 0);
    CHECK_EQ_I64(tutti__asset_partials(7), 1);
    CHECK_EQ_I64(tutti__asset_partials(8), 0);
    struct stat st;
    CHECK(stat(cache, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(tutti__asset_put(token, 7, 16, 8, data + 8, 8) == 1); /* complete */
    CHECK_EQ_I64(tutti__asset_partials(7), 0);
    CHECK(tutti__asset_path(token, path, sizeof path) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* an upload left half done, then dropped with its stream */
    uint8_t other[16] = "fedcba9876543210";
    tutti__asset_token(tutti__asset_hash(other, 16), "y.wav", token, sizeof token);
    CHECK(tutti__asset_put(token, 9, 16, 0, other, 8) == 0);
    CHECK_EQ_I64(tutti__asset_partials(9), 1);
    CHECK_EQ_I64(tutti__asset_drop_partials(0, 3600), 0); /* not stale yet */
    CHECK_EQ_I64(tutti__asset_drop_partials(9, 0), 1);
    CHECK_EQ_I64(tutti__asset_partials(9), 0);
    CHECK(tutti__asset_put(token, 9, 16, 0, other, 8) == 0);
    CHECK_EQ_I64(tutti__asset_drop_partials(0, 0), 1); /* stale at once */
}

int main(void)
{
    snprintf(top, sizeof top, "%s/tutti-asset-test.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(top)) return 1;
    RUN(test_shareable);
    RUN(test_cache_private_and_partials);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", top);
    TEST_END();
}
