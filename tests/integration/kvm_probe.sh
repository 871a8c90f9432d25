#!/usr/bin/env bash
# Does this KVM deliver INT3 in 64-bit guest code by itself? tests/kvm/kvm_probe.c runs one:
# a KVM that cannot (kvm_pvm here: "KVM internal error 1", emulation) stops a Debian kernel
# at int3_selftest() during boot unless the VMM delivers the #BP (vireo does). Boot tests can
# run build/tools/kvm_probe (exit 0 yes, 3 no) to know what kind of KVM they face.
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
3) echo "SKIP: KVM delivers INT3 in 64-bit guest code itself (${out#kvm_probe: })"; echo "${out#kvm_probe: }"; exit 77 ;;
*) echo "FAIL: kvm_probe: $out (status $rc)"; exit 1 ;;
esac
