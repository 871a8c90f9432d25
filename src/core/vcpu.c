/* vCPU threads and the KVM_RUN loop (see vcpu.h). Exits are dispatched here; x86 register
 * set-up lives in src/arch/x86/vcpu_setup.c. */
#include "core/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "arch/x86/vcpu_setup.h"
#include "core/vm.h"
#include "util/log.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define VCPU_STACK_SIZE  (256 * 1024)

/* The start gate: every vCPU exists before any runs (the boot vCPU's SIPIs must find them).
 * vcpus_wait_created() returns once all threads are past creation and waiting here; the
 * guest runs after vcpus_release() (in between, vm_run() installs the seccomp filter). */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ready;
	unsigned started;
	bool open;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, false };

static void gate_arrive_and_wait(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.ready++;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

/* Main thread: wait until the started threads are past creation. */
void vcpus_wait_created(struct vm *vm)
{
	(void)vm;
	pthread_mutex_lock(&gate.lock);
	while (gate.ready < gate.started)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

void vcpus_release(struct vm *vm)
{
	(void)vm;
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

/* Port I/O: count > 1 is string I/O (rep ins/outs), count items of size bytes in a row. */
static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++) {
		int r = bus_access(&v->vm->pio, run->io.port, data + i * run->io.size,
				   run->io.size, is_write);

		if (r && r != -ENOENT)
			pr_debug("vcpu%u: port %#x: %s", v->id, run->io.port, strerror(-r));
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	int r = bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			   run->mmio.is_write);

	if (r)
		pr_debug("vcpu%u: mmio %#llx (%u bytes): %s", v->id,
			 (unsigned long long)run->mmio.phys_addr, run->mmio.len, strerror(-r));
}

static void vcpu_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_exit(v->vm, VM_EXIT_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(v->vm, VM_EXIT_REBOOT);
		break;
	default:
		pr_err("vcpu%u: guest crashed (system event %u)", v->id,
		       v->run->system_event.type);
		vm_request_exit(v->vm, VM_EXIT_ERROR);
	}
}

/* KVM could not handle something (suberror 1: it could not emulate an instruction). Say
 * where, with KVM's data words (for emulation failures they include the instruction bytes). */
static void vcpu_report_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct kvm_regs r;
	char data[160] = "";
	size_t off = 0;

	memset(&r, 0, sizeof(r));
	ioctl(v->fd, KVM_GET_REGS, &r);
	for (unsigned i = 0; i < run->internal.ndata && i < 6 && off < sizeof(data); i++)
		off += snprintf(data + off, sizeof(data) - off, " %#llx",
				(unsigned long long)run->internal.data[i]);
	pr_err("vcpu%u: KVM internal error, suberror %u%s at rip %#llx; data:%s", v->id,
	       run->internal.suberror,
	       run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
	       " (instruction emulation failed)" : "",
	       (unsigned long long)r.rip, data);
}

/* One exit. Returns false when the loop must stop. */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		return true;
	case KVM_EXIT_SHUTDOWN:
		pr_info("vcpu%u: triple fault (shutdown): treated as a reboot request", v->id);
		vm_request_exit(v->vm, VM_EXIT_REBOOT);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_system_event(v);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		pr_err("vcpu%u: KVM_RUN entry failed, reason %#llx", v->id,
		       (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		if (x86_emulation_fallback(v) == 0)
			return true;
		vcpu_report_internal_error(v);
		break;
	default:
		pr_err("vcpu%u: unexpected KVM exit reason %u", v->id, run->exit_reason);
		break;
	}
	vm_request_exit(v->vm, VM_EXIT_ERROR);
	return false;
}

static void vcpu_run_loop(struct vcpu *v)
{
	bool first = true;

	while (!vm_exiting(v->vm)) {
		if (first && v->id == 0) {
			first = false;
			vm_timing(v->vm, "first KVM_RUN");
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			pr_err("vcpu%u: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_exit(v->vm, VM_EXIT_ERROR);
			return;
		}
		if (!vcpu_handle_exit(v))
			return;
	}
}

static int vcpu_create(struct vcpu *v)
{
	struct vm *vm = v->vm;

	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)v->id);
	if (v->fd < 0) {
		pr_err("KVM_CREATE_VCPU %u: %s", v->id, strerror(errno));
		return -errno;
	}
	v->run = mmap(NULL, vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		pr_err("vcpu%u: mmap kvm_run: %s", v->id, strerror(errno));
		return -errno;
	}
	return x86_vcpu_setup(v, v->id == 0 ? vm->entry : NULL);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t set;
	int ret;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	ret = vcpu_create(v);
	if (ret)
		vm_request_exit(v->vm, VM_EXIT_USAGE);
	gate_arrive_and_wait();
	if (!ret)
		vcpu_run_loop(v);
	if (!ret && log_get_level() >= LOG_DEBUG) {
		struct kvm_regs r;

		if (ioctl(v->fd, KVM_GET_REGS, &r) == 0)
			pr_debug("vcpu%u stopped: rip %#llx rsp %#llx rflags %#llx", v->id,
				 (unsigned long long)r.rip, (unsigned long long)r.rsp,
				 (unsigned long long)r.rflags);
	}
	return NULL;
}

int vcpus_start(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };
	pthread_attr_t attr;
	sigset_t set;
	unsigned started = 0;
	int ret = 0;

	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	/* No SA_RESTART: the signal must make KVM_RUN return EINTR. Blocked outside the vCPU
	 * threads so that only they take it. */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	gate.ready = 0;
	gate.started = 0;
	gate.open = false;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, VCPU_STACK_SIZE);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		v->vm = vm;
		v->id = i;
		v->fd = -1;
		ret = -pthread_create(&v->thread, &attr, vcpu_thread, v);
		if (ret) {
			pr_err("cannot start vCPU thread %u: %s", i, strerror(-ret));
			break;
		}
		v->thread_started = true;
		started++;
		pthread_mutex_lock(&gate.lock);
		gate.started = started;
		pthread_mutex_unlock(&gate.lock);
	}
	pthread_attr_destroy(&attr);
	if (ret)
		vm_request_exit(vm, VM_EXIT_USAGE);
	return ret;
}

void vcpus_stop(struct vm *vm)
{
	if (!vm->vcpus)
		return;
	vcpus_release(vm); /* threads still at the gate see the exit request and end */
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (!v->thread_started)
			continue;
		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->thread_started)
			pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
}

void vcpus_destroy(struct vm *vm)
{
	if (!vm->vcpus)
		return;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, vm->vcpu_mmap_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
}
