#!/usr/bin/env bash
# ACPI as a guest OS uses it, end to end under `vireo run` (guest/kut/acpi.c, gcc and clang
# builds): the kernel finds RSDP/XSDT/FADT/FACS/DSDT, decodes \_S5 from the AML, checks the
# PM1a registers, then writes SLP_TYP|SLP_EN: vireo must exit 0 (poweroff), also with idle
# APs (8 vCPUs); with "reset" it writes the FADT reset register: vireo must exit 4.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -c /dev/kvm ]; then echo "SKIP: acpi guest (no /dev/kvm)"; echo "no /dev/kvm"; exit 77; fi
VIREO=${VIREO:-build/vireo}
KUT=${KUT:-build/kut}
make -s -j2 vireo >/dev/null || { echo "FAIL: build vireo"; exit 1; }
make -s -C guest/kut OUT="$PWD/$KUT" >/dev/null || { echo "FAIL: build guest/kut"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0

# case NAME WANT-STATUS LAST-LINE ARGS...
case_() {
	local name=$1 want=$2 last=$3 rc t0 t1; shift 3
	t0=$(date +%s%N)
	timeout 60 "$VIREO" run --console "$TMP/$name.out" "$@" </dev/null >/dev/null 2>"$TMP/$name.err"
	rc=$?
	t1=$(date +%s%N)
	if [ $rc = "$want" ] && ! grep -q '^FAIL' "$TMP/$name.out" &&
	   [ "$(grep -c '^PASS' "$TMP/$name.out")" -ge 12 ] && tail -n 1 "$TMP/$name.out" | grep -qF "$last"; then
		echo "PASS: $name: status $rc after $(((t1 - t0) / 1000000)) ms, $(grep -c '^PASS' "$TMP/$name.out") guest checks"
	else
		echo "FAIL: $name: status $rc (want $want)"
		sed 's/^/    /' "$TMP/$name.out" "$TMP/$name.err" | grep -vE '^    PASS' | head -n 15
		FAILED=1
	fi
}

for cc in gcc clang; do
	k=$KUT/$cc/acpi.elf
	case_ "S5 poweroff ($cc)" 0 "entering S5" --kernel "$k"
	case_ "reset register ($cc)" 4 "writing the reset value" --kernel "$k" --cmdline reset
done
case_ "S5 poweroff with 8 vCPUs (gcc)" 0 "entering S5" --kernel "$KUT/gcc/acpi.elf" --cpus 8
[ $FAILED = 0 ]
