#!/usr/bin/env bash
# Faults around vireo's blk backend with 32 writes in flight, driven by vireo's own vhost-user
# front-end (build/bench/blk as the "guest": no VM needed, runs anywhere). The QEMU version with
# one write in flight is vhost_user_blk_faults.sh.
#  1. The front-end killed (SIGKILL) with 32 O_DIRECT writes in flight: the backend survives,
#     a new front-end is served (reads and writes complete without error), and every write the
#     first one saw acknowledged holds its pattern in the file.
#  2. The backend killed (SIGKILL) with 32 writes in flight: every write the front-end saw
#     acknowledged holds its pattern in the file; a new backend on the same socket serves a new
#     front-end.
set -uo pipefail
cd "$(dirname "$0")/../.."

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vublkd.XXXXXX)
FAILED=0
BPID= DPID=
. tests/lib/check.sh
cleanup() {
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	[ -n "$BPID" ] && kill -KILL "$BPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

make -j2 build/vireo build/bench/blk >"$LOGDIR/vublkd-build.log" 2>&1 || { fail "build"; exit 1; }
# O_DIRECT needs a real filesystem: the image lives under build/, not in /tmp (may be tmpfs)
DISK=$(mktemp build/vublkd-disk.XXXXXX)
trap 'cleanup; rm -f "$DISK"' EXIT
truncate -s 64M "$DISK"
BLOG=$LOGDIR/vublkd-backend.log; : >"$BLOG"

start_backend() {
	rm -f "$W/blk.sock"
	./build/vireo backend blk --socket "$W/blk.sock" --path "$DISK" --direct -v >>"$BLOG" 2>&1 &
	BPID=$!
	for _ in $(seq 50); do [ -S "$W/blk.sock" ] && return 0; sleep 0.1; done
	return 1
}
# a front-end writing 4 KiB blocks at queue depth 32, logging each acknowledged one
start_writer() { # SEED ACKLOG
	./build/bench/blk --socket "$W/blk.sock" --seconds 60 --tests seqwrite:4096:32 \
		--seed "$1" --ack-log "$2" >"$W/writer.out" 2>&1 &
	DPID=$!
}
wait_acks() { # ACKLOG N: until N writes were acknowledged (20 s at most)
	for _ in $(seq 200); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
check_acks() { # ACKLOG SEED WHAT
	local out
	out=$(./build/bench/blk --check-acks "$1" --file "$DISK" --seed "$2" 2>&1)
	[ $? -eq 0 ] && pass "$3: every acknowledged write is in the file (${out#acks })" \
		|| fail "$3: acknowledged writes missing: $out"
}

# ---- 1. front-end killed mid-I/O --------------------------------------------------------
start_backend && pass "backend listens" || { fail "backend listens"; exit 1; }
start_writer 1111 "$W/acks1"
if wait_acks "$W/acks1" 3000; then
	kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
	pass "front-end killed with writes in flight"
else
	fail "the writer never reached 3000 acknowledged writes ($(cat "$W/writer.out"))"
fi
sleep 0.5
kill -0 "$BPID" 2>/dev/null && pass "backend survived the front-end's death" || fail "backend died"
check_acks "$W/acks1" 1111 "front-end kill"
if out=$(timeout 30 ./build/bench/blk --socket "$W/blk.sock" --seconds 1 \
	--tests randread:4096:32,seqwrite:4096:32 2>&1) && awk '$7 != 0 {exit 1}' <<<"$out"; then
	pass "a new front-end is served (reads and writes, no errors)"
else
	fail "new front-end after the kill: $out"
fi

# ---- 2. backend killed mid-I/O ------------------------------------------------------------
start_writer 2222 "$W/acks2"
if wait_acks "$W/acks2" 3000; then
	kill -KILL "$BPID"; wait "$BPID" 2>/dev/null; BPID=
	pass "backend killed with writes in flight"
	sleep 0.3
	kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=
	check_acks "$W/acks2" 2222 "backend kill"
else
	fail "the writer never reached 3000 acknowledged writes ($(cat "$W/writer.out"))"
fi
start_backend && pass "a new backend listens on the same socket" || fail "backend restart"
start_writer 3333 "$W/acks3"
if wait_acks "$W/acks3" 1000; then
	kill -TERM "$BPID"; wait "$BPID"; rc=$?; BPID=
	[ $rc -eq 0 ] && pass "backend exits cleanly on SIGTERM with writes in flight" \
		|| fail "backend exit status $rc on SIGTERM"
	kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=
	check_acks "$W/acks3" 3333 "after the restart"
else
	fail "no writes through the new backend ($(cat "$W/writer.out"))"
fi
exit $FAILED
