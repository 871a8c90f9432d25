/* `vireo run` (cmd_run.c); the argument parsing is exposed for unit tests. */
#ifndef VIREO_CORE_CMD_RUN_H
#define VIREO_CORE_CMD_RUN_H

#include <stdint.h>

struct vm_config;

int cmd_run(int argc, char **argv);
int run_parse_args(int argc, char **argv, struct vm_config *cfg);
uint64_t run_parse_size(const char *s);

#endif
