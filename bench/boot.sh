#!/usr/bin/env bash
# make bench-boot (issue 5): vireo against QEMU microvm (Debian's qemu-system-x86,
# `-M microvm -accel kvm -cpu host,-arch-capabilities`) on the same kernel and initramfs:
# the default guest (build/guest/vmlinuz + initramfs.cpio.gz from scripts/make-guest.sh, whose
# /init prints "vireo-guest: ready", runs vireo.cmd="true" and powers off), 1 vCPU, 256 MiB,
# the same kernel command line. BENCH_BOOT_RUNS runs of each (10), interleaved in one run (the
# order alternates each round, so load from elsewhere hits both alike). Each run is measured
# from the outside by build/bench/boot_once (bench/boot_once.c), the same way for both VMMs:
#   - time to the banner (console first holds it) and to exit (process gone), from fork();
#   - vireo's set-up time, process start to the first KVM_RUN (`vireo run --timing`; also
#     from fork(), exec and dynamic linking included);
#   - VMM memory overhead: the process is stopped when the guest prints its last line before
#     powering off, /proc/PID/smaps is read, and overhead = Rss of all mappings minus Rss of
#     the guest-RAM mapping (the one exactly 256 MiB large: vireo's memfd, QEMU's RAM block),
#     i.e. what the VMM keeps resident besides the guest pages it touched (code, libraries,
#     heap, stacks, kernel/initrd copies). "private" leaves out pages shared with other
#     processes (libraries). The stop time is taken out of the exit time.
# Medians in a table; the ratio is vireo's median time to the banner over QEMU's. Last line:
#   boot: vireo X ms, qemu-microvm Y ms, ratio R
# Goals (issue 5): R <= 0.6, set-up <= 5 ms, overhead <= 3 MiB.
#
# Where the default guest cannot boot (/dev/kvm is PVM, /sys/module/kvm_pvm, where a Linux
# boot takes minutes; or its banner does not come within BENCH_BOOT_TIMEOUT) this says so and
# compares the two on vireo's kvm-unit-tests style kernel build/kut/gcc/hello32.elf (multiboot;
# QEMU gets an isa-debug-exit device so that the kernel can end the VM, vireo has one) instead,
# labelled as such. Where QEMU cannot run either, vireo's own figures are printed, labelled,
# with no ratio. No /dev/kvm: nothing to measure, exit 0.
# Settings: BENCH_BOOT_RUNS (10), BENCH_BOOT_TIMEOUT (s per run, 60), BENCH_BOOT_PVM=1 (try the
# default guest on PVM anyway), BUILD (build), QEMU_BIN (qemu-system-x86_64).
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
RUNS=${BENCH_BOOT_RUNS:-10}
TO=${BENCH_BOOT_TIMEOUT:-60}
QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}
MEM_MIB=256
say() { echo "boot bench: $*"; }

[ -c /dev/kvm ] || { say "needs KVM (/dev/kvm missing here): nothing measured"; exit 0; }
make -s -j2 BUILD="$BUILD" "$BUILD/vireo" "$BUILD/bench/boot_once" >/dev/null || { say "build failed"; exit 1; }
ONCE=$BUILD/bench/boot_once
W=$(mktemp -d /tmp/vireo-bench-boot.XXXXXX)
trap 'rm -rf "$W"' EXIT
HAVE_QEMU=1
command -v "$QEMU_BIN" >/dev/null || HAVE_QEMU=0

# Runners: run_vireo / run_qemu LOG print boot_once's key=value line for one run.
setup_linux() {
	bash scripts/make-guest.sh >"$W/make-guest.log" 2>&1 || { tail -3 "$W/make-guest.log"; return 1; }
	. tests/lib/qemu.sh
	CMDLINE=$(guest_cmdline true)
	WHAT="default guest (build/guest/vmlinuz + initramfs.cpio.gz, vireo.cmd=\"true\")"
	BANNER="vireo-guest: ready" MARKER="vireo-guest: exit" WANT=0
	VIREO_CMD=("$BUILD/vireo" run --timing --kernel build/guest/vmlinuz
		--initrd build/guest/initramfs.cpio.gz --cpus 1 --memory ${MEM_MIB}M
		--cmdline "$CMDLINE" --console stdio)
	QEMU_CMD=("$QEMU_BIN" -M microvm -accel kvm -cpu host,-arch-capabilities -m ${MEM_MIB}M
		-smp 1 -nodefaults -no-reboot -display none -kernel build/guest/vmlinuz
		-initrd build/guest/initramfs.cpio.gz -append "$CMDLINE" -serial stdio)
}
setup_kut() {
	make -s -C guest/kut gcc >"$W/kut.log" 2>&1 || { tail -3 "$W/kut.log"; return 1; }
	local k=build/kut/gcc/hello32.elf
	WHAT="kut test kernel $k (multiboot, prints 12 lines, exits via isa-debug-exit)"
	BANNER="kut hello: hello from vireo" MARKER="kut hello: fw_cfg" WANT=1
	VIREO_CMD=("$BUILD/vireo" run --timing --kernel $k --cpus 1 --memory ${MEM_MIB}M
		--console stdio)
	QEMU_CMD=("$QEMU_BIN" -M microvm -accel kvm -cpu host,-arch-capabilities -m ${MEM_MIB}M
		-smp 1 -nodefaults -no-reboot -display none -kernel $k -serial stdio
		-device isa-debug-exit,iobase=0xf4,iosize=4)
}
once() { # once vireo|qemu LOG
	local -n cmd=$([ "$1" = vireo ] && echo VIREO_CMD || echo QEMU_CMD)
	"$ONCE" --banner "$BANNER" --marker "$MARKER" --ram-mib $MEM_MIB --timeout "$TO" \
		--log "$2" -- "${cmd[@]}"
}
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
ok_run() { # ok_run LINE: the run reached the banner and exited with the expected status
	[ "$(field status "$1")" = "$WANT" ] && [ "$(field banner_ms "$1")" != -1.000 ]
}

MODE=linux
if [ -d /sys/module/kvm_pvm ] && [ "${BENCH_BOOT_PVM:-0}" != 1 ]; then
	say "/dev/kvm here is PVM (kvm_pvm: a nested, paravirtual KVM that emulates guest kernel"
	say "  code): the default Linux guest does not boot in usable time under it (vireo: 12-19"
	say "  minutes to the initramfs; QEMU -accel kvm stalls too; docs/ARCHITECTURE.md), so it"
	say "  is not measured here (BENCH_BOOT_PVM=1 tries anyway)."
	MODE=kut KUT_WHY="PVM host"
elif ! setup_linux; then
	say "cannot build the default guest (scripts/make-guest.sh)"
	MODE=kut KUT_WHY="no default guest image"
else
	r=$(once vireo "$W/probe.log")
	if ! ok_run "$r"; then
		say "the default guest did not boot under vireo within ${TO} s here ($r)"
		tail -n 3 "$W/probe.log" | sed 's/^/  console: /'
		MODE=kut KUT_WHY="the default guest did not boot here"
	fi
fi
if [ $MODE = kut ]; then
	setup_kut || { say "cannot build guest/kut: nothing measured"; exit 0; }
	say "measuring instead: $WHAT"
	r=$(once vireo "$W/probe.log")
	ok_run "$r" || { say "vireo cannot run it here either ($r): nothing measured"; exit 0; }
fi

QEMU_WHY=""
if [ $HAVE_QEMU = 0 ]; then
	QEMU_WHY="$QEMU_BIN is not installed"
else
	r=$(once qemu "$W/probe.log")
	if ! ok_run "$r"; then
		QEMU_WHY="QEMU microvm -accel kvm did not run it here ($r; $(grep -v '^$' "$W/probe.log" | tail -n 1))"
	fi
fi
[ -n "$QEMU_WHY" ] && say "no QEMU figures: $QEMU_WHY; vireo's own figures only, no ratio"

# The runs, interleaved; the order alternates each round.
: >"$W/results"
for ((i = 1; i <= RUNS; i++)); do
	order="vireo qemu"
	[ $((i % 2)) = 0 ] && order="qemu vireo"
	for v in $order; do
		[ $v = qemu ] && [ -n "$QEMU_WHY" ] && continue
		r=$(once $v "$W/run-$v-$i.log")
		if ok_run "$r"; then
			echo "vmm=$v $r" >>"$W/results"
		else
			say "run $i of $v failed, left out: $r"
			tail -n 2 "$W/run-$v-$i.log" | sed 's/^/  console: /'
		fi
	done
done

# median VMM FIELD [SCALE]: median of FIELD over the good runs of VMM (values < 0 left out),
# divided by SCALE; "n/a" when there is none.
median() {
	grep "^vmm=$1 " "$W/results" | sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" |
		awk '$1 >= 0' | sort -g | awk -v s="${3:-1}" '{ v[n++] = $1 / s }
			END { if (!n) { print "n/a"; exit }
			      m = n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
			      printf "%.1f\n", m }'
}
runs() { grep -c "^vmm=$1 " "$W/results"; }
row() { # row LABEL FIELD [SCALE]
	local q="-"
	[ -z "$QEMU_WHY" ] && q=$(median qemu "$2" "${3:-1}")
	printf '  %-44s %12s %14s\n' "$1" "$(median vireo "$2" "${3:-1}")" "$q"
}

echo
say "$WHAT"
say "1 vCPU, ${MEM_MIB} MiB, medians of $(runs vireo) vireo and $([ -z "$QEMU_WHY" ] && runs qemu || echo 0) QEMU runs"
printf '  %-44s %12s %14s\n' "" vireo qemu-microvm
row "time to the banner (ms)" banner_ms
row "time to exit (ms)" exit_ms
printf '  %-44s %12s %14s\n' "set-up: start to first KVM_RUN (ms)" "$(median vireo setup_ms)" "-"
printf '  %-44s %12s %14s\n' "  the same from fork(), exec included (ms)" "$(median vireo launch_setup_ms)" "-"
row "RSS before exit (MiB)" rss_kib 1024
row "guest RAM touched (MiB)" guest_kib 1024
row "VMM overhead: RSS - guest RAM (MiB)" overhead_kib 1024
row "  private pages only (MiB)" priv_overhead_kib 1024

V=$(median vireo banner_ms)
SETUP=$(median vireo setup_ms)
OVER=$(median vireo overhead_kib 1024)
if [ -n "$QEMU_WHY" ]; then
	say "goals (issue 5): set-up $SETUP ms (goal <= 5), overhead $OVER MiB (goal <= 3); no ratio: $QEMU_WHY"
	[ $MODE = kut ] && say "figures are for the kut test kernel, not the default Linux guest ($KUT_WHY)"
	echo "boot: vireo $V ms, qemu-microvm n/a, ratio n/a"
	exit 0
fi
Q=$(median qemu banner_ms)
R=$(awk -v v="$V" -v q="$Q" 'BEGIN { if (q > 0) printf "%.2f", v / q; else print "n/a" }')
say "goals (issue 5): ratio $R (goal <= 0.6), set-up $SETUP ms (goal <= 5), overhead $OVER MiB (goal <= 3)"
[ $MODE = kut ] && say "figures above are for the kut test kernel hello32.elf, not the default Linux guest ($KUT_WHY)"
echo "boot: vireo $V ms, qemu-microvm $Q ms, ratio $R"
