/* vireo-info: prints what the guest sees of the machine the VMM gave it, for tests to check
 * through vireo.cmd=. Without arguments, one "vireo-info: KEY=VALUE" line per fact:
 *   cpus_online    number of online CPUs (/sys/devices/system/cpu/online)
 *   mem_total_kib  MemTotal from /proc/meminfo, in KiB
 *   cmdline        the kernel command line (/proc/cmdline)
 * With a KEY argument, only that value, bare (for $(vireo-info cpus_online) in a command).
 * Exit status 1 when a fact cannot be read, 2 on an unknown key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the first line of PATH into BUF without its newline; -1 when unreadable. */
static int read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, (int)size, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Counts the CPUs of a sysfs CPU list such as "0-3,5,7-8"; -1 when malformed. */
static long count_cpu_list(const char *list)
{
	long count = 0;
	const char *p = list;

	while (*p) {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;
		if (end == p || lo < 0)
			return -1;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			if (end == p + 1 || hi < lo)
				return -1;
			p = end;
		}
		count += hi - lo + 1;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return count;
}

static int fact_cpus_online(char *out, size_t size)
{
	char line[4096];
	long n;

	if (read_line("/sys/devices/system/cpu/online", line, sizeof(line)) < 0)
		return -1;
	n = count_cpu_list(line);
	if (n < 1)
		return -1;
	snprintf(out, size, "%ld", n);
	return 0;
}

static int fact_mem_total_kib(char *out, size_t size)
{
	char line[256];
	unsigned long long kib;
	int found = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
			snprintf(out, size, "%llu", kib);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

static int fact_cmdline(char *out, size_t size)
{
	return read_line("/proc/cmdline", out, size);
}

static const struct fact {
	const char *key;
	int (*get)(char *out, size_t size);
} facts[] = {
	{ "cpus_online", fact_cpus_online },
	{ "mem_total_kib", fact_mem_total_kib },
	{ "cmdline", fact_cmdline },
};

#define NFACTS (sizeof(facts) / sizeof(facts[0]))

int main(int argc, char **argv)
{
	char value[8192];
	int status = 0;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: vireo-info [cpus_online|mem_total_kib|cmdline]\n");
		return 2;
	}
	for (size_t i = 0; i < NFACTS; i++) {
		if (argc == 2 && strcmp(argv[1], facts[i].key) != 0)
			continue;
		if (facts[i].get(value, sizeof(value)) < 0) {
			fprintf(stderr, "vireo-info: cannot read %s\n", facts[i].key);
			status = 1;
			continue;
		}
		if (argc == 2) {
			printf("%s\n", value);
			return 0;
		}
		printf("vireo-info: %s=%s\n", facts[i].key, value);
	}
	if (argc == 2 && status == 0) {
		fprintf(stderr, "vireo-info: unknown key %s\n", argv[1]);
		return 2;
	}
	return status;
}
