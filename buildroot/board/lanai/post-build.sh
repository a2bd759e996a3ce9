#!/bin/sh
# Buildroot post-build: finish the target tree like image/build.sh does.
# $1 = TARGET_DIR; BINARIES_DIR and BR2_EXTERNAL_LANAI_PATH are exported.
set -eu
TARGET_DIR=$1
BOARD_DIR=$(dirname "$0")

# The kernel builds the drivers in: no modules to load (image/ lists Debian's).
# var/lib/haproxy: the usual `chroot` of haproxy.cfg files (as in image/build.sh).
mkdir -p "$TARGET_DIR/etc/lanai" "$TARGET_DIR/data" "$TARGET_DIR/run" "$TARGET_DIR/var/lib/haproxy"
: > "$TARGET_DIR/etc/lanai/modules.order"
printf 'lanai (Buildroot %s)\n' "${BR2_VERSION:-}" > "$TARGET_DIR/etc/lanai/version"

# Our rcS/rcK replace Buildroot's S?? scripts; drop the ones that would
# otherwise confuse (the network is lanai's `network` service, from config.rc).
rm -f "$TARGET_DIR"/etc/init.d/S*

# GRUB reads its configuration from the FAT boot partition.
install -D -m 0644 "$BOARD_DIR/grub.cfg" "$BINARIES_DIR/grub.cfg"
