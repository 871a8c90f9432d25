#!/usr/bin/env bash
# S5: the CPUID a guest really sees (tests/kvm/cpuid_guest_test.c): per-vCPU APIC IDs in
# leaves 1 and 0xB, the KVM leaves with KVM_FEATURE_MSI_EXT_DEST_ID, executed by CPUID
# inside a guest on vCPUs 0 and 3 of a 4-vCPU VM.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -c /dev/kvm ]; then echo "SKIP: cpuid_guest_test (no /dev/kvm)"; echo "no /dev/kvm"; exit 77; fi
BUILD=${BUILD:-build}
CC=${CC:-gcc}
make -s -j2 "$BUILD/libvireo.a" >/dev/null || { echo "FAIL: build libvireo"; exit 1; }
mkdir -p "$BUILD/tools"
$CC -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc tests/kvm/cpuid_guest_test.c \
	"$BUILD/libvireo.a" -pthread -o "$BUILD/tools/cpuid_guest_test" ||
	{ echo "FAIL: build cpuid_guest_test"; exit 1; }
timeout 150 "$BUILD/tools/cpuid_guest_test"
rc=$?
[ $rc = 77 ] && echo "no /dev/kvm"
exit $rc
