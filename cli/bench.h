#ifndef TUTTI_CLI_BENCH_H
#define TUTTI_CLI_BENCH_H
int tutti_bench_clock(int argc, char **argv); int tutti_bench_merge(int argc, char **argv);
#endif
