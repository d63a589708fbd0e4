/*
 * tutti sonicpi install | uninstall | status | scsynth: an unmodified Sonic
 * Pi (3.2 from Debian, 4.x) in a tutti session. docs/sonicpi.md is the
 * user's guide; sonicpi-ext/README.md describes the pieces.
 *
 * Sonic Pi starts its own scsynth, found on PATH as `scsynth`, with `-u
 * PORT`, and sends everything to PORT. `install` writes a `scsynth` wrapper
 * into ~/.sonic-pi/tutti/bin (Sonic Pi is started with that folder first on
 * PATH: the `sonic-pi-tutti` launcher next to it does that). The wrapper runs
 * `tutti sonicpi scsynth`, which starts the real scsynth
 *   - on another port (free, or TUTTI_SCSYNTH_PORT),
 *   - with the plugin's proxy on PORT (TUTTI_PROXY_PORT), so every packet
 *     Sonic Pi sends, from its first /status on, goes through the plugin,
 *   - with the plugin folder first in -U,
 *   - with the tables a session needs (-b, -a, -c, -n, -d raised to at least
 *     what docs/namespaces.md asks for; larger values are kept).
 * `scsynth -v` and anything without -u go to the real scsynth unchanged, and
 * without the plugin the wrapper changes nothing (Sonic Pi then plays solo).
 *
 * `install` also copies the language extension (sonicpi-ext/tutti.rb) to
 * ~/.sonic-pi/tutti/ and adds a marked block to Sonic Pi's init file that
 * loads it: ~/.sonic-pi/init.rb (3.x) and ~/.sonic-pi/config/init.rb (4.x).
 * `uninstall` removes exactly that block and those files.
 */
#include "cli.h"
#include "posix/url.h"
#include "sonicpi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <unistd.h>

#define HOOK_BEGIN "# >>> tutti: added by `tutti sonicpi install` (`tutti sonicpi uninstall` removes it)"
#define HOOK_END "# <<< tutti"

/* What a session needs of scsynth (docs/namespaces.md) */
enum { NEED_B = 32768, NEED_C = 32768, NEED_N = 16384, NEED_D = 8192, PART_ABUS = 128 };
#define NS_SLOTS 32
#define SYSTEM_PLUGINS "/usr/lib/SuperCollider/plugins"
#ifndef TUTTI_BIN_TO_PLUGIN_DIR
#define TUTTI_BIN_TO_PLUGIN_DIR "../lib/SuperCollider/plugins"
#endif
#ifndef TUTTI_BIN_TO_EXTENSION_DIR
#define TUTTI_BIN_TO_EXTENSION_DIR "../share/SuperCollider/Extensions/tutti"
#endif

static const char usage[] =
    "usage: tutti sonicpi install [--home DIR] [--plugin-dir DIR] [--ext DIR]\n"
    "                             [--bundled-scsynth SC-PLUGIN-DIR]\n"
    "       tutti sonicpi uninstall [--home DIR]\n"
    "       tutti sonicpi status [--home DIR]\n"
    "       tutti sonicpi scsynth [--plugin-dir DIR] [--self PATH] -- SCSYNTH-ARGS...\n"
    "\n"
    "Connects an unmodified Sonic Pi (3.2, 4.x) to tutti sessions.\n"
    "  install    writes DIR/.sonic-pi/tutti/ (the language extension, a `scsynth`\n"
    "             wrapper and the `sonic-pi-tutti` launcher in bin/) and a hook in\n"
    "             Sonic Pi's init file that loads the extension. Start Sonic Pi with\n"
    "             DIR/.sonic-pi/tutti/bin first on PATH (sonic-pi-tutti does that).\n"
    "  uninstall  removes the hook and those files\n"
    "  status     says what is installed\n"
    "  scsynth    what the wrapper runs: the real scsynth with the plugin, its\n"
    "             proxy on the port Sonic Pi talks to, and room for a session\n"
    "\n"
    "  --home DIR        where .sonic-pi is (default $SONIC_PI_HOME, else $HOME)\n"
    "  --plugin-dir DIR  the folder holding TuttiProxy.so (default: found next\n"
    "                    to this program, else " SYSTEM_PLUGINS ")\n"
    "  --ext DIR         the folder holding tutti.rb (default: found next to this\n"
    "                    program: ../sonicpi-ext or ../share/tutti/sonicpi-ext)\n"
    "  --bundled-scsynth SC-PLUGIN-DIR\n"
    "                    for a Sonic Pi 4 that starts its own bundled scsynth (macOS,\n"
    "                    Windows): no wrapper can be put in its way, so the plugin is\n"
    "                    added through config/audio-settings.toml (scsynth_opts: -U\n"
    "                    with the plugin's folder and SC-PLUGIN-DIR, Sonic Pi's own\n"
    "                    plugin folder, and the tables a session needs); the proxy then\n"
    "                    listens on 57121 and the extension sends Sonic Pi's traffic there\n"
    "\n"
    "docs/sonicpi.md is the guide.\n";

/* ------------------------------------------------------------ helpers */

/* snprintf that says whether everything fit (paths too long are refused
 * where it matters: they then name no file) */
static bool fmt(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

static bool is_file(const char *p)
{
    struct stat st;
    return p && !stat(p, &st) && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return p && !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* The folder this program is in (resolved), or "" */
static void exe_dir(char *out, size_t cap)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    out[0] = 0;
    if (n <= 0) return;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
    fmt(out, cap, "%s", buf);
}

static bool plugin_in(const char *dir)
{
    char p[PATH_MAX];
    fmt(p, sizeof p, "%s/TuttiProxy.so", dir);
    return is_file(p);
}

/* The plugin folder: given, next to the program (a build tree: build/plugin,
 * or an installed prefix), else the system folder. */
static void find_plugin_dir(const char *given, char *out, size_t cap)
{
    char d[PATH_MAX], c[PATH_MAX + 64];
    if (given) {
        if (!realpath(given, out)) fmt(out, cap, "%s", given);
        return;
    }
    exe_dir(d, sizeof d);
    /* TUTTI_BIN_TO_*: where an install put it (cmake/TuttiInstallDirs.cmake) */
    const char *tails[] = {"/plugin", "/" TUTTI_BIN_TO_PLUGIN_DIR, "/" TUTTI_BIN_TO_EXTENSION_DIR,
                           "/../lib/SuperCollider/plugins"};
    for (size_t i = 0; d[0] && i < 4; i++) {
        fmt(c, sizeof c, "%s%s", d, tails[i]);
        if (plugin_in(c) && realpath(c, out)) return;
    }
    fmt(out, cap, "%s", SYSTEM_PLUGINS);
}

static bool find_ext_dir(const char *given, char *out, size_t cap)
{
    char d[PATH_MAX], c[PATH_MAX + 64], f[PATH_MAX + 80];
    if (given) {
        fmt(f, sizeof f, "%s/tutti.rb", given);
        if (!is_file(f) || !realpath(given, out)) return false;
        return true;
    }
    exe_dir(d, sizeof d);
    const char *tails[] = {"/../sonicpi-ext", "/../share/tutti/sonicpi-ext",
                           "/../../sonicpi-ext"};
    for (size_t i = 0; d[0] && i < 3; i++) {
        fmt(c, sizeof c, "%s%s", d, tails[i]);
        fmt(f, sizeof f, "%s/tutti.rb", c);
        if (is_file(f) && realpath(c, out)) return true;
    }
    (void)cap;
    return false;
}

static void sp_home(const char *given, char *out, size_t cap)
{
    const char *h = given ? given : getenv("SONIC_PI_HOME");
    if (!h || !*h) h = getenv("HOME");
    if (!h || !*h) h = ".";
    fmt(out, cap, "%s/.sonic-pi", h);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) break;
        if (n + 2048 > cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (!r) break;
        n += r;
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = n;
    return b;
}

static int write_all(const char *path, const char *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX + 16];
    fmt(tmp, sizeof tmp, "%s.tutti-new", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    bool ok = fwrite(data, 1, len, f) == len;
    ok = !fclose(f) && ok;
    if (!ok || chmod(tmp, mode) || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    fmt(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

/* The init file's text without our block (a fresh copy); *had says whether
 * there was one. */
static char *without_hook(const char *text, bool *had)
{
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    *had = false;
    const char *b = strstr(text, HOOK_BEGIN);
    if (!b) {
        memcpy(out, text, n + 1);
        return out;
    }
    const char *e = strstr(b, HOOK_END);
    const char *after = e ? e + strlen(HOOK_END) : text + n;
    if (*after == '\n') after++;
    size_t head = (size_t)(b - text);
    memcpy(out, text, head);
    memcpy(out + head, after, strlen(after) + 1);
    *had = true;
    return out;
}

static int hook_file(const char *path, const char *ext_rb, bool add)
{
    size_t n = 0;
    char *text = read_all(path, &n);
    if (!text) {
        if (!add) return 0;
        text = strdup("# Sonic Pi init file\n# Code in here will be evaluated on launch.\n\n");
        if (!text) return -1;
    }
    bool had;
    char *rest = without_hook(text, &had);
    free(text);
    if (!rest) return -1;
    if (!add && !had) {
        free(rest);
        return 0;
    }
    size_t cap = strlen(rest) + strlen(ext_rb) * 2 + 1024;
    char *out = malloc(cap);
    if (!out) {
        free(rest);
        return -1;
    }
    if (add)
        fmt(out, cap,
                 "%s%s" HOOK_BEGIN "\n"
                 "begin\n"
                 "  Kernel.load \"%s\"\n"
                 "  SonicPi::Lang::Tutti.attach(self)\n"
                 "rescue Exception => e\n"
                 "  STDOUT.puts \"tutti: could not load the extension: #{e.message}\"\n"
                 "end\n" HOOK_END "\n",
                 rest, rest[0] && rest[strlen(rest) - 1] != '\n' ? "\n" : "", ext_rb);
    else
        fmt(out, cap, "%s", rest);
    free(rest);
    int rc = write_all(path, out, strlen(out), 0644);
    free(out);
    return rc;
}

/* Sonic Pi 4's config/audio-settings.toml: our block sets scsynth_opts. A
 * scsynth_opts (or scsynth_opts_override) of the user's own, outside the
 * block, is never touched: TOML allows a key once, so the user merges by
 * hand (*theirs says so). `opts` NULL removes the block. */
static int toml_file(const char *path, const char *opts, bool *theirs)
{
    char *text = read_all(path, NULL);
    *theirs = false;
    if (!text) {
        if (!opts) return 0;
        text = strdup("# Sonic Pi audio settings (see Sonic Pi's user-examples)\n");
        if (!text) return -1;
    }
    bool had;
    char *rest = without_hook(text, &had);
    free(text);
    if (!rest) return -1;
    for (const char *l = rest; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        while (*l == ' ' || *l == '\t') l++;
        if (!strncmp(l, "scsynth_opts", 12)) *theirs = true;
    }
    if (opts && *theirs) {
        free(rest);
        return 0;
    }
    if (!opts && !had) {
        free(rest);
        return 0;
    }
    size_t cap = strlen(rest) + strlen(opts ? opts : "") + 512;
    char *out = malloc(cap);
    if (!out) {
        free(rest);
        return -1;
    }
    if (opts)
        fmt(out, cap, "%s%s" HOOK_BEGIN "\nscsynth_opts = \"%s\"\n" HOOK_END "\n", rest,
            rest[0] && rest[strlen(rest) - 1] != '\n' ? "\n" : "", opts);
    else
        fmt(out, cap, "%s", rest);
    free(rest);
    int rc = write_all(path, out, strlen(out), 0644);
    free(out);
    return rc;
}

static int opt_value(int argc, char **argv, int *i, const char *name, const char **dst)
{
    size_t l = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) || strncmp(a + 2, name, l)) return 0;
    if (a[2 + l] == '=') {
        *dst = a + 3 + l;
        return 1;
    }
    if (a[2 + l]) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "tutti sonicpi: --%s needs a value\n", name);
        return -1;
    }
    *dst = argv[++*i];
    return 1;
}

/* ------------------------------------------------------------ install */

static int install(const char *home_opt, const char *plugin_opt, const char *ext_opt,
                   const char *bundled)
{
    char sp[PATH_MAX], dir[PATH_MAX + 16], bin[PATH_MAX + 32], ext[PATH_MAX],
        plugin[PATH_MAX], self[PATH_MAX], path[PATH_MAX + 64], src[PATH_MAX + 16];
    sp_home(home_opt, sp, sizeof sp);
    if (!find_ext_dir(ext_opt, ext, sizeof ext)) {
        fprintf(stderr,
                "tutti sonicpi install: cannot find the extension (tutti.rb); say where "
                "with --ext DIR (the source tree's sonicpi-ext folder)\n");
        return CLI_USAGE;
    }
    find_plugin_dir(plugin_opt, plugin, sizeof plugin);
    if (!plugin_in(plugin))
        fprintf(stderr,
                "tutti sonicpi install: warning: no TuttiProxy.so in %s; Sonic Pi will "
                "play solo until it is there (--plugin-dir DIR)\n",
                plugin);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "tutti sonicpi install: cannot tell where this program is\n");
        return CLI_FAIL;
    }
    self[n] = 0;
    fmt(dir, sizeof dir, "%s/tutti", sp);
    fmt(bin, sizeof bin, "%s/bin", dir);
    if (mkdirs(bin)) {
        fprintf(stderr, "tutti sonicpi install: cannot make %s: %s\n", bin, strerror(errno));
        return CLI_FAIL;
    }
    /* the extension */
    fmt(src, sizeof src, "%s/tutti.rb", ext);
    size_t len;
    char *rb = read_all(src, &len);
    fmt(path, sizeof path, "%s/tutti.rb", dir);
    if (!rb || write_all(path, rb, len, 0644)) {
        free(rb);
        fprintf(stderr, "tutti sonicpi install: cannot copy %s to %s\n", src, path);
        return CLI_FAIL;
    }
    free(rb);
    /* the wrapper and the launcher */
    char script[4 * PATH_MAX];
    fmt(script, sizeof script,
             "#!/bin/sh\n"
             "# Sonic Pi's scsynth, with the tutti plugin (written by `tutti sonicpi "
             "install`)\n"
             "exec '%s' sonicpi scsynth --plugin-dir '%s' --self \"$0\" -- \"$@\"\n",
             self, plugin);
    fmt(path, sizeof path, "%s/scsynth", bin);
    if (write_all(path, script, strlen(script), 0755)) {
        fprintf(stderr, "tutti sonicpi install: cannot write %s\n", path);
        return CLI_FAIL;
    }
    fmt(script, sizeof script,
             "#!/bin/sh\n"
             "# Starts Sonic Pi (or the command given) with its scsynth going through "
             "tutti\n"
             "# (written by `tutti sonicpi install`).\n"
             "PATH='%s':\"$PATH\"\n"
             "export PATH\n"
             "[ $# -gt 0 ] || set -- sonic-pi\n"
             "exec \"$@\"\n",
             bin);
    fmt(path, sizeof path, "%s/sonic-pi-tutti", bin);
    if (write_all(path, script, strlen(script), 0755)) {
        fprintf(stderr, "tutti sonicpi install: cannot write %s\n", path);
        return CLI_FAIL;
    }
    /* the hooks: 3.x reads .sonic-pi/init.rb, 4.x .sonic-pi/config/init.rb
     * (and moves the first to the second when only the first exists) */
    char init3[PATH_MAX + 16], config[PATH_MAX + 16], init4[PATH_MAX + 32],
        rbpath[PATH_MAX + 16];
    fmt(init3, sizeof init3, "%s/init.rb", sp);
    fmt(config, sizeof config, "%s/config", sp);
    fmt(init4, sizeof init4, "%s/init.rb", config);
    fmt(rbpath, sizeof rbpath, "%s/tutti.rb", dir);
    if (bundled && mkdirs(config)) {
        fprintf(stderr, "tutti sonicpi install: cannot make %s: %s\n", config, strerror(errno));
        return CLI_FAIL;
    }
    bool v4 = is_dir(config);
    if (v4 && hook_file(init4, rbpath, true)) {
        fprintf(stderr, "tutti sonicpi install: cannot write %s\n", init4);
        return CLI_FAIL;
    }
    if ((!v4 || is_file(init3)) && hook_file(init3, rbpath, true)) {
        fprintf(stderr, "tutti sonicpi install: cannot write %s\n", init3);
        return CLI_FAIL;
    }
    /* Sonic Pi 4 with its own bundled scsynth (macOS, Windows): the plugin
     * through audio-settings.toml, as no wrapper can be put in its way. */
    char toml[PATH_MAX + 48];
    fmt(toml, sizeof toml, "%s/audio-settings.toml", config);
    bool toml_ok = false;
    if (bundled) {
        char opts[3 * PATH_MAX];
        if (!fmt(opts, sizeof opts, "-U '%s:%s' -b %d -a %d -c %d -n %d -d %d", plugin, bundled,
                 NEED_B, 8192, NEED_C, NEED_N, NEED_D) ||
            strchr(plugin, '\'') || strchr(bundled, '\'') || strchr(plugin, '"') ||
            strchr(bundled, '"')) {
            fprintf(stderr, "tutti sonicpi install: the plugin folders' names cannot be written "
                            "into audio-settings.toml (quotes in them?)\n");
            return CLI_FAIL;
        }
        bool theirs = false;
        if (toml_file(toml, opts, &theirs)) {
            fprintf(stderr, "tutti sonicpi install: cannot write %s\n", toml);
            return CLI_FAIL;
        }
        if (theirs)
            fprintf(stderr,
                    "tutti sonicpi install: %s sets scsynth_opts already; add this to it by "
                    "hand (TOML allows the key once):\n  %s\n",
                    toml, opts);
        toml_ok = !theirs;
    }
    printf("tutti sonicpi: installed in %s\n", dir);
    printf("  extension   %s/tutti.rb (loaded by %s)\n", dir,
           v4 ? (is_file(init3) ? "config/init.rb and init.rb" : "config/init.rb")
              : "init.rb");
    printf("  plugin      %s/TuttiProxy.so%s\n", plugin,
           plugin_in(plugin) ? "" : " (missing!)");
    if (bundled) {
        printf("  scsynth     %s: scsynth_opts loads the plugin (%s); its proxy listens on "
               "57121 and the extension sends Sonic Pi's traffic there\n",
               toml, toml_ok ? "written" : "to merge by hand, see above");
        printf("Start Sonic Pi as usual.\n");
        return toml_ok ? CLI_OK : CLI_FAIL;
    }
    printf("Start Sonic Pi with:  %s/sonic-pi-tutti      (or put %s first on PATH)\n", bin,
           bin);
    if (v4)
        printf("Sonic Pi 4 (config/ exists): on Linux it starts `scsynth` from PATH, so the "
               "launcher is all it needs; a Sonic Pi 4 with a bundled scsynth (macOS, Windows) "
               "needs --bundled-scsynth (docs/sonicpi.md)\n");
    return CLI_OK;
}

static int uninstall(const char *home_opt)
{
    char sp[PATH_MAX], p[PATH_MAX + 64];
    sp_home(home_opt, sp, sizeof sp);
    int rc = CLI_OK;
    const char *inits[] = {"init.rb", "config/init.rb"};
    for (int i = 0; i < 2; i++) {
        fmt(p, sizeof p, "%s/%s", sp, inits[i]);
        if (hook_file(p, "", false)) {
            fprintf(stderr, "tutti sonicpi uninstall: cannot rewrite %s\n", p);
            rc = CLI_FAIL;
        }
    }
    bool theirs;
    fmt(p, sizeof p, "%s/config/audio-settings.toml", sp);
    if (toml_file(p, NULL, &theirs)) {
        fprintf(stderr, "tutti sonicpi uninstall: cannot rewrite %s\n", p);
        rc = CLI_FAIL;
    }
    const char *files[] = {"tutti/bin/scsynth", "tutti/bin/sonic-pi-tutti", "tutti/tutti.rb"};
    for (int i = 0; i < 3; i++) {
        fmt(p, sizeof p, "%s/%s", sp, files[i]);
        if (unlink(p) && errno != ENOENT) rc = CLI_FAIL;
    }
    fmt(p, sizeof p, "%s/tutti/bin", sp);
    rmdir(p);
    fmt(p, sizeof p, "%s/tutti", sp);
    rmdir(p); /* kept if the user put something else there */
    if (rc == CLI_OK) printf("tutti sonicpi: removed from %s\n", sp);
    return rc;
}

static int status(const char *home_opt)
{
    char sp[PATH_MAX], p[PATH_MAX + 64];
    sp_home(home_opt, sp, sizeof sp);
    bool any = false;
    const char *inits[] = {"init.rb", "config/init.rb"};
    for (int i = 0; i < 2; i++) {
        fmt(p, sizeof p, "%s/%s", sp, inits[i]);
        char *t = read_all(p, NULL);
        bool hooked = t && strstr(t, HOOK_BEGIN);
        free(t);
        printf("%-32s %s\n", inits[i], hooked ? "loads tutti" : is_file(p) ? "no hook" : "absent");
        any |= hooked;
    }
    fmt(p, sizeof p, "%s/config/audio-settings.toml", sp);
    char *toml = read_all(p, NULL);
    bool toml_hook = toml && strstr(toml, HOOK_BEGIN);
    free(toml);
    printf("%-32s %s\n", "config/audio-settings.toml",
           toml_hook ? "loads the plugin (Sonic Pi 4, bundled scsynth)"
                     : is_file(p) ? "no tutti block" : "absent");
    any |= toml_hook;
    fmt(p, sizeof p, "%s/tutti/tutti.rb", sp);
    printf("%-32s %s\n", "tutti/tutti.rb", is_file(p) ? "present" : "absent");
    fmt(p, sizeof p, "%s/tutti/bin/scsynth", sp);
    bool wrapper = is_file(p);
    printf("%-32s %s\n", "tutti/bin/scsynth", wrapper ? "present" : "absent");
    if (wrapper) {
        char *t = read_all(p, NULL);
        char *pd = t ? strstr(t, "--plugin-dir '") : NULL;
        if (pd) {
            pd += strlen("--plugin-dir '");
            char *e = strchr(pd, '\'');
            if (e) *e = 0;
            printf("%-32s %s%s\n", "plugin", pd, plugin_in(pd) ? "" : " (no TuttiProxy.so!)");
        }
        free(t);
    }
    /* is the wrapper what Sonic Pi would start from this shell? */
    const char *path = getenv("PATH");
    char first[PATH_MAX + 16] = "";
    if (path) {
        char *dup = strdup(path), *save = NULL;
        for (char *d = dup ? strtok_r(dup, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
            char c[PATH_MAX + 16];
            fmt(c, sizeof c, "%s/scsynth", d);
            if (!access(c, X_OK)) {
                fmt(first, sizeof first, "%s", c);
                break;
            }
        }
        free(dup);
    }
    fmt(p, sizeof p, "%s/tutti/bin/scsynth", sp);
    char a[PATH_MAX], b[PATH_MAX];
    bool via = first[0] && realpath(first, a) && realpath(p, b) && !strcmp(a, b);
    printf("%-32s %s%s\n", "scsynth on this PATH", first[0] ? first : "(none)",
           via ? " (the tutti wrapper)" : wrapper ? " (not the wrapper: use sonic-pi-tutti)" : "");
    return any && wrapper ? CLI_OK : CLI_FAIL;
}

/* ------------------------------------------------------------ scsynth */

static int free_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        if (t < 0 || u < 0) {
            if (t >= 0) close(t);
            if (u >= 0) close(u);
            return -1;
        }
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t l = sizeof a;
        int port = -1;
        if (!bind(t, (struct sockaddr *)&a, sizeof a) &&
            !getsockname(t, (struct sockaddr *)&a, &l) &&
            !bind(u, (struct sockaddr *)&a, sizeof a))
            port = ntohs(a.sin_port);
        close(t);
        close(u);
        if (port > 0) return port;
    }
    return -1;
}

/* The real scsynth: $TUTTI_REAL_SCSYNTH, else the first `scsynth` on PATH
 * that is not the wrapper. */
static bool real_scsynth(const char *self, char *out, size_t cap)
{
    const char *env = getenv("TUTTI_REAL_SCSYNTH");
    if (env && *env) {
        fmt(out, cap, "%s", env);
        return true;
    }
    char me[PATH_MAX] = "";
    if (self && !realpath(self, me)) me[0] = 0;
    const char *path = getenv("PATH");
    char *dup = strdup(path && *path ? path : "/usr/bin:/bin"), *save = NULL;
    bool found = false;
    for (char *d = dup ? strtok_r(dup, ":", &save) : NULL; d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char c[PATH_MAX + 16], r[PATH_MAX];
        fmt(c, sizeof c, "%s/scsynth", d);
        if (access(c, X_OK) || !realpath(c, r)) continue;
        if (me[0] && !strcmp(r, me)) continue;
        /* another copy of a wrapper is not a server either */
        char *t = read_all(r, NULL);
        bool wrapper = t && !strncmp(t, "#!", 2) && strstr(t, "sonicpi scsynth");
        free(t);
        if (wrapper) continue;
        fmt(out, cap, "%s", r);
        found = true;
    }
    free(dup);
    return found;
}

static long arg_num(const char *s, long dflt)
{
    char *e;
    long v = strtol(s ? s : "", &e, 10);
    return s && *s && !*e ? v : dflt;
}

static int scsynth(int argc, char **argv)
{
    const char *plugin_opt = NULL, *self = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        int r;
        if ((r = opt_value(argc, argv, &i, "plugin-dir", &plugin_opt)) ||
            (r = opt_value(argc, argv, &i, "self", &self))) {
            if (r < 0) return CLI_USAGE;
            continue;
        }
        break; /* the server's own arguments start here */
    }
    int sargc = argc - i;
    char **sargv = argv + i;
    char real[PATH_MAX];
    if (!real_scsynth(self, real, sizeof real)) {
        fprintf(stderr, "tutti sonicpi scsynth: no scsynth on PATH (install "
                        "supercollider-server, or set TUTTI_REAL_SCSYNTH)\n");
        return 127;
    }
    char plugin[PATH_MAX];
    find_plugin_dir(plugin_opt, plugin, sizeof plugin);

    /* what Sonic Pi asked for */
    int u_at = -1, U_at = -1, b_at = -1, a_at = -1, c_at = -1, n_at = -1, d_at = -1;
    long ins = 8, outs = 8;
    for (int k = 0; k + 1 < sargc; k++) {
        const char *o = sargv[k];
        if (o[0] != '-' || !o[1] || o[2]) continue;
        switch (o[1]) {
        case 'u': u_at = k + 1; break;
        case 'U': U_at = k + 1; break;
        case 'b': b_at = k + 1; break;
        case 'a': a_at = k + 1; break;
        case 'c': c_at = k + 1; break;
        case 'n': n_at = k + 1; break;
        case 'd': d_at = k + 1; break;
        case 'i': ins = arg_num(sargv[k + 1], 8); break;
        case 'o': outs = arg_num(sargv[k + 1], 8); break;
        default: continue;
        }
        k++;
    }
    char **nargv = calloc((size_t)sargc + 16, sizeof *nargv);
    if (!nargv) return CLI_FAIL;
    nargv[0] = real;
    long proxy = u_at >= 0 ? arg_num(sargv[u_at], -1) : -1;
    uint16_t valid;
    if (u_at >= 0 &&
        tutti__port_parse(sargv[u_at], strlen(sargv[u_at]), TUTTI__PORT_ANY, &valid)) {
        fprintf(stderr,
                "tutti sonicpi scsynth: -u wants a port from 0 to 65535, not \"%s\"\n",
                sargv[u_at]);
        free(nargv);
        return CLI_USAGE;
    }
    if (proxy <= 0 || !plugin_in(plugin)) {
        if (proxy > 0)
            fprintf(stderr,
                    "tutti: no TuttiProxy.so in %s: scsynth starts without the plugin "
                    "(Sonic Pi plays solo)\n",
                    plugin);
        for (int k = 0; k < sargc; k++) nargv[k + 1] = sargv[k];
        execv(real, nargv);
        fprintf(stderr, "tutti sonicpi scsynth: cannot run %s: %s\n", real, strerror(errno));
        return 127;
    }
    long port = cli_env_port("sonicpi scsynth", "TUTTI_SCSYNTH_PORT", TUTTI__PORT_ANY, 0);
    if (port < 0) {
        free(nargv);
        return CLI_USAGE;
    }
    if (port == 0) port = free_port();
    if (port <= 0) {
        fprintf(stderr, "tutti sonicpi scsynth: no free port for scsynth\n");
        return CLI_FAIL;
    }
    /* numbers as strings that outlive exec's argument copy */
    static char s_port[16], s_b[16], s_a[16], s_c[16], s_n[16], s_d[16],
        s_U[2 * PATH_MAX + 64];
    long hw = ins + outs;
    long need_a = hw + (long)PART_ABUS * NS_SLOTS;
    if (need_a < 8192) need_a = 8192;
    struct {
        int at;
        const char *flag;
        char *buf;
        long need;
    } raise_[] = {{b_at, "-b", s_b, NEED_B}, {a_at, "-a", s_a, need_a},
                  {c_at, "-c", s_c, NEED_C}, {n_at, "-n", s_n, NEED_N},
                  {d_at, "-d", s_d, NEED_D}};
    int m = 1;
    fmt(s_port, sizeof s_port, "%ld", port);
    if (U_at >= 0)
        fmt(s_U, sizeof s_U, "%s:%s", plugin, sargv[U_at]);
    else
        fmt(s_U, sizeof s_U, "%s:%s", plugin, SYSTEM_PLUGINS);
    for (int k = 0; k < sargc; k++) {
        if (k == u_at) {
            nargv[m++] = s_port;
            continue;
        }
        if (k == U_at) {
            nargv[m++] = s_U;
            continue;
        }
        bool done = false;
        for (size_t r = 0; r < sizeof raise_ / sizeof raise_[0]; r++) {
            if (k != raise_[r].at) continue;
            long v = arg_num(sargv[k], 0);
            fmt(raise_[r].buf, 16, "%ld", v > raise_[r].need ? v : raise_[r].need);
            nargv[m++] = raise_[r].buf;
            done = true;
        }
        if (!done) nargv[m++] = sargv[k];
    }
    if (U_at < 0) {
        nargv[m++] = "-U";
        nargv[m++] = s_U;
    }
    for (size_t r = 0; r < sizeof raise_ / sizeof raise_[0]; r++) {
        if (raise_[r].at >= 0) continue;
        fmt(raise_[r].buf, 16, "%ld", raise_[r].need);
        nargv[m++] = (char *)raise_[r].flag;
        nargv[m++] = raise_[r].buf;
    }
    nargv[m] = NULL;
    char s_proxy[16];
    fmt(s_proxy, sizeof s_proxy, "%ld", proxy);
    setenv("TUTTI_PROXY_PORT", s_proxy, 1);
    const char *state = getenv("TUTTI_SONICPI_STATE");
    if (state && *state) {
        char line[128];
        int n = snprintf(line, sizeof line, "scsynth_port %ld\nproxy_port %ld\npid %ld\n", port,
                         proxy, (long)getpid());
        if (write_all(state, line, (size_t)n, 0644))
            fprintf(stderr, "tutti: cannot write %s\n", state);
    }
    fprintf(stderr, "tutti: Sonic Pi's scsynth: server on port %ld, tutti proxy on %ld (%s)\n",
            port, proxy, plugin);
    execv(real, nargv);
    fprintf(stderr, "tutti sonicpi scsynth: cannot run %s: %s\n", real, strerror(errno));
    return 127;
}

/* ------------------------------------------------------------ main */

int cmd_sonicpi(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help") ||
        !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *what = argv[1];
    if (!strcmp(what, "scsynth")) return scsynth(argc - 1, argv + 1);
    const char *home = NULL, *plugin = NULL, *ext = NULL, *bundled = NULL;
    for (int i = 2; i < argc; i++) {
        int r;
        if ((r = opt_value(argc, argv, &i, "home", &home)) ||
            (r = opt_value(argc, argv, &i, "plugin-dir", &plugin)) ||
            (r = opt_value(argc, argv, &i, "ext", &ext)) ||
            (r = opt_value(argc, argv, &i, "bundled-scsynth", &bundled))) {
            if (r < 0) return CLI_USAGE;
            continue;
        }
        fprintf(stderr, "tutti sonicpi %s: unknown argument %s\n%s", what, argv[i], usage);
        return CLI_USAGE;
    }
    if (!strcmp(what, "install")) return install(home, plugin, ext, bundled);
    if (!strcmp(what, "uninstall")) return uninstall(home);
    if (!strcmp(what, "status")) return status(home);
    fprintf(stderr, "tutti sonicpi: no command \"%s\"\n%s", what, usage);
    return CLI_USAGE;
}
