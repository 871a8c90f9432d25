#!/usr/bin/env bash
# Smoke test of the default guest under QEMU software emulation (no KVM needed): builds the
# image, boots it with a vireo.cmd holding a pipe, semicolons, $(...) and single quotes, and
# checks the banner, the command's output (including vireo-info's view of the machine), the
# exit line and the power-off; then a command that fails must report its status.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/lib/qemu.sh

LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
TIMEOUT=${SMOKE_TIMEOUT:-90}
FAILED=0
. tests/lib/check.sh
# check WHAT LOG TEXT: the guest's console LOG holds the line TEXT.
check() { if grep -qxF -- "$3" "$2"; then pass "$1"; else fail "$1 (no line '$3' in $2)"; fi; }

command -v "$QEMU_BIN" >/dev/null || { echo "$QEMU_BIN not installed"; exit 77; }

t0=$SECONDS
if bash scripts/make-guest.sh >"$LOGDIR/smoke-make-guest.log" 2>&1; then
	pass "guest image built ($((SECONDS - t0)) s)"
else
	tail -n 20 "$LOGDIR/smoke-make-guest.log"
	fail "guest image built"
	exit 1
fi

# 1. A command line that a naive parser breaks: pipes, ;, $(...), $((...)), quotes, and a
#    kernel parameter after the closing quote that must not leak into the command.
log=$LOGDIR/smoke-ok.log
cmd="echo smoke-\$(uname -s) | tr a-z A-Z; echo sum=\$((40 + 2)) 'two  spaces'; vireo-info"
start=$EPOCHREALTIME
QEMU_APPEND="vireo.after=1" qemu_boot "$TIMEOUT" "$log" "$cmd"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
check "banner 'vireo-guest: ready'" "$log" "vireo-guest: ready"
check "pipe and \$(...) in vireo.cmd" "$log" "SMOKE-LINUX"
check "command after ';', arithmetic, quoted spaces" "$log" "sum=42 two  spaces"
check "guest program vireo-info: 1 online CPU" "$log" "vireo-info: cpus_online=1"
mem=$(sed -n 's/^vireo-info: mem_total_kib=\([0-9]*\)$/\1/p' "$log")
if [ -n "$mem" ] && [ "$mem" -gt 150000 ] && [ "$mem" -le 262144 ]; then
	pass "vireo-info: MemTotal $mem KiB fits 256 MiB"
else
	fail "vireo-info: MemTotal '${mem}' KiB does not fit 256 MiB"
fi
if grep -qF 'vireo.cmd="echo smoke-$(uname -s) | tr' "$log" && grep -q '^vireo-info: cmdline=.* vireo.after=1$' "$log"; then
	pass "vireo-info: kernel command line as given"
else
	fail "vireo-info: kernel command line as given"
fi
check "exit line 'vireo-guest: exit 0'" "$log" "vireo-guest: exit 0"
if [ $rc -eq 0 ]; then pass "guest powered off, QEMU exited 0 (${secs} s)"
elif [ $rc -eq 124 ]; then fail "QEMU still running after $TIMEOUT s (killed)"
else fail "QEMU exited with status $rc"; fi

# 2. A failing command: its status must reach the exit line, and the guest still powers off.
log=$LOGDIR/smoke-fail.log
qemu_boot "$TIMEOUT" "$log" "echo about to fail; ls /no/such/file; exit \$((3 + 4))"
rc=$?
check "failing command ran" "$log" "about to fail"
status=$(guest_exit_status "$log")
if [ "${status:-}" = 7 ]; then pass "non-zero status reported: 'vireo-guest: exit 7'"
else fail "non-zero status reported (got '${status:-nothing}', want 7)"; fi
if [ $rc -eq 0 ]; then pass "guest powered off after the failing command"
else fail "QEMU exit status $rc after the failing command (124 = timeout)"; fi

[ $FAILED -eq 0 ] || { echo "logs: $LOGDIR/smoke-*.log"; exit 1; }
exit 0
