#!/usr/bin/env bash
# S4: vireo's set_sregs_test on the real KVM (tests/kvm/set_sregs_test.c): every CR4 bit KVM
# supports can be set with KVM_SET_SREGS before and after KVM_SET_CPUID2 and reads back;
# unsupported and reserved CR4 bits, bad CR0 and EFER are refused by sregs_validate() (and
# by KVM where it checks them); state set before KVM_SET_CPUID2 survives it.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -c /dev/kvm ]; then echo "SKIP: set_sregs_test (no /dev/kvm)"; echo "no /dev/kvm"; exit 77; fi
BUILD=${BUILD:-build}
CC=${CC:-gcc}
make -s -j2 "$BUILD/libvireo.a" >/dev/null || { echo "FAIL: build libvireo"; exit 1; }
mkdir -p "$BUILD/tools"
$CC -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc tests/kvm/set_sregs_test.c \
	"$BUILD/libvireo.a" -pthread -o "$BUILD/tools/set_sregs_test" ||
	{ echo "FAIL: build set_sregs_test"; exit 1; }
"$BUILD/tools/set_sregs_test"
rc=$?
[ $rc = 77 ] && echo "no /dev/kvm"
exit $rc
