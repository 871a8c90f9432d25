# The result lines every integration test prints, one per check (scripts/run-tests.sh counts
# them): PASS/FAIL/SKIP and what was checked. fail() sets FAILED=1, which the script exits
# with. Sourced after the script has cd'd to the repository root.
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; FAILED=1; }
skip() { echo "SKIP: $1 ($2)"; } # WHAT WHY
