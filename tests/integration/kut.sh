#!/usr/bin/env bash
# kvm-unit-tests style test kernels (S2) under `vireo run`, both compiler builds of each:
#   hello     multiboot command line, module (--initrd), memory sizes and map (also with RAM
#             above 4 GiB), fw_cfg signature, CPU count and RAM size as the kernel sees them;
#             also as an ELF32 file
#   exitcode  isa-debug-exit: writing v (1, 2 or 4 bytes) makes vireo exit with (v << 1) | 1
#   smp       INIT/SIPI bring-up of every AP (xAPIC; x2APIC too), count vs fw_cfg, 1/2/8 CPUs,
#             and 300 CPUs in x2APIC mode (APIC IDs above 255, S5)
#   cpuid     hypervisor bit, KVM leaves, KVM_FEATURE_MSI_EXT_DEST_ID, every CPUID-supported
#             CR4 bit settable, reserved ones #GP
#   apic      in-kernel IOAPIC, LAPIC timer interrupt (xAPIC and x2APIC), ACPI RSDP/XSDT/MADT
#             found by the BIOS-area scan, MADT CPUs = fw_cfg CPUs
# and kernels with a corrupted multiboot header or a segment outside RAM refused with status 2
# and one error line.
# A test kernel's "success" is exit(0), i.e. vireo status 1.
set -uo pipefail
cd "$(dirname "$0")/../.."
VIREO=${VIREO:-build/vireo}
KUT=${KUT:-build/kut}
FAILED=0

if [ ! -c /dev/kvm ]; then
  echo "no /dev/kvm"
  exit 77
fi
[ -x "$VIREO" ] || make -s -j2 vireo >/dev/null || { echo "FAIL: build vireo"; exit 1; }
make -s -C guest/kut OUT="$PWD/$KUT" >/dev/null || { echo "FAIL: build guest/kut"; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

. tests/lib/check.sh

# run NAME KERNEL ARGS...: boots KERNEL, console in $TMP/NAME.out, stderr in $TMP/NAME.err,
# status in RC.
run() {
  local name=$1 kernel=$2; shift 2
  timeout 60 "$VIREO" run --kernel "$kernel" --console "$TMP/$name.out" "$@" \
    >"$TMP/$name.stdout" 2>"$TMP/$name.err"
  RC=$?
}

# expect NAME WANT-STATUS PATTERN...: status and console lines (fixed strings) of the last run.
expect() {
  local name=$1 want=$2 p ok=1; shift 2
  [ "$RC" -eq "$want" ] || ok=0
  for p in "$@"; do grep -qF -- "$p" "$TMP/$name.out" 2>/dev/null || ok=0; done
  if [ $ok -eq 1 ]; then pass "$name"; return 0; fi
  fail "$name (status $RC, want $want)"
  { grep -E '^(FAIL|kut)' "$TMP/$name.out"; head -n 10 "$TMP/$name.err"; } 2>/dev/null | \
    sed 's/^/    /'
  return 1
}

printf 'kut-module-marker line one\nsecond line\n' >"$TMP/module.txt"
modsize=$(stat -c %s "$TMP/module.txt")

for cc in gcc clang; do
  k=$KUT/$cc
  run hello-$cc "$k/hello.elf" --cpus 2 --memory 64M --cmdline "kut-args a=1" \
    --initrd "$TMP/module.txt"
  expect hello-$cc 1 "kut hello: hello from vireo" "cmdline 'kut-args a=1'" \
    "module $modsize bytes" "'kut-module-marker line one'" \
    "mem_lower 639 KiB mem_upper 64512 KiB" "fw_cfg 'QEMU' cpus 2 ram 64 MiB"

  run hello-4g-$cc "$k/hello.elf" --memory 4G --cmdline "big"
  expect hello-4g-$cc 1 "mem_upper 3144704 KiB" "mmap 0x0+0x9fc00 type 1" \
    "mmap 0x9fc00+0x60400 type 2" "mmap 0x100000+0xbff00000 type 1" \
    "mmap 0x100000000+0x40000000 type 1" "cpus 1 ram 4096 MiB"

  run hello32-$cc "$k/hello32.elf" --memory 32M --cmdline "elf32"
  expect hello32-$cc 1 "hello from vireo" "cmdline 'elf32'" "no module" "cpus 1 ram 32 MiB"

  for spec in "0 1" "42 4" "127 2" "0x55 1" "0x180 4"; do
    set -- $spec
    code=$(( $1 )) width=$2
    want=$(( ((code << 1) | 1) & 255 ))
    run exitcode-$cc-$1-w$width "$k/exitcode.elf" --cmdline "code=$1 width=$width"
    expect exitcode-$cc-$1-w$width $want "writing $code to port 0xf4 ($width bytes)"
  done

  for n in 1 2 8; do
    run smp-$cc-$n "$k/smp.elf" --cpus $n --memory 64M --cmdline "smp"
    expect smp-$cc-$n 1 "kut smp: $n of $n CPUs online (xAPIC)"
  done
  run smp-x2apic-$cc-8 "$k/smp.elf" --cpus 8 --memory 64M --cmdline "smp x2apic"
  expect smp-x2apic-$cc-8 1 "kut smp: 8 of 8 CPUs online (x2APIC)"

  run cpuid-$cc "$k/cpuid.elf" --memory 32M
  expect cpuid-$cc 1 "kut cpuid: 0 failures"

  run apic-$cc "$k/apic.elf" --cpus 4 --memory 32M
  expect apic-$cc 1 "kut apic: 0 failures"
  run apic-x2apic-$cc "$k/apic.elf" --cpus 4 --memory 32M --cmdline x2apic
  expect apic-x2apic-$cc 1 "kut apic: 0 failures" "LAPIC timer interrupt delivered (x2APIC)"
done

# More than 255 vCPUs (S5): APIC IDs above 255 only in x2APIC mode; one build is enough.
run smp-x2apic-300 "$KUT/clang/smp.elf" --cpus 300 --memory 64M --cmdline "smp x2apic"
if [ "$RC" -eq 2 ] && grep -qi "cpus" "$TMP/smp-x2apic-300.err"; then
  echo "SKIP: smp-x2apic-300 (KVM allows fewer vCPUs: $(head -n 1 "$TMP/smp-x2apic-300.err"))"
else
  expect smp-x2apic-300 1 "kut smp: 300 of 300 CPUs online (x2APIC)"
fi

# Broken kernels are refused before the guest runs: status 2 and one error line naming it.
refused() {
  local name=$1 what=$2
  run "$name" "$TMP/$name.elf"
  if [ "$RC" -eq 2 ] && [ "$(wc -l <"$TMP/$name.err")" -eq 1 ] && grep -q "$what" "$TMP/$name.err"; then
    pass "$name refused (status 2: $(cat "$TMP/$name.err"))"
  else
    fail "$name: status $RC, want 2 and one line with '$what'"
    sed 's/^/    /' "$TMP/$name.err"
  fi
}
# a corrupted header checksum
cp "$KUT/gcc/hello.elf" "$TMP/bad-checksum.elf"
off=$(LC_ALL=C grep -obUaP '\x02\xb0\xad\x1b' "$TMP/bad-checksum.elf" | head -n 1 | cut -d: -f1)
printf '\x01\x02\x03\x04' | dd of="$TMP/bad-checksum.elf" bs=1 seek=$((off + 8)) conv=notrunc status=none
refused bad-checksum "checksum"
# the loadable segment moved to 3.75 GiB, outside guest RAM (p_paddr of the first program header)
cp "$KUT/gcc/hello.elf" "$TMP/bad-segment.elf"
phoff=$(od -An -t u8 -j 32 -N 8 "$TMP/bad-segment.elf" | tr -d ' ')
printf '\x00\x00\x00\xf0\x00\x00\x00\x00' | \
  dd of="$TMP/bad-segment.elf" bs=1 seek=$((phoff + 24)) conv=notrunc status=none
refused bad-segment "not inside guest RAM"

exit $FAILED
