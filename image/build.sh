#!/usr/bin/env bash
# Builds the Lanai appliance disk image from Debian packages, without root
# mounts, loop devices or internet (only the Debian package archive):
#
#   image/out/lanai.img    raw disk, MBR, BIOS-bootable (syslinux)
#   image/out/lanai.qcow2  the same disk as compressed qcow2
#
# Disk layout (MBR):
#   p1  FAT16 "LANAIBOOT", bootable: syslinux, vmlinuz (Debian's cloud kernel),
#       initrd.img = the whole root file system (busybox-static, lanai and the
#       glibc libraries it links, the kernel modules it needs, image/rootfs/)
#   p2  ext4 "data", mounted at /data: lanai's store. The running system lives
#       in RAM; Save writes to /data.
#
# Environment:
#   LANAI_BIN   lanai binary to ship (default: target/release/lanai, built
#               with `cargo build --release --locked` if missing)
#   DISK_MB     total disk size in MiB (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out="$here/out"
work="$out/work"
cache="$out/cache"
DISK_MB=${DISK_MB:-60}

log() { printf '[build] %s\n' "$*" >&2; }

# --- host tools (idempotent) -------------------------------------------------
need_pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
need mformat mtools
need mcopy mtools
need syslinux syslinux
need mkfs.fat dosfstools
need mkfs.ext4 e2fsprogs
need sfdisk fdisk
need qemu-img qemu-utils
need cpio cpio
need zstd zstd
need fakeroot fakeroot
need depmod kmod
need modprobe kmod
need strip binutils
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || need_pkgs+=(syslinux-common)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	log "installing host tools: ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- the lanai binary ----------------------------------------------------------
LANAI_BIN=${LANAI_BIN:-$repo/target/release/lanai}
if [ ! -x "$LANAI_BIN" ]; then
	log "building lanai (cargo build --release --locked)"
	(cd "$repo" && cargo build --release --locked)
fi

# --- Debian packages (apt-get download, cached in out/cache) -------------------
mkdir -p "$cache" "$work"
fetch_deb() { # fetch_deb PACKAGE -> path of the .deb
	local pkg=$1 f
	f=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$f" ]; then
		(cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) || {
			apt-get update -qq
			(cd "$cache" && apt-get download "$pkg" >/dev/null)
		}
		f=$(ls "$cache/${pkg}_"*.deb | head -n 1)
	fi
	echo "$f"
}
# linux-image-cloud-amd64 is a metapackage: follow it to the versioned kernel.
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kpkg" ]; then
	apt-get update -qq
	kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
log "kernel package: $kpkg"
kdeb=$(fetch_deb "$kpkg")
bbdeb=$(fetch_deb busybox-static)

rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox" "$work/root"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bbdeb" "$work/busybox"
kver=$(ls "$work/kernel/lib/modules" | head -n 1)
vmlinuz="$work/kernel/boot/vmlinuz-$kver"
depmod -b "$work/kernel" "$kver"

# --- root file system (initramfs) ----------------------------------------------
root="$work/root"
# var/lib/haproxy: the usual `chroot` of haproxy.cfg files (an empty jail, as
# Debian's haproxy package creates it), so they run unchanged.
mkdir -p "$root"/{bin,dev,proc,sys,run,tmp,data,root,var/log,var/lib/haproxy,etc,lib64,usr/lib}
ln -s bin "$root/sbin"
ln -s ../bin "$root/usr/bin"
ln -s ../bin "$root/usr/sbin"
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
install -m 755 "$work/busybox/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done

# lanai, stripped, with the shared libraries it links (glibc dynamic build).
# The web assets (CSS/JS/templates) are compiled into the binary.
strip -o "$root/bin/lanai" "$LANAI_BIN"
chmod 755 "$root/bin/lanai"
ldd "$LANAI_BIN" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
	real=$(readlink -f "$lib")
	mkdir -p "$root$(dirname "$lib")"
	strip --strip-unneeded -o "$root$lib" "$real" 2>/dev/null || cp "$real" "$root$lib"
done

# Kernel modules: modules.list plus their dependencies, loaded in this order.
mkdir -p "$root/lib/modules/$kver" "$root/etc/lanai"
: > "$work/modules.order"
# modules.order lines: "path [parameters]" (parameters only on the listed
# module itself, not on its dependencies).
grep -v '^\s*\(#\|$\)' "$here/modules.list" | while read -r m params; do
	modprobe -d "$work/kernel" -S "$kver" --show-depends "$m" | awk -v p="$params" '
		$1 == "insmod" { deps[++n] = $2 }
		END { for (i = 1; i <= n; i++) print deps[i] (i == n && p != "" ? " " p : "") }'
done | awk '!seen[$1]++' | while read -r ko params; do
	rel=${ko#"$work/kernel/lib/modules/$kver/"}
	mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
	cp "$ko" "$root/lib/modules/$kver/$rel"
	echo "$rel${params:+ $params}" >> "$work/modules.order"
done
cp "$work/kernel/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

cp -a "$here/rootfs/." "$root/"
cp "$work/modules.order" "$root/etc/lanai/modules.order"
lanai_version=$("$LANAI_BIN" --version 2>/dev/null || echo lanai)
git_rev=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
printf '%s (%s), kernel %s\n' "$lanai_version" "$git_rev" "$kver" > "$root/etc/lanai/version"

# newc cpio; fakeroot only so that the device nodes the kernel needs before
# devtmpfs is mounted (/dev/console, /dev/null) can be recorded.
fakeroot -- sh -c '
	set -e
	cd "$1"
	mknod -m 600 dev/console c 5 1
	mknod -m 666 dev/null c 1 3
	find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet
' sh "$root" | zstd -q -19 -T0 > "$work/initrd.img"

# --- boot partition: FAT + syslinux (mtools, no mount) -------------------------
bytes() { stat -c %s "$1"; }
payload=$(($(bytes "$vmlinuz") + $(bytes "$work/initrd.img")))
boot_mb=$(((payload + 1048575) / 1048576 + 2))
boot_img="$work/boot.img"
rm -f "$boot_img"
mkfs.fat -C -F 16 -n LANAIBOOT "$boot_img" $((boot_mb * 1024)) >/dev/null
mcopy -i "$boot_img" "$vmlinuz" ::/vmlinuz
mcopy -i "$boot_img" "$work/initrd.img" ::/initrd.img
mcopy -i "$boot_img" "$here/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$boot_img"

# --- data partition: ext4 made from a directory (mkfs.ext4 -d, no mount) -------
data_mb=$((DISK_MB - 1 - boot_mb))
if [ "$data_mb" -lt 16 ]; then
	echo "build.sh: boot partition needs ${boot_mb} MiB, leaving ${data_mb} MiB for data (< 16): raise DISK_MB" >&2
	exit 1
fi
mkdir -p "$work/data"
cat > "$work/data/README" <<'EOF'
Lanai's persistent store (the "data" partition, mounted at /data).
The running system lives in RAM; Save (Setup tab) writes here.
EOF
data_img="$work/data.img"
rm -f "$data_img"
mkfs.ext4 -q -F -L data -d "$work/data" -E root_owner=0:0 "$data_img" "${data_mb}M"

# --- disk: MBR with sfdisk, partitions copied in at their offsets --------------
img="$out/lanai.img"
rm -f "$img" "$out/lanai.qcow2"
truncate -s "${DISK_MB}M" "$img"
boot_start=2048
boot_sectors=$((boot_mb * 2048))
data_start=$((boot_start + boot_sectors))
data_sectors=$((data_mb * 2048))
sfdisk --quiet --no-reread --no-tell-kernel "$img" <<EOF
label: dos
label-id: 0x4c414e41
start=$boot_start, size=$boot_sectors, type=6, bootable
start=$data_start, size=$data_sectors, type=83
EOF
dd if="$boot_img" of="$img" bs=512 seek=$boot_start conv=notrunc,sparse status=none
dd if="$data_img" of="$img" bs=512 seek=$data_start conv=notrunc,sparse status=none
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
qemu-img convert -c -f raw -O qcow2 "$img" "$out/lanai.qcow2"

log "kernel $kver: $(bytes "$vmlinuz") bytes; initramfs (zstd): $(bytes "$work/initrd.img") bytes"
log "partitions: boot ${boot_mb} MiB (FAT16), data ${data_mb} MiB (ext4)"
log "$img: $(bytes "$img") bytes; $out/lanai.qcow2: $(bytes "$out/lanai.qcow2") bytes"
