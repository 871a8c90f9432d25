/* A device in another process, behind the device-ops interface (S1): the VMM's virtio
 * transport programs it like any in-process device, and the ops become vhost-user messages
 * through the front-end (frontend.h). Nothing here knows the device kind; the caller says
 * which virtio device id it is (vhost-user does not).
 *
 *   set_features / set_vq_num / set_vq_address / set_vq_ready / set_vq_state: remembered
 *   FEATURES_OK:  SET_FEATURES (a refusal keeps FEATURES_OK clear)
 *   DRIVER_OK:    SET_MEM_TABLE (every guest memory region), then each ready queue started
 *                 (SET_VRING_NUM/BASE/ADDR/KICK/CALL/ENABLE); a failure sets NEEDS_RESET
 *   kick_vq:      a write to the queue's kick eventfd (lock-free; or the VMM registers that
 *                 fd as a KVM ioeventfd, vu_remote_kick_fd)
 *   interrupts:   a thread polls the call eventfds and runs the queue callbacks, unless the
 *                 VMM gave a call fd of its own (an irqfd, vu_remote_set_call_fd)
 *   reset / status 0: running queues stopped (GET_VRING_BASE: get_vq_state then reads where
 *                 the device stopped), everything else back to the initial state
 *   get/set_config: GET_CONFIG / SET_CONFIG, clipped to the config size the caller gave
 *
 * Threads: ops may be called from any thread (one mutex; kick_vq takes none). Callbacks run on
 * the poller thread without the mutex held.
 */
#ifndef VIREO_VHOST_USER_REMOTE_DEV_H
#define VIREO_VHOST_USER_REMOTE_DEV_H

#include <stdint.h>

#include "vhost-user/frontend.h"
#include "virtio/device_ops.h"

struct vu_remote;

struct vu_remote_config {
	const char *name;          /* for logs */
	const char *socket;        /* the backend's vhost-user socket */
	struct guest_memory *gm;   /* regions must have fds (memfd) */
	uint32_t device_id;        /* VIRTIO_ID_* */
	unsigned num_queues;       /* 0: the backend's GET_QUEUE_NUM, or 1 without MQ */
	unsigned queue_max;        /* largest queue size offered; 0: 256 */
	unsigned config_size;      /* bytes of config space (<= 256); 0: none */
	/* (addition) Device features never offered to the driver, and refused at FEATURES_OK:
	 * what the VMM does not carry to the backend (e.g. net's control queue, which it does not
	 * have among num_queues). */
	uint64_t hidden_features;
};

int vu_remote_create(const struct vu_remote_config *cfg, struct vu_remote **out);
void vu_remote_destroy(struct vu_remote *rd);
struct virtio_dev_handle vu_remote_handle(struct vu_remote *rd);

/* The eventfd a kick of queue idx is written to (-1 for a bad idx): a VMM may register it as
 * a KVM ioeventfd so guest kicks reach the backend without passing through the VMM. */
int vu_remote_kick_fd(struct vu_remote *rd, unsigned idx);
/* Use fd (e.g. a KVM irqfd; -1: back to the poller and callbacks) as queue idx's call fd from
 * the next DRIVER_OK. The caller keeps owning fd. 0, -EINVAL or -EBUSY while running. */
int vu_remote_set_call_fd(struct vu_remote *rd, unsigned idx, int fd);
/* Stop the running queues on the backend (GET_VRING_BASE) and keep everything else, so that
 * get_vq_state reads where each one stopped (snapshots, migration); like
 * virtio_device_quiesce, until the next reset. dev is the handle's dev. */
void vu_remote_quiesce(void *dev);

#endif
