#!/usr/bin/env bash
# vireo's blk backend behind an emulated IOMMU (S10), under QEMU software emulation: q35 with
# intel-iommu (device-iotlb, caching-mode), vhost-user-blk-pci with iommu_platform=on, guest
# with intel_iommu=on. VIRTIO_F_ACCESS_PLATFORM is negotiated, so every ring and buffer address
# the backend sees is an IOVA it may use only through the IOTLB entries QEMU sends (misses go
# back on the backend-request channel). The guest's writes and reads must work and land in
# the file, and the backend must have used the IOTLB.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vuiotlb.XXXXXX)
FAILED=0
BPID=
. tests/lib/check.sh
cleanup() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }
make -j2 build/vireo >"$LOGDIR/vuiotlb-build.log" 2>&1 || { fail "build"; exit 1; }
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initramfs.cpio.gz ]; then
	bash scripts/make-guest.sh >"$LOGDIR/vuiotlb-make-guest.log" 2>&1 || { fail "guest image"; exit 1; }
fi

DISK=$W/disk.img
truncate -s 16M "$DISK"
blog=$LOGDIR/vuiotlb-backend.log
./build/vireo backend blk --socket "$W/blk.sock" --path "$DISK" -v >"$blog" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$W/blk.sock" ] && break; sleep 0.1; done
[ -S "$W/blk.sock" ] && pass "backend listens" || { fail "backend listens"; exit 1; }

log=$LOGDIR/vuiotlb-guest.log
cmd="echo iommu_groups=\$(ls /sys/kernel/iommu_groups | wc -l)"
cmd+="; yes iommu | head -c 262144 | dd of=/dev/vda bs=65536 seek=1 iflag=fullblock oflag=direct 2>/dev/null"
cmd+="; echo rd=\$(dd if=/dev/vda bs=65536 skip=1 count=4 iflag=direct 2>/dev/null | md5sum | cut -c1-32)"
QEMU_MACHINE="q35,kernel-irqchip=split" QEMU_APPEND="intel_iommu=on" QEMU_SHARED_MEM=1 \
	qemu_boot 120 "$log" "$cmd" -device intel-iommu,intremap=on,device-iotlb=on,caching-mode=on \
	-chardev socket,id=blk0,path="$W/blk.sock" \
	-device vhost-user-blk-pci,chardev=blk0,disable-legacy=on,iommu_platform=on,ats=on
rc=$?
[ $rc -eq 0 ] && grep -qx "vireo-guest: exit 0" "$log" && pass "guest ran and powered off" \
	|| fail "guest run (qemu status $rc, see $log)"
g=$(sed -n 's/^iommu_groups=//p' "$log")
[ "${g:-0}" -gt 0 ] && pass "the guest runs with the IOMMU on ($g groups)" || fail "guest IOMMU not active"
want=$(yes iommu | head -c 262144 | md5sum | cut -c1-32)
grep -qx "rd=$want" "$log" && pass "write and read back through IOVAs" || fail "read back"
[ "$(dd if="$DISK" bs=65536 skip=1 count=4 2>/dev/null | md5sum | cut -c1-32)" = "$want" ] \
	&& pass "the host file holds the data" || fail "host file"
kill -TERM "$BPID"; wait "$BPID"; BPID=
line=$(grep -o "IOTLB (VIRTIO_F_ACCESS_PLATFORM): [0-9]* updates.*" "$blog" | head -1)
u=$(echo "$line" | awk '{print $3}')
[ "${u:-0}" -gt 0 ] && pass "ACCESS_PLATFORM negotiated, IOTLB used: $line" || fail "IOTLB not used (see $blog)"
exit $FAILED
