#ifndef TUTTI_CLI_SIMULATE_H
#define TUTTI_CLI_SIMULATE_H
/* `tutti simulate`: the full seeded simulation sweep (cli/cmd_simulate.c). */
int tutti_cmd_simulate(int argc, char **argv);
#endif
