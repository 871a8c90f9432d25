#!/usr/bin/env bash
# The whole test suite, as `make test` runs it. Stages:
#   1. gcc build (vireo, unit tests, benches) and the cmocka unit tests
#   2. the same unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer
#   3. a clang build of everything, and the guest programs with gcc and clang
#   4. libFuzzer targets, a few seconds each
#   5. integration tests (tests/integration/*.sh): boots, real peers
# Each test counts as passed, failed or skipped (skips name their reason). The last line is
# "N passed, N failed, N skipped"; the exit status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
LOGDIR=build/test-logs
mkdir -p "$LOGDIR"
PASSED=0; FAILED=0; SKIPPED=0
FAILS=(); SKIPS=()

pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
fail() { FAILED=$((FAILED + 1)); FAILS+=("$1"); echo "FAIL: $1"; }
skip() { SKIPPED=$((SKIPPED + 1)); SKIPS+=("$1 ($2)"); echo "SKIP: $1 ($2)"; }

# build NAME LOG MAKE-ARGS...: one counted test per build.
build() {
  local name=$1 log=$2; shift 2
  if make -j"$JOBS" "$@" >"$log" 2>&1; then pass "$name"; return 0; fi
  tail -n 30 "$log"; fail "$name"; return 1
}

# unit_tests PREFIX DIR: runs every cmocka binary in DIR, one count per test case (TAP output).
unit_tests() {
  local prefix=$1 dir=$2 bin name log
  for bin in "$dir"/test_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin"); log="$LOGDIR/$prefix-$name.log"
    CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$bin" >"$log" 2>&1
    local rc=$? counted=0 line
    while IFS= read -r line; do
      case "$line" in
        *"ok "*"# SKIP"*) skip "$prefix/$name: ${line##*# SKIP }" "skipped by the test"; counted=1 ;;
        "not ok "*) fail "$prefix/$name: ${line#not ok * - }"; counted=1 ;;
        "ok "*) pass "$prefix/$name: ${line#ok * - }"; counted=1 ;;
      esac
    done <"$log"
    if [ $rc -ne 0 ] && ! grep -q '^not ok' "$log"; then
      fail "$prefix/$name: exited with status $rc"; counted=1
    fi
    if [ $rc -ne 0 ] || [ $counted -eq 0 ]; then
      [ $counted -eq 0 ] && fail "$prefix/$name: printed no test results"
      sed -n '1,60p' "$log"
    fi
  done
}

echo "== gcc build and unit tests"
if build "build: gcc" "$LOGDIR/build-gcc.log" all; then unit_tests unit build/tests; fi

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
if build "build: asan+ubsan" "$LOGDIR/build-asan.log" BUILD=build/asan OPT=-O1 SAN="$SANFLAGS" unit-tests; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    unit_tests asan build/asan/tests
fi

echo "== clang build"
build "build: clang" "$LOGDIR/build-clang.log" BUILD=build/clang CC=clang all
if [ -f guest/Makefile ]; then
  build "guest programs: gcc" "$LOGDIR/guest-gcc.log" -C guest CC=gcc OUT=../build/guest-bin/gcc
  build "guest programs: clang" "$LOGDIR/guest-clang.log" -C guest CC=clang OUT=../build/guest-bin/clang
fi
# kvm-unit-tests style test kernels (S2), one count per compiler; run by tests/integration/kut.sh
build "kut test kernels: gcc" "$LOGDIR/kut-gcc.log" -C guest/kut gcc
build "kut test kernels: clang" "$LOGDIR/kut-clang.log" -C guest/kut clang

if compgen -G "tests/fuzz/fuzz_*.c" >/dev/null; then
  echo "== fuzz targets (${FUZZ_SECONDS:=5} s each)"
  if build "build: fuzz targets" "$LOGDIR/build-fuzz.log" -f tests/fuzz/Makefile; then
    for f in build/fuzz/fuzz_*; do
      [ -f "$f" ] && [ -x "$f" ] || continue
      n=$(basename "$f"); log="$LOGDIR/$n.log"; mkdir -p build/fuzz/corpus-"$n"
      if "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 build/fuzz/corpus-"$n" >"$log" 2>&1; then
        pass "fuzz: $n"
      else tail -n 40 "$log"; fail "fuzz: $n"; fi
    done
  fi
fi

echo "== integration tests"
# A script prints "PASS: x", "FAIL: x" or "SKIP: x (reason)" lines, one per check; exit
# status 0 = all fine, 77 = skipped as a whole (its last line says why), other = failure.
for t in tests/integration/*.sh; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .sh); log="$LOGDIR/it-$n.log"
  timeout "${IT_TIMEOUT:-600}" bash "$t" >"$log" 2>&1
  rc=$?; counted=0
  while IFS= read -r line; do
    case "$line" in
      "PASS: "*) pass "$n: ${line#PASS: }"; counted=1 ;;
      "FAIL: "*) fail "$n: ${line#FAIL: }"; counted=1 ;;
      "SKIP: "*) r=${line#SKIP: }; SKIPPED=$((SKIPPED + 1)); SKIPS+=("$n: $r"); echo "SKIP: $n: $r"; counted=1 ;;
    esac
  done <"$log"
  if [ $rc -eq 77 ] && [ $counted -eq 0 ]; then skip "$n" "$(tail -n 1 "$log")"
  elif [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    grep -q '^FAIL: ' "$log" || fail "$n: exited with status $rc"
    tail -n 40 "$log"
  elif [ $counted -eq 0 ]; then pass "$n"; fi
done

echo
if [ ${#SKIPS[@]} -gt 0 ]; then echo "skipped:"; printf '  %s\n' "${SKIPS[@]}"; fi
if [ ${#FAILS[@]} -gt 0 ]; then echo "failed:"; printf '  %s\n' "${FAILS[@]}"; fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
