# tests/lib/qemu.sh: boots vireo's default guest (scripts/make-guest.sh) under QEMU, for
# integration tests and `make run`. Source it from the repository root: `. tests/lib/qemu.sh`.
#
# Settings, read at each call (set them as shell or environment variables):
#   QEMU_CPUS (1)  QEMU_MEM (256M)  QEMU_MACHINE (q35; microvm works too, keep ACPI on)
#   QEMU_ACCEL (tcg; kvm adds -cpu host,-arch-capabilities, see shared/FACTS.md)
#   QEMU_SHARED_MEM=1   guest RAM from a shared memfd, which vhost-user backends need
#   QEMU_KERNEL, QEMU_INITRD (build/guest/vmlinuz, build/guest/initramfs.cpio.gz)
#   QEMU_APPEND         more kernel parameters, put after vireo.cmd="..."
#   GUEST_TSC_KHZ       tsc_early_khz= value (default: from /proc/cpuinfo; empty: none)
#
# Functions:
#   guest_cmdline [CMD]          prints the kernel command line; with CMD, adds vireo.cmd="CMD"
#                                (CMD may hold spaces, | ; $(...) and single quotes, not ")
#   qemu_argv [CMD]              sets the array QEMU_ARGV: the QEMU command without a console
#   qemu_start TIMEOUT LOG CMD [QEMU_ARGS...]
#                                starts QEMU in the background, killed after TIMEOUT seconds;
#                                serial console and QEMU's messages go to LOG; sets QEMU_PID
#   qemu_wait                    waits for it; returns QEMU's status (0 after the guest
#                                powered off, 124 on timeout); strips \r from LOG
#   qemu_boot TIMEOUT LOG CMD [QEMU_ARGS...]   qemu_start + qemu_wait
#   qemu_stop                    kills a running qemu_start'ed QEMU
#   qemu_wait_for LOG TEXT TIMEOUT   waits until LOG holds TEXT (fixed string); 1 on timeout
#   guest_exit_status LOG        prints N of "vireo-guest: exit N" in LOG; 1 when absent
# An empty CMD boots to the interactive shell (useful only with a console on stdio).
# QEMU_ARGS come last, so a test adds devices: -chardev socket,id=c,path=S -device ...

QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}

# host_tsc_khz: the host's TSC frequency in kHz as /proc/cpuinfo reports it ("cpu MHz").
host_tsc_khz() {
	awk -F: '/^cpu MHz/ { printf "%d\n", $2 * 1000; exit }' /proc/cpuinfo
}

guest_cmdline() {
	local khz line
	khz=${GUEST_TSC_KHZ-$(host_tsc_khz)}
	line="console=ttyS0 quiet no_timer_check panic=-1"
	[ -n "$khz" ] && line+=" tsc_early_khz=$khz"
	[ $# -gt 0 ] && [ -n "$1" ] && line+=" vireo.cmd=\"$1\""
	[ -n "${QEMU_APPEND:-}" ] && line+=" $QEMU_APPEND"
	printf '%s\n' "$line"
}

qemu_argv() {
	local machine=${QEMU_MACHINE:-q35} accel=${QEMU_ACCEL:-tcg} mem=${QEMU_MEM:-256M}
	QEMU_ARGV=("$QEMU_BIN" -accel "$accel")
	if [ "${QEMU_SHARED_MEM:-0}" = 1 ]; then
		QEMU_ARGV+=(-object "memory-backend-memfd,id=mem,size=$mem,share=on")
		machine+=",memory-backend=mem"
	fi
	QEMU_ARGV+=(-M "$machine" -m "$mem" -smp "${QEMU_CPUS:-1}")
	[ "$accel" = kvm ] && QEMU_ARGV+=(-cpu host,-arch-capabilities)
	QEMU_ARGV+=(-nodefaults -no-reboot -display none
		-kernel "${QEMU_KERNEL:-build/guest/vmlinuz}"
		-initrd "${QEMU_INITRD:-build/guest/initramfs.cpio.gz}"
		-append "$(guest_cmdline "${1:-}")")
}

qemu_start() {
	local timeout=$1 log=$2 cmd=$3
	shift 3
	local f
	for f in "${QEMU_KERNEL:-build/guest/vmlinuz}" "${QEMU_INITRD:-build/guest/initramfs.cpio.gz}"; do
		[ -f "$f" ] || { echo "qemu.sh: $f missing (run scripts/make-guest.sh)" >&2; return 2; }
	done
	qemu_argv "$cmd"
	QEMU_LOG=$log
	# emptied here, not only by the background job's redirection: a qemu_wait_for right after
	# this could otherwise find the text in the previous run's log (seen: a backend killed
	# "at ack=40" before the guest had written anything)
	: >"$log"
	timeout -k 5 "$timeout" "${QEMU_ARGV[@]}" -chardev stdio,id=con,signal=off \
		-serial chardev:con "$@" </dev/null >"$log" 2>&1 &
	QEMU_PID=$!
}

qemu_wait() {
	local rc=0
	wait "$QEMU_PID" || rc=$?
	[ -f "${QEMU_LOG:-}" ] && sed -i 's/\r$//' "$QEMU_LOG"
	return $rc
}

qemu_boot() {
	qemu_start "$@" || return $?
	qemu_wait
}

qemu_stop() {
	[ -n "${QEMU_PID:-}" ] && kill "$QEMU_PID" 2>/dev/null
	qemu_wait 2>/dev/null || true
}

qemu_wait_for() {
	local log=$1 text=$2 deadline=$((SECONDS + $3))
	while ! grep -qF -- "$text" "$log" 2>/dev/null; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.2
	done
}

guest_exit_status() {
	local n
	n=$(sed -n 's/^vireo-guest: exit \([0-9]*\)\r*$/\1/p' "$1" | tail -n 1)
	[ -n "$n" ] || return 1
	echo "$n"
}
