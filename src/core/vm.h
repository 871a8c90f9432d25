/* A virtual machine: the KVM VM file descriptor, guest RAM, the I/O buses, the vCPUs, and the
 * exit request that ends `vireo run`.
 *
 * Life cycle (src/core/cmd_run.c): vm_create() (KVM checks, irqchip, PIT, RAM) ->
 * devices register on vm->pio / vm->mmio -> a kernel loader fills guest memory and the
 * boot entry state -> vm_run() starts one thread per vCPU and waits for an exit request ->
 * vm_destroy().
 *
 * Exit statuses of `vireo run` (documented in its --help and the README):
 *   0  the guest powered off (ACPI S5, KVM_SYSTEM_EVENT_SHUTDOWN)
 *   1  vireo failed while the guest ran (KVM error, emulation failure)
 *   2  bad usage or set-up error (before the guest runs)
 *   4  the guest asked for a reboot (i8042 reset, triple fault, KVM_SYSTEM_EVENT_RESET)
 *   (v << 1) | 1  the guest wrote v to isa-debug-exit (port 0xf4)
 */
#ifndef VIREO_CORE_VM_H
#define VIREO_CORE_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/vm_virtio.h"
#include "memory/guest_memory.h"

#define VM_EXIT_POWEROFF 0
#define VM_EXIT_ERROR    1
#define VM_EXIT_USAGE    2
#define VM_EXIT_REBOOT   4

/* Guest-physical layout (x86). RAM runs from 0; when it does not fit below
 * VM_MMIO_HOLE_START, the rest is mapped from 4 GiB. The hole holds 32-bit MMIO: PCI BARs
 * from VM_MMIO_HOLE_START, the IOAPIC at 0xfec00000, the LAPIC at 0xfee00000. */
#define VM_MMIO_HOLE_START 0xc0000000ull  /* 3 GiB */
#define VM_4G              0x100000000ull
#define VM_IOAPIC_ADDR     0xfec00000ull
#define VM_LAPIC_ADDR      0xfee00000ull

/* --kernel-unpack: vireo unpacks an LZ4 bzImage payload on the host (host), the guest's
 * decompressor does (guest), or host only where KVM emulates guest kernel code (auto). */
enum { VM_UNPACK_AUTO, VM_UNPACK_HOST, VM_UNPACK_GUEST };

/* What the user asked for on the command line. */
struct vm_config {
	const char *kernel;
	int kernel_fd;           /* the kernel file as mapped, open until it is loaded (or -1) */
	const char *initrd;
	const char *cmdline;
	unsigned ncpus;
	uint64_t mem_size;       /* bytes */
	const char *console;     /* "stdio", "none" or a file path */
	bool timing;             /* print set-up / boot timings */
	int unpack;              /* VM_UNPACK_*: who decompresses a bzImage payload */
	int seccomp;             /* enum sandbox_mode (--seccomp on|off|log; 0 = on) */
	uint64_t t_start_ns;     /* vm_now_ns() when the command started */
	struct vm_virtio_config virtio; /* --rng, --disk, --net, --vsock (core/vm_virtio.h) */
};

struct vcpu;
struct boot_entry;
struct kvm_cpuid2;

#define VM_MAX_WATCHES 8

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;      /* KVM_GET_VCPU_MMAP_SIZE */
	unsigned ncpus;
	unsigned max_vcpus;      /* KVM_CAP_MAX_VCPUS */
	uint64_t ram_size;       /* total guest RAM, bytes */
	uint64_t ram_low;        /* RAM mapped at [0, ram_low) */
	uint64_t ram_high;       /* RAM mapped at [4 GiB, 4 GiB + ram_high) */
	struct guest_memory mem;
	struct io_bus pio;
	struct io_bus mmio;
	struct vcpu *vcpus;      /* ncpus entries */
	uint64_t t_start_ns;     /* CLOCK_MONOTONIC at process start (timings) */

	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, read once */
	bool x2apic_api;         /* KVM_CAP_X2APIC_API enabled with 32-bit IDs */
	struct boot_entry *entry; /* how the boot vCPU starts (set by the kernel loader) */
	struct vm_virtio *virtio; /* the virtio-mmio devices (core/vm_virtio.c) */

	/* Exit request: first caller wins; exit_efd wakes the main loop. */
	pthread_mutex_t exit_lock;
	atomic_bool exit_requested;
	int exit_status;
	int exit_efd;

	/* File descriptors the main loop watches (console input). */
	struct vm_watch {
		int fd;
		bool (*cb)(void *opaque);
		void *opaque;
	} watches[VM_MAX_WATCHES];
	unsigned nwatches;
};

/* Call cb(opaque) on the main thread whenever fd is readable, until the VM exits or cb
 * returns false (end of input). */
int vm_watch_fd(struct vm *vm, int fd, bool (*cb)(void *opaque), void *opaque);

/* Ask vireo to stop the guest and exit with status. Safe from any thread (device handlers,
 * vCPU threads, signal-free context). Only the first request counts. */
void vm_request_exit(struct vm *vm, int status);
static inline bool vm_exiting(struct vm *vm)
{
	return atomic_load_explicit(&vm->exit_requested, memory_order_acquire);
}

/* Set the level of an in-kernel irqchip input (GSI): KVM_IRQ_LINE. 0 or -errno. */
int vm_irq_line(struct vm *vm, uint32_t gsi, int level);
/* Pulse an edge-triggered interrupt (level 1 then 0). */
int vm_irq_pulse(struct vm *vm, uint32_t gsi);

/* Open /dev/kvm, check the API and capabilities, create the VM with its irqchip, PIT and
 * RAM (cfg->mem_size, cfg->ncpus). Errors are printed as one line; returns 0 or -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Create the vCPUs with the boot state in *vm->entry, start one thread each, run the main
 * loop until an exit request, stop and join the threads. Returns the exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* SIGINT, SIGTERM and SIGHUP stop the guest; vireo then exits with 128 + the signal. */
void vm_install_signal_handlers(struct vm *vm);

/* True when /dev/kvm is PVM (a nested, paravirtual KVM without hardware virtualization,
 * /sys/module/kvm_pvm): it emulates an unmodified guest kernel's code in runs after each
 * privileged instruction, slowly, and its emulator lacks some instructions. */
bool vm_kvm_is_pvm(void);

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t vm_now_ns(void);
/* With --timing or VIREO_LOG=info: "vireo: timing: <what> at X ms" since process start. */
void vm_timing(struct vm *vm, const char *what);

#endif
