#!/usr/bin/env bash
# Seccomp filters (src/sandbox/) in running processes: every thread of a serving
# `vireo backend KIND` (rng, blk, net loopback, vsock) and of `vireo run` (a multiboot kernel
# that halts, 2 vCPUs) shows "Seccomp: 2" in /proc/PID/task/*/status, also with
# --seccomp log; --seccomp off shows 0. Under the filter the backends still report counters on
# SIGUSR1, exit 0 on SIGTERM and remove their sockets (Landlock lets them remove files there
# and nowhere else: tests/unit/test_landlock.c); the blk backend serves vireo's own
# front-end (bench/blk, no VM) reconnecting twice; vireo run stops with 128+15 on SIGTERM.
# A bad --seccomp value is one error line and exit 2. The other integration tests run with
# the filter on (the default): they are the proof that the allowlists are complete.
set -uo pipefail
cd "$(dirname "$0")/../.."

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-seccomp.XXXXXX)
FAILED=0
PID=
. tests/lib/check.sh
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

make -j2 build/vireo build/bench/blk >"$LOGDIR/seccomp-build.log" 2>&1 || { fail "build"; exit 1; }

# seccomp_of PID: the Seccomp field of every thread, distinct values space-separated ("2").
seccomp_of() {
	cat /proc/"$1"/task/*/status 2>/dev/null | sed -n 's/^Seccomp:[[:space:]]*//p' | sort -u | xargs
}
# seccomp_wait PID WANT: seccomp_of until it says WANT (the socket appears just before the
# filter is installed), at most 2 s.
seccomp_wait() {
	local s
	for _ in $(seq 20); do s=$(seccomp_of "$1"); [ "$s" = "$2" ] && break; sleep 0.1; done
	echo "$s"
}

# stop PID: SIGTERM, wait up to 5 s; sets rc to the exit status (or "hung").
stop() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$1" 2>/dev/null; then kill -9 "$1"; wait "$1" 2>/dev/null; rc=hung; return; fi
	wait "$1"; rc=$?
}

# backend KIND MODE ARGS...: start it, wait for the socket; sets PID and SOCK.
backend() {
	local kind=$1 mode=$2; shift 2
	SOCK=$W/$kind-$mode.sock
	./build/vireo backend "$kind" --socket "$SOCK" --seccomp "$mode" "$@" \
		>"$LOGDIR/seccomp-$kind-$mode.log" 2>&1 &
	PID=$!
	for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
	[ -S "$SOCK" ]
}

truncate -s 16M "$W/disk.img"
declare -A ARGS=(
	[rng]=""
	[blk]="--path $W/disk.img"
	[net]="--loopback"
	[vsock]="--cid 3 --uds $W/vsock.uds"
)
for kind in rng blk net vsock; do
	# shellcheck disable=SC2086
	if ! backend "$kind" on ${ARGS[$kind]}; then
		fail "backend $kind: listens (see $LOGDIR/seccomp-$kind-on.log)"; stop "$PID"; PID=; continue
	fi
	s=$(seccomp_wait "$PID" 2)
	[ "$s" = 2 ] && pass "backend $kind: every thread is filtered (Seccomp: $s)" \
		|| fail "backend $kind: Seccomp '$s', expected 2"
	if [ "$kind" = blk ]; then
		ok=1
		for k in 1 2; do
			timeout 30 ./build/bench/blk --socket "$SOCK" --seconds 1 \
				--tests randread:4096:8,seqwrite:65536:4 >"$LOGDIR/seccomp-blk-fe$k.log" 2>&1 || ok=0
		done
		[ $ok = 1 ] && kill -0 "$PID" 2>/dev/null \
			&& pass "backend blk: served two front-ends in turn under the filter (io_uring set up for each)" \
			|| fail "backend blk: front-end under the filter (see $LOGDIR/seccomp-blk-fe*.log)"
	fi
	kill -USR1 "$PID"; sleep 0.2
	kill -0 "$PID" 2>/dev/null && pass "backend $kind: SIGUSR1 (counters) under the filter" \
		|| fail "backend $kind: died on SIGUSR1"
	stop "$PID"; PID=
	[ "$rc" = 0 ] && pass "backend $kind: exits 0 on SIGTERM under the filter" \
		|| fail "backend $kind: exit status $rc on SIGTERM (159 = SIGSYS; dmesg | grep type=1326)"
	[ ! -e "$SOCK" ] && pass "backend $kind: socket removed at exit" || fail "backend $kind: socket left"
	if [ $kind = vsock ]; then # its host listener sits elsewhere: removal allowed there too
		[ ! -e "$W/vsock.uds" ] && pass "backend vsock: host listener removed at exit" \
			|| fail "backend vsock: host listener left"
	fi
done

for mode in log off; do
	want=$([ $mode = log ] && echo 2 || echo 0)
	if backend rng "$mode"; then
		[ $mode = off ] && sleep 0.5 # a filter would be there by now
		s=$(seccomp_wait "$PID" "$want")
		[ "$s" = "$want" ] && pass "backend rng --seccomp $mode: Seccomp: $s" \
			|| fail "backend rng --seccomp $mode: Seccomp '$s', expected $want"
	else
		fail "backend rng --seccomp $mode: listens"
	fi
	stop "$PID"; PID=
	[ "$rc" = 0 ] || fail "backend rng --seccomp $mode: exit status $rc"
done

out=$(./build/vireo backend rng --socket "$W/x.sock" --seccomp maybe 2>&1); rc=$?
[ $rc = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] \
	&& pass "backend: bad --seccomp value -> exit 2, '$out'" || fail "backend: bad --seccomp: $rc '$out'"
out=$(./build/vireo run --kernel /dev/null --seccomp maybe 2>&1); rc=$?
[ $rc = 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] \
	&& pass "run: bad --seccomp value -> exit 2, '$out'" || fail "run: bad --seccomp: $rc '$out'"

if [ ! -c /dev/kvm ]; then
	echo "SKIP: vireo run under the filter (no /dev/kvm)"
	exit $FAILED
fi
# A multiboot (a.out kludge) kernel at 1 MiB: cli; hlt; jmp back to hlt. It halts for ever
# inside KVM_RUN, so the process can be looked at.
printf '\x02\xb0\xad\x1b\x00\x00\x01\x00\xfe\x4f\x51\xe4\x00\x00\x10\x00\x00\x00\x10\x00'\
'\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00\x10\x00\xfa\xf4\xeb\xfd' >"$W/halt.bin"
# "devs": in-process virtio-mmio devices of every kind (their threads and exit paths under the
# filter; the guest never drives them, tests/integration/virtio_mmio.sh does).
for mode in on devs log off; do
	want=$([ $mode = off ] && echo 0 || echo 2)
	args=(--seccomp "$mode"); what="--seccomp $mode"
	[ $mode = devs ] && args=(--rng --disk path="$W/disk.img" --net loopback
		--vsock cid=3,socket="$W/run-vsock.uds") && what="--rng --disk --net --vsock"
	./build/vireo run --kernel "$W/halt.bin" --cpus 2 --console none "${args[@]}" \
		>"$LOGDIR/seccomp-run-$mode.log" 2>&1 &
	PID=$!
	s=
	for _ in $(seq 50); do
		sleep 0.1
		n=$(ls /proc/"$PID"/task 2>/dev/null | wc -l)
		[ "$n" -ge 3 ] && s=$(seccomp_of "$PID") && [ "$s" = "$want" ] && break
	done
	[ $mode = off ] && sleep 0.5 && s=$(seccomp_of "$PID")
	[ "$s" = "$want" ] && pass "run $what: main and vCPU threads show Seccomp: $s" \
		|| fail "run $what: Seccomp '$s' on $n threads, expected $want (see $LOGDIR/seccomp-run-$mode.log)"
	stop "$PID"; PID=
	[ "$rc" = 143 ] && pass "run $what: SIGTERM stops the guest, exit 143" \
		|| fail "run $what: exit status $rc after SIGTERM, expected 143"
	[ $mode = devs ] && { [ ! -e "$W/run-vsock.uds" ] && pass "run $what: vsock listener removed at exit" \
		|| fail "run $what: vsock listener left behind"; }
done
exit $FAILED
