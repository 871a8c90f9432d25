#!/usr/bin/env bash
# vireo's ACPI tables checked by an independent parser: tests/tools/acpi-dump.c writes each
# table for 1, 8 and 300 CPUs; iasl (acpica-tools) must disassemble them without errors or
# warnings, the DSDT must recompile to the same AML, and key fields must be what Linux needs
# (PM1a blocks, SCI, \_S5, one MADT processor entry per CPU, x2APIC entries above 254).
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v iasl >/dev/null; then echo "SKIP: acpi tables (iasl not installed)"; exit 77; fi

BUILD=${BUILD:-build}
CC=${CC:-gcc}
FAILS=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; FAILS=$((FAILS + 1)); }

make -s -j2 "$BUILD/libvireo.a" >/dev/null || { echo "FAIL: build libvireo"; exit 1; }
mkdir -p "$BUILD/tools"
DUMP=$BUILD/tools/acpi-dump
$CC -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc tests/tools/acpi-dump.c \
	"$BUILD/libvireo.a" -pthread -o "$DUMP" || { echo "FAIL: build acpi-dump"; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# field FILE NAME: the value after "NAME :" in an iasl data-table disassembly.
field() { grep -m1 -E "\] +$2 : " "$1" | sed -E 's/.*: ([^ ]*).*/\1/'; }

# sum8 FILE LEN: 8-bit sum of the first LEN bytes.
sum8() { od -An -v -tu1 -N "$2" "$1" | tr -s ' ' '\n' | awk 'NF{s+=$1} END{print s % 256}'; }

for n in 1 8 300; do
	d=$TMP/$n; mkdir -p "$d"
	if ! "$DUMP" "$n" "$d" com1 pci virtio >"$d/dump.log" 2>&1; then
		fail "$n CPUs: acpi-dump ($(cat "$d/dump.log"))"; continue
	fi
	ok=1
	for t in xsdt rsdt facp facs apic dsdt; do
		if ! (cd "$d" && iasl -d "$t.dat") >"$d/$t.log" 2>&1 ||
		   grep -qiE "error|warning" "$d/$t.log" "$d/$t.dsl"; then
			fail "$n CPUs: iasl -d $t"; sed -n '1,20p' "$d/$t.log"; ok=0
		fi
	done
	[ $ok = 1 ] && pass "$n CPUs: iasl disassembles XSDT RSDT FACP FACS APIC DSDT cleanly"

	# RSDP: iasl cannot read it alone; check signature, revision and both checksums.
	if [ "$(head -c 8 "$d/rsdp.dat")" = "RSD PTR " ] && [ "$(sum8 "$d/rsdp.dat" 20)" = 0 ] &&
	   [ "$(sum8 "$d/rsdp.dat" 36)" = 0 ] && [ "$(od -An -tu1 -j15 -N1 "$d/rsdp.dat" | tr -d ' ')" = 2 ]; then
		pass "$n CPUs: RSDP v2 signature and checksums"
	else fail "$n CPUs: RSDP v2 signature and checksums"; fi

	want_x=$(( n > 255 ? n - 255 : 0 )); want_l=$(( n - want_x ))
	got_l=$(grep -c "Subtable Type : 00 \[Processor Local APIC\]" "$d/apic.dsl")
	got_x=$(grep -c "Subtable Type : 09 \[Processor Local x2APIC\]" "$d/apic.dsl")
	top=$(grep "Processor x2Apic ID" "$d/apic.dsl" | tail -1 | sed -E 's/.*: //')
	if [ "$got_l" = "$want_l" ] && [ "$got_x" = "$want_x" ] &&
	   { [ "$want_x" = 0 ] || [ $((16#$top)) = $((n - 1)) ]; }; then
		pass "$n CPUs: MADT has $got_l local APIC + $got_x x2APIC entries"
	else fail "$n CPUs: MADT local APIC $got_l (want $want_l), x2APIC $got_x (want $want_x), last x2APIC ID ${top:-none}"; fi
	if grep -q "I/O APIC\]" "$d/apic.dsl" && grep -q "Address : FEC00000" "$d/apic.dsl" &&
	   [ "$(grep -c 'Interrupt Source Override\]' "$d/apic.dsl")" = 2 ]; then
		pass "$n CPUs: MADT IOAPIC at FEC00000 and 2 interrupt source overrides"
	else fail "$n CPUs: MADT IOAPIC / overrides"; fi

	f=$d/facp.dsl
	if [ "$(field "$f" "PM1A Control Block Address")" = 00000604 ] &&
	   [ "$(field "$f" "PM1A Event Block Address")" = 00000600 ] &&
	   [ "$(field "$f" "SCI Interrupt")" = 0009 ] &&
	   grep -qE "Hardware Reduced \(V5\) : 0" "$f" &&
	   grep -qE "Reset Register Supported \(V2\) : 1" "$f"; then
		pass "$n CPUs: FADT PM1a 0x600/0x604, SCI 9, not hardware-reduced, reset register"
	else fail "$n CPUs: FADT fields"; fi

	if grep -qE "Name \(_S5, Package" "$d/dsdt.dsl" && grep -q 'EisaId ("PNP0501")' "$d/dsdt.dsl" &&
	   grep -q 'EisaId ("PNP0A03")' "$d/dsdt.dsl"; then
		pass "$n CPUs: DSDT has \\_S5, COM1 and PCI0"
	else fail "$n CPUs: DSDT content"; fi
	if [ "$(grep -c 'Name (_HID, "LNRO0005")' "$d/dsdt.dsl")" = 8 ] &&
	   grep -A3 "Memory32Fixed (ReadWrite" "$d/dsdt.dsl" | grep -q "0xD0007000" &&
	   grep -q "IRQNoFlags ()" "$d/dsdt.dsl" && grep -q "{15}" "$d/dsdt.dsl"; then
		pass "$n CPUs: DSDT has the 8 virtio-mmio slots (LNRO0005, 0xD0000000.., IRQ 5..15)"
	else fail "$n CPUs: DSDT virtio-mmio devices"; fi
	mkdir -p "$d/re" && cp "$d/dsdt.dsl" "$d/re/"
	if (cd "$d/re" && iasl dsdt.dsl) >"$d/re.log" 2>&1 && cmp -s -i 36 "$d/re/dsdt.aml" "$d/dsdt.dat"; then
		pass "$n CPUs: DSDT recompiled by iasl gives the same AML"
	else fail "$n CPUs: DSDT recompile"; tail -5 "$d/re.log"; fi
done
[ $FAILS = 0 ]
