#!/usr/bin/env bash
# make bench-blk: vireo's blk backend against qemu-storage-daemon's vhost-user-blk export of
# the same file, both with O_DIRECT, driven by the same front-end driver (build/bench/blk).
# Rounds are interleaved (the order alternates each round) so that load from elsewhere hits
# both sides alike; the table shows the median of the rounds, with each backend's CPU time per
# request (us/req, user + system of the whole backend process). Last line:
#   blk: vireo X IOPS, qsd Y IOPS, ratio R        (4 KiB random read at queue depth 32)
#
# Where the file lives decides what is measured. By default it is on /dev/shm: tmpfs takes
# O_DIRECT since Linux 6.6, so both backends still do direct I/O, but the storage answers at
# memory speed and the backends themselves are the bottleneck, which is what this compares.
# On the virtual disk of these machines (BENCH_BLK_FILE=build/bench-blk.img) both backends sit
# at the disk's ~47K 4 KiB IOPS and the ratio is ~1.0: that measures the disk.
#
# Settings: BENCH_BLK_ROUNDS (3), BENCH_BLK_SECONDS (2 per test), BENCH_BLK_FILE
# (/dev/shm/vireo-bench-blk.img, removed at the end; a file you name is kept), BENCH_BLK_SIZE_MB
# (1024), BENCH_BLK_TESTS (randread:4096:1,randread:4096:32,seqread:1048576:8,seqwrite:1048576:8),
# BUILD (build).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${BENCH_BLK_ROUNDS:-3}
SECS=${BENCH_BLK_SECONDS:-2}
FILE=${BENCH_BLK_FILE:-/dev/shm/vireo-bench-blk.img}
KEEP=${BENCH_BLK_FILE:+1}
SIZE_MB=${BENCH_BLK_SIZE_MB:-1024}
TESTS=${BENCH_BLK_TESTS:-randread:4096:1,randread:4096:32,seqread:1048576:8,seqwrite:1048576:8}
QSD=${QSD:-qemu-storage-daemon}

command -v "$QSD" >/dev/null || { echo "SKIP: bench-blk ($QSD not installed: qemu-system-common)"; exit 77; }
[ -x "$BUILD/vireo" ] && [ -x "$BUILD/bench/blk" ] || { echo "build $BUILD/vireo and $BUILD/bench/blk first"; exit 1; }

W=$(mktemp -d /tmp/vireo-bench-blk.XXXXXX)
VPID= QPID=
stop() { # PID: SIGTERM, then SIGKILL after 5 s (a backend that hangs must not hang the bench)
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$1" 2>/dev/null && { echo "bench-blk: pid $1 ignored SIGTERM: killed"; kill -KILL "$1"; }
	wait "$1" 2>/dev/null
}
cleanup() {
	stop "$VPID"
	stop "$QPID"
	rm -rf "$W"
	[ -n "$KEEP" ] || rm -f "$FILE"
}
trap cleanup EXIT

if [ "$(stat -c %s "$FILE" 2>/dev/null)" != "$((SIZE_MB << 20))" ]; then
	echo "bench-blk: writing a ${SIZE_MB} MiB test file $FILE"
	dd if=/dev/zero of="$FILE" bs=1M count="$SIZE_MB" oflag=direct status=none || exit 1
fi
# both backends open the file with O_DIRECT: refuse a filesystem that would not take it
dd if="$FILE" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null ||
	{ echo "bench-blk: $FILE does not take O_DIRECT (tmpfs before Linux 6.6?): set BENCH_BLK_FILE"; exit 1; }

"$BUILD/vireo" backend blk --socket "$W/vireo.sock" --path "$FILE" --direct >"$W/vireo.log" 2>&1 &
VPID=$!
"$QSD" --blockdev driver=file,node-name=f,filename="$FILE",cache.direct=on,aio=io_uring \
	--export type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path="$W/qsd.sock",writable=on,num-queues=1 \
	>"$W/qsd.log" 2>&1 &
QPID=$!
for _ in $(seq 50); do [ -S "$W/vireo.sock" ] && [ -S "$W/qsd.sock" ] && break; sleep 0.1; done
[ -S "$W/vireo.sock" ] || { echo "bench-blk: vireo backend did not start"; cat "$W/vireo.log"; exit 1; }
[ -S "$W/qsd.sock" ] || { echo "bench-blk: qemu-storage-daemon did not start"; cat "$W/qsd.log"; exit 1; }

echo "bench-blk: $FILE ($(stat -f -c %T "$FILE")), O_DIRECT on both sides, $ROUNDS rounds x $SECS s per test, interleaved"
RES=$W/results
for r in $(seq "$ROUNDS"); do
	order="vireo qsd"
	[ $((r % 2)) -eq 0 ] && order="qsd vireo"
	for b in $order; do
		pid=$VPID; [ "$b" = qsd ] && pid=$QPID
		"$BUILD/bench/blk" --socket "$W/$b.sock" --label "$b" --seconds "$SECS" --tests "$TESTS" --pid "$pid" \
			>>"$RES" 2>>"$W/bench.log" || { echo "bench-blk: the driver failed against $b"; cat "$W/bench.log"; exit 1; }
	done
done

# median per (backend, test): columns label name bs qd iops mbs errors cpu-us/request ...
median() { # LABEL NAME BS QD COLUMN
	awk -v l="$1" -v n="$2" -v b="$3" -v q="$4" -v c="$5" \
		'$1==l && $2==n && $3==b && $4==q {print $c}' "$RES" | sort -g |
		awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
errors=$(awk '{s+=$7} END {print s+0}' "$RES")
printf "%-10s %8s %3s | %10s %9s %7s | %10s %9s %7s | %6s\n" test bs qd "vireo IOPS" "MB/s" "us/req" \
	"qsd IOPS" "MB/s" "us/req" ratio
IFS=, read -ra T <<<"$TESTS"
for t in "${T[@]}"; do
	IFS=: read -r name bs qd <<<"$t"
	vi=$(median vireo "$name" "$bs" "$qd" 5); vm=$(median vireo "$name" "$bs" "$qd" 6)
	qi=$(median qsd "$name" "$bs" "$qd" 5); qm=$(median qsd "$name" "$bs" "$qd" 6)
	vc=$(median vireo "$name" "$bs" "$qd" 8); qc=$(median qsd "$name" "$bs" "$qd" 8)
	ratio=$(awk -v a="$vi" -v b="$qi" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
	printf "%-10s %8s %3s | %10.0f %9.1f %7.1f | %10.0f %9.1f %7.1f | %6s\n" "$name" "$bs" "$qd" \
		"$vi" "$vm" "$vc" "$qi" "$qm" "$qc" "$ratio"
done
[ "$errors" -eq 0 ] || echo "bench-blk: $errors requests completed with an error status"
vi=$(median vireo randread 4096 32 5); qi=$(median qsd randread 4096 32 5)
echo "blk: vireo $(printf %.0f "$vi") IOPS, qsd $(printf %.0f "$qi") IOPS, ratio $(awk -v a="$vi" -v b="$qi" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
