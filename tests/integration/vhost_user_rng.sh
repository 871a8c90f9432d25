#!/usr/bin/env bash
# vireo's virtio-rng backend under QEMU (software emulation, no KVM needed): QEMU's
# vhost-user-rng-pci drives `vireo backend rng`; the guest's hw_random core picks the device
# and reads from /dev/hwrng. The bytes must be there and not constant. The backend exits
# cleanly on SIGTERM and removes its socket. Then client mode: QEMU listens, the backend
# (--client) connects, and after that QEMU exits it reconnects to the next one.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vurng.XXXXXX)
FAILED=0
BPID=
. tests/lib/check.sh
cleanup() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }
make -j2 build/vireo >"$LOGDIR/vurng-build.log" 2>&1 || { fail "build"; exit 1; }
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initramfs.cpio.gz ]; then
	bash scripts/make-guest.sh >"$LOGDIR/vurng-make-guest.log" 2>&1 || { fail "guest image"; exit 1; }
fi

./build/vireo backend rng --socket "$W/rng.sock" -v >"$LOGDIR/vurng-backend.log" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$W/rng.sock" ] && break; sleep 0.1; done
[ -S "$W/rng.sock" ] && pass "backend listens on its socket" || { fail "backend listens"; exit 1; }

log=$LOGDIR/vurng-guest.log
cmd="echo current=\$(cat /sys/class/misc/hw_random/rng_current)"
cmd+="; dd if=/dev/hwrng bs=256 count=16 2>/dev/null > /tmp/r; echo bytes=\$(wc -c < /tmp/r)"
cmd+="; echo distinct=\$(od -An -v -tx1 /tmp/r | tr -s ' ' '\n' | sort -u | grep -c .)"
QEMU_SHARED_MEM=1 qemu_boot 90 "$log" "$cmd" \
	-chardev socket,id=rng0,path="$W/rng.sock" -device vhost-user-rng-pci,chardev=rng0
rc=$?
[ $rc -eq 0 ] && grep -qx "vireo-guest: exit 0" "$log" && pass "guest ran its commands and powered off" \
	|| fail "guest run (qemu status $rc, see $log)"
grep -q "^current=virtio_rng" "$log" && pass "the guest uses the virtio-rng device" || fail "hw_random current"
grep -qx "bytes=4096" "$log" && pass "4096 random bytes read from /dev/hwrng" || fail "bytes read"
d=$(sed -n 's/^distinct=//p' "$log")
[ "${d:-0}" -ge 200 ] && pass "bytes look random ($d distinct byte values of 256)" || fail "randomness ($d)"

kill -TERM "$BPID"
for _ in $(seq 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$BPID" 2>/dev/null; then fail "backend exits on SIGTERM"
else wait "$BPID"; brc=$?; [ $brc -eq 0 ] && pass "backend exits cleanly on SIGTERM" || fail "backend exit status $brc"; fi
BPID=
[ ! -e "$W/rng.sock" ] && pass "socket removed on exit" || fail "socket left behind"

# client mode: two QEMUs in turn, each listening on the socket; the backend connects to both
./build/vireo backend rng --socket "$W/c.sock" --client -v >"$LOGDIR/vurng-client-backend.log" 2>&1 &
BPID=$!
for k in 1 2; do
	log=$LOGDIR/vurng-client-guest$k.log
	QEMU_SHARED_MEM=1 qemu_boot 90 "$log" "echo n=\$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)" \
		-chardev socket,id=rng0,path="$W/c.sock",server=on,wait=on -device vhost-user-rng-pci,chardev=rng0
	grep -qx "n=64" "$log" && pass "client mode: front-end $k served" || fail "client mode: front-end $k (see $log)"
done
kill -TERM "$BPID"; wait "$BPID"; rc=$?; BPID=
[ $rc -eq 0 ] && pass "client mode: backend exits cleanly on SIGTERM" || fail "client mode: exit status $rc"
exit $FAILED
