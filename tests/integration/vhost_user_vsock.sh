#!/usr/bin/env bash
# vireo's virtio-vsock backend under QEMU (software emulation, no KVM needed): QEMU's
# vhost-user-vsock-pci drives `vireo backend vsock`; the default guest runs vsockcat, the host
# side is vsockcat on the Unix sockets (Firecracker's convention: CONNECT/OK on the device's
# socket, listeners at <socket>_<port>). One boot, in order:
#   1. host -> guest: 10 MiB of random data, sha256 compared
#   2. guest -> host: 10 MiB of random data, sha256 compared
#   3. 32 connections at once, each way
#   4. a host peer that stops reading while 2 MiB go through another connection
#   5. a guest process killed mid-transfer: the host sees EOF/reset; new connections work
#   6. the front-end goes away with a connection open: the host peer sees the end; a second
#      QEMU (a new front-end) gets a working device from the same backend
# The guest prints MARK-1xx lines; the host side follows them. Malformed packets cannot be
# made by the guest's driver: tests/unit/test_vsock.c covers them.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vuvsock.XXXXXX)
FAILED=0
BPID= STUCK= ZP=
PIDS=()
. tests/lib/check.sh
cleanup() {
	for p in $BPID $STUCK $ZP "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	qemu_stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }
make -j2 build/vireo >"$LOGDIR/vuvsock-build.log" 2>&1 || { fail "build"; exit 1; }
make -s -C guest CC=gcc OUT=../build/guest-bin/gcc >>"$LOGDIR/vuvsock-build.log" 2>&1 ||
	{ fail "build vsockcat"; exit 1; }
bash scripts/make-guest.sh >"$LOGDIR/vuvsock-make-guest.log" 2>&1 || { fail "guest image"; exit 1; }
files=$(zcat build/guest/initramfs.cpio.gz | cpio -t 2>/dev/null)
grep -qx bin/vsockcat <<<"$files" ||
	{ fail "vsockcat in the guest image"; exit 1; }
VC=build/guest-bin/gcc/vsockcat
U=$W/v.sock

./build/vireo backend vsock --socket "$W/vu.sock" --cid 3 --uds "$U" -v \
	>"$LOGDIR/vuvsock-backend.log" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$W/vu.sock" ] && [ -S "$U" ] && break; sleep 0.1; done
[ -S "$U" ] && pass "backend listens on its vhost-user and host sockets" || { fail "backend sockets"; exit 1; }

head -c $((10 << 20)) /dev/urandom >"$W/data"
H2G_SUM=$(sha256sum <"$W/data" | cut -d' ' -f1)
# host listeners for guest-initiated connections, up before the guest connects
$VC uds-listen "${U}_2000" </dev/null >"$W/g2h.out" 2>"$W/g2h.err" & PIDS+=($!)
$VC perf recv uds-listen "${U}_3000" --conns 32 --size 4096 >"$W/perf-recv.out" 2>&1 & PIDS+=($!)
mkfifo "$W/stuck"
exec 7<>"$W/stuck"   # held open, never read: the stuck peer blocks on its stdout
$VC uds-listen "${U}_4000" </dev/null >"$W/stuck" 2>/dev/null & STUCK=$!
$VC uds-listen "${U}_4001" </dev/null >"$W/g2.out" 2>&1 & PIDS+=($!)
$VC uds-listen "${U}_6000" </dev/null >"$W/after.out" 2>&1 & PIDS+=($!)

mark() { echo "echo MARK-\$((100+$1))"; }
cmd="cd /tmp; $(mark 1)"
cmd+="; vsockcat listen 1000 </dev/null | sha256sum | sed 's/ .*//;s/^/h2g=/'"
cmd+="; head -c 10485760 /dev/urandom > g; echo g2hsrc=\$(sha256sum < g | sed 's/ .*//')"
cmd+="; vsockcat connect 2 2000 < g > /dev/null; echo g2hrc=\$?"
cmd+="; vsockcat perf recv listen 3001 --conns 32 --size 4096 > p1 & sleep 0.5; $(mark 2); wait \$!; cat p1"
cmd+="; vsockcat perf send connect 2 3000 --conns 32 --bytes 65536 --size 4096"
cmd+="; vsockcat connect 2 4000 < g > /dev/null 2>&1 & S=\$!; sleep 1"
cmd+="; head -c 2097152 g > g2; echo g2src=\$(sha256sum < g2 | sed 's/ .*//')"
cmd+="; vsockcat connect 2 4001 < g2 > /dev/null; echo g2rc=\$?; $(mark 3); wait \$S; echo stuckrc=\$?"
cmd+="; vsockcat listen 5000 > /dev/null 2>&1 & K=\$!; sleep 0.5; $(mark 4); sleep 3; kill \$K; $(mark 5)"
cmd+="; sleep 1; echo after-kill | vsockcat connect 2 6000; echo afterrc=\$?"
cmd+="; vsockcat listen 9000 > /dev/null 2>&1 & sleep 0.5; $(mark 6); sleep 2"
log=$LOGDIR/vuvsock-guest.log
start=$SECONDS
QEMU_SHARED_MEM=1 qemu_start 240 "$log" "$cmd" \
	-chardev socket,id=vs0,path="$W/vu.sock" -device vhost-user-vsock-pci,chardev=vs0

# 1. host -> guest (retry while the guest's listener is not up yet: RST, no OK)
if qemu_wait_for "$log" MARK-101 90; then
	ok=0
	for _ in $(seq 40); do
		if $VC uds-connect "$U" 1000 <"$W/data" >/dev/null 2>"$W/h2g.err"; then ok=1; break; fi
		sleep 0.25
	done
	[ $ok = 1 ] || fail "host -> guest connection (see $W/h2g.err)"
else
	fail "guest boot (see $log)"
fi
# 3. 32 connections host -> guest
if qemu_wait_for "$log" MARK-102 150; then
	$VC perf send uds-connect "$U" 3001 --conns 32 --bytes 65536 --size 4096 >"$W/perf-send.out" 2>&1
fi
# 4. the stuck peer must still be stuck when the other connection has finished
if qemu_wait_for "$log" MARK-103 150; then
	kill -0 "$STUCK" 2>/dev/null && pass "a stuck host peer did not stall another connection" \
		|| fail "stuck peer ended early"
	kill "$STUCK" 2>/dev/null
	STUCK=
fi
# 5. the guest kills its receiver mid-transfer: the host sender must see the end
if qemu_wait_for "$log" MARK-104 60; then
	$VC uds-connect "$U" 5000 </dev/zero >/dev/null 2>"$W/kill.err" & ZP=$!
	qemu_wait_for "$log" MARK-105 30
	for _ in $(seq 100); do kill -0 "$ZP" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$ZP" 2>/dev/null; then
		fail "host sender still running 10 s after the guest receiver was killed"
		kill "$ZP"
	else
		wait "$ZP"
		zrc=$?
		[ $zrc -ne 0 ] && pass "guest process killed mid-transfer: the host sender saw the connection end (status $zrc)" \
			|| fail "host sender ended with status 0 after the kill"
	fi
	ZP=
fi
# 6. a host peer still sending when the guest powers off
ZP2=
if qemu_wait_for "$log" MARK-106 60; then
	$VC uds-connect "$U" 9000 </dev/zero >/dev/null 2>/dev/null & ZP2=$!
fi
qemu_wait
rc=$?
secs=$((SECONDS - start))
if [ -n "$ZP2" ]; then
	for _ in $(seq 50); do kill -0 "$ZP2" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$ZP2" 2>/dev/null; then
		fail "host peer still connected 5 s after the front-end went away"
		kill "$ZP2"
	else
		pass "front-end gone with a connection open: the host peer saw the end"
	fi
fi
[ $rc -eq 0 ] && grep -qx "vireo-guest: exit 0" "$log" && pass "guest ran its commands and powered off (${secs} s)" \
	|| fail "guest run (qemu status $rc, see $log)"

g=$(sed -n 's/^h2g=\([0-9a-f]\{64\}\)$/\1/p' "$log")
[ "$g" = "$H2G_SUM" ] && pass "host -> guest: 10 MiB, sha256 matches" || fail "host -> guest sha256 (guest '$g', host $H2G_SUM)"
src=$(sed -n 's/^g2hsrc=\([0-9a-f]\{64\}\)$/\1/p' "$log")
got=$(sha256sum <"$W/g2h.out" | cut -d' ' -f1)
[ -n "$src" ] && [ "$src" = "$got" ] && [ "$(stat -c %s "$W/g2h.out")" = 10485760 ] &&
	grep -qx "g2hrc=0" "$log" && pass "guest -> host: 10 MiB, sha256 matches" ||
	fail "guest -> host (guest $src, host $got, $(stat -c %s "$W/g2h.out") bytes)"
grep -q "^perf recv: 2097152 bytes .*32 conns)$" "$log" && grep -q "^perf send: 2097152 bytes" "$W/perf-send.out" &&
	pass "32 connections at once host -> guest ($(grep -o '[0-9.]* MB/s' "$W/perf-send.out"))" ||
	fail "32 connections host -> guest ($(cat "$W/perf-send.out"; grep '^perf' "$log"))"
wait "${PIDS[1]}" 2>/dev/null
grep -q "^perf recv: 2097152 bytes .*32 conns)$" "$W/perf-recv.out" &&
	pass "32 connections at once guest -> host ($(grep -o '[0-9.]* MB/s' "$W/perf-recv.out"))" ||
	fail "32 connections guest -> host ($(cat "$W/perf-recv.out"))"
src=$(sed -n 's/^g2src=\([0-9a-f]\{64\}\)$/\1/p' "$log")
got=$(sha256sum <"$W/g2.out" | cut -d' ' -f1)
[ -n "$src" ] && [ "$src" = "$got" ] && grep -qx "g2rc=0" "$log" &&
	pass "2 MiB through another connection while the peer was stuck, sha256 matches" ||
	fail "transfer beside the stuck peer (guest $src, host $got)"
grep -q "^stuckrc=" "$log" && pass "the guest's sender to the stuck peer ended once the peer was gone" \
	|| fail "stuck sender never ended"
[ "$(cat "$W/after.out")" = after-kill ] && grep -qx "afterrc=0" "$log" &&
	pass "a new connection after the killed one works" || fail "connection after the kill ('$(cat "$W/after.out")')"

# a second front-end on the same backend
$VC uds-listen "${U}_6001" </dev/null >"$W/second.out" 2>&1 & PIDS+=($!)
log2=$LOGDIR/vuvsock-guest2.log
QEMU_SHARED_MEM=1 qemu_boot 90 "$log2" "echo second-boot | vsockcat connect 2 6001; echo rc2=\$?" \
	-chardev socket,id=vs0,path="$W/vu.sock" -device vhost-user-vsock-pci,chardev=vs0
[ "$(cat "$W/second.out")" = second-boot ] && grep -qx "rc2=0" "$log2" &&
	pass "a second QEMU on the same backend: the device works again" ||
	fail "second front-end (see $log2, '$(cat "$W/second.out")')"

before=$(grep -c "virtio-vsock: stats" "$LOGDIR/vuvsock-backend.log")
kill -USR1 "$BPID"
for _ in $(seq 20); do
	[ "$(grep -c "virtio-vsock: stats" "$LOGDIR/vuvsock-backend.log")" -gt "$before" ] && break
	sleep 0.1
done
[ "$(grep -c "virtio-vsock: stats" "$LOGDIR/vuvsock-backend.log")" -gt "$before" ] &&
	pass "SIGUSR1 logs the counters" || fail "no counters logged on SIGUSR1"
kill -TERM "$BPID"
for _ in $(seq 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$BPID" 2>/dev/null; then fail "backend exits on SIGTERM"
else wait "$BPID"; brc=$?; [ $brc -eq 0 ] && pass "backend exits cleanly on SIGTERM" || fail "backend exit status $brc"; fi
BPID=
st=$(grep "virtio-vsock: stats" "$LOGDIR/vuvsock-backend.log" | tail -n 1)
echo "${st#*stats: }" | grep -q "malformed 0" && pass "no malformed packets from the Linux driver (${st#*stats: })" ||
	fail "backend counters: $st"
exit $FAILED
