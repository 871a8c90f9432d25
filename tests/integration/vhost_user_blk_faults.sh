#!/usr/bin/env bash
# Faults around vireo's virtio-blk backend under QEMU (software emulation, no KVM needed).
#  1. The front-end killed mid-I/O (SIGKILL to QEMU while the guest writes with O_DIRECT):
#     the backend survives, finishes what was in flight, and serves a new front-end, whose
#     guest reads back blocks the first guest had seen acknowledged.
#  2. The backend killed mid-I/O (SIGKILL): every write the guest saw acknowledged is in the
#     file. A new backend on the same socket is reconnected to by QEMU (chardev reconnect=1)
#     and the guest's remaining writes complete, all of them on disk at the end.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vublkf.XXXXXX)
FAILED=0
BPID=
. tests/lib/check.sh
cleanup() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null; qemu_stop 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }
make -j2 build/vireo >"$LOGDIR/vublkf-build.log" 2>&1 || { fail "build"; exit 1; }
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initramfs.cpio.gz ]; then
	bash scripts/make-guest.sh >"$LOGDIR/vublkf-make-guest.log" 2>&1 || { fail "guest image"; exit 1; }
fi

DISK=$W/disk.img
N=300
truncate -s 16M "$DISK"
start_backend() { # LOG
	./build/vireo backend blk --socket "$W/blk.sock" --path "$DISK" -v >>"$1" 2>&1 &
	BPID=$!
	for _ in $(seq 50); do [ -S "$W/blk.sock" ] && return 0; sleep 0.1; done
	return 1
}
# kill QEMU itself (qemu_start runs it under timeout(1): QEMU_PID is timeout's pid)
kill_qemu() { local q; q=$(pgrep -P "$QEMU_PID" | head -1); [ -n "$q" ] && kill -KILL "$q"; qemu_wait; }
# every block N the guest acknowledged ("ack=N") holds its pattern in the disk file
check_acked() { # LOG WHAT
	local n bad=0 count=0 want
	for n in $(tr -d '\r' <"$1" | sed -n 's/^ack=\([0-9]*\)$/\1/p'); do
		want=$(yes "blk$n" | head -c 4096 | md5sum | cut -c1-32)
		[ "$(dd if="$DISK" bs=4096 skip="$n" count=1 2>/dev/null | md5sum | cut -c1-32)" = "$want" ] || bad=$((bad + 1))
		count=$((count + 1))
	done
	[ $count -gt 0 ] && [ $bad -eq 0 ] && pass "$2: all $count acknowledged writes are in the file" \
		|| fail "$2: $bad of $count acknowledged writes missing"
}
writer="i=0; while [ \$i -lt $N ]; do yes blk\$i | head -c 4096 | dd of=/dev/vda bs=4096 seek=\$i oflag=direct 2>/dev/null && echo ack=\$i; i=\$((i+1)); done; echo writes-done"

# ---- 1. front-end killed mid-I/O -----------------------------------------------------------
blog=$LOGDIR/vublkf-backend1.log; : >"$blog"
start_backend "$blog" && pass "backend listens" || { fail "backend listens"; exit 1; }
log=$LOGDIR/vublkf-guest1.log
QEMU_SHARED_MEM=1 qemu_start 120 "$log" "$writer" \
	-chardev socket,id=blk0,path="$W/blk.sock" -device vhost-user-blk-pci,chardev=blk0
if qemu_wait_for "$log" "ack=40" 90; then kill_qemu; pass "front-end killed mid-I/O"
else qemu_stop; fail "guest never reached ack=40 (see $log)"; fi
sleep 0.5
kill -0 "$BPID" 2>/dev/null && pass "backend survived the front-end's death" || fail "backend died"
last=$(sed -n 's/^ack=\([0-9]*\)$/\1/p' "$log" | tail -1)
want=$(yes "blk$last" | head -c 4096 | md5sum | cut -c1-32)
log2=$LOGDIR/vublkf-guest2.log
QEMU_SHARED_MEM=1 qemu_boot 90 "$log2" "echo last=\$(dd if=/dev/vda bs=4096 skip=$last count=1 2>/dev/null | md5sum | cut -c1-32)" \
	-chardev socket,id=blk0,path="$W/blk.sock" -device vhost-user-blk-pci,chardev=blk0
grep -qx "last=$want" "$log2" && pass "a new front-end is served and reads the last acknowledged block ($last)" \
	|| fail "new front-end after the kill (see $log2)"
check_acked "$log" "front-end kill"
kill -TERM "$BPID"; wait "$BPID"; BPID=

# ---- 2. backend killed mid-I/O, then restarted ----------------------------------------------
truncate -s 0 "$DISK"; truncate -s 16M "$DISK"
blog=$LOGDIR/vublkf-backend2.log; : >"$blog"
start_backend "$blog" || { fail "backend listens"; exit 1; }
log=$LOGDIR/vublkf-guest3.log
QEMU_SHARED_MEM=1 qemu_start 180 "$log" "$writer" \
	-chardev socket,id=blk0,path="$W/blk.sock",reconnect=1 -device vhost-user-blk-pci,chardev=blk0
if qemu_wait_for "$log" "ack=40" 90; then
	kill -KILL "$BPID"; wait "$BPID" 2>/dev/null; BPID=
	pass "backend killed mid-I/O"
	sleep 0.5
	cp "$log" "$W/at-kill.log"
	check_acked "$W/at-kill.log" "backend kill"
	rm -f "$W/blk.sock"
	start_backend "$blog" && pass "a new backend listens on the same socket" || fail "backend restart"
	if qemu_wait_for "$log" "writes-done" 120; then
		pass "QEMU reconnected and the guest finished its writes"
		qemu_wait
		check_acked "$log" "after reconnect"
		n=$(grep -c '^ack=' "$log")
		[ "$n" -eq $N ] && pass "every one of the $N writes was acknowledged" || fail "$n of $N writes acknowledged"
	else
		qemu_stop; fail "guest did not finish after the backend restart (see $log)"
	fi
else
	qemu_stop; fail "guest never reached ack=40 (see $log)"
fi
[ -n "$BPID" ] && { kill -TERM "$BPID"; wait "$BPID"; BPID=; }
exit $FAILED
