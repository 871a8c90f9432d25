#!/usr/bin/env bash
# vireo run's in-process virtio-mmio devices driven by a real Linux guest (issues 5 and 6):
# the default guest (scripts/make-guest.sh: Debian's cloud kernel, virtio_mmio as a module
# that finds the devices through the DSDT's LNRO0005 entries) under `vireo run` with
#   --rng                          /dev/hwrng is virtio_rng, its bytes are not constant
#   --disk path=rw.img,serial=...  8 MiB of random bytes: the guest reads them (sha256), writes
#                                  5 ranges (first sector, unaligned, 1 MiB across 4 MiB, last
#                                  sector, 100 bytes inside a sector), reads back after
#                                  dropping its caches; after poweroff the host file is the
#                                  original with exactly those bytes changed
#   --disk ...,readonly=on         the guest sees ro=1, its write fails, the file is unchanged
#   --net loopback,mac=...         the MAC; N pings with ARP off (one frame each): exactly N frames
#                                  out and N back (tx/rx packet and byte counters)
#   --vsock cid=3,socket=UDS       10 MiB host->guest and 10 MiB guest->host with vsockcat and
#                                  a host vsockcat on the Unix sockets, sha256 both ways
#   --net tap=vt0,mac=...          (as root) vireo runs in a network namespace made here with a
#                                  tap at 10.98.0.1: 3 of 3 guest pings answered
# plus: each device bound to its driver under a LNRO0005 platform device, at 0xd0000000 + 4 KiB
# * i with IRQ 5, 6, 7, 10, 11 (12) in option order, each with interrupts in /proc/interrupts;
# the guest's commands ran and ACPI poweroff made vireo exit 0.
#
# Needs a KVM that runs Linux: without /dev/kvm, or on PVM (/sys/module/kvm_pvm, where a Linux
# boot takes 12-19 minutes, see docs/ARCHITECTURE.md) it SKIPs (exit 77) saying why;
# VMM_BOOT_PVM=1 (or VMM_BOOT_ALL=1, as for vmm_boot.sh) runs it on PVM anyway with the
# timeout VMM_PVM_TIMEOUT (3600 s). Timeout on KVM: VIRTIO_LINUX_TIMEOUT (100 s; expected
# run time a few seconds).
#
# VIRTIO_LINUX_QEMU=1 is the dry run: the same guest script and the same host checks, with
# QEMU microvm under TCG (virtio-mmio found through QEMU's own LNRO0005 DSDT entries) in front
# of the same device code as `vireo backend blk|net|vsock` over vhost-user (net: loopback and
# tap; rng: QEMU's own virtio-rng-device); it then also checks that the host-side checker fails on doctored inputs
# (a changed disk byte, a wrong checksum, a frame count off, constant rng bytes, a device
# without interrupts, a wrong exit status) and accepts and checks vireo's placement.
#
# What has been run (2026-11-26, on a PVM host, so the vireo path itself has NOT): the dry
# run under QEMU 7.2 TCG (15-20 s): all checks and the checker self-test pass; the vireo path
# SKIPs here. What the dry run cannot cover: vireo's transport (src/virtio/mmio.c,
# src/core/vm_virtio.c), its DSDT entries and IRQs (the address/IRQ checks run only under
# vireo; the self-test feeds them a rewritten log), the in-process wiring (ioeventfd kicks,
# irqfd), and vireo's rng device (the dry run uses QEMU's).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

QEMU_MODE=${VIRTIO_LINUX_QEMU:-0}
FAILED=0
. tests/lib/check.sh

TO=${VIRTIO_LINUX_TIMEOUT:-100}
if [ "$QEMU_MODE" = 1 ]; then
	command -v "$QEMU_BIN" >/dev/null || { echo "SKIP: dry run ($QEMU_BIN not installed)"; exit 77; }
	TO=${VIRTIO_LINUX_TIMEOUT:-300}
else
	if [ ! -c /dev/kvm ]; then
		echo "SKIP: Linux guest on vireo's virtio-mmio devices (no /dev/kvm)"
		echo "no /dev/kvm"; exit 77
	fi
	if [ -d /sys/module/kvm_pvm ]; then
		if [ "${VMM_BOOT_PVM:-0}" = 1 ] || [ "${VMM_BOOT_ALL:-0}" = 1 ]; then
			TO=${VMM_PVM_TIMEOUT:-3600}
			echo "note: PVM host, running anyway (VMM_BOOT_PVM/VMM_BOOT_ALL), timeout $TO s"
		else
			echo "SKIP: Linux guest on vireo's virtio-mmio devices (PVM nested KVM emulates guest kernel code: a Linux boot takes minutes; VMM_BOOT_PVM=1 runs it, VIRTIO_LINUX_QEMU=1 dry-runs the guest side under QEMU TCG)"
			echo "PVM: no usable Linux boot on this KVM"; exit 77
		fi
	fi
fi

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
make -s -j2 build/vireo >"$LOGDIR/vml-build.log" 2>&1 || { echo "FAIL: build vireo"; exit 1; }
make -s -C guest CC=gcc OUT=../build/guest-bin/gcc >>"$LOGDIR/vml-build.log" 2>&1 ||
	{ echo "FAIL: build guest programs"; exit 1; }
bash scripts/make-guest.sh >"$LOGDIR/vml-make-guest.log" 2>&1 ||
	{ tail -n 5 "$LOGDIR/vml-make-guest.log"; echo "FAIL: default guest image"; exit 1; }
VIREO=build/vireo
VC=build/guest-bin/gcc/vsockcat

W=$(mktemp -d /tmp/vireo-vml.XXXXXX)
VPID= NS=
PIDS=()
cleanup() {
	local p
	for p in $VPID "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${QEMU_PID:-}" ] && qemu_stop >/dev/null 2>&1
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# ---- what the guest does, and what the host expects
SECTORS=16384                    # 8 MiB disks
MAC=52:54:00:12:34:56 TAP_MAC=52:54:00:12:34:57
FRAMES=10
H2G_PORT=1000 G2H_PORT=2000
VS_BYTES=10485760
# disk writes: K:BYTE_OFFSET:LENGTH, content "vireo-wK-OFFSET\n" repeated, cut to LENGTH
WRITES="1:0:512 2:4608:4608 3:4193792:1048576 4:$(((SECTORS - 1) * 512)):512 5:3000001:100"
U=$W/v.sock
# option order: device i at 0xd0000000 + i * 4 KiB, IRQ 5, 6, 7, 10, 11, 12
VIREO_DEVICES="d0000000:0x0004:5:mmio,d0001000:0x0002:6:mmio,d0002000:0x0002:7:mmio,d0003000:0x0001:10:mmio,d0004000:0x0013:11:mmio"
# A sixth device, net on a tap in a network namespace made here (the VMM runs in it; the
# guest pings the tap's address), where root can make one.
TAP=0 NSX=()
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	NS=vireo-vml-$$
	if ip netns add "$NS" 2>/dev/null && ip -n "$NS" tuntap add dev vt0 mode tap &&
	   ip -n "$NS" addr add 10.98.0.1/24 dev vt0 && ip -n "$NS" link set vt0 up; then
		TAP=1 NSX=(ip netns exec "$NS")
		VIREO_DEVICES+=",d0005000:0x0001:12:mmio"
	else
		echo "SKIP: net on a tap (cannot make a network namespace with a tap here)"
	fi
else
	echo "SKIP: net on a tap (needs root and iproute2 for a network namespace)"
fi
LOG=$LOGDIR/vml-guest.log
[ "$QEMU_MODE" = 1 ] && LOG=$LOGDIR/vml-qemu-guest.log

head -c $((SECTORS * 512)) /dev/urandom >"$W/rw.orig"
head -c $((SECTORS * 512)) /dev/urandom >"$W/ro.orig"
cp "$W/rw.orig" "$W/rw.img"
cp "$W/ro.orig" "$W/ro.img"
head -c $VS_BYTES /dev/urandom >"$W/h2g.data"

# The guest script goes into a second cpio archive appended to the initramfs (the kernel
# unpacks concatenated archives), so it is not bound by the command line's 2 KiB.
mkdir -p "$W/extra"
{
	echo "#!/bin/sh"
	echo "# written by tests/integration/vmm_virtio_linux.sh"
	echo "SECTORS=$SECTORS RW_SERIAL=vireo-rw RO_SERIAL=vireo-ro FRAMES=$FRAMES"
	echo "LOOP_MAC=$MAC TAP_MAC=$TAP_MAC TAP=$TAP"
	echo "H2G_PORT=$H2G_PORT G2H_PORT=$G2H_PORT VS_BYTES=$VS_BYTES WRITES='$WRITES'"
	cat <<'GUEST'
cd /tmp
echo "T: kernel $(uname -r) cpus $(nproc)"
# devices: name, virtio id, driver, platform parent (LNRO0005:NN under ACPI), MMIO base
for d in /sys/bus/virtio/devices/virtio*; do
	[ -e "$d" ] || continue
	drv=$(readlink "$d/driver"); drv=${drv##*/}
	p=$(readlink -f "$d"); p=${p%/*}; p=${p##*/}
	base=$(grep -m 1 " : $p\$" /proc/iomem | sed 's/^ *//;s/-.*//')
	echo "T: dev ${d##*/} id=$(cat "$d/device") driver=${drv:-none} parent=$p base=${base:-none}"
done
hex() { od -An -tx1 -v | tr -d ' \n'; }
# rng
echo "T: rng current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "T: rng a=$(head -c 32 /dev/hwrng | hex)"
echo "T: rng b=$(head -c 32 /dev/hwrng | hex)"
echo "T: rng distinct=$(head -c 4096 /dev/hwrng | od -An -tx1 -v | tr -s ' ' '\n' | grep -v '^$' | sort -u | wc -l)"
# disks, found by serial
RW= RO=
for b in /sys/block/vd*; do
	[ -e "$b/serial" ] || continue
	case $(cat "$b/serial") in
	"$RW_SERIAL") RW=${b##*/} ;;
	"$RO_SERIAL") RO=${b##*/} ;;
	esac
done
blk() { echo "T: blk $1 dev=$2 size=$(cat /sys/block/$2/size) ro=$(cat /sys/block/$2/ro) sha=$(sha256sum </dev/$2 | cut -d' ' -f1)"; }
if [ -n "$RW" ]; then
	blk rw "$RW"
	for w in $WRITES; do
		k=${w%%:*}; r=${w#*:}; off=${r%%:*}; len=${r#*:}
		yes "vireo-w$k-$off" | head -c "$len" |
			dd of=/dev/$RW bs=4096 iflag=fullblock seek="$off" oflag=seek_bytes conv=notrunc,fsync 2>/dev/null
		echo "T: write $k off=$off len=$len rc=$?"
	done
	sync; echo 3 >/proc/sys/vm/drop_caches
	blk rw-after "$RW"
else
	echo "T: blk rw missing"
fi
if [ -n "$RO" ]; then
	blk ro "$RO"
	yes x | head -c 512 | dd of=/dev/$RO bs=512 conv=notrunc,fsync 2>/dev/null
	echo "T: ro-write rc=$?"
else
	echo "T: blk ro missing"
fi
# net: loopback gives back every frame sent
ifmac() { for n in /sys/class/net/*; do [ "$(cat "$n/address")" = "$1" ] && echo "${n##*/}"; done; }
NET=$(ifmac "$LOOP_MAC")
if [ -n "$NET" ]; then
	echo 1 >/proc/sys/net/ipv6/conf/$NET/disable_ipv6
	ip link set "$NET" up
	ip addr add 10.99.0.1/24 dev "$NET"
	ip link set "$NET" arp off   # no ARP: each ping is one frame (to our own MAC)
	sleep 1
	st() { cat /sys/class/net/$NET/statistics/$1; }
	t0=$(st tx_packets) r0=$(st rx_packets) tb0=$(st tx_bytes) rb0=$(st rx_bytes)
	ping -q -c "$FRAMES" -i 0.1 -W 1 10.99.0.2 >/dev/null 2>&1
	sleep 1
	echo "T: net if=$NET mac=$(cat /sys/class/net/$NET/address) tx=$(($(st tx_packets) - t0)) rx=$(($(st rx_packets) - r0)) txb=$(($(st tx_bytes) - tb0)) rxb=$(($(st rx_bytes) - rb0)) rxerr=$(st rx_errors) txerr=$(st tx_errors)"
else
	echo "T: net missing"
fi
# net on a tap: the host end answers ARP and ping
if [ "$TAP" = 1 ]; then
	T=$(ifmac "$TAP_MAC")
	if [ -n "$T" ]; then
		echo 1 >/proc/sys/net/ipv6/conf/$T/disable_ipv6
		ip link set "$T" up
		ip addr add 10.98.0.2/24 dev "$T"
		r=$(ping -c 3 -W 3 10.98.0.1 2>&1 | grep -o '[0-9]* packets received' | cut -d' ' -f1)
		echo "T: tap if=$T received=${r:-0}"
	else
		echo "T: tap missing"
	fi
fi
# vsock: host -> guest (the host connects once MARK-101 is out), then guest -> host
echo MARK-101
vsockcat listen "$H2G_PORT" </dev/null >h
echo "T: vsock h2g rc=$? bytes=$(wc -c <h) sha=$(sha256sum <h | cut -d' ' -f1)"
rm -f h
head -c "$VS_BYTES" /dev/urandom >g
echo "T: vsock g2h src=$(sha256sum <g | cut -d' ' -f1)"
vsockcat connect 2 "$G2H_PORT" <g >/dev/null
echo "T: vsock g2h rc=$?"
grep virtio /proc/interrupts | sed 's/^ */T: irq /'
echo "T: done"
GUEST
} >"$W/extra/vtest.sh"
chmod 755 "$W/extra/vtest.sh"
(cd "$W/extra" && echo vtest.sh | cpio -o -H newc -R 0:0 --quiet) | gzip -n >"$W/extra.cpio.gz"
cat build/guest/initramfs.cpio.gz "$W/extra.cpio.gz" >"$W/initrd"

# ---- the host-side checks, on files only (so the dry run can also feed them doctored inputs).
# Arguments KEY=VALUE; prints PASS:/FAIL: lines.
cat >"$W/check.py" <<'PY'
import hashlib, re, sys
a = dict(x.split('=', 1) for x in sys.argv[1:])
out = []
def ok(c, what):
    out.append(('PASS: ' if c else 'FAIL: ') + what)
    return c
def sha(p):
    return hashlib.sha256(open(p, 'rb').read()).hexdigest()
log = open(a['log'], errors='replace').read().replace('\r', '')
T = [l[3:] for l in log.splitlines() if l.startswith('T: ')]
def kv(prefix):
    """key=value fields of the first 'T: PREFIX ...' line, {} if none"""
    for l in T:
        if l.startswith(prefix + ' '):
            return dict(f.split('=', 1) for f in l[len(prefix) + 1:].split() if '=' in f)
    return {}

# the run as a whole
ok(a['status'] == '0' and 'vireo-guest: exit 0' in log.splitlines() and 'done' in T,
   f"guest ran its script and powered off: VMM exit status {a['status']}, "
   f"'vireo-guest: exit 0' {'seen' if 'vireo-guest: exit 0' in log.splitlines() else 'missing'}")

# devices: each bound to its driver, under an ACPI LNRO0005 platform device
DRV = {'0x0001': 'virtio_net', '0x0002': 'virtio_blk', '0x0004': 'virtio_rng',
       '0x0013': 'vmw_vsock_virtio_transport'}
devs = {}
for l in T:
    m = re.match(r'dev (virtio\d+) id=(\S+) driver=(\S+) parent=(\S+) base=(\S+)$', l)
    if m:
        devs[m.group(1)] = dict(id=m.group(2), driver=m.group(3), parent=m.group(4), base=m.group(5))
want = a['devices'].split(',')   # BASE:ID:IRQ:mmio|pci, '-' for what is not known
ok(sorted(d['id'] for d in devs.values()) == sorted(w.split(':')[1] for w in want),
   f"virtio devices found: {' '.join(n + '=' + d['id'] for n, d in sorted(devs.items())) or 'none'}")
kind = {w.split(':')[1]: w.split(':')[3] for w in want}
for n, d in sorted(devs.items()):
    k = kind.get(d['id'])
    under = (d['parent'].startswith('LNRO0005:') if k == 'mmio' else
             re.match(r'[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$', d['parent']) is not None)
    ok(d['driver'] == DRV.get(d['id']) and under,
       f"{n} (id {d['id']}) bound to {d['driver']} under {d['parent']} "
       f"({'ACPI virtio-mmio' if k == 'mmio' else 'PCI'}, want {DRV.get(d['id'])})")
irqs = {}
for l in T:
    m = re.match(r'irq (\d+):\s+(.*)$', l)
    if m:
        f = m.group(2).split()
        counts = [int(x) for x in f if x.isdigit()]
        irqs.setdefault(f[-1].split('-')[0], []).append((m.group(1), sum(counts)))  # virtio0-config
bybase = {w.split(':')[0]: w.split(':') for w in want if not w.startswith('-')}
for n, d in sorted(devs.items()):
    lines = irqs.get(n, [])
    irq, cnt = ','.join(i for i, _ in lines) or '?', sum(c for _, c in lines)
    ok(cnt > 0, f"{n}: {cnt} interrupts (IRQ {irq})")
    if bybase:
        w = bybase.get(d['base'])
        ok(w is not None and w[1] == d['id'] and w[2] == irq,
           f"{n} at 0x{d['base']} IRQ {irq}: "
           f"{'as placed' if w and w[1] == d['id'] and w[2] == irq else 'not where vireo placed it'} "
           f"(want {'id ' + w[1] + ' IRQ ' + w[2] if w else 'one of ' + ' '.join(bybase)})")

# rng
rl = {l.split('=', 1)[0][4:]: l.split('=', 1)[1] for l in T if l.startswith('rng ') and '=' in l}
ra, rb, cur = rl.get('a', ''), rl.get('b', ''), rl.get('current', '')
distinct = int(rl.get('distinct', '0') or 0)
ok(cur.startswith('virtio_rng'), f"hw_random uses the virtio device ('{cur}')")
def varied(h):
    return len(h) == 64 and len(set(h[i:i + 2] for i in range(0, 64, 2))) > 8
ok(varied(ra) and varied(rb) and ra != rb,
   f"/dev/hwrng: two 32-byte reads differ and are not constant ({ra[:16]}... {rb[:16]}...)")
ok(distinct >= 200, f"/dev/hwrng: {distinct} distinct byte values in 4096 bytes (>= 200)")

# blk, read-write disk
sectors = int(a['sectors'])
b = kv('blk rw')
ok(b.get('size') == str(sectors) and b.get('ro') == '0', f"rw disk {b.get('dev')}: {b.get('size')} sectors, ro={b.get('ro')}")
ok(b.get('sha') == sha(a['rw_orig']), "rw disk: the guest reads the host file's 8 MiB (sha256)")
exp = bytearray(open(a['rw_orig'], 'rb').read())
for w in a['writes'].split():
    k, off, ln = w.split(':')
    off, ln = int(off), int(ln)
    exp[off:off + ln] = ((f'vireo-w{k}-{off}\n'.encode()) * (ln // 8 + 1))[:ln]
    wl = [l for l in T if l.startswith(f'write {k} ')]
    ok(wl == [f'write {k} off={off} len={ln} rc=0'], f"guest write {k}: {ln} bytes at {off} ({wl[0] if wl else 'no line'})")
ok(kv('blk rw-after').get('sha') == hashlib.sha256(exp).hexdigest(),
   "rw disk: the guest reads back what it wrote, caches dropped (sha256)")
got = open(a['rw_final'], 'rb').read()
diff = [i for i in range(min(len(got), len(exp))) if got[i] != exp[i]] if got != exp else []
ok(got == exp, "rw disk: the host file after poweroff is the original with exactly the guest's writes"
   + ('' if got == exp else f" ({len(diff)} bytes differ, first at {diff[0] if diff else '-'}, size {len(got)})"))

# blk, read-only disk
b = kv('blk ro')
ok(b.get('ro') == '1' and b.get('sha') == sha(a['ro_orig']),
   f"ro disk {b.get('dev')}: ro={b.get('ro')}, reads the host file (sha256)")
rw = kv('ro-write').get('rc')
ok(rw not in (None, '0'), f"ro disk: the guest's write fails (dd status {rw})")
ok(open(a['ro_final'], 'rb').read() == open(a['ro_orig'], 'rb').read(), "ro disk: the host file is unchanged")

# net loopback
n = kv('net')
fr = a['frames']
ok(n.get('mac') == a['mac'], f"net {n.get('if')}: MAC {n.get('mac')} (want {a['mac']})")
ok(n.get('tx') == fr and n.get('rx') == fr and n.get('txb') == n.get('rxb') and int(n.get('txb', 0)) > 0
   and n.get('rxerr') == '0' and n.get('txerr') == '0',
   f"net loopback: {n.get('tx')} frames out, {n.get('rx')} back, {n.get('txb')}/{n.get('rxb')} bytes, "
   f"errors {n.get('txerr')}/{n.get('rxerr')} (want {fr} each way, bytes equal)")

# net on a tap
if a['tap'] == '1':
    t = kv('tap')
    ok(t.get('received') == '3', f"net on a tap {t.get('if')}: {t.get('received')} of 3 pings to the host end answered")

# vsock
v = kv('vsock h2g')
ok(v.get('rc') == '0' and v.get('bytes') == a['vs_bytes'] and v.get('sha') == sha(a['h2g_data']),
   f"vsock host -> guest: {v.get('bytes')} bytes, sha256 {'matches' if v.get('sha') == sha(a['h2g_data']) else 'differs'}")
src = kv('vsock g2h').get('src')
got = open(a['g2h_out'], 'rb').read()
rc = [l for l in T if l.startswith('vsock g2h rc=')]
ok(src == hashlib.sha256(got).hexdigest() and str(len(got)) == a['vs_bytes'] and rc == ['vsock g2h rc=0'],
   f"vsock guest -> host: {len(got)} bytes, sha256 {'matches' if src == hashlib.sha256(got).hexdigest() else 'differs'}")

print('\n'.join(out))
sys.exit(1 if any(l.startswith('FAIL') for l in out) else 0)
PY

# ---- run: host peers, the VMM, host -> guest once the guest listens
$VC uds-listen "${U}_$G2H_PORT" </dev/null >"$W/g2h.out" 2>"$W/g2h.err" & G2H_PID=$!
PIDS+=($G2H_PID)
BACKEND_PFX=()
backend() { # NAME KIND ARGS...: `vireo backend KIND` on $W/NAME.sock (dry run)
	local name=$1; shift
	"${BACKEND_PFX[@]}" "$VIREO" backend "$@" --socket "$W/$name.sock" >"$LOGDIR/vml-backend-$name.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do [ -S "$W/$name.sock" ] && return 0; sleep 0.1; done
	fail "dry run: backend $name did not listen"; exit 1
}
start=$SECONDS
if [ "$QEMU_MODE" = 1 ]; then
	# vireo's device code over vhost-user on microvm's virtio-mmio (listed in its DSDT as
	# LNRO0005). QEMU 7.2's virtio-mmio offers QueueNumMax 1024 whatever the device, Linux takes
	# it, and a backend refuses rings above its --queue-size (256 by default): 1024 here. The
	# rng backend has no such option: QEMU's own virtio-rng-device stands in.
	backend rw blk --path "$W/rw.img" --serial vireo-rw --queue-size 1024
	backend ro blk --path "$W/ro.img" --readonly --serial vireo-ro --queue-size 1024
	backend net net --loopback --mac "$MAC" --queue-size 1024
	backend vs vsock --cid 3 --uds "$U" --queue-size 1024
	TAPQ=()
	if [ $TAP = 1 ]; then   # the backend in the namespace, on its tap
		BACKEND_PFX=("${NSX[@]}")
		backend tap net --tap vt0 --mac "$TAP_MAC" --queue-size 1024
		BACKEND_PFX=()
		TAPQ=(-chardev socket,id=c5,path="$W/tap.sock" -netdev vhost-user,id=n1,chardev=c5
		      -device virtio-net-device,netdev=n1,mac=$TAP_MAC)
	fi
	QEMU_MACHINE=microvm QEMU_SHARED_MEM=1 QEMU_CPUS=2 QEMU_MEM=512M QEMU_INITRD="$W/initrd" \
		qemu_start "$TO" "$LOG" "sh /vtest.sh" -global virtio-mmio.force-legacy=false \
		-object rng-random,filename=/dev/urandom,id=r0 -device virtio-rng-device,rng=r0 \
		-chardev socket,id=c1,path="$W/rw.sock" -device vhost-user-blk,chardev=c1,num-queues=1 \
		-chardev socket,id=c2,path="$W/ro.sock" -device vhost-user-blk,chardev=c2,num-queues=1 \
		-chardev socket,id=c3,path="$W/net.sock" -netdev vhost-user,id=n0,chardev=c3 \
		-device virtio-net-device,netdev=n0,mac="$MAC" \
		-chardev socket,id=c4,path="$W/vs.sock" -device vhost-user-vsock-device,chardev=c4 \
		"${TAPQ[@]}"
	DEVICES="-:0x0004:-:mmio,-:0x0002:-:mmio,-:0x0002:-:mmio,-:0x0001:-:mmio,-:0x0013:-:mmio"
	[ $TAP = 1 ] && DEVICES+=",-:0x0001:-:mmio"
	WHO="QEMU microvm TCG (dry run)"
else
	: >"$LOG"
	TAPV=()
	[ $TAP = 1 ] && TAPV=(--net tap=vt0,mac=$TAP_MAC)
	"${NSX[@]}" timeout -k 5 "$TO" "$VIREO" run --kernel build/guest/vmlinuz --initrd "$W/initrd" \
		--cpus 2 --memory 512M --console "$LOG" --cmdline "$(guest_cmdline 'sh /vtest.sh')" \
		--rng --disk path="$W/rw.img",serial=vireo-rw \
		--disk path="$W/ro.img",readonly=on,serial=vireo-ro \
		--net loopback,mac="$MAC" --vsock cid=3,socket="$U" "${TAPV[@]}" \
		</dev/null >"$LOGDIR/vml-vireo.out" 2>"$LOGDIR/vml-vireo.err" &
	VPID=$!
	DEVICES=$VIREO_DEVICES
	WHO="vireo run"
fi
# wait_mark TEXT PID: until the console log holds TEXT; 1 when PID ended first or after $TO s
wait_mark() {
	local deadline=$((SECONDS + TO))
	while ! grep -qF -- "$1" "$LOG" 2>/dev/null; do
		kill -0 "$2" 2>/dev/null && [ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}
if wait_mark MARK-101 "${VPID:-$QEMU_PID}"; then
	ok=0
	for _ in $(seq 40); do   # the guest's listener may not be up yet: RST, no OK
		if $VC uds-connect "$U" "$H2G_PORT" <"$W/h2g.data" >/dev/null 2>"$W/h2g.err"; then ok=1; break; fi
		sleep 0.25
	done
	[ $ok = 1 ] || fail "host -> guest vsock connection ($(tail -n 1 "$W/h2g.err"))"
fi
if [ "$QEMU_MODE" = 1 ]; then
	qemu_wait; RC=$?
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	PIDS=()
else
	wait "$VPID"; RC=$?
	VPID=
	sed -i 's/\r$//' "$LOG"
fi
secs=$((SECONDS - start))
for _ in $(seq 50); do kill -0 "$G2H_PID" 2>/dev/null || break; sleep 0.1; done
kill "$G2H_PID" 2>/dev/null; wait "$G2H_PID" 2>/dev/null
echo "note: $WHO ran ${secs} s (status $RC); console in $LOG"
if ! grep -q '^vireo-guest: ready' "$LOG"; then
	fail "$WHO: the guest did not reach its init (status $RC after ${secs} s)"
	tail -n 5 "$LOG" "$LOGDIR/vml-vireo.err" 2>/dev/null | sed 's/^/    /'
	exit 1
fi

check() { # STATUS LOG RW_FINAL: the checker's arguments for this run
	python3 "$W/check.py" status="$1" log="$2" rw_final="$3" devices="$DEVICES" \
		sectors=$SECTORS writes="$WRITES" rw_orig="$W/rw.orig" ro_orig="$W/ro.orig" \
		ro_final="$W/ro.img" mac=$MAC frames=$FRAMES vs_bytes=$VS_BYTES \
		h2g_data="$W/h2g.data" g2h_out="$W/g2h.out" tap=$TAP
}
check "$RC" "$LOG" "$W/rw.img" || FAILED=1

# The dry run also checks the checker: each doctored input must make its check fail.
if [ "$QEMU_MODE" = 1 ]; then
	doctored() { # WHAT PATTERN STATUS LOG RW_FINAL
		local what=$1 pat=$2 out; shift 2
		out=$(check "$@")
		if [ $? -ne 0 ] && grep -q "^FAIL: .*$pat" <<<"$out"; then pass "checker self-test: $what is caught"
		else fail "checker self-test: $what is not caught"; fi
	}
	cp "$W/rw.img" "$W/rw.bad"
	printf '\x5a' | dd of="$W/rw.bad" bs=1 seek=$((6 << 20)) conv=notrunc 2>/dev/null
	cmp -s "$W/rw.img" "$W/rw.bad" || doctored "a changed byte in the host file" "host file after poweroff" 0 "$LOG" "$W/rw.bad"
	sed 's/^\(T: vsock h2g .*sha=\)./\1x/' "$LOG" >"$W/l1"
	doctored "a wrong host -> guest checksum" "vsock host -> guest" 0 "$W/l1" "$W/rw.img"
	sed 's/^\(T: net .* rx=\)\([0-9]*\)/\1999/' "$LOG" >"$W/l2"
	doctored "a frame count off" "net loopback" 0 "$W/l2" "$W/rw.img"
	sed 's/^T: rng b=.*/T: rng b=0000000000000000000000000000000000000000000000000000000000000000/' "$LOG" >"$W/l3"
	doctored "constant rng bytes" "/dev/hwrng: two" 0 "$W/l3" "$W/rw.img"
	sed '/^T: irq .*virtio1$/d' "$LOG" >"$W/l4"
	doctored "a device without interrupts" "virtio1: 0 interrupts" 0 "$W/l4" "$W/rw.img"
	doctored "a VMM exit status 1" "powered off" 1 "$LOG" "$W/rw.img"
	# vireo's placement checks (address, IRQ) on this run's log rewritten as vireo would
	# place the devices: all must pass; then with two IRQs swapped, must fail
	python3 - "$LOG" "$W/lv" "$W/lv.swap" "$VIREO_DEVICES" <<'PY'
import re, sys
spec = [w.split(':') for w in sys.argv[4].split(',')]
used, place, out = set(), {}, []
for l in open(sys.argv[1]).read().splitlines():
    m = re.match(r'T: dev (virtio\d+) id=(\S+) (driver=\S+) parent=\S+ base=\S+$', l)
    if m:
        i = next(i for i, w in enumerate(spec) if w[1] == m.group(2) and i not in used)
        used.add(i); place[m.group(1)] = i
        l = f'T: dev {m.group(1)} id={m.group(2)} {m.group(3)} parent=LNRO0005:0{i} base={spec[i][0]}'
    m = re.match(r'T: irq \d+:\s+(.*)\s(virtio\d+)(-\S+)?$', l)
    if m:
        if m.group(3) == '-config':
            continue
        w, n = spec[place[m.group(2)]], sum(int(x) for x in m.group(1).split() if x.isdigit())
        l = f'T: irq {w[2]}: {n} 0 IO-APIC {w[2]}-edge {m.group(2)}'
    out.append(l)
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
def swap(l):  # the IRQs of rng (5) and the first disk (6) exchanged
    for a, b in (('5', '6'), ('6', '5')):
        if l.startswith(f'T: irq {a}:'):
            return l.replace(f'irq {a}:', f'irq {b}:').replace(f' {a}-edge', f' {b}-edge')
    return l
open(sys.argv[3], 'w').write('\n'.join(swap(l) for l in out) + '\n')
PY
	out=$(DEVICES=$VIREO_DEVICES check 0 "$W/lv" "$W/rw.img" | grep -E 'virtio[0-9]|devices found')
	if ! grep -q '^FAIL' <<<"$out" && [ "$(grep -c 'as placed' <<<"$out")" = $((5 + TAP)) ]; then
		pass "checker self-test: vireo's placement (0xd0000000 + 4 KiB * i, IRQ 5, 6, 7, 10, 11, 12) accepted"
	else fail "checker self-test: vireo's placement"; sed 's/^/    /' <<<"$out"; fi
	DEVICES=$VIREO_DEVICES doctored "two IRQs swapped" "not where vireo placed it" 0 "$W/lv.swap" "$W/rw.img"
fi
exit $FAILED
