#!/usr/bin/env bash
# Builds vireo's default guest:
#   build/guest/vmlinuz             Debian's cloud kernel (bzImage), from the .deb, never installed
#   build/guest/initramfs.cpio.gz   busybox-static, the virtio modules with their dependencies,
#                                   guest/init as /init, vireo's guest programs (guest/*.c) in /bin
#   build/guest/kernel-release, kernel-package, config   what was used (for tests and people)
# The kernel package is the one Debian's linux-image-cloud-amd64 meta-package points at (the
# newest default cloud kernel of this release); VIREO_KERNEL_PKG=linux-image-...-cloud-amd64
# picks another. The .deb is cached in build/guest/cache (VIREO_GUEST_CACHE moves it).
# The initramfs is byte-reproducible: this script writes the cpio itself (sorted, owner 0,
# mtime 0, inode numbers in order, /dev/console without needing root) and gzip -n.
# Re-running is quick: nothing is rebuilt while the inputs' fingerprint (build/guest/.stamp)
# is unchanged.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

OUT=build/guest
CACHE=${VIREO_GUEST_CACHE:-$OUT/cache}
# Modules the guest loads at boot; their dependencies come from modules.dep. A name that is
# built into the kernel (modules.builtin) is skipped.
MODULES=(virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio_rng
	 vmw_vsock_virtio_transport virtiofs)
GUEST_BIN=build/guest-bin/gcc

die() { echo "make-guest: $*" >&2; exit 1; }
log() { echo "make-guest: $*"; }

need_pkg() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' ||
		die "missing Debian package $1 (run: bash scripts/deps.sh, or apt-get install $1)"
}

# candidate PKG: the version apt would fetch, empty when apt knows none.
candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

# kernel_pkg: the linux-image-*-cloud-amd64 package to use.
kernel_pkg() {
	if [ -n "${VIREO_KERNEL_PKG:-}" ]; then echo "$VIREO_KERNEL_PKG"; return; fi
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-cloud-amd64$/ { print $2; exit }'
}

# find_kernel_deb: sets DEB to the cached .deb of the kernel to use, downloading it when
# missing. Without apt lists (fresh machine) runs apt-get update once; offline, falls back to
# the newest .deb already in the cache.
find_kernel_deb() {
	local pkg ver
	pkg=$(kernel_pkg)
	if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
		log "apt knows no linux-image-cloud-amd64: running apt-get update"
		apt-get update -qq || true
		pkg=$(kernel_pkg)
	fi
	ver=""
	[ -n "$pkg" ] && ver=$(candidate "$pkg")
	if [ -z "$ver" ]; then
		[ -z "${VIREO_KERNEL_PKG:-}" ] || die "apt offers no package $VIREO_KERNEL_PKG (VIREO_KERNEL_PKG)"
		DEB=$(ls "$CACHE"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
		[ -n "$DEB" ] || die "apt offers no ${pkg:-linux-image-*-cloud-amd64} package and $CACHE has none (apt-get update? network?)"
		log "apt offers no kernel package: using the cached $(basename "$DEB")"
		return
	fi
	DEB=$CACHE/${pkg}_${ver//:/%3a}_amd64.deb
	[ -f "$DEB" ] && return
	mkdir -p "$CACHE"
	log "downloading $pkg=$ver"
	(cd "$CACHE" && apt-get download -q "$pkg=$ver" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
	[ -f "$DEB" ] || die "apt-get download $pkg=$ver did not produce $DEB"
}

# ---- cpio (newc) writer: full control over owner, mtime, inode numbers and device nodes.
INO=1
# cpio_hdr NAME MODE NLINK SIZE RDEVMAJOR RDEVMINOR
cpio_hdr() {
	local namesize=$((${#1} + 1)) i
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$INO" "$2" 0 0 "$3" 0 "$4" 0 0 "$5" "$6" "$namesize" 0
	printf '%s\0' "$1"
	for ((i = (110 + namesize) % 4; i % 4; i++)); do printf '\0'; done
	INO=$((INO + 1))
}
cpio_pad() { local i; for ((i = $1 % 4; i % 4; i++)); do printf '\0'; done; }

# cpio_tree DIR: the archive of DIR's contents plus /dev/console, sorted by path, on stdout.
cpio_tree() {
	local dir=$1 p size mode target
	{ (cd "$dir" && find . -mindepth 1 | sed 's|^\./||'); echo dev/console; } | sort -u |
	while IFS= read -r p; do
		if [ "$p" = dev/console ]; then
			cpio_hdr "$p" $((0020600)) 1 0 5 1
		elif [ -L "$dir/$p" ]; then
			target=$(readlink "$dir/$p")
			cpio_hdr "$p" $((0120777)) 1 "${#target}" 0 0
			printf '%s' "$target"; cpio_pad "${#target}"
		elif [ -d "$dir/$p" ]; then
			mode=0755; [ "$p" = tmp ] && mode=1777
			cpio_hdr "$p" $((0040000 | 0$mode)) 2 0 0 0
		else
			mode=0644; [ -x "$dir/$p" ] && mode=0755
			size=$(stat -c %s "$dir/$p")
			cpio_hdr "$p" $((0100000 | 0$mode)) 1 "$size" 0 0
			cat "$dir/$p"; cpio_pad "$size"
		fi
	done
	INO=0
	cpio_hdr 'TRAILER!!!' 0 1 0 0 0
}

# module_order KDIR: the .ko paths (relative to KDIR) of MODULES and their dependencies,
# each after what it needs, from KDIR/modules.dep.
module_order() {
	local kdir=$1 line path deps name m
	declare -A DEPS=() BYNAME=() DONE=() BUILTIN=()
	while IFS= read -r line; do
		path=${line%%:*}; deps=${line#*:}
		DEPS[$path]=$deps
		name=$(basename "$path"); name=${name%%.ko*}; name=${name//-/_}
		BYNAME[$name]=$path
	done <"$kdir/modules.dep"
	while IFS= read -r line; do
		name=$(basename "$line"); name=${name%%.ko*}; BUILTIN[${name//-/_}]=1
	done <"$kdir/modules.builtin"
	visit() {
		local p=$1 d
		[ -n "${DONE[$p]:-}" ] && return
		DONE[$p]=1
		for d in ${DEPS[$p]}; do visit "$d"; done
		echo "$p"
	}
	for m in "${MODULES[@]}"; do
		if [ -n "${BYNAME[$m]:-}" ]; then visit "${BYNAME[$m]}"
		elif [ -n "${BUILTIN[$m]:-}" ]; then log "$m is built into the kernel" >&2
		else die "module $m is neither in modules.dep nor built in"; fi
	done
}

# copy_module SRC DST: decompresses .ko.xz/.ko.zst/.ko.gz (busybox insmod loads plain .ko).
copy_module() {
	mkdir -p "$(dirname "$2")"
	case "$1" in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

# stage_root KTREE KVER ROOT: lays out the initramfs tree.
stage_root() {
	local ktree=$1 kver=$2 root=$3 mdir=$1/lib/modules/$2 p d f name
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,run,etc/vireo}
	cp /bin/busybox "$root/bin/busybox"
	busybox --list-full | while IFS= read -r p; do
		case "$p" in linuxrc | bin/busybox | "") continue ;; esac
		[ -e "$root/$p" ] || ln -s /bin/busybox "$root/$p"
	done
	for f in guest/*.c; do
		name=$(basename "$f" .c)
		[ -x "$GUEST_BIN/$name" ] || die "guest program $GUEST_BIN/$name was not built"
		rm -f "$root/bin/$name"
		strip --strip-all -o "$root/bin/$name" "$GUEST_BIN/$name"
	done
	install -m 0755 guest/init "$root/init"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\n' >"$root/etc/group"
	printf 'export PS1='\''vireo-guest:\\w# '\''\n' >"$root/etc/profile"
	d=$root/lib/modules/$kver
	mkdir -p "$d"
	module_order "$mdir" >"$OUT/work/order"
	while IFS= read -r p; do
		copy_module "$mdir/$p" "$d/${p%.ko*}.ko"
		echo "${p%.ko*}.ko"
	done <"$OUT/work/order" >"$root/etc/vireo/modules"
	cp "$mdir/modules.builtin" "$mdir/modules.builtin.modinfo" "$mdir/modules.order" "$d/"
	depmod -b "$root" "$kver"
}

main() {
	need_pkg busybox-static
	need_pkg kmod
	command -v apt-get >/dev/null || die "apt-get not found (a Debian system is needed)"
	mkdir -p "$OUT"
	exec 9>"$OUT/.lock"
	flock 9

	make -s -C guest CC=gcc OUT="../$GUEST_BIN" || die "building the guest programs (guest/) failed"
	find_kernel_deb

	local stamp bins f
	bins=()
	for f in guest/*.c; do bins+=("$GUEST_BIN/$(basename "$f" .c)"); done
	stamp=$( { basename "$DEB"; dpkg-query -W -f='${Version}\n' busybox-static;
		   echo "${MODULES[*]}"; sha256sum scripts/make-guest.sh guest/init "${bins[@]}"; } )
	if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] &&
	   [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initramfs.cpio.gz" ]; then
		log "up to date ($(cat "$OUT/kernel-release"))"
		return 0
	fi

	local work=$OUT/work kver
	rm -rf "$work" "$OUT/.stamp"
	mkdir -p "$work"
	dpkg-deb -x "$DEB" "$work/k"
	kver=$(ls "$work/k/lib/modules")
	[ -n "$kver" ] && [ -f "$work/k/boot/vmlinuz-$kver" ] || die "$DEB has no kernel image"
	depmod -b "$work/k" "$kver"   # the .deb ships no modules.dep
	stage_root "$work/k" "$kver" "$work/root"
	cpio_tree "$work/root" | gzip -n -9 >"$work/initramfs.cpio.gz"

	cp "$work/k/boot/vmlinuz-$kver" "$OUT/vmlinuz"
	cp "$work/k/boot/config-$kver" "$OUT/config"
	mv "$work/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
	echo "$kver" >"$OUT/kernel-release"
	basename "$DEB" .deb >"$OUT/kernel-package"
	echo "$stamp" >"$OUT/.stamp"
	log "built $OUT/vmlinuz ($kver) and $OUT/initramfs.cpio.gz ($(wc -l <"$work/order")" \
	    "modules, $(stat -c %s "$OUT/initramfs.cpio.gz") bytes)"
	rm -rf "$work"
}

main "$@"
