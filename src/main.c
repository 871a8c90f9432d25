/* vireo: entry point. Dispatches to a subcommand by name; each subcommand parses its own
 * options and documents them with --help. Exit status 2 means bad usage or set-up error. */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "core/cmd_run.h"
#include "core/commands.h"

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("vireo %s\n", VIREO_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct vireo_command commands[] = {
	{ "version", "print the version", cmd_version },
	{ "help", "list the subcommands", cmd_help },
	{ "backend", "serve a virtio device over vhost-user (blk, net, rng)", cmd_backend },
	{ "run", "boot a kernel on KVM", cmd_run },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vireo COMMAND [options]   (vireo COMMAND --help for its options)\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version"))
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "vireo: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
