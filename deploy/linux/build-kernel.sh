#!/usr/bin/env bash
# Builds thaw's microVM Linux guest kernel from Debian's linux-source package.
#   deploy/linux/build-kernel.sh [--version 6.1] [--out DIR] [--jobs N]
# tinyconfig plus deploy/linux/microvm.config (64-bit, PVH, serial console,
# virtio-mmio from the command line, vsock, devtmpfs, initramfs, MP table; no
# modules, ACPI or PCI). Writes DIR/bzImage and DIR/config (default DIR:
# build/linux under the repository). Takes minutes; installs the compiler and
# the source package with apt-get when run as root and they are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=6.1; out=$repo/build/linux; jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build-kernel.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$version" in 6.1|6.12) ;; *) echo "build-kernel.sh: --version must be 6.1 or 6.12, not '$version'" >&2; exit 2 ;; esac

packages=(build-essential bc bison flex libelf-dev lz4 xz-utils cpio "linux-source-$version")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "build-kernel.sh: missing ${missing[*]}; run as root or install them" >&2; exit 1; }
  echo "build-kernel.sh: installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null ||
    { echo "build-kernel.sh: apt-get install failed" >&2; exit 1; }
fi

tarball=$(ls /usr/src/linux-source-"$version".tar.* 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "build-kernel.sh: no /usr/src/linux-source-$version.tar.* (package linux-source-$version)" >&2; exit 1; }
mkdir -p "$out"
src=$out/src
if [ ! -f "$src/.thaw-extracted" ] || [ "$tarball" -nt "$src/.thaw-extracted" ]; then
  echo "build-kernel.sh: extracting $tarball"
  rm -rf "$src"; mkdir -p "$src"
  tar -xf "$tarball" -C "$src" --strip-components=1
  touch "$src/.thaw-extracted"
fi

cd "$src"
make -s tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m -O . .config "$here/microvm.config" >/dev/null
# The merge overrides tinyconfig's choices (compression, tick): Kconfig
# warns about each; show its output only when it fails.
make -s olddefconfig >"$out/olddefconfig.log" 2>&1 || { cat "$out/olddefconfig.log" >&2; exit 1; }
# Every option the fragment asks for must have taken: one that did not
# (a dependency missing) would otherwise surface as a guest that never boots.
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qx "$line" .config || { echo "build-kernel.sh: $line did not take (see its dependencies)" >&2; bad=1; } ;;
    "# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; grep -q "^$opt=" .config && { echo "build-kernel.sh: $opt is set, the fragment says not" >&2; bad=1; } ;;
  esac
done <"$here/microvm.config"
[ "$bad" -eq 0 ] || exit 1

echo "build-kernel.sh: building bzImage with $jobs jobs (minutes)"
start=$(date +%s)
make -s -j"$jobs" bzImage
cp arch/x86/boot/bzImage "$out/bzImage.tmp" && mv "$out/bzImage.tmp" "$out/bzImage"
cp .config "$out/config"
echo "build-kernel.sh: $out/bzImage ($(stat -c %s "$out/bzImage") bytes, Linux $(make -s kernelversion), $(( $(date +%s) - start )) s)"
