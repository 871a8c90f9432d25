/* `vireo run`: boot a kernel on KVM. Parses the command line (kvmtool-style short options,
 * Cloud Hypervisor-style long ones), checks the inputs before touching KVM, creates the VM,
 * its devices, loads the kernel and runs until the guest powers off, reboots or fails.
 * The exit statuses are listed in --help and in src/core/vm.h. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "core/cmd_run.h"
#include "core/devices.h"
#include "core/vm.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp.h"
#include "util/log.h"

#define DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"
#define DEFAULT_MEM     (256ull << 20)
#define MIN_MEM         (16ull << 20)

static void run_usage(FILE *f)
{
	fprintf(f,
"usage: vireo run --kernel FILE [options]\n"
"Boot FILE (a Linux bzImage, an ELF vmlinux, or a multiboot kernel) on KVM.\n\n"
"  -k, --kernel FILE       kernel image\n"
"  -i, --initrd FILE       initial ramdisk (bzImage) or module (multiboot)\n"
"  -p, --cmdline STR       kernel command line (default \"" DEFAULT_CMDLINE "\")\n"
"  -c, --cpus N            number of vCPUs (default 1, at most KVM's limit)\n"
"  -m, --memory SIZE       guest RAM: a number with K, M, G or T (no suffix: MiB;\n"
"                          default 256M); above 3 GiB the rest goes above 4 GiB\n"
"      --console WHERE     serial console: stdio (default), none, or a file path\n"
"      --timing            print set-up and run times on stderr\n"
"      --rng               a virtio-rng device (virtio-mmio; see below)\n"
"      --disk path=FILE[,readonly=on][,direct=on][,serial=STR][,num_queues=N]\n"
"             [,queue_size=N]  a virtio-blk device on FILE\n"
"      --net tap=NAME|loopback[,mac=MAC]\n"
"                          a virtio-net device on tap NAME, or looping back\n"
"      --vsock cid=N,socket=PATH\n"
"                          a virtio-vsock device, host side on Unix socket PATH\n"
"      --disk|--net vhost_user=on,socket=PATH\n"
"                          the device in a vhost-user backend listening on PATH\n"
"      --seccomp MODE      syscall filter from the first KVM_RUN on: on (default: a\n"
"                          syscall outside the VMM's allowlist kills vireo), log\n"
"                          (allowed, logged by the kernel's audit), off\n"
"      --kernel-unpack HOW host: vireo unpacks an LZ4 bzImage itself and loads its\n"
"                          vmlinux; guest: the kernel's decompressor does; auto\n"
"                          (default): host where KVM emulates guest kernel code (PVM)\n"
"  -h, --help              this help\n\n"
"virtio devices (up to 8, in option order) sit at 0xd0000000 + 4 KiB * i with IRQs\n"
"5, 6, 7, 10, 11, 12, 14, 15; vireo adds virtio_mmio.device=4K@ADDR:IRQ to the\n"
"command line and LNRO0005 entries to the DSDT.\n\n"
"Exit status: 0 the guest powered off; 1 vireo failed while the guest ran;\n"
"2 bad usage or set-up error; 4 the guest asked for a reboot (or triple-faulted);\n"
"(v << 1) | 1 the guest wrote v to isa-debug-exit (port 0xf4); 128 + n after signal n.\n"
"VIREO_LOG=debug|info|warn|err sets the log level.\n");
}

/* "256M", "4G", "1048576K", "512" (MiB). 0 on error. */
uint64_t run_parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 20;

	if (!s || *s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	case '\0': break;
	default: return 0;
	}
	if (end[0] == 'i' && end[1] == 'B')   /* 256MiB */
		end += 2;
	else if (end[0] == 'B' && end[-1] > '9') /* 256MB */
		end++;
	if (*end || v > (UINT64_MAX >> shift))
		return 0;
	return (uint64_t)v << shift;
}

static int parse_cpus(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 1u << 20 || *s == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

/* Fill cfg from argv. Returns 0, 1 for --help (exit 0), or -EINVAL (message printed). */
int run_parse_args(int argc, char **argv, struct vm_config *cfg)
{
	enum { OPT_CONSOLE = 256, OPT_TIMING, OPT_UNPACK, OPT_VIRTIO, OPT_SECCOMP };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'p' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "timing", no_argument, NULL, OPT_TIMING },
		{ "kernel-unpack", required_argument, NULL, OPT_UNPACK },
		{ "rng", no_argument, NULL, OPT_VIRTIO },
		{ "disk", required_argument, NULL, OPT_VIRTIO },
		{ "net", required_argument, NULL, OPT_VIRTIO },
		{ "vsock", required_argument, NULL, OPT_VIRTIO },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, idx;

	cfg->ncpus = 1;
	cfg->mem_size = DEFAULT_MEM;
	cfg->cmdline = DEFAULT_CMDLINE;
	cfg->console = "stdio";
	cfg->seccomp = SANDBOX_ON;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "k:i:p:c:m:h", opts, &idx)) != -1) {
		switch (c) {
		case OPT_VIRTIO:
			if (vm_virtio_parse(&cfg->virtio, opts[idx].name, optarg))
				return -EINVAL;
			break;
		case 'k': cfg->kernel = optarg; break;
		case 'i': cfg->initrd = optarg; break;
		case 'p': cfg->cmdline = optarg; break;
		case OPT_CONSOLE: cfg->console = optarg; break;
		case OPT_TIMING: cfg->timing = true; break;
		case OPT_UNPACK:
			if (!strcmp(optarg, "auto")) {
				cfg->unpack = VM_UNPACK_AUTO;
			} else if (!strcmp(optarg, "host")) {
				cfg->unpack = VM_UNPACK_HOST;
			} else if (!strcmp(optarg, "guest")) {
				cfg->unpack = VM_UNPACK_GUEST;
			} else {
				pr_err("--kernel-unpack %s: not auto, host or guest", optarg);
				return -EINVAL;
			}
			break;
		case OPT_SECCOMP: {
			enum sandbox_mode m;

			if (sandbox_parse_mode(optarg, &m)) {
				pr_err("--seccomp %s: not on, off or log", optarg);
				return -EINVAL;
			}
			cfg->seccomp = m;
			break;
		}
		case 'h': return 1;
		case 'c':
			if (parse_cpus(optarg, &cfg->ncpus)) {
				pr_err("--cpus %s: not a vCPU count (1 or more)", optarg);
				return -EINVAL;
			}
			break;
		case 'm':
			cfg->mem_size = run_parse_size(optarg);
			if (!cfg->mem_size || cfg->mem_size & (GM_PAGE_SIZE - 1) ||
			    cfg->mem_size < MIN_MEM) {
				pr_err("--memory %s: not a size of at least 16M in whole pages "
				       "(e.g. 256M, 4G)", optarg);
				return -EINVAL;
			}
			break;
		default:
			pr_err("run: unknown or incomplete option '%s' (see vireo run --help)",
			       argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		pr_err("run: unexpected argument '%s' (see vireo run --help)", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		pr_err("run: --kernel FILE is required (see vireo run --help)");
		return -EINVAL;
	}
	return 0;
}

/* Map the kernel file read-only and pick its loader. The file stays open (*kfd) so that a
 * loader copying from the file reads the one that was mapped and probed, not whatever the
 * path names by then. */
static int open_kernel(const char *path, void **img, size_t *len,
		       const struct kernel_loader **loader, int *kfd)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		pr_err("kernel %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ENOENT;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		pr_err("kernel %s: not a regular, non-empty file", path);
		close(fd);
		return -ENOEXEC;
	}
	*len = st.st_size;
	/* Not populated: a bzImage's kernel goes to guest RAM from the file (gm_load_fd), only
	 * its header is read here; loaders that read it all populate what they read. */
	*img = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (*img == MAP_FAILED) {
		pr_err("kernel %s: %s", path, strerror(errno));
		close(fd);
		return -ENOMEM;
	}
	for (unsigned i = 0; x86_loaders[i]; i++) {
		if (x86_loaders[i]->probe(*img, *len)) {
			*loader = x86_loaders[i];
			*kfd = fd;
			return 0;
		}
	}
	pr_err("kernel %s: not a bzImage, multiboot or ELF vmlinux kernel", path);
	munmap(*img, *len);
	close(fd);
	return -ENOEXEC;
}

static void release_kernel(void *img, size_t len, int fd)
{
	munmap(img, len);
	close(fd);
}

/* The clock origin of --timing: as early in the process as vireo's own code runs. */
static uint64_t run_t0_ns;
__attribute__((constructor)) static void run_clock_origin(void)
{
	run_t0_ns = vm_now_ns();
}

/* A vsock device removes its host listener at exit, so the seccomp profile then allows
 * unlink(2), whose path seccomp cannot check: limit file removal to the listeners'
 * directories with Landlock, before any thread exists (its domains are per thread and
 * inherited). Nothing to do without vsock (unlink is not allowed at all) or --seccomp off. */
static int run_limit_removal(const struct vm_config *cfg)
{
	const char *files[VM_VIRTIO_MAX];
	unsigned n = 0;
	int ret;

	for (unsigned i = 0; i < cfg->virtio.n; i++)
		if (cfg->virtio.dev[i].kind == VM_VIRTIO_VSOCK)
			files[n++] = cfg->virtio.dev[i].path;
	if (!n || cfg->seccomp == SANDBOX_OFF)
		return 0;
	ret = sandbox_limit_removal(files, n);
	if (ret == -EOPNOTSUPP) {
		pr_info("no Landlock in this kernel: the vsock device's unlink is not limited");
		return 0;
	}
	if (ret)
		pr_err("cannot limit file removal (Landlock): %s", strerror(-ret));
	return ret;
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg = { .t_start_ns = run_t0_ns ? run_t0_ns : vm_now_ns() };
	const struct kernel_loader *loader = NULL;
	struct boot_entry entry;
	struct vm vm;
	void *img = NULL;
	size_t len = 0;
	int ret, status = VM_EXIT_USAGE;

	ret = run_parse_args(argc, argv, &cfg);
	if (ret) {
		if (ret > 0)
			run_usage(stdout);
		return ret > 0 ? 0 : VM_EXIT_USAGE;
	}
	if (cfg.timing) /* lets a launcher (bench/boot_once) add exec and dynamic linking */
		fprintf(stderr, "vireo: timing: clock origin %llu ns (CLOCK_MONOTONIC)\n",
			(unsigned long long)cfg.t_start_ns);
	cfg.kernel_fd = -1;
	if (open_kernel(cfg.kernel, &img, &len, &loader, &cfg.kernel_fd))
		return VM_EXIT_USAGE;
	if (cfg.initrd && access(cfg.initrd, R_OK)) {
		pr_err("initrd %s: %s", cfg.initrd, strerror(errno));
		release_kernel(img, len, cfg.kernel_fd);
		return VM_EXIT_USAGE;
	}
	if (run_limit_removal(&cfg)) {
		release_kernel(img, len, cfg.kernel_fd);
		return VM_EXIT_USAGE;
	}
	if (vm_create(&vm, &cfg))
		goto out;
	vm_timing(&vm, "VM created");
	if (vm_devices_init(&vm))
		goto out_devices;
	vm_timing(&vm, "devices ready");
	if (loader->load(&vm, img, len, &entry))
		goto out_devices;
	vm_timing(&vm, "kernel loaded");
	release_kernel(img, len, cfg.kernel_fd);
	img = NULL;
	vm.entry = &entry;
	vm_install_signal_handlers(&vm);
	status = vm_run(&vm);
out_devices:
	vm_devices_exit(&vm);
out:
	vm_destroy(&vm);
	if (img)
		release_kernel(img, len, cfg.kernel_fd);
	vm_timing(&vm, "exit");
	return status;
}
