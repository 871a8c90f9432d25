#!/usr/bin/env bash
# make bench-net: DPDK's testpmd with its net_virtio_user driver is the traffic source (flowgen:
# it generates frames of one size and counts every frame that comes back) against
#   (a) vireo's net backend in loopback mode (frames sent on the pair come back on its rx), and
#   (b) DPDK's own vhost-user backend (net_vhost PMD) in testpmd io mode, which sends every
#       frame it takes from the guest's tx queue back on the guest's rx queue.
# Same packet sizes, one queue pair of QSIZE entries, mergeable buffers, and the same core
# layout: the backend's data path on CPU 0, the virtio_user forwarding lcore on CPU 1 (the
# testpmd main lcores, which only print statistics, share the other CPU). Runs interleave
# (the order alternates each round) so that load from elsewhere hits both alike; each run's
# figure is the median of the received-packets-per-second samples once traffic flows, and the
# table shows the median over rounds; the ratio is the median of the per-round ratios. Last
# two lines:
#   net 1500B: vireo X Mpps, dpdk-vhost Y Mpps, ratio R
#   net: vireo X Mpps, dpdk-vhost Y Mpps, ratio R          (64-byte frames)
#
# Settings: BENCH_NET_ROUNDS (3), BENCH_NET_SECONDS (8 of measurement per run),
# BENCH_NET_SIZES ("1500 64"), BENCH_NET_POLL_US (1000: vireo keeps polling that long after
# the last frame before it sleeps; DPDK's vhost PMD polls all the time), BENCH_NET_QSIZE (256),
# BUILD (build). Needs dpdk-dev (scripts/deps.sh dpdk-dev installs it) and 2 CPUs.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ROUNDS=${BENCH_NET_ROUNDS:-3}
SECS=${BENCH_NET_SECONDS:-8}
SIZES=${BENCH_NET_SIZES:-1500 64}
POLL=${BENCH_NET_POLL_US:-1000}
QSIZE=${BENCH_NET_QSIZE:-256}
TESTPMD=${TESTPMD:-dpdk-testpmd}

bash scripts/deps.sh dpdk-dev || { echo "SKIP: bench-net (cannot install dpdk-dev)"; exit 77; }
command -v "$TESTPMD" >/dev/null || { echo "SKIP: bench-net ($TESTPMD not installed)"; exit 77; }
[ "$(nproc)" -ge 2 ] || { echo "SKIP: bench-net (needs 2 CPUs)"; exit 77; }
[ -x "$BUILD/vireo" ] || { echo "build $BUILD/vireo first"; exit 1; }

W=$(mktemp -d /tmp/vireo-bench-net.XXXXXX)
BPID=
cleanup() {
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$W" /var/run/dpdk/vireo-bn-*
}
trap cleanup EXIT

EAL=(--no-huge -m 1024 --no-pci --iova-mode=va)
PMD=(--rxq=1 --txq=1 --nb-cores=1 --rxd="$QSIZE" --txd="$QSIZE" --total-num-mbufs=16384)

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }

# start_backend KIND SOCK: the backend under test, data path on CPU 0.
start_backend() {
	case $1 in
	vireo)
		taskset -c 0 "$BUILD/vireo" backend net --socket "$2" --loopback --queue-size "$QSIZE" \
			--poll-us "$POLL" >"$W/backend.log" 2>&1 &
		BPID=$!
		wait_sock "$2" ;;
	dpdk-vhost)
		# main lcore 0 on CPU 1 (statistics only), forwarding lcore 1 on CPU 0
		"$TESTPMD" --lcores '0@1,1@0' "${EAL[@]}" --file-prefix=vireo-bn-vh$$ \
			--vdev "net_vhost0,iface=$2,queues=1" -- --forward-mode=io "${PMD[@]}" \
			--stats-period 60 </dev/null >"$W/backend.log" 2>&1 &
		BPID=$!
		wait_sock "$2" ;;
	esac
}

stop_backend() {
	kill -INT "$BPID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$BPID" 2>/dev/null
	wait "$BPID" 2>/dev/null
	BPID=
	rm -f "$W"/*.sock
}

# run KIND SIZE: the run's received Mpps (median of the samples while traffic flows) in $W/last.
run() {
	local sock=$W/$1.sock log=$W/virtio-$1-$2.log
	start_backend "$1" "$sock" || { echo "bench-net: $1 backend did not start" >&2; cat "$W/backend.log" >&2; return 1; }
	# main lcore 0 on CPU 0, forwarding lcore 1 on CPU 1; flowgen receives and counts too.
	timeout -s INT $((SECS + 25)) "$TESTPMD" --lcores '0@0,1@1' "${EAL[@]}" \
		--file-prefix=vireo-bn-vu$$ \
		--vdev "net_virtio_user0,path=$sock,queues=1,queue_size=$QSIZE,mrg_rxbuf=1" \
		-- --forward-mode=flowgen --txpkts="$2" "${PMD[@]}" --stats-period 1 \
		</dev/null >"$log" 2>&1 &
	local vpid=$! n=0
	# stop after SECS samples with traffic
	for _ in $(seq $((SECS + 25))); do
		sleep 1
		n=$(grep -E '^ +Rx-pps: +[1-9]' "$log" | wc -l)
		[ "$n" -ge $((SECS + 2)) ] && break
		kill -0 "$vpid" 2>/dev/null || break
	done
	kill -INT "$vpid" 2>/dev/null
	wait "$vpid" 2>/dev/null
	stop_backend
	# skip the first two samples with traffic (ramp-up), median of the rest
	grep -E '^ +Rx-pps: +[1-9]' "$log" | awk '{ print $2 }' | tail -n +3 | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "0"; else printf "%.3f\n", v[int((NR + 1) / 2)] / 1e6 }' \
		>"$W/last"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "0"; else print v[int((NR + 1) / 2)] }'; }

echo "bench-net: testpmd net_virtio_user flowgen -> loopback backend, 1 queue pair of $QSIZE," \
	"mrg_rxbuf; backend data path on CPU 0, traffic source on CPU 1; vireo --poll-us $POLL;" \
	"$ROUNDS rounds x ${SECS} s, interleaved"
for size in $SIZES; do
	for r in $(seq "$ROUNDS"); do
		order="vireo dpdk-vhost"
		[ $((r % 2)) -eq 0 ] && order="dpdk-vhost vireo"
		for b in $order; do
			run "$b" "$size" || exit 1
			v=$(cat "$W/last")
			echo "$size $b $v $r" >>"$W/results"
			printf '  %5s B  round %d  %-10s %7s Mpps\n' "$size" "$r" "$b" "$v"
		done
	done
done

# line SIZE LABEL: median Mpps of each side over the rounds, and the median of the per-round
# ratios (each round runs both back to back, so a ratio compares runs under similar load).
line() {
	local size=$1 v d r
	v=$(awk -v s="$size" '$1 == s && $2 == "vireo" { print $3 }' "$W/results" | median)
	d=$(awk -v s="$size" '$1 == s && $2 == "dpdk-vhost" { print $3 }' "$W/results" | median)
	r=$(awk -v s="$size" '$1 == s { x[$4, $2] = $3 } $1 == s && $2 == "vireo" { n[$4] = 1 }
		END { for (k in n) if (x[k, "dpdk-vhost"] > 0) print x[k, "vireo"] / x[k, "dpdk-vhost"] }' \
		"$W/results" | median)
	awk -v v="$v" -v d="$d" -v r="$r" -v p="$2" 'BEGIN { printf "%s: vireo %.2f Mpps, dpdk-vhost %.2f Mpps, ratio %.2f\n", p, v, d, r }'
}
for size in $SIZES; do
	[ "$size" = 64 ] && continue
	line "$size" "net ${size}B"
done
case " $SIZES " in *" 64 "*) line 64 net ;; esac
