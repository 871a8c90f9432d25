#!/usr/bin/env bash
# `make run`: builds vireo and the default guest, then boots the guest with a shell on this
# terminal. With /dev/kvm and a vireo that has `run`, vireo boots it; otherwise QEMU does,
# under software emulation (TCG), and says so.
#   make run CMD="uname -a"     runs that command in the guest instead of a shell, prints its
#                               output and exits with its status (no terminal needed)
#   CPUS=N MEMORY=SIZE          guest size (1, 256M)
# Leave the shell with `exit` (the guest powers off); under QEMU, Ctrl-A X also quits.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/qemu.sh

CMD=${CMD:-}
CPUS=${CPUS:-1}
MEMORY=${MEMORY:-256M}

make -s -j"$(nproc)" vireo
bash scripts/make-guest.sh

# run_captured COMMAND...: runs COMMAND with its output on stdout and, when CMD was given,
# exits with the guest command's status from "vireo-guest: exit N".
run_captured() {
	if [ -z "$CMD" ]; then "$@"; exit $?; fi # no exec: the EXIT trap stops the backends
	local out rc=0 status
	out=$(mktemp)
	"$@" </dev/null | tee "$out" || rc=$?
	status=$(guest_exit_status "$out") || status=""
	rm -f "$out"
	if [ -z "$status" ]; then
		echo "run: the guest printed no 'vireo-guest: exit N' (boot status $rc)" >&2
		exit 1
	fi
	exit "$status"
}

# PVM (a nested, paravirtual KVM: /sys/module/kvm_pvm) emulates the guest kernel's code and a
# Linux boot takes many minutes there: QEMU's TCG is faster. VIREO_RUN_ON_PVM=1 uses vireo.
pvm=0
[ -d /sys/module/kvm_pvm ] && [ "${VIREO_RUN_ON_PVM:-0}" != 1 ] && pvm=1
if [ -c /dev/kvm ] && [ $pvm = 0 ] && build/vireo run --help >/dev/null 2>&1; then
	echo "run: booting the default guest with vireo on KVM"
	# kvm-clock gives the guest its TSC rate: no tsc_early_khz under KVM.
	run_captured build/vireo run --kernel build/guest/vmlinuz \
		--initrd build/guest/initramfs.cpio.gz \
		--cmdline "$(GUEST_TSC_KHZ='' guest_cmdline "$CMD")" \
		--cpus "$CPUS" --memory "$MEMORY" --console stdio
fi

if [ ! -c /dev/kvm ]; then why="no /dev/kvm"
elif [ $pvm = 1 ]; then why="KVM here is PVM, which emulates guest kernel code (minutes per boot)"
else why="VMM not built (no 'vireo run')"; fi
echo "run: $why: booting under QEMU software emulation (no-KVM mode)"
# No-KVM mode: vireo's own device backends serve the guest's disk (/dev/vda, a 64 MiB file
# kept in build/run) and network (eth0, loopback: what it sends comes back) over vhost-user.
RUNDIR=build/run
mkdir -p "$RUNDIR"
[ -f "$RUNDIR/disk.img" ] || truncate -s 64M "$RUNDIR/disk.img"
rm -f "$RUNDIR/blk.sock" "$RUNDIR/net.sock"
build/vireo backend blk --socket "$RUNDIR/blk.sock" --path "$RUNDIR/disk.img" 2>"$RUNDIR/blk.log" &
BLK_PID=$!
build/vireo backend net --socket "$RUNDIR/net.sock" --loopback 2>"$RUNDIR/net.log" &
NET_PID=$!
trap 'kill $BLK_PID $NET_PID 2>/dev/null' EXIT
for _ in $(seq 50); do [ -S "$RUNDIR/blk.sock" ] && [ -S "$RUNDIR/net.sock" ] && break; sleep 0.1; done
echo "run: vireo backends attached over vhost-user: blk ($RUNDIR/disk.img as /dev/vda), net (loopback, eth0)"
BACKEND_ARGS=(-chardev "socket,id=vblk,path=$RUNDIR/blk.sock" -device vhost-user-blk-pci,chardev=vblk
	-chardev "socket,id=vnet,path=$RUNDIR/net.sock" -netdev vhost-user,id=vnet0,chardev=vnet
	-device virtio-net-pci,netdev=vnet0,vectors=0)
QEMU_SHARED_MEM=1 QEMU_CPUS=$CPUS QEMU_MEM=$MEMORY qemu_argv "$CMD"
if [ -t 0 ] && [ -z "$CMD" ]; then
	echo "run: leave with 'exit' in the guest, or Ctrl-A X"
	console=(-serial mon:stdio)
else
	console=(-chardev stdio,id=con,signal=off -serial chardev:con)
fi
run_captured "${QEMU_ARGV[@]}" "${console[@]}" "${BACKEND_ARGS[@]}"
