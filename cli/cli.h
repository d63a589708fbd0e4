/*
 * The tutti program: what its commands share.
 *
 * Every command is a function taking the arguments after its name (argv[0] is
 * the command name) and returning the process exit status:
 *   0  done, and what was checked holds
 *   1  ran, but something failed (an incoherent session, a member that could
 *      not finish, a journal that could not be read)
 *   2  the command line was wrong (the message says what to change)
 * Messages for people go to stderr and name the command ("tutti member: ...");
 * stdout carries what a script reads (status lines, one final JSON line).
 */
#ifndef TUTTI_CLI_H
#define TUTTI_CLI_H

#include "tutti/net.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cmd_hub(int argc, char **argv);
int cmd_member(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/* The main job from wherever tutti is (cmd_play.c). */
int cmd_play(int argc, char **argv);
/* Session control of a server with the plugin (cmd_control.c). */
int cmd_join(int argc, char **argv);
int cmd_leave(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_gain(int argc, char **argv);
/* The Ableton Link bridge (cmd_link.c; needs ableton-link-dev at build time). */
int cmd_link(int argc, char **argv);

/* The default session name and hub address. */
#define CLI_DEFAULT_SESSION "tutti"
#define CLI_DEFAULT_LISTEN "tcp://127.0.0.1:7770"

/* ------------------------------------------------------------ options */

/*
 * A small long-option parser: "--name value", "--name=value" and flags. A
 * table of cli_opt ends with a NULL name. Unknown options, missing values and
 * values out of range are reported as "tutti <cmd>: ..." and make
 * cli_parse() return CLI_USAGE; "--help"/"-h" prints `usage` and returns -1.
 * Arguments that are not options are collected into `rest` (room for argc
 * entries) in order; with rest NULL they are an error.
 */
enum cli_opt_kind {
    CLI_FLAG,   /* bool: present or not */
    CLI_STRING, /* const char *: points into argv */
    CLI_NUMBER, /* double within [lo, hi] */
    CLI_COUNT,  /* uint64_t within [lo, hi] */
    CLI_PORT,   /* int: a TCP or UDP port, decimal digits, from lo (0 or 1) to 65535 */
    CLI_LISTEN, /* const char *: a hub's listen URL, tcp://HOST:PORT (port 0 to 65535) */
    CLI_DIAL,   /* const char *: a hub's URL to dial (port 1 to 65535) */
};

typedef struct cli_opt {
    const char *name; /* without the dashes */
    int kind;
    void *dst;
    double lo, hi;
    const char *what; /* for messages: "milliseconds", "events per second" */
} cli_opt;

int cli_parse(const char *cmd, const char *usage, int argc, char **argv,
              const cli_opt *opts, char **rest, int *nrest);

/* The port in environment variable `var` for `tutti <cmd>`: `dflt` when it
 * is unset or empty, its value when it is a port from `lo` to 65535, else -1
 * after saying so on stderr. */
int cli_env_port(const char *cmd, const char *var, unsigned lo, int dflt);

/* ------------------------------------------------------------ signals */

/* Set by SIGINT/SIGTERM once cli_catch_signals() has run. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_signals(void);

/*
 * Exit with `status` if the process is still running `seconds` from now. For
 * the last step of a command, after its results are out: closing an NNG
 * socket can hang in NNG 1.5 (a race in its close path, fixed upstream
 * later), and a finished member must not hang its caller for that.
 */
void cli_exit_after(unsigned seconds, int status);

/*
 * --realtime: run this process's threads at SCHED_FIFO `priority` (call it
 * before starting anything: libuv's and NNG's threads inherit it), with a
 * timer slack of 1 us. A machine busy with other work then cannot leave the
 * session's network side unrun for a scheduler period (tens of ms with many
 * runnable processes). Says so and carries on at normal priority when the
 * system does not allow it. Returns whether it took effect.
 */
#define CLI_RT_PRIORITY 10 /* above ordinary work, below audio (JACK: 70+) */
bool cli_realtime(const char *cmd, int priority);
/* The calling thread at SCHED_FIFO `priority`: 0, or why not (an errno). */
int cli_fifo(int priority);

/* ------------------------------------------------------------- helpers */

/* Sleep (interruptible by a caught signal). */
void cli_sleep(tutti_time ns);
/* This process's peak resident memory so far, KiB (getrusage's maxrss). */
long cli_peak_rss_kib(void);
/* A log callback for tutti_net (ctx: the node's name): "[name] message" on
 * stderr, warnings and errors marked as such. */
void cli_log(void *ctx, int level, const char *msg);
/* ms / s printing helpers: "12.345" */
double cli_ms(tutti_time ns);

#endif
