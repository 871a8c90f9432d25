/* The tap host side of virtio-net: open a tap interface with one queue per pair, the virtio
 * header in front of every frame (IFF_VNET_HDR, 12 bytes as VERSION_1 wants) and the
 * offloads the guest can take. The fds are non-blocking; the pair threads poll them. */
#include "devices/virtio/net_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

static int tap_open_one(const char *name, bool multi)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int hdr = VIRTIO_NET_HDR_LEN;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETVNETHDRSZ, &hdr)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* Which TUN_F_* offloads this tap accepts: try the largest set first. */
static uint32_t tap_probe_offloads(int fd)
{
	static const uint32_t sets[] = {
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO,
		TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
		TUN_F_CSUM,
	};

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
		if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)sets[i]) == 0) {
			ioctl(fd, TUNSETOFFLOAD, 0ul); /* none until the guest says what it takes */
			return sets[i];
		}
	return 0;
}

int net_tap_open(const char *name, unsigned nqueues, int *fds, uint32_t *offloads)
{
	unsigned i;
	int rc = 0;

	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	for (i = 0; i < nqueues; i++) {
		fds[i] = tap_open_one(name, nqueues > 1);
		if (fds[i] < 0) {
			rc = fds[i];
			pr_err("virtio-net: tap %s queue %u: %s", name, i, strerror(-rc));
			break;
		}
	}
	if (rc) {
		while (i--)
			close(fds[i]);
		return rc;
	}
	*offloads = tap_probe_offloads(fds[0]);
	pr_info("virtio-net: tap %s: %u queue(s), offloads 0x%x", name, nqueues, *offloads);
	return 0;
}

/* Tell the tap which offloads the guest accepts on receive (what the tap may hand us). */
int net_tap_set_offload(int fd, uint64_t guest_features, uint32_t possible)
{
	unsigned long f = 0;

	if (guest_features & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
		f |= TUN_F_CSUM;
		if (guest_features & (1ull << VIRTIO_NET_F_GUEST_TSO4))
			f |= TUN_F_TSO4;
		if (guest_features & (1ull << VIRTIO_NET_F_GUEST_TSO6))
			f |= TUN_F_TSO6;
		if (guest_features & (1ull << VIRTIO_NET_F_GUEST_ECN))
			f |= TUN_F_TSO_ECN;
		if (guest_features & (1ull << VIRTIO_NET_F_GUEST_UFO))
			f |= TUN_F_UFO;
	}
	f &= possible;
	return ioctl(fd, TUNSETOFFLOAD, f) ? -errno : 0;
}

/* Attach or detach one queue of a multi-queue tap (VIRTIO_NET_CTRL_MQ). */
int net_tap_set_queue(int fd, bool attach)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	if (ioctl(fd, TUNSETQUEUE, &ifr) && errno != EINVAL)
		return -errno;
	return 0;
}
