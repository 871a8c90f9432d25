#!/usr/bin/env bash
# Installs the Debian packages vireo needs, only when some are missing: `apt-get update` once,
# then one non-interactive `apt-get install`. Called by `make run` and `make test`.
# Extra packages for benchmarks are passed as arguments (scripts/deps.sh dpdk-dev).
set -euo pipefail

PKGS=(
  gcc libc6-dev make clang libclang-rt-14-dev pkg-config  # compilers; clang's runtime for fuzzers/sanitizers
  libcmocka-dev liburing-dev libjson-c-dev libseccomp-dev  # libraries linked into vireo and tests
  busybox-static cpio kmod zstd xz-utils  # building the default guest image
  qemu-system-x86 qemu-system-common qemu-utils  # the no-KVM peer: QEMU under TCG
  acpica-tools iproute2  # iasl for ACPI table checks; ip netns for tap tests
)
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
