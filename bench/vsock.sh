#!/usr/bin/env bash
# `make bench-vsock`: virtio-vsock throughput through vireo's backend (S11). QEMU runs the
# default guest with vhost-user-vsock-pci on `vireo backend vsock`; vsockcat perf runs in the
# guest and on the host (on the device's Unix sockets). 64 KiB messages, guest->host and
# host->guest, one connection and four. Figures are taken on the host clock: the host
# receiver's for guest->host, the host sender's (until the guest has read everything and
# closed) for host->guest. MB = 10^6 bytes. The seed's (vhost-vsock in the kernel, KVM):
# 1700 MB/s one socket, 2900 MB/s many; the goal is >= 3000 MB/s each way.
# Needs KVM: without /dev/kvm, or when QEMU -accel kvm cannot boot the guest here, it says
# so and exits 0 without figures. BENCH_ACCEL=tcg measures under software emulation instead
# (labelled TCG: not a target measure). BENCH_MB: megabytes per run (KVM 1024, TCG 128);
# BENCH_BOOT_TIMEOUT: seconds to wait for the guest (90).
# First, always: the device alone without a VM (build/bench/vsock_dev, a mock guest driver).
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/lib/qemu.sh

ACCEL=${BENCH_ACCEL:-kvm}
BUILD=${BUILD:-build}
# the device's own ceiling, no VM (bench/vsock_dev.c): runs anywhere
make -s -j2 "$BUILD/bench/vsock_dev" >/dev/null && "$BUILD/bench/vsock_dev" "${BENCH_DEV_MB:-1000}" 2>/dev/null
if [ "$ACCEL" = kvm ]; then
	[ -c /dev/kvm ] || { echo "vsock bench: needs KVM (/dev/kvm missing); no figures"; exit 0; }
	MB=${BENCH_MB:-1024}
	LABEL=""
else
	MB=${BENCH_MB:-128}
	LABEL=" [TCG: software emulation, not a target measure]"
fi
W=$(mktemp -d /tmp/vireo-bvsock.XXXXXX)
BPID=
PIDS=()
cleanup() {
	for p in $BPID "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	qemu_stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

make -s -j2 "$BUILD/vireo" >/dev/null || { echo "vsock bench: build failed"; exit 1; }
make -s -C guest CC=gcc OUT=../build/guest-bin/gcc >/dev/null || { echo "vsock bench: vsockcat build failed"; exit 1; }
bash scripts/make-guest.sh >/dev/null || { echo "vsock bench: guest image failed"; exit 1; }
VC=build/guest-bin/gcc/vsockcat
U=$W/v.sock
BYTES=$((MB * 1000000))

"$BUILD/vireo" backend vsock --socket "$W/vu.sock" --cid 3 --uds "$U" >"$W/backend.log" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$W/vu.sock" ] && break; sleep 0.1; done

# guest -> host listeners first (ports 7001, 7004: one and four connections)
for k in 1 4; do
	$VC perf recv uds-listen "${U}_700$k" --conns $k --size 65536 >"$W/g2h-$k.out" 2>&1 & PIDS+=($!)
done
mark() { echo "echo MARK-\$((100+$1))"; }
cmd="$(mark 1)"
for k in 1 4; do
	cmd+="; vsockcat perf send connect 2 700$k --conns $k --size 65536 --bytes $((BYTES / k)) >/dev/null"
done
cmd+="; vsockcat perf recv listen 8001 --conns 1 --size 65536 >/dev/null & sleep 0.5; $(mark 2); wait"
cmd+="; vsockcat perf recv listen 8004 --conns 4 --size 65536 >/dev/null & sleep 0.5; $(mark 3); wait"
log=$W/guest.log
QEMU_CPUS=${QEMU_CPUS:-2} QEMU_ACCEL=$ACCEL QEMU_SHARED_MEM=1 qemu_start 900 "$log" "$cmd" \
	-chardev socket,id=vs0,path="$W/vu.sock" -device vhost-user-vsock-pci,chardev=vs0
BOOT=${BENCH_BOOT_TIMEOUT:-90}
if ! qemu_wait_for "$log" "vireo-guest: ready" "$BOOT"; then
	echo "vsock bench: QEMU -accel $ACCEL did not boot the default guest within $BOOT s on this host"
	echo "  (this machine's /dev/kvm may be a nested paravirtual KVM (PVM) that runs a Linux"
	echo "  guest far too slowly or not at all; BENCH_BOOT_TIMEOUT=S waits longer); no figures"
	tail -n 5 "$log" | sed 's/^/  guest: /'
	exit 0
fi
qemu_wait_for "$log" MARK-101 60 || { echo "vsock bench: guest did not start the runs"; exit 1; }
for k in 1 4; do
	wait "${PIDS[$((k == 1 ? 0 : 1))]}"
done
qemu_wait_for "$log" MARK-102 600 &&
	$VC perf send uds-connect "$U" 8001 --conns 1 --size 65536 --bytes "$BYTES" >"$W/h2g-1.out" 2>&1
qemu_wait_for "$log" MARK-103 600 &&
	$VC perf send uds-connect "$U" 8004 --conns 4 --size 65536 --bytes $((BYTES / 4)) >"$W/h2g-4.out" 2>&1
qemu_wait >/dev/null 2>&1

mbs() { grep -o '[0-9.]* MB/s' "$1" 2>/dev/null | head -n 1 | cut -d' ' -f1; }
echo "vsock bench: QEMU -accel $ACCEL, ${QEMU_CPUS:-2} vCPUs, vireo backend vsock, $MB MB per run$LABEL"
for k in 1 4; do
	echo "  $k conn(s): guest->host $(cat "$W/g2h-$k.out")"
	echo "  $k conn(s): host->guest $(cat "$W/h2g-$k.out")"
done
for k in 1 4; do
	g=$(mbs "$W/g2h-$k.out"); h=$(mbs "$W/h2g-$k.out")
	[ $k = 1 ] && n="1 connection" || n="4 connections"
	echo "vsock: guest->host ${g:-?} MB/s, host->guest ${h:-?} MB/s (64 KiB, $n)$LABEL"
done
