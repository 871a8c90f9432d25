/* Subcommands of the one vireo binary. Each returns the process exit status. */
#ifndef VIREO_CORE_COMMANDS_H
#define VIREO_CORE_COMMANDS_H

struct vireo_command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv); /* argv[0] is the subcommand name */
};

#define VIREO_VERSION "0.1.0"

#endif
