#!/usr/bin/env bash
# In-process virtio devices on virtio-mmio under `vireo run` (src/virtio/mmio.c,
# src/core/vm_virtio.c), driven by the kut test kernel guest/kut/virtio.c, gcc and clang builds:
#   rng + blk   found by MagicValue, IRQs from the command line, VERSION_1 negotiated, hostile
#               queue set-ups refused, random bytes, sectors of a host file holding a known
#               pattern, a 2-sector write checked on the host afterwards (the rest of the file
#               unchanged), read past the end refused, flush, GET_ID; every completion with its
#               interrupt (irqfd -> IOAPIC) and InterruptStatus acknowledged
#   net         loopback: config MAC, a frame sent on tx0 comes back on rx0
#   smp         2 vCPUs: an AP drives rng (its IOAPIC pin aimed at the AP) while the boot CPU
#               drives blk, at once; each CPU gets its device's interrupts
#   vsock       guest CID; a guest connection to a host Unix-socket listener (UDS_5000):
#               a message there, the answer back, SHUTDOWN -> RST; the host checks the bytes
#   readonly    the write fails in the guest and the file stays byte-identical
#   vhost-user  the blk and net checks again with the device in `vireo backend` (--disk/--net
#               vhost_user=on,socket=PATH): same transport, remote device-ops
# Without KVM only the option checks run (they happen before /dev/kvm is opened).
set -uo pipefail
cd "$(dirname "$0")/../.."
VIREO=${VIREO:-build/vireo}
KUT=${KUT:-build/kut}
FAILED=0
. tests/lib/check.sh

[ -x "$VIREO" ] || make -s -j2 vireo >/dev/null || { echo "FAIL: build vireo"; exit 1; }
TMP=$(mktemp -d)
BPID=
trap '[ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"' EXIT

# Bad device options: status 2 and one line naming the problem, before KVM is touched.
touch "$TMP/k"
bad() {
  local want=$1; shift
  "$VIREO" run --kernel "$TMP/k" "$@" >/dev/null 2>"$TMP/bad.err"
  local rc=$?
  if [ $rc -eq 2 ] && [ "$(wc -l <"$TMP/bad.err")" -eq 1 ] && grep -q -- "$want" "$TMP/bad.err"; then
    pass "refused: $* ($(cat "$TMP/bad.err"))"
  else
    fail "$*: status $rc, want 2 and one line with '$want'"; sed 's/^/    /' "$TMP/bad.err"
  fi
}
bad "path=FILE is required" --disk readonly=on
bad "No such file" --disk path=$TMP/missing.img
bad "not on or off" --disk path=$TMP/k,readonly=maybe
bad "unknown key 'size'" --disk path=$TMP/k,size=1
bad "not a number from 1 to 64" --disk path=$TMP/k,num_queues=65
bad "not a number from 1 to 32768" --disk path=$TMP/k,queue_size=0
bad "a power of two from 4 to 32768" --disk path=$TMP/k,queue_size=3
bad "a power of two from 4 to 32768" --disk path=$TMP/k,queue_size=2
bad "not a guest CID" --vsock cid=2,socket=$TMP/v.sock
bad "cid=N and socket=PATH" --vsock cid=5
bad "longer than 95 bytes" --vsock cid=5,socket=$TMP/$(printf 'v%.0s' $(seq 100))
bad "longer than 15 bytes" --net tap=abcdefghijklmnop
bad "tap=NAME or loopback" --net mac=52:54:00:00:00:01
bad "not a MAC" --net loopback,mac=xx
bad "at most 8" --rng --rng --rng --rng --rng --rng --rng --rng --rng
bad "vhost_user=on,socket=PATH and nothing else" --disk vhost_user=on
bad "vhost_user=on,socket=PATH and nothing else" --disk vhost_user=on,socket=$TMP/s,path=$TMP/k
bad "vhost_user=on,socket=PATH and nothing else" --net socket=$TMP/s

if [ ! -c /dev/kvm ]; then
  echo "SKIP: guest checks (no /dev/kvm)"
  [ $FAILED -eq 0 ] && { echo "no /dev/kvm"; exit 77; }
  exit 1
fi
make -s -C guest/kut OUT="$PWD/$KUT" >/dev/null || { echo "FAIL: build guest/kut"; exit 1; }

SECTORS=2048
python3 - "$TMP/orig.img" $SECTORS <<'EOF'
import sys
n = int(sys.argv[2]) * 512
open(sys.argv[1], 'wb').write(bytes(((o * 7 + (o >> 9)) & 0xff) for o in range(n)))
EOF

# run NAME KERNEL ARGS...: status in RC, console in $TMP/NAME.out
run() {
  local name=$1 kernel=$2; shift 2
  timeout 60 "$VIREO" run --kernel "$kernel" --memory 64M --console "$TMP/$name.out" "$@" \
    >/dev/null 2>"$TMP/$name.err"
  RC=$?
}
guest_ok() {
  local name=$1
  if [ "$RC" -eq 1 ] && grep -q "kut virtio: 0 failures" "$TMP/$name.out"; then
    pass "$name: guest checks ($(grep -c '^PASS' "$TMP/$name.out") passed)"
    return 0
  fi
  fail "$name: status $RC"
  { grep -E '^FAIL|kut virtio' "$TMP/$name.out"; grep -v warning "$TMP/$name.err" | head -n 5; } \
    2>/dev/null | sed 's/^/    /'
  return 1
}

for cc in gcc clang; do
  cp "$TMP/orig.img" "$TMP/disk.img"
  run rw-$cc "$KUT/$cc/virtio.elf" --cpus 2 --rng --disk path="$TMP/disk.img",serial=kutdisk \
    --net loopback,mac=52:54:00:12:34:56 \
    --cmdline "devices=3 blk_sectors=$SECTORS blk_write=16 net_mac=0x525400123456 smp"
  guest_ok rw-$cc
  if python3 - "$TMP/orig.img" "$TMP/disk.img" <<'EOF'
import sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
w = bytes(((i * 13 + 5) & 0xff) for i in range(1024))
s = 16 * 512
sys.exit(0 if len(a) == len(b) and b[s:s + 1024] == w and a[:s] == b[:s] and
         a[s + 1024:] == b[s + 1024:] else 1)
EOF
  then pass "rw-$cc: the guest's write is on the host file at sector 16, nothing else changed"
  else fail "rw-$cc: host file content after the guest's write"; fi

  # vsock: the guest connects to host port 5000 (a listener at UDS_5000 answering in upper
  # case), sends a line, reads the answer, shuts down; the host side checks what it got.
  rm -f "$TMP/vs.sock" "$TMP/vs.sock_5000" "$TMP/vs.got"
  timeout 60 python3 - "$TMP/vs.sock_5000" "$TMP/vs.got" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); s.settimeout(50)
c, _ = s.accept(); c.settimeout(50); got = b''
while True:
    x = c.recv(4096)
    if not x: break
    got += x; c.sendall(x.upper())
open(sys.argv[2], 'wb').write(got)
EOF
  srv=$!
  for _ in $(seq 50); do [ -S "$TMP/vs.sock_5000" ] && break; sleep 0.1; done
  run vsock-$cc "$KUT/$cc/virtio.elf" --vsock cid=7,socket="$TMP/vs.sock" \
    --cmdline "devices=1 vsock_cid=7 vsock_port=5000"
  guest_ok vsock-$cc
  wait $srv
  if [ "$(cat "$TMP/vs.got" 2>/dev/null)" = "hello from kut over vsock" ]; then
    pass "vsock-$cc: the host peer got the guest's message"
  else fail "vsock-$cc: host peer got '$(cat "$TMP/vs.got" 2>/dev/null)'"; fi

  cp "$TMP/orig.img" "$TMP/ro.img"
  run ro-$cc "$KUT/$cc/virtio.elf" \
    --disk path="$TMP/ro.img",readonly=on,serial=kutdisk,num_queues=2,queue_size=64 \
    --cmdline "devices=1 blk_sectors=$SECTORS blk_write=16 blk_ro"
  guest_ok ro-$cc
  if cmp -s "$TMP/orig.img" "$TMP/ro.img"; then pass "ro-$cc: read-only file unchanged"
  else fail "ro-$cc: read-only file changed"; fi
done

# The same guest checks against devices in another process: `vireo backend blk|net` over
# vhost-user behind vireo's virtio-mmio (kicks as ioeventfds on the backend's kick fds).
backend() { # backend NAME ARGS...: starts vireo backend, waits for its socket; pid in BPID
  local name=$1; shift
  rm -f "$TMP/$name.sock"
  "$VIREO" backend "$@" --socket "$TMP/$name.sock" >"$TMP/$name.backend.log" 2>&1 &
  BPID=$!
  for _ in $(seq 50); do [ -S "$TMP/$name.sock" ] && return 0; sleep 0.1; done
  fail "$name: backend socket"; return 1
}
cp "$TMP/orig.img" "$TMP/vu.img"
if backend vu-blk blk --path "$TMP/vu.img" --serial kutdisk; then
  run vu-blk "$KUT/gcc/virtio.elf" --disk vhost_user=on,socket="$TMP/vu-blk.sock" \
    --cmdline "devices=1 blk_sectors=$SECTORS blk_write=16"
  guest_ok vu-blk
  kill "$BPID"; wait "$BPID" 2>/dev/null
  if python3 - "$TMP/orig.img" "$TMP/vu.img" <<'EOF'
import sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
s = 16 * 512
sys.exit(0 if b[s:s + 1024] == bytes(((i * 13 + 5) & 0xff) for i in range(1024)) and
         a[:s] == b[:s] and a[s + 1024:] == b[s + 1024:] else 1)
EOF
  then pass "vu-blk: the guest's write reached the backend's file"
  else fail "vu-blk: backend file content"; fi
fi
if backend vu-net net --loopback --mac 52:54:00:12:34:56; then
  run vu-net "$KUT/clang/virtio.elf" --net vhost_user=on,socket="$TMP/vu-net.sock" \
    --cmdline "devices=1 net_mac=0x525400123456"
  guest_ok vu-net
  kill "$BPID"; wait "$BPID" 2>/dev/null
fi

exit $FAILED
