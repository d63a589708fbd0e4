/*
 * Benchmarks of the tutti program (`tutti bench clock`, `tutti bench merge`,
 * `tutti bench proxy`).
 * Each takes the arguments after "bench" (argv[0] is the benchmark's name),
 * prints one human-readable line per figure and, as its last line, one JSON
 * object, and returns the exit status (0 ok, 1 a check failed, 2 usage).
 */
#ifndef TUTTI_CLI_BENCH_H
#define TUTTI_CLI_BENCH_H

int tutti_bench_clock(int argc, char **argv);
int tutti_bench_merge(int argc, char **argv);
int tutti_bench_proxy(int argc, char **argv);
int tutti_bench_seal(int argc, char **argv);
int tutti_bench_node(int argc, char **argv);

#endif
