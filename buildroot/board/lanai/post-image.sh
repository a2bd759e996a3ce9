#!/bin/sh
# Buildroot post-image: initrd.img from the cpio, then the disk from
# genimage.cfg (same layout as image/build.sh), then a qcow2 if qemu-img exists.
set -eu
BOARD_DIR=$(dirname "$0")
cp "$BINARIES_DIR/rootfs.cpio.zst" "$BINARIES_DIR/initrd.img"
support/scripts/genimage.sh -c "$BOARD_DIR/genimage.cfg"
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img convert -c -f raw -O qcow2 "$BINARIES_DIR/lanai.img" "$BINARIES_DIR/lanai.qcow2"
fi
