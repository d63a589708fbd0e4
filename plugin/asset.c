/*
 * Assets (see asset.h).
 */
#define _GNU_SOURCE
/* 64-bit file offsets and inode numbers on a 32-bit system (the Bela): the
 * cache holds sound files of any size, and a 32-bit readdir fails with
 * EOVERFLOW on a filesystem whose inode numbers need 64 bits (the armhf
 * tests under qemu-arm found the cache's partial uploads invisible). */
#define _FILE_OFFSET_BITS 64
#include "asset.h"

#include "osc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

int tutti__asset_read(const char *path, uint8_t **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        int e = errno ? errno : EISDIR;
        close(fd);
        return -e;
    }
    if ((uint64_t)st.st_size > TUTTI_ASSET_MAX) {
        close(fd);
        return -EFBIG;
    }
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *d = malloc(n ? n : 1);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, d + got, n - got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(d);
            close(fd);
            return -e;
        }
        got += (size_t)r;
    }
    close(fd);
    *data = d;
    *len = n;
    return 0;
}

uint64_t tutti__asset_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 0x100000001b3ull;
    return h;
}

/* The extension of `path` if it is 1..8 letters and digits, else "bin". */
static void ext_of(const char *path, char *out, size_t cap)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t n = 0;
    if (dot && (!slash || dot > slash)) {
        for (const char *p = dot + 1; *p; p++, n++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9')) || n >= 8) {
                n = 0;
                break;
            }
    }
    snprintf(out, cap, "%.*s", n ? (int)n : 3, n ? dot + 1 : "bin");
}

void tutti__asset_token(uint64_t hash, const char *path, char *out, size_t cap)
{
    char ext[16];
    ext_of(path, ext, sizeof ext);
    snprintf(out, cap, TUTTI_ASSET_PREFIX "%016" PRIx64 ".%s", hash, ext);
}

bool tutti__asset_token_parse(const char *s, uint64_t *hash)
{
    size_t pl = strlen(TUTTI_ASSET_PREFIX);
    if (strncmp(s, TUTTI_ASSET_PREFIX, pl)) return false;
    const char *h = s + pl;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = h[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    if (h[16] != '.') return false;
    size_t n = 0;
    for (const char *p = h + 17; *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    if (n < 1 || n > 8) return false;
    if (hash) *hash = v;
    return true;
}

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0700);
        *p = '/';
        if (r && errno != EEXIST) return -errno;
    }
    if (mkdir(path, 0700) && errno != EEXIST) return -errno;
    /* private even when it was made before, wider (the cache's own folder) */
    struct stat st;
    if (!stat(path, &st) && (st.st_mode & 077) && st.st_uid == geteuid())
        chmod(path, 0700);
    return 0;
}

/* Whether real path `real` is inside folder `dir` (itself resolved). */
static bool inside(const char *real, const char *dir)
{
    char rd[PATH_MAX];
    if (!dir || !*dir || !realpath(dir, rd)) return false;
    size_t n = strlen(rd);
    if (n == 1 && rd[0] == '/') return true;
    return !strncmp(real, rd, n) && (real[n] == '/' || real[n] == 0);
}

int tutti__asset_shareable(const char *path, char *why, size_t cap)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        int e = errno;
        snprintf(why, cap, "cannot read %s: %s", path, strerror(e));
        return -e;
    }
    if (strstr(real, "/.ssh/") || strstr(real, "/.gnupg/") || strstr(real, "/.config/")) {
        snprintf(why, cap,
                 "%s is not shared with the session: files in .ssh, .gnupg or .config "
                 "never are",
                 path);
        return -EACCES;
    }
    const char *dirs = getenv("TUTTI_SHARE_DIRS");
    if (dirs && *dirs) {
        char list[4096];
        snprintf(list, sizeof list, "%s", dirs);
        char *save = NULL;
        for (char *d = strtok_r(list, ":", &save); d; d = strtok_r(NULL, ":", &save))
            if (inside(real, d)) return 0;
    } else {
        const char *tmp = getenv("TMPDIR");
        const char *def[] = {getenv("HOME"), "/usr/share", "/usr/local/share",
                             tmp && *tmp ? tmp : "/tmp"};
        for (size_t i = 0; i < sizeof def / sizeof def[0]; i++)
            if (inside(real, def[i])) return 0;
    }
    snprintf(why, cap,
             "%s is not shared with the session: it is outside the folders this server "
             "allows (TUTTI_SHARE_DIRS%s)",
             path,
             dirs && *dirs
                 ? ""
                 : " unset: $HOME, /usr/share, /usr/local/share, the temporary folder");
    return -EACCES;
}

int tutti__asset_path(const char *token, char *out, size_t cap)
{
    if (!tutti__asset_token_parse(token, NULL)) return -EINVAL;
    char dir[4096];
    const char *e = getenv("TUTTI_CACHE"), *x = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (e && *e)
        snprintf(dir, sizeof dir, "%s", e);
    else if (x && *x)
        snprintf(dir, sizeof dir, "%s/tutti/assets", x);
    else
        snprintf(dir, sizeof dir, "%s/.cache/tutti/assets", home && *home ? home : "/tmp");
    int r = mkdirs(dir);
    if (r) return r;
    int n = snprintf(out, cap, "%s/%s", dir, token + strlen(TUTTI_ASSET_PREFIX));
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

bool tutti__asset_have(const char *token)
{
    char p[4200];
    struct stat st;
    return !tutti__asset_path(token, p, sizeof p) && !stat(p, &st) && S_ISREG(st.st_mode);
}

int tutti__asset_put(const char *token, uint32_t stream, uint64_t total, uint64_t offset,
                     const uint8_t *chunk, size_t n)
{
    uint64_t hash;
    if (!tutti__asset_token_parse(token, &hash) || total > TUTTI_ASSET_MAX ||
        offset > total || n > total - offset)
        return -EINVAL;
    char path[4200], part[4220];
    int r = tutti__asset_path(token, path, sizeof path);
    if (r) return r;
    /* one partial file per stream: members that share the same file at the
     * same time send the same chunks, interleaved, each from offset 0 */
    snprintf(part, sizeof part, "%s.part.%08" PRIx32, path, stream);
    if (tutti__asset_have(token)) {
        unlink(part); /* another stream completed it first */
        return 1;
    }
    int fd = open(part, O_WRONLY | O_CLOEXEC | (offset ? 0 : O_CREAT | O_TRUNC), 0600);
    if (fd < 0) return -errno;
    if (n && pwrite(fd, chunk, n, (off_t)offset) != (ssize_t)n) {
        r = errno ? -errno : -EIO;
        close(fd);
        return r;
    }
    close(fd);
    if (offset + n < total) return 0;
    /* Complete: check the content against its name before it can be played. */
    uint8_t *d;
    size_t len;
    r = tutti__asset_read(part, &d, &len);
    if (r) return r;
    bool good = len == total && tutti__asset_hash(d, len) == hash;
    free(d);
    if (!good) {
        unlink(part);
        return -EINVAL;
    }
    return rename(part, path) ? -errno : 1;
}

/* A chunk of a shared file (/tutti/asset token total offset bytes) as the
 * journal keeps it: the bytes' FNV-1a 64 instead of the bytes. The content
 * is checked against its token when it is stored, and a join moves
 * megabytes of samples that every member would otherwise write out as hex
 * on the thread that delivers. 0 when `p` is not such a chunk. */
size_t tutti__asset_digest_msg(const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
    tutti__osc_msg m;
    if (!p || tutti__osc_is_bundle(p, len) || tutti__osc_msg_parse(p, len, &m) || !m.addr ||
        strcmp(m.addr, "/tutti/asset") || !m.tags || strcmp(m.tags, "siib"))
        return 0;
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    const char *token = tutti__osc_iter_gets(&it, NULL);
    int32_t total = tutti__osc_iter_geti(&it, -1), off = tutti__osc_iter_geti(&it, -1);
    if (!token || m.end - it.rd < 4) return 0;
    uint32_t n = tutti__osc_rd32(it.rd);
    if (n > (size_t)(m.end - it.rd) - 4) return 0;
    char digest[64];
    snprintf(digest, sizeof digest, "fnv1a64:%016" PRIx64 " bytes:%" PRIu32,
             tutti__asset_hash(it.rd + 4, n), n);
    return tutti__osc_write(out, cap, "/tutti/asset", "siis", token, total, off, digest);
}

/* The cache folder (made if missing), as tutti__asset_path finds it. */
static int cache_dir(char *out, size_t cap)
{
    char p[4200];
    /* any well-formed token will do: its folder is the cache */
    int r = tutti__asset_path(TUTTI_ASSET_PREFIX "0000000000000000.x", p, sizeof p);
    if (r) return r;
    char *slash = strrchr(p, '/');
    if (!slash) return -EINVAL;
    *slash = 0;
    snprintf(out, cap, "%s", p);
    return 0;
}

static int each_partial(uint32_t stream, double older_s, bool drop)
{
    char dir[4200], suffix[32], path[4500];
    if (cache_dir(dir, sizeof dir)) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    snprintf(suffix, sizeof suffix, ".part.%08" PRIx32, stream);
    size_t sl = strlen(suffix);
    time_t now = time(NULL);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        const char *dot = strstr(e->d_name, ".part.");
        if (!dot) continue;
        if (stream && (len < sl || strcmp(e->d_name + len - sl, suffix))) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!stream) {
            struct stat st;
            /* older_s 0: every one (a file's time may be a tick ahead of
             * time(): the kernel's file times are finer) */
            if (stat(path, &st) || (older_s > 0 && difftime(now, st.st_mtime) < older_s))
                continue;
        }
        if (!drop || !unlink(path)) n++;
    }
    closedir(d);
    return n;
}

int tutti__asset_partials(uint32_t stream)
{
    return stream ? each_partial(stream, 0, false) : 0;
}

int tutti__asset_drop_partials(uint32_t stream, double older_s)
{
    return each_partial(stream, older_s, true);
}
