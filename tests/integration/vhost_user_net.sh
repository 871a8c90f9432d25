#!/usr/bin/env bash
# vireo's virtio-net backend under QEMU (software emulation, no KVM needed), through
# -netdev vhost-user on virtio-net-pci with vectors=0 (MSI-X + vhost-user-net crashes QEMU 7.2
# under TCG, see shared/FACTS.md).
#  1. Loopback (the S1 sample), two queue pairs, two vCPUs: the guest pings an address whose
#     MAC it was told, from both vCPUs; every frame it transmits must come back on its receive
#     queues: guest tx == guest rx, and the backend's per-pair counters agree, both pairs used.
#  2. Tap in a network namespace the test makes (skipped without root): the backend runs in
#     the namespace on a multi-queue tap device (two pairs); the guest pings the namespace's address and sends 4 MiB
#     over TCP (checksum/TSO offloads negotiated) that a receiver in the namespace counts.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
W=$(mktemp -d /tmp/vireo-vunet.XXXXXX)
NS=
FAILED=0
BPID=
. tests/lib/check.sh
cleanup() {
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }
make -j2 build/vireo >"$LOGDIR/vunet-build.log" 2>&1 || { fail "build"; exit 1; }
if [ ! -f build/guest/vmlinuz ] || [ ! -f build/guest/initramfs.cpio.gz ]; then
	bash scripts/make-guest.sh >"$LOGDIR/vunet-make-guest.log" 2>&1 || { fail "guest image"; exit 1; }
fi

wait_sock() { for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
stop_backend() {
	kill -TERM "$BPID"; wait "$BPID"; local rc=$?; BPID=
	[ $rc -eq 0 ] && pass "$1: backend exits cleanly on SIGTERM" || fail "$1: backend exit status $rc"
}
# last_count LOG PAIR FIELD(tx|rx): the backend's cumulative counter, logged at each stop
last_count() {
	grep -o "pair $2: tx [0-9]* packets, rx [0-9]* packets" "$1" | tail -1 |
		awk -v f="$3" '{ print (f == "tx") ? $4 : $7 }'
}

# ---- 1. loopback ---------------------------------------------------------------------------
blog=$LOGDIR/vunet-loop-backend.log
./build/vireo backend net --socket "$W/loop.sock" --loopback --queue-pairs 2 -v >"$blog" 2>&1 &
BPID=$!
wait_sock "$W/loop.sock" && pass "loopback: backend listens" || { fail "loopback: backend listens"; exit 1; }
log=$LOGDIR/vunet-loop-guest.log
# No IPv6 on eth0: its router solicitations go out at random times and would race the
# counter reads below.
cmd="echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6 2>/dev/null; ip link set eth0 up; ip addr add 169.254.10.1/16 dev eth0; arp -s 169.254.10.2 52:54:00:00:00:02"
cmd+="; echo pairs=\$(ls -d /sys/class/net/eth0/queues/tx-* | wc -l)"
cmd+="; taskset 1 ping -c 100 -i 0.01 -W 1 169.254.10.2 >/dev/null & taskset 2 ping -c 100 -i 0.01 -W 1 169.254.10.2 >/dev/null & wait; sleep 1"
# Read both counters until two readings agree, so a frame in flight between the reads
# cannot make tx and rx differ.
cmd+="; s=/sys/class/net/eth0/statistics; p=none; for i in 1 2 3 4 5; do c=\$(cat \$s/tx_packets):\$(cat \$s/rx_packets); [ \$c = \$p ] && break; p=\$c; sleep 0.2; done"
cmd+="; echo tx=\${c%:*} rx=\${c#*:}"
QEMU_CPUS=2 QEMU_SHARED_MEM=1 qemu_boot 120 "$log" "$cmd" \
	-chardev socket,id=n0,path="$W/loop.sock" -netdev vhost-user,id=net0,chardev=n0,queues=2 \
	-device virtio-net-pci,netdev=net0,mq=on,vectors=0
rc=$?
[ $rc -eq 0 ] && grep -qx "vireo-guest: exit 0" "$log" && pass "loopback: guest ran and powered off" \
	|| fail "loopback: guest run (qemu status $rc, see $log)"
grep -qx "pairs=2" "$log" && pass "loopback: the guest has two queue pairs" || fail "loopback: queue pairs"
kill -USR1 "$BPID"; sleep 0.5
grep -q "^net: tx [0-9]* packets" "$blog" && pass "loopback: SIGUSR1 prints the backend's counters" \
	|| fail "loopback: no counters after SIGUSR1"
stop_backend loopback
gtx=$(sed -n 's/^tx=\([0-9]*\) rx=.*/\1/p' "$log"); grx=$(sed -n 's/^tx=[0-9]* rx=\([0-9]*\)/\1/p' "$log")
[ "${gtx:-0}" -ge 200 ] && [ "$gtx" = "$grx" ] && pass "loopback: guest received every frame it sent ($gtx = $grx)" \
	|| fail "loopback: guest tx ${gtx:-?} rx ${grx:-?}"
btx=0; brx=0; used=0
for p in 0 1; do
	t=$(last_count "$blog" $p tx); r=$(last_count "$blog" $p rx)
	btx=$((btx + ${t:-0})); brx=$((brx + ${r:-0}))
	[ "${t:-0}" -gt 0 ] && used=$((used + 1))
	echo "pair $p: backend tx ${t:-0} rx ${r:-0}"
done
[ "$btx" = "$brx" ] && [ "$btx" -ge "${gtx:-1}" ] && pass "loopback: backend counted $btx frames each way" \
	|| fail "loopback: backend tx $btx rx $brx (guest $gtx)"
[ $used -eq 2 ] && pass "loopback: both queue pairs carried traffic" || fail "loopback: only $used pair(s) used"
# the summary printed at exit: "net: tx P packets B bytes, rx P packets B bytes, tx errors ..."
sum=$(grep "^net: tx" "$blog" | tail -1)
stx=$(echo "$sum" | awk '{ print $3 }'); stxb=$(echo "$sum" | awk '{ print $5 }')
srx=$(echo "$sum" | awk '{ print $8 }'); srxb=$(echo "$sum" | awk '{ print $10 }')
[ -n "$stx" ] && [ "$stx" = "$btx" ] && [ "$srx" = "$brx" ] && [ "$stxb" = "$srxb" ] && \
	echo "$sum" | grep -q "tx errors 0, tx dropped 0, rx dropped 0" && \
	pass "loopback: exit summary agrees ($stx frames, $stxb bytes each way, no errors or drops)" \
	|| fail "loopback: exit summary '$sum'"

# ---- 2. tap in a network namespace ---------------------------------------------------------
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v python3 >/dev/null; then
	echo "SKIP: tap in a network namespace (needs root, /dev/net/tun and python3)"
	exit $FAILED
fi
NS=vireo-vunet-$$
ip netns add "$NS" || { fail "tap: netns"; exit 1; }
ip -n "$NS" link set lo up
blog=$LOGDIR/vunet-tap-backend.log
ip netns exec "$NS" ./build/vireo backend net --socket "$W/tap.sock" --tap vt0 --queues 2 -v >"$blog" 2>&1 &
BPID=$!
wait_sock "$W/tap.sock" && pass "tap: backend listens (multi-queue tap vt0, 2 pairs, in namespace $NS)" || { fail "tap: backend"; exit 1; }
ip -n "$NS" addr add 169.254.20.1/16 dev vt0 && ip -n "$NS" link set vt0 up
cat >"$W/recv.py" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(90)
c, _ = s.accept(); c.settimeout(30); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    n += len(b)
print(n, flush=True)
PY
ip netns exec "$NS" timeout 100 python3 "$W/recv.py" 169.254.20.1 5000 >"$W/recv.out" 2>&1 &
RPID=$!
sleep 0.3
log=$LOGDIR/vunet-tap-guest.log
cmd="ip link set eth0 up; ip addr add 169.254.20.2/16 dev eth0; ping -c 10 -i 0.05 169.254.20.1 | grep transmitted"
cmd+="; dd if=/dev/zero bs=4096 count=1024 2>/dev/null | nc 169.254.20.1 5000; echo nc=\$?"
QEMU_SHARED_MEM=1 qemu_boot 120 "$log" "$cmd" \
	-chardev socket,id=n0,path="$W/tap.sock" -netdev vhost-user,id=net0,chardev=n0,queues=2 \
	-device virtio-net-pci,netdev=net0,mq=on,vectors=0
grep -q "10 packets transmitted, 10 packets received" "$log" && pass "tap: 10 pings answered from the namespace" \
	|| fail "tap: ping (see $log)"
wait "$RPID"
[ "$(cat "$W/recv.out")" = 4194304 ] && pass "tap: 4 MiB over TCP arrived in the namespace" \
	|| fail "tap: TCP transfer ($(cat "$W/recv.out"))"
stop_backend tap
exit $FAILED
