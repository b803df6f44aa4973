#!/usr/bin/env bash
# Build the Ponte root file system from Debian packages and pack it as squashfs.
# Environment: OUT SUITE MIRROR ARCH VERSION COMPATIBLE KEYRING KERNEL (see Makefile).
set -euo pipefail
cd "$(dirname "$0")"
started=$(date +%s)
OUT=$(realpath -m "${OUT:-../build/image}")
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ARCH=${ARCH:-amd64}
VERSION=${VERSION:-dev}
COMPATIBLE=${COMPATIBLE:-ponte-$ARCH}
KERNEL=${KERNEL:-0}
REPO=$(realpath ..)
PY=${PY:-$REPO/.venv/bin/python}

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mksquashfs >/dev/null || need+=(squashfs-tools)
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
  # Another architecture needs binfmt emulation (qemu-user-static) for maintainer scripts.
  command -v qemu-aarch64-static >/dev/null || { echo "ARCH=$ARCH needs qemu-user-static"; exit 2; }
fi

# The spoken prompts (make prompts) go into the image as built; the firmware finds them
# at <venv>/share/ponte/prompts (firmware/prompts/library.py).
PROMPTS=$REPO/build/prompts
[ -f "$PROMPTS/en/manifest.json" ] || { echo "no prompts in $PROMPTS: run make prompts"; exit 2; }

rm -rf "$OUT/rootfs" "$OUT/wheels"
mkdir -p "$OUT/wheels"
# Ponte and its pinned dependencies as wheels, built here (the target is the same Debian
# release, so compiled extensions link against the same libraries) and installed into
# the image without network access.
"$PY" -m pip wheel -q --wheel-dir "$OUT/wheels" "$REPO"

packages=(
  systemd systemd-sysv udev kmod iproute2 ca-certificates
  python3 python3-venv libasound2 libsystemd0
  libubootenv-tool   # fw_setenv / fw_printenv for the A/B boot order
)
[ "$KERNEL" = 1 ] && packages+=(linux-image-"$ARCH")

# Documentation, manual pages and translations are dead weight on an appliance.
mmdebstrap --variant=minbase --architectures="$ARCH" \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --essential-hook='mkdir -p "$1/etc/ponte"' \
  --customize-hook="copy-in rootfs/etc /" \
  --customize-hook="mkdir -p \"\$1/tmp/wheels\"" \
  --customize-hook="copy-in $OUT/wheels/. /tmp/wheels" \
  --customize-hook='chroot "$1" python3 -m venv /opt/ponte' \
  --customize-hook='chroot "$1" /opt/ponte/bin/pip install -q --no-index --find-links /tmp/wheels ponte' \
  --customize-hook='chroot "$1" /opt/ponte/bin/pip uninstall -q -y pip' \
  --customize-hook='mkdir -p "$1/opt/ponte/share/ponte"' \
  --customize-hook="copy-in $PROMPTS /opt/ponte/share/ponte" \
  --customize-hook='rm -rf "$1/tmp/wheels"; ln -sf /opt/ponte/bin/ponte "$1/usr/local/bin/ponte"' \
  --customize-hook="echo 'ponte $VERSION' > \"\$1/etc/ponte/release\"" \
  --customize-hook="sed -i 's/@COMPATIBLE@/$COMPATIBLE/' \"\$1/etc/ponte/update.toml\"" \
  --customize-hook='chroot "$1" systemctl enable ponte.service ponte-update-boot.service ponte-mark-good.service' \
  --customize-hook='mkdir -p "$1/data"; : > "$1/etc/machine-id"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  "$SUITE" "$OUT/rootfs" "$MIRROR"

if [ -n "${KEYRING:-}" ]; then
  cp "$KEYRING" "$OUT/rootfs/etc/ponte/keyring.json"
else
  echo "warning: no KEYRING given; the image trusts no signing key" >&2
fi

rm -f "$OUT/rootfs.squashfs"
mksquashfs "$OUT/rootfs" "$OUT/rootfs.squashfs" -comp xz -noappend -quiet -all-root
size=$(stat -c %s "$OUT/rootfs.squashfs")
tree=$(du -sb "$OUT/rootfs" | cut -f1)
elapsed=$(( $(date +%s) - started ))
printf 'image: %s\n' "$OUT/rootfs.squashfs"
printf 'image size: %d bytes (%.1f MiB; unpacked %.1f MiB)\n' "$size" \
  "$(echo "$size / 1048576" | bc -l)" "$(echo "$tree / 1048576" | bc -l)"
printf 'build time: %d s\n' "$elapsed"
