#!/usr/bin/env bash
# A stopped and continued `vireo run` (SIGSTOP/SIGCONT: Ctrl-Z and fg, a debugger, the memory
# sample of bench/boot_once) keeps running under its seccomp filter: the kernel resumes the
# interrupted poll with restart_syscall, which the filter must allow (it once killed vireo with
# SIGSYS in 11 of 15 runs). bench/boot_once stops vireo when the kut hello kernel prints its
# last line, reads its smaps and continues it; vireo must then end with the kernel's status 1.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -c /dev/kvm ]; then echo "SKIP: stop/continue (no /dev/kvm)"; echo "no /dev/kvm"; exit 77; fi
make -s -j2 build/vireo build/bench/boot_once >/dev/null || { echo "FAIL: build"; exit 1; }
make -s -C guest/kut gcc >/dev/null 2>&1 || { echo "FAIL: build guest/kut"; exit 1; }
FAILED=0
for i in $(seq 10); do
	r=$(build/bench/boot_once --banner "hello from vireo" --marker "kut hello: fw_cfg" \
		--timeout 20 -- "${VIREO:-build/vireo}" run --kernel build/kut/gcc/hello32.elf)
	st=${r#status=}; st=${st%% *}
	stopped=$(sed -n 's/.*stopped_ms=\([^ ]*\).*/\1/p' <<<"$r")
	if [ "$stopped" = 0.000 ] && [ "$st" = 1 ]; then
		echo "SKIP: run $i (vireo had ended before it could be stopped)"
	elif [ "$st" = 1 ]; then
		echo "PASS: run $i: stopped ${stopped} ms and continued, exit status 1"
	else
		echo "FAIL: run $i: exit status $st after a stop and continue (159 = SIGSYS): $r"
		FAILED=1
	fi
done
exit $FAILED
