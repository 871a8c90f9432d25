/* vCPUs: one thread each. Each thread creates and configures its vCPU (so that many vCPUs
 * are set up in parallel), waits until all exist, then loops on KVM_RUN and dispatches exits
 * to the I/O buses. A stop request kicks every thread out of KVM_RUN with a signal and
 * immediate_exit. */
#ifndef VIREO_CORE_VCPU_H
#define VIREO_CORE_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned id;             /* vCPU index == APIC ID */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

/* Start the vCPU threads; the boot vCPU starts in the state *vm->entry. Each creates and sets
 * up its vCPU, then waits for vcpus_release() before the first KVM_RUN. 0 or -errno. */
int vcpus_start(struct vm *vm);
/* Wait until every started thread has created and set up its vCPU (or failed: vm_exiting()
 * then). */
void vcpus_wait_created(struct vm *vm);
/* Let the vCPU threads run (or, when an exit was requested, end). */
void vcpus_release(struct vm *vm);
/* Kick every vCPU out of KVM_RUN and join the threads (after vm_request_exit). */
void vcpus_stop(struct vm *vm);
/* Release the vCPU fds and mappings (after vcpus_stop). */
void vcpus_destroy(struct vm *vm);

#endif
