#!/usr/bin/env bash
# vireo's virtio-blk backend under QEMU (software emulation, no KVM needed): QEMU's
# vhost-user-blk-pci with two queues drives `vireo backend blk`. The guest reads a known
# region, writes patterns at several offsets and sizes (O_DIRECT, two writers pinned to
# different vCPUs at once), reads them back, discards a range and flushes. After power-off
# the host file must hold exactly the expected bytes, and both queues must have carried
# requests. Then a second boot against the same backend process checks that a new front-end
# is served after the first one went away (reconnect) and sees the first one's data.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vublk.XXXXXX)
FAILED=0
BPID=
. tests/lib/check.sh
cleanup() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }
make -j2 build/vireo >"$LOGDIR/vublk-build.log" 2>&1 || { fail "build"; exit 1; }
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initramfs.cpio.gz ]; then
	bash scripts/make-guest.sh >"$LOGDIR/vublk-make-guest.log" 2>&1 || { fail "guest image"; exit 1; }
fi

DISK=$W/disk.img
EXPECT=$W/expect.img
yes vireo-disk-0123456789 | head -c 32M >"$DISK"
cp "$DISK" "$EXPECT"

# Writes: NAME OFFSET(bytes) BS COUNT PATTERN CPU  (CPU: vCPU the writer runs on; "-" = any)
WRITES=(
	"w1 512 512 1 one -"
	"w2 8192 4096 1 two -"
	"w3 3145728 1048576 1 three -"
	"w4 17826304 512 201 four -"
	"w5 20971520 65536 32 five 0"
	"w6 25165824 65536 32 six 1"
)
DISCARD_OFF=$((8 << 20)); DISCARD_LEN=$((1 << 20))

gen() { yes "pattern-$1" | head -c "$2"; } # the same bytes on host and guest
cmd="echo serial=\$(cat /sys/block/vda/serial); echo size=\$(cat /sys/block/vda/size)"
cmd+="; echo r0=\$(dd if=/dev/vda bs=4096 skip=100 count=4 2>/dev/null | md5sum | cut -c1-32)"
par=""
for w in "${WRITES[@]}"; do
	read -r name off bs count pat cpu <<<"$w"
	one="yes pattern-$pat | head -c $((bs * count)) | dd of=/dev/vda bs=$bs seek=$((off / bs)) iflag=fullblock oflag=direct 2>/dev/null"
	if [ "$cpu" = - ]; then cmd+="; $one"; else par+="taskset $((1 << cpu)) sh -c '$one' & "; fi
	gen "$pat" $((bs * count)) | dd of="$EXPECT" bs="$bs" seek=$((off / bs)) conv=notrunc status=none
done
cmd+="; $par wait; sync; echo 3 > /proc/sys/vm/drop_caches"
for w in "${WRITES[@]}"; do
	read -r name off bs count pat cpu <<<"$w"
	cmd+="; echo $name=\$(dd if=/dev/vda bs=$bs skip=$((off / bs)) count=$count iflag=direct 2>/dev/null | md5sum | cut -c1-32)"
done
cmd+="; blkdiscard -o $DISCARD_OFF -l $DISCARD_LEN /dev/vda && echo discard=ok; sync"
dd if=/dev/zero of="$EXPECT" bs=1M seek=$((DISCARD_OFF >> 20)) count=$((DISCARD_LEN >> 20)) conv=notrunc status=none

./build/vireo backend blk --socket "$W/blk.sock" --path "$DISK" --queues 2 --serial vireo-test-disk -v \
	>"$LOGDIR/vublk-backend.log" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$W/blk.sock" ] && break; sleep 0.1; done
[ -S "$W/blk.sock" ] && pass "backend listens on its socket" || { fail "backend listens"; exit 1; }

log=$LOGDIR/vublk-guest.log
QEMU_CPUS=2 QEMU_SHARED_MEM=1 qemu_boot 120 "$log" "$cmd" \
	-chardev socket,id=blk0,path="$W/blk.sock" -device vhost-user-blk-pci,chardev=blk0,num-queues=2
rc=$?
[ $rc -eq 0 ] && grep -qx "vireo-guest: exit 0" "$log" && pass "guest ran its commands and powered off" \
	|| fail "guest run (qemu status $rc, see $log)"
grep -qx "serial=vireo-test-disk" "$log" && pass "GET_ID: the guest sees the serial" || fail "GET_ID serial"
grep -qx "size=65536" "$log" && pass "capacity: 65536 sectors" || fail "capacity"
want=$(yes vireo-disk-0123456789 | head -c 32M | dd bs=4096 skip=100 count=4 2>/dev/null | md5sum | cut -c1-32)
grep -qxF "r0=$want" "$log" && pass "read of existing data matches the host file" || fail "initial read"
for w in "${WRITES[@]}"; do
	read -r name off bs count pat cpu <<<"$w"
	want=$(gen "$pat" $((bs * count)) | md5sum | cut -c1-32)
	grep -qxF "$name=$want" "$log" && pass "write+read back $name ($((bs * count)) bytes at $off)" \
		|| fail "read back $name"
done
grep -qx "discard=ok" "$log" && pass "discard accepted" || fail "discard"

# Both queues carried requests (the backend logs a count per queue when it stops).
for q in 0 1; do
	n=$(grep -o "queue $q stopped, [0-9]* requests" "$LOGDIR/vublk-backend.log" | tail -1 | awk '{print $4}')
	[ "${n:-0}" -gt 0 ] && pass "queue $q carried requests ($n)" || fail "queue $q unused"
done
if cmp -s "$DISK" "$EXPECT"; then pass "host file holds exactly the expected bytes"
else fail "host file differs from the expected image: $(cmp "$DISK" "$EXPECT" | head -1)"; fi

# A second front-end on the same backend process: served, and sees the first one's data.
log2=$LOGDIR/vublk-guest2.log
want=$(gen three 1048576 | md5sum | cut -c1-32)
QEMU_SHARED_MEM=1 qemu_boot 90 "$log2" "echo again=\$(dd if=/dev/vda bs=1048576 skip=3 count=1 2>/dev/null | md5sum | cut -c1-32)" \
	-chardev socket,id=blk0,path="$W/blk.sock" -device vhost-user-blk-pci,chardev=blk0,num-queues=1
grep -qxF "again=$want" "$log2" && pass "a new front-end is served after the first disconnected" \
	|| fail "reconnect (see $log2)"

kill -TERM "$BPID"
for _ in $(seq 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$BPID" 2>/dev/null; then fail "backend exits on SIGTERM"
else wait "$BPID"; brc=$?; [ $brc -eq 0 ] && pass "backend exits cleanly on SIGTERM" || fail "backend exit status $brc"; fi
BPID=
exit $FAILED
