/*
 * tutti play: the main job from wherever tutti is (a build tree or an
 * installed prefix): a local session of an example with real scsynth servers.
 *
 * The session itself is scripts/localsession.py (Python: it starts JACK, the
 * hub, the servers, the clients and the recorders, and reads their logs); this
 * command finds that script and the plugin next to the running program and
 * hands over to it, so an installed tutti plays from the installed files only.
 *
 * Where it looks, in order (the first that has the file wins):
 *   the script   <bindir>/TUTTI_BIN_TO_DATA_DIR/scripts/localsession.py (installed)
 *                TUTTI_SOURCE_DIR/scripts/localsession.py (a build tree)
 *   the plugin   <bindir>/plugin (a build tree: build/plugin)
 *                <bindir>/TUTTI_BIN_TO_PLUGIN_DIR (installed for /usr)
 *                <bindir>/TUTTI_BIN_TO_EXTENSION_DIR (installed for another prefix)
 * TUTTI_BIN_TO_* are the install folders relative to the program's own
 * (cmake/TuttiInstallDirs.cmake), so a relocated prefix still works.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TUTTI_BIN_TO_DATA_DIR
#define TUTTI_BIN_TO_DATA_DIR "../share/tutti"
#endif
#ifndef TUTTI_BIN_TO_PLUGIN_DIR
#define TUTTI_BIN_TO_PLUGIN_DIR "../lib/SuperCollider/plugins"
#endif
#ifndef TUTTI_BIN_TO_EXTENSION_DIR
#define TUTTI_BIN_TO_EXTENSION_DIR "../share/SuperCollider/Extensions/tutti"
#endif

static const char play_usage[] =
    "usage: tutti play [--bars N] [--bpm X] [--members N] [--horizon MS] [--out DIR]\n"
    "                  [--example DIR] [--check] [localsession.py options]\n"
    "\n"
    "Plays an example (by default the trio: drums, bass and chords) as a local\n"
    "session on this machine: JACK's dummy driver, a hub, and one scsynth with\n"
    "the tutti plugin per member, each with its own client playing one part.\n"
    "Prints each member's clock, what it played and heard, late bundles and\n"
    "FAILUREs in its server's log, the node tree of every server, the coherence\n"
    "verdict (tutti verify over the servers' journals) and where each server's\n"
    "recording is; the last line is one JSON object.\n"
    "\n"
    "  --bars N        bars to play (default 4)\n"
    "  --bpm X         tempo (default 120)\n"
    "  --members N     servers in the session (default 3)\n"
    "  --horizon MS    the session's lead L (default 150)\n"
    "  --out DIR       where the recordings, journals and logs go (default a new\n"
    "                  temporary folder)\n"
    "  --example DIR   another example with a part.py\n"
    "  --check         exit status 1 unless everything a session promises held\n"
    "\n"
    "Needs scsynth, jackd and python3 (Debian: supercollider-server, jackd2).\n"
    "The plugin is the one next to this program (a build tree's plugin/ or the\n"
    "installed one); the session script is scripts/localsession.py, installed\n"
    "under share/tutti.\n";

static bool file_exists(const char *p)
{
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* The resolved path of this program, and its folder. */
static bool self_path(char *exe, size_t cap, char *dir, size_t dcap)
{
    ssize_t n = readlink("/proc/self/exe", exe, cap - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    snprintf(dir, dcap, "%s", exe);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    return true;
}

/* `rel` relative to `dir` (or `rel` itself when absolute), resolved, in out
 * when it holds `file`. */
static bool found_in(const char *dir, const char *rel, const char *file, char *out,
                     size_t cap)
{
    char c[PATH_MAX + 256], f[PATH_MAX + 512];
    if (rel[0] == '/')
        snprintf(c, sizeof c, "%s", rel);
    else
        snprintf(c, sizeof c, "%s/%s", dir, rel);
    snprintf(f, sizeof f, "%s/%s", c, file);
    if (!file_exists(f)) return false;
    char r[PATH_MAX];
    if (!realpath(c, r)) return false;
    snprintf(out, cap, "%s", r);
    return true;
}

int cmd_play(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(play_usage, stdout);
            return CLI_OK;
        }
    }
    char exe[PATH_MAX], dir[PATH_MAX], data[PATH_MAX], plugin[PATH_MAX];
    if (!self_path(exe, sizeof exe, dir, sizeof dir)) {
        fprintf(stderr, "tutti play: cannot tell where this program is (/proc/self/exe)\n");
        return CLI_FAIL;
    }
    if (!found_in(dir, TUTTI_BIN_TO_DATA_DIR, "scripts/localsession.py", data, sizeof data)
#ifdef TUTTI_SOURCE_DIR
        && !found_in(dir, TUTTI_SOURCE_DIR, "scripts/localsession.py", data, sizeof data)
#endif
    ) {
        fprintf(stderr,
                "tutti play: no scripts/localsession.py in %s/%s (is tutti installed "
                "whole?)\n",
                dir, TUTTI_BIN_TO_DATA_DIR);
        return CLI_FAIL;
    }
    if (!found_in(dir, "plugin", "TuttiProxy.so", plugin, sizeof plugin) &&
        !found_in(dir, TUTTI_BIN_TO_PLUGIN_DIR, "TuttiProxy.so", plugin, sizeof plugin) &&
        !found_in(dir, TUTTI_BIN_TO_EXTENSION_DIR, "TuttiProxy.so", plugin, sizeof plugin)) {
        fprintf(stderr,
                "tutti play: no TuttiProxy.so in %s/plugin, %s/%s or %s/%s (the scsynth "
                "plugin is not built or not installed)\n",
                dir, dir, TUTTI_BIN_TO_PLUGIN_DIR, dir, TUTTI_BIN_TO_EXTENSION_DIR);
        return CLI_FAIL;
    }
    char script[PATH_MAX + 32];
    snprintf(script, sizeof script, "%s/scripts/localsession.py", data);
    char **args = calloc((size_t)argc + 7, sizeof *args);
    if (!args) return CLI_FAIL;
    int k = 0;
    args[k++] = "python3";
    args[k++] = script;
    args[k++] = "--tutti";
    args[k++] = exe;
    args[k++] = "--plugin-dir";
    args[k++] = plugin;
    for (int i = 1; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    printf("tutti play: %s, plugin %s\n", script, plugin);
    fflush(stdout);
    execvp("python3", args);
    fprintf(stderr, "tutti play: cannot run python3: %s (Debian: python3)\n",
            strerror(errno));
    free(args);
    return CLI_FAIL;
}
