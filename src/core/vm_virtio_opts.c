/* Parsing of `vireo run`'s virtio device options (--rng, --disk, --net, --vsock) in Cloud
 * Hypervisor's key=value,key=value style. Everything is checked here, before /dev/kvm is
 * opened: a bad option is one error line and exit status 2. */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/vm_virtio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/vsock.h"
#include "virtio/device_ops.h"
#include "util/log.h"

static int parse_onoff(const char *opt, const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
	} else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
	} else {
		pr_err("--%s: %s=%s: not on or off", opt, key, v);
		return -EINVAL;
	}
	return 0;
}

static int parse_uint(const char *opt, const char *key, const char *v, unsigned max,
		      unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n == 0 || n > max) {
		pr_err("--%s: %s=%s: not a number from 1 to %u", opt, key, v, max);
		return -EINVAL;
	}
	*out = (unsigned)n;
	return 0;
}

static int parse_cid(const char *v, uint64_t *cid)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || end == v || *end || *v == '-' || n < 3 || n >= 0xffffffffull)
		return -EINVAL;
	*cid = n;
	return 0;
}

/* One key=value of kind's option into s. */
static int parse_kv(const char *opt, struct vm_virtio_spec *s, const char *key, const char *v)
{
	if (s->kind == VM_VIRTIO_BLK || s->kind == VM_VIRTIO_NET) {
		if (!strcmp(key, "vhost_user"))
			return parse_onoff(opt, key, v, &s->vhost_user);
		if (!strcmp(key, "socket")) {
			s->socket = v;
			return 0;
		}
	}
	switch (s->kind) {
	case VM_VIRTIO_BLK:
		if (!strcmp(key, "path")) { s->path = v; return 0; }
		if (!strcmp(key, "serial")) { s->serial = v; return 0; }
		if (!strcmp(key, "readonly")) return parse_onoff(opt, key, v, &s->readonly);
		if (!strcmp(key, "direct")) return parse_onoff(opt, key, v, &s->direct);
		if (!strcmp(key, "num_queues"))
			return parse_uint(opt, key, v, VIRTIO_MAX_QUEUES, &s->num_queues);
		if (!strcmp(key, "queue_size")) {
			if (parse_uint(opt, key, v, 32768, &s->queue_size))
				return -EINVAL;
			if (s->queue_size >= 4 && !(s->queue_size & (s->queue_size - 1)))
				return 0;
			/* what virtio_blk_create() would refuse later, after /dev/kvm */
			pr_err("--%s: %s=%s: not a power of two from 4 to 32768", opt, key, v);
			return -EINVAL;
		}
		break;
	case VM_VIRTIO_NET:
		if (!strcmp(key, "tap")) { s->path = v; return 0; }
		if (!strcmp(key, "mac")) {
			s->has_mac = true;
			if (virtio_net_parse_mac(v, s->mac) == 0)
				return 0;
			pr_err("--%s: mac=%s: not a MAC address (aa:bb:cc:dd:ee:ff)", opt, v);
			return -EINVAL;
		}
		break;
	case VM_VIRTIO_VSOCK:
		if (!strcmp(key, "socket")) { s->path = v; return 0; }
		if (!strcmp(key, "cid")) {
			if (parse_cid(v, &s->cid) == 0)
				return 0;
			pr_err("--%s: cid=%s: not a guest CID (3 to 4294967294)", opt, v);
			return -EINVAL;
		}
		break;
	case VM_VIRTIO_RNG:
		break;
	}
	pr_err("--%s: unknown key '%s' (see vireo run --help)", opt, key);
	return -EINVAL;
}

/* What must be there once all keys are read. */
static int check_spec(const char *opt, const struct vm_virtio_spec *s)
{
	if (s->vhost_user || s->socket) {
		if (!s->vhost_user || !s->socket || !*s->socket || s->path || s->loopback ||
		    s->readonly || s->direct || s->serial || s->has_mac || s->num_queues ||
		    s->queue_size) {
			pr_err("--%s: a vhost-user device takes vhost_user=on,socket=PATH and "
			       "nothing else", opt);
			return -EINVAL;
		}
		return 0;
	}
	switch (s->kind) {
	case VM_VIRTIO_BLK:
		if (!s->path || !*s->path) {
			pr_err("--%s: path=FILE is required", opt);
			return -EINVAL;
		}
		if (access(s->path, s->readonly ? R_OK : R_OK | W_OK)) {
			pr_err("--%s: %s: %s", opt, s->path, strerror(errno));
			return -EINVAL;
		}
		return 0;
	case VM_VIRTIO_NET:
		if (!s->loopback == !s->path) {
			pr_err("--%s: give tap=NAME or loopback", opt);
			return -EINVAL;
		}
		if (s->path && (!*s->path || strlen(s->path) >= IFNAMSIZ)) {
			pr_err("--%s: tap=%s: empty or longer than %u bytes", opt, s->path,
			       IFNAMSIZ - 1);
			return -EINVAL;
		}
		return 0;
	case VM_VIRTIO_VSOCK:
		if (!s->cid || !s->path || !*s->path) {
			pr_err("--%s: cid=N and socket=PATH are required", opt);
			return -EINVAL;
		}
		if (strlen(s->path) > VIRTIO_VSOCK_UDS_MAX) {
			pr_err("--%s: socket=%s: longer than %u bytes", opt, s->path,
			       VIRTIO_VSOCK_UDS_MAX);
			return -EINVAL;
		}
		return 0;
	case VM_VIRTIO_RNG:
		return 0;
	}
	return -EINVAL;
}

int vm_virtio_parse(struct vm_virtio_config *cfg, const char *opt, char *arg)
{
	static const char *const kinds[] = { [VM_VIRTIO_RNG] = "rng", [VM_VIRTIO_BLK] = "disk",
					     [VM_VIRTIO_NET] = "net", [VM_VIRTIO_VSOCK] = "vsock" };
	struct vm_virtio_spec s = { 0 };
	char *save = NULL, *tok;
	unsigned k;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && strcmp(kinds[k], opt); k++)
		;
	if (k == sizeof(kinds) / sizeof(kinds[0]))
		return -EINVAL;
	s.kind = k;
	if (cfg->n >= VM_VIRTIO_MAX) {
		pr_err("--%s: at most %u virtio devices", opt, VM_VIRTIO_MAX);
		return -EINVAL;
	}
	for (tok = arg ? strtok_r(arg, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (s.kind == VM_VIRTIO_NET && !strcmp(tok, "loopback")) {
			s.loopback = true;
			continue;
		}
		if (!eq) {
			pr_err("--%s: '%s' is not key=value", opt, tok);
			return -EINVAL;
		}
		*eq = '\0';
		if (parse_kv(opt, &s, tok, eq + 1))
			return -EINVAL;
	}
	if (check_spec(opt, &s))
		return -EINVAL;
	cfg->dev[cfg->n++] = s;
	return 0;
}
