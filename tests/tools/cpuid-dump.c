/* cpuid-dump: print this machine's KVM_GET_SUPPORTED_CPUID as a C array, the format of
 * tests/data/kvm_supported_cpuid_*.h (recorded tables for tests/unit/test_cpuid.c).
 * Usage: cpuid-dump NAME > tests/data/kvm_supported_cpuid_NAME.h */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "host";
	char model[256] = "unknown", *m;
	struct utsname u;
	struct kvm_cpuid2 *c;
	FILE *f;
	int fd;

	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cpuid-dump: /dev/kvm: %s\n", strerror(errno));
		return 1;
	}
	c = cpuid_get_supported(fd);
	if (!c) {
		fprintf(stderr, "cpuid-dump: KVM_GET_SUPPORTED_CPUID: %s\n", strerror(errno));
		return 1;
	}
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(model, sizeof(model), f))
		if (!strncmp(model, "model name", 10))
			break;
	if (f)
		fclose(f);
	model[strcspn(model, "\n")] = 0;
	m = strchr(model, ':') ? strchr(model, ':') + 2 : model;
	uname(&u);
	printf("/* KVM_GET_SUPPORTED_CPUID recorded by tests/tools/cpuid-dump on a host with\n"
	       " * \"%s\", Linux %s, KVM_CAP_MAX_VCPUS %d.\n"
	       " * {function, index, flags, eax, ebx, ecx, edx} */\n",
	       m, u.release, ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	printf("static const struct kvm_cpuid_entry2 kvm_supported_cpuid_%s[] = {\n", name);
	for (unsigned int i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		printf("\t{ .function = 0x%08x, .index = %u, .flags = %u, .eax = 0x%08x, "
		       ".ebx = 0x%08x, .ecx = 0x%08x, .edx = 0x%08x },\n", e->function, e->index,
		       e->flags, e->eax, e->ebx, e->ecx, e->edx);
	}
	printf("};\n");
	free(c);
	close(fd);
	return 0;
}
