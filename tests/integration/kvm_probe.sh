#!/usr/bin/env bash
# Can this KVM run a stock 64-bit guest kernel at all? tests/kvm/kvm_probe.c runs INT3 in
# 64-bit guest code: a KVM that cannot deliver it (kvm_pvm here: "KVM internal error 1",
# emulation) stops every Debian kernel at int3_selftest() during boot. Boot tests can build
# and run build/tools/kvm_probe (exit 0 ok, 3 cannot) to skip with this reason.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -c /dev/kvm ]; then echo "SKIP: kvm_probe (no /dev/kvm)"; echo "no /dev/kvm"; exit 77; fi
BUILD=${BUILD:-build}
mkdir -p "$BUILD/tools"
${CC:-gcc} -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE tests/kvm/kvm_probe.c \
	-o "$BUILD/tools/kvm_probe" || { echo "FAIL: build kvm_probe"; exit 1; }
out=$(timeout 90 "$BUILD/tools/kvm_probe"); rc=$?
case $rc in
0) echo "PASS: INT3 delivered in 64-bit guest code (${out#kvm_probe: })" ;;
3) echo "SKIP: stock 64-bit guest kernels (${out#kvm_probe: })"; echo "${out#kvm_probe: }"; exit 77 ;;
*) echo "FAIL: kvm_probe: $out (status $rc)"; exit 1 ;;
esac
