#!/usr/bin/env bash
# Test set-up: fetches Debian's linux-image-cloud-amd64 kernel (a bzImage
# nobody in this project wrote) into DEST/vmlinuz with apt-get download and
# dpkg -x. Does nothing when DEST/vmlinuz is already there.
set -euo pipefail
dest=${1:?usage: fetch_debian_kernel.sh DEST_DIR}
mkdir -p "$dest"
[ -s "$dest/vmlinuz" ] && exit 0

# The metapackage depends on the versioned image package that holds the file.
image_package() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg=$(image_package || true)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  pkg=$(image_package || true)
fi
if [ -z "$pkg" ]; then
  echo "fetch_debian_kernel: apt-cache knows no linux-image-cloud-amd64 (run apt-get update)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>&1) || {
  echo "fetch_debian_kernel: apt-get download $pkg failed" >&2
  exit 1
}
dpkg -x "$work"/*.deb "$work/root"
kernel=$(ls "$work"/root/boot/vmlinuz-* | head -n 1)
cp "$kernel" "$dest/vmlinuz.tmp"
basename "$kernel" >"$dest/version"
mv "$dest/vmlinuz.tmp" "$dest/vmlinuz"
echo "fetch_debian_kernel: $(cat "$dest/version") from $pkg"
