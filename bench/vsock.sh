#!/usr/bin/env bash
# `make bench-vsock`: virtio-vsock throughput of vireo's device (S11), in two set-ups with the
# same guest commands and the same host peer:
#   qemu   QEMU runs the default guest with vhost-user-vsock-pci on `vireo backend vsock`
#   vireo  `vireo run --vsock cid=3,socket=UDS`: the same device in-process on virtio-mmio
# vsockcat perf runs in the guest and on the host (on the device's Unix sockets). 64 KiB
# messages, guest->host and host->guest, one connection and four. Figures are taken on the
# host clock: the host receiver's for guest->host, the host sender's (until the guest has read
# everything and closed) for host->guest. MB = 10^6 bytes. The seed's (vhost-vsock in the
# kernel, KVM): 1700 MB/s one socket, 2900 MB/s many; the goal is >= 3000 MB/s each way.
# The last lines are `vsock: guest->host X MB/s, host->guest Y MB/s (64 KiB, N connections)`
# with the set-up in brackets, vireo run's last when it ran.
# Needs KVM: without /dev/kvm it says so and exits 0 without figures; when QEMU -accel kvm
# cannot boot the guest in time, or on PVM (/sys/module/kvm_pvm: vireo run cannot boot Linux
# in usable time there; VIREO_RUN_ON_PVM=1 tries), that set-up says so and gives no figures.
# BENCH_ACCEL=tcg measures QEMU under software emulation instead (labelled TCG: not a target
# measure; vireo run needs KVM and is left out). BENCH_VMM=qemu|vireo|both (both).
# BENCH_MB: megabytes per run (KVM 1024, TCG 128); BENCH_BOOT_TIMEOUT: seconds to wait for
# the guest (90).
# First, always: the device alone without a VM (build/bench/vsock_dev, a mock guest driver).
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/lib/qemu.sh

ACCEL=${BENCH_ACCEL:-kvm}
BUILD=${BUILD:-build}
VMMS=${BENCH_VMM:-both}
# the device's own ceiling, no VM (bench/vsock_dev.c): runs anywhere
make -s -j2 "$BUILD/bench/vsock_dev" >/dev/null && "$BUILD/bench/vsock_dev" "${BENCH_DEV_MB:-1000}" 2>/dev/null
if [ "$ACCEL" = kvm ]; then
	[ -c /dev/kvm ] || { echo "vsock bench: needs KVM (/dev/kvm missing); no figures"; exit 0; }
	MB=${BENCH_MB:-1024}
	TCG=""
else
	MB=${BENCH_MB:-128}
	TCG=" [TCG: software emulation, not a target measure]"
fi
W=$(mktemp -d /tmp/vireo-bvsock.XXXXXX)
BPID= VPID=
PIDS=()
cleanup() {
	for p in $BPID $VPID "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	qemu_stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

make -s -j2 "$BUILD/vireo" >/dev/null || { echo "vsock bench: build failed"; exit 1; }
make -s -C guest CC=gcc OUT=../build/guest-bin/gcc >/dev/null || { echo "vsock bench: vsockcat build failed"; exit 1; }
bash scripts/make-guest.sh >/dev/null || { echo "vsock bench: guest image failed"; exit 1; }
VC=build/guest-bin/gcc/vsockcat
BYTES=$((MB * 1000000))
BOOT=${BENCH_BOOT_TIMEOUT:-90}
CPUS=${QEMU_CPUS:-2}

# The guest: guest->host with one and four connections, then host->guest (MARK-10x lines
# tell the host side when the guest's listeners are up).
mark() { echo "echo MARK-\$((100+$1))"; }
cmd="$(mark 1)"
for k in 1 4; do
	cmd+="; vsockcat perf send connect 2 700$k --conns $k --size 65536 --bytes $((BYTES / k)) >/dev/null"
done
cmd+="; vsockcat perf recv listen 8001 --conns 1 --size 65536 >/dev/null & sleep 0.5; $(mark 2); wait"
cmd+="; vsockcat perf recv listen 8004 --conns 4 --size 65536 >/dev/null & sleep 0.5; $(mark 3); wait"

# wait_log LOG TEXT SECONDS PID: until LOG holds TEXT; 1 on timeout or when PID ended first
wait_log() {
	local deadline=$((SECONDS + $3))
	while ! grep -qF -- "$2" "$1" 2>/dev/null; do
		kill -0 "$4" 2>/dev/null && [ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

start_qemu() { # DIR: QEMU + `vireo backend vsock`; sets BPID and RUN_PID
	"$BUILD/vireo" backend vsock --socket "$1/vu.sock" --cid 3 --uds "$1/v.sock" >"$1/backend.log" 2>&1 &
	BPID=$!
	for _ in $(seq 50); do [ -S "$1/vu.sock" ] && break; sleep 0.1; done
	QEMU_CPUS=$CPUS QEMU_ACCEL=$ACCEL QEMU_SHARED_MEM=1 qemu_start 900 "$1/guest.log" "$cmd" \
		-chardev socket,id=vs0,path="$1/vu.sock" -device vhost-user-vsock-pci,chardev=vs0
	RUN_PID=$QEMU_PID
}
stop_qemu() { qemu_wait >/dev/null 2>&1; kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null; BPID=; }

start_vireo() { # DIR: vireo run with the device in-process; sets VPID and RUN_PID
	: >"$1/guest.log"
	timeout -k 5 900 "$BUILD/vireo" run --kernel build/guest/vmlinuz \
		--initrd build/guest/initramfs.cpio.gz --cpus "$CPUS" --memory 256M \
		--console "$1/guest.log" --cmdline "$(guest_cmdline "$cmd")" \
		--vsock cid=3,socket="$1/v.sock" </dev/null >/dev/null 2>"$1/vireo.err" &
	VPID=$!
	RUN_PID=$VPID
}
stop_vireo() { [ -n "$VPID" ] && { wait "$VPID" 2>/dev/null; VPID=; }; }

mbs() { grep -o '[0-9.]* MB/s' "$1" 2>/dev/null | head -n 1 | cut -d' ' -f1; }
SUMMARY=()

# measure NAME WHAT LABEL: one boot of set-up NAME (start_NAME/stop_NAME), the host side of
# every run, then its lines; SUMMARY gets its last lines. 1 when the guest did not boot.
measure() {
	local name=$1 what=$2 label=$3 d=$W/$1 k g h n
	mkdir -p "$d"
	local U=$d/v.sock log=$d/guest.log lp=()
	# guest -> host listeners first (ports 7001, 7004: one and four connections)
	for k in 1 4; do
		$VC perf recv uds-listen "${U}_700$k" --conns $k --size 65536 >"$d/g2h-$k.out" 2>&1 & lp+=($!)
	done
	PIDS+=("${lp[@]}")
	"start_$name" "$d"
	if ! wait_log "$log" "vireo-guest: ready" "$BOOT" "$RUN_PID"; then
		echo "vsock bench: $what did not boot the default guest within $BOOT s on this host"
		echo "  (this machine's /dev/kvm may be a nested paravirtual KVM (PVM) that runs a Linux"
		echo "  guest far too slowly or not at all; BENCH_BOOT_TIMEOUT=S waits longer); no figures"
		tail -n 5 "$log" | sed 's/^/  guest: /'
		kill "$RUN_PID" "${lp[@]}" 2>/dev/null
		"stop_$name"
		return 1
	fi
	if ! wait_log "$log" MARK-101 60 "$RUN_PID"; then
		echo "vsock bench: $what: the guest did not start the runs"
		kill "$RUN_PID" "${lp[@]}" 2>/dev/null
		"stop_$name"
		return 1
	fi
	for _ in $(seq 3000); do kill -0 "${lp[@]}" 2>/dev/null || break; sleep 0.2; done  # <= 10 min
	kill "${lp[@]}" 2>/dev/null; wait "${lp[@]}" 2>/dev/null
	wait_log "$log" MARK-102 600 "$RUN_PID" &&
		$VC perf send uds-connect "$U" 8001 --conns 1 --size 65536 --bytes "$BYTES" >"$d/h2g-1.out" 2>&1
	wait_log "$log" MARK-103 600 "$RUN_PID" &&
		$VC perf send uds-connect "$U" 8004 --conns 4 --size 65536 --bytes $((BYTES / 4)) >"$d/h2g-4.out" 2>&1
	"stop_$name"
	echo "vsock bench: $what, $CPUS vCPUs, $MB MB per run$TCG"
	for k in 1 4; do
		echo "  $k conn(s): guest->host $(cat "$d/g2h-$k.out" 2>/dev/null)"
		echo "  $k conn(s): host->guest $(cat "$d/h2g-$k.out" 2>/dev/null)"
	done
	for k in 1 4; do
		g=$(mbs "$d/g2h-$k.out"); h=$(mbs "$d/h2g-$k.out")
		[ $k = 1 ] && n="1 connection" || n="4 connections"
		SUMMARY+=("vsock: guest->host ${g:-?} MB/s, host->guest ${h:-?} MB/s (64 KiB, $n) [$label]$TCG")
	done
}

if [ "$VMMS" != vireo ]; then
	measure qemu "QEMU -accel $ACCEL, vhost-user-vsock-pci on vireo backend vsock" \
		"QEMU $ACCEL + vireo backend"
fi
if [ "$VMMS" != qemu ]; then
	if [ "$ACCEL" != kvm ]; then
		echo "vsock bench: vireo run needs KVM: no figures for it under BENCH_ACCEL=$ACCEL"
	elif [ -d /sys/module/kvm_pvm ] && [ "${VIREO_RUN_ON_PVM:-0}" != 1 ]; then
		echo "vsock bench: vireo run: this /dev/kvm is PVM (nested, paravirtual), where a Linux guest"
		echo "  does not boot in usable time (docs/ARCHITECTURE.md); no figures (VIREO_RUN_ON_PVM=1 tries)"
	else
		measure vireo "vireo run --vsock (in-process, virtio-mmio)" "vireo run, in-process"
	fi
fi
[ ${#SUMMARY[@]} -gt 0 ] || { echo "vsock bench: no figures"; exit 0; }
printf '%s\n' "${SUMMARY[@]}"
