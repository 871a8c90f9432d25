#!/usr/bin/env bash
# S4: whole-vCPU save/restore on the real KVM (tests/kvm/vcpu_state_test.c): a running guest
# is saved and resumed in fresh vCPUs whatever they went through first (no CPUID, vireo's
# CPUID, another CPUID); long mode with every supported CR4 bit round-trips; a state with
# an unsupported CR4 bit is refused.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -c /dev/kvm ]; then echo "SKIP: vcpu_state_test (no /dev/kvm)"; echo "no /dev/kvm"; exit 77; fi
BUILD=${BUILD:-build}
CC=${CC:-gcc}
make -s -j2 "$BUILD/libvireo.a" >/dev/null || { echo "FAIL: build libvireo"; exit 1; }
mkdir -p "$BUILD/tools"
$CC -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc tests/kvm/vcpu_state_test.c \
	"$BUILD/libvireo.a" -pthread -o "$BUILD/tools/vcpu_state_test" ||
	{ echo "FAIL: build vcpu_state_test"; exit 1; }
"$BUILD/tools/vcpu_state_test"
rc=$?
[ $rc = 77 ] && echo "no /dev/kvm"
exit $rc
