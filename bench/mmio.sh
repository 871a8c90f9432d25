#!/usr/bin/env bash
# bench-mmio: request round trips through vireo's virtio-mmio transport, measured inside the
# guest by the kut virtio kernel (guest/kut/virtio.c, bench=N: N requests one at a time;
# submit, kick, interrupt, used entry, InterruptACK; TSC calibrated against the PIT):
#   blk in-process   4 KiB reads; the kick is a KVM ioeventfd read by the blk thread's io_uring
#   blk vhost-user   the same against `vireo backend blk` (ioeventfd on the backend's kick fd;
#                    interrupts through remote_dev's poller thread)
#   rng in-process   64-byte requests; the kick is an MMIO exit handled on the vCPU thread
# Rounds interleave the two blk set-ups; figures are medians over rounds. Last line:
#   mmio: blk 4 KiB QD1 in-process X us, vhost-user Y us; rng 64 B (exit kick) Z us ...
# Environment: BENCH_ROUNDS (default 5), BENCH_REQS (default 2000).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
VIREO=$BUILD/vireo
KUT=${KUT:-$BUILD/kut}
ROUNDS=${BENCH_ROUNDS:-5}
REQS=${BENCH_REQS:-2000}

if [ ! -c /dev/kvm ]; then
  echo "bench-mmio needs /dev/kvm: no figures"
  exit 0
fi
[ -x "$VIREO" ] || make -s -j2 BUILD="$BUILD" vireo >/dev/null || exit 1
make -s -C guest/kut OUT="$PWD/$KUT" >/dev/null || exit 1
TMP=$(mktemp -d)
BPID=
trap '[ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"' EXIT
head -c $((2048 * 512)) /dev/zero >"$TMP/disk.img"

# ns NAME WHAT: the "ns each" figure of WHAT in run NAME's console output
ns() { sed -nE "s/^kut virtio bench: $2: [0-9]+ requests in [0-9]+ us, ([0-9]+) ns each/\1/p" \
  "$TMP/$1.out"; }
run() { # run NAME ARGS...
  local name=$1; shift
  timeout 300 "$VIREO" run --kernel "$KUT/gcc/virtio.elf" --memory 64M --console "$TMP/$name.out" \
    "$@" >/dev/null 2>"$TMP/$name.err"
}

rm -f "$TMP/vu.sock"
"$VIREO" backend blk --socket "$TMP/vu.sock" --path "$TMP/disk.img" --serial kutdisk \
  >"$TMP/backend.log" 2>&1 &
BPID=$!
for _ in $(seq 50); do [ -S "$TMP/vu.sock" ] && break; sleep 0.1; done

: >"$TMP/inproc"; : >"$TMP/vu"; : >"$TMP/rng"
for r in $(seq "$ROUNDS"); do
  run in-$r --rng --disk path="$TMP/disk.img",serial=kutdisk \
    --cmdline "devices=2 blk_sectors=2048 bench=$REQS"
  run vu-$r --disk vhost_user=on,socket="$TMP/vu.sock" \
    --cmdline "devices=1 blk_sectors=2048 bench=$REQS"
  a=$(ns in-$r "blk 4 KiB reads"); b=$(ns vu-$r "blk 4 KiB reads"); c=$(ns in-$r "rng 64-byte requests")
  if [ -z "$a" ] || [ -z "$b" ] || [ -z "$c" ]; then
    echo "round $r: a run failed"; tail -n 3 "$TMP"/in-$r.err "$TMP"/vu-$r.err; exit 1
  fi
  echo "round $r: blk in-process $a ns, vhost-user $b ns; rng $c ns"
  echo "$a" >>"$TMP/inproc"; echo "$b" >>"$TMP/vu"; echo "$c" >>"$TMP/rng"
done
med() { sort -n "$1" | awk '{v[NR] = $1} END {printf "%.1f", v[int((NR + 1) / 2)] / 1000}'; }
echo "mmio: blk 4 KiB QD1 in-process $(med "$TMP/inproc") us, vhost-user $(med "$TMP/vu") us;" \
  "rng 64 B (exit kick) $(med "$TMP/rng") us (median of $ROUNDS rounds of $REQS requests)"
