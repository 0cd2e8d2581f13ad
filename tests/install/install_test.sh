#!/usr/bin/env bash
# `cmake --install` into a scratch prefix puts everything where the
# programs, the unit and the example config expect it: thaw and thawd in
# bin/, the guest images and the Linux init agent in lib/thaw/ (where both
# look beside themselves),
# the unit naming the installed thawd, and an example config that
# `thawd --check-config` accepts.
# Usage: install_test.sh CMAKE_COMMAND BUILD_DIR
set -euo pipefail
cmake_command=$1
build_dir=$2
prefix=$(mktemp -d /tmp/thaw-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "install_test: $*" >&2; exit 1; }

"$cmake_command" --install "$build_dir" --prefix "$prefix" >"$prefix.log" 2>&1 || { cat "$prefix.log"; rm -f "$prefix.log"; fail "cmake --install failed"; }
rm -f "$prefix.log"
for f in bin/thaw bin/thawd; do [ -x "$prefix/$f" ] || fail "$f is missing or not executable"; done
[ -x "$prefix/lib/thaw/thaw-init" ] || fail "lib/thaw/thaw-init (the Linux guest's init agent) is missing or not executable"
for f in lib/thaw/thaw-mini.elf lib/thaw/thaw-mini-halt.elf lib/systemd/system/thawd.service \
         share/doc/thaw/thawd.example.toml share/doc/thaw/README.md; do
  [ -s "$prefix/$f" ] || fail "$f is missing or empty"
done
grep -q "^ExecStart=$prefix/bin/thawd --config /etc/thaw/thawd.toml$" "$prefix/lib/systemd/system/thawd.service" ||
  fail "the unit does not start $prefix/bin/thawd: $(grep ExecStart= "$prefix/lib/systemd/system/thawd.service")"
# The guest image is an ELF the installed thaw can read.
head -c 4 "$prefix/lib/thaw/thaw-mini.elf" | grep -q "ELF" || fail "thaw-mini.elf is not an ELF file"
# thaw-init is packed into a guest that has no libraries: it must be static.
if command -v readelf >/dev/null && readelf -l "$prefix/lib/thaw/thaw-init" | grep -q "Requesting program interpreter"; then
  fail "lib/thaw/thaw-init is dynamically linked"
fi
out=$("$prefix/bin/thawd" --config "$prefix/share/doc/thaw/thawd.example.toml" --check-config 2>&1) || true
case "$out" in
  *"is good"*) ;;
  *"no user 'thaw'"*) ;;  # a host without the service user: the config itself parsed
  *) fail "the installed example config is refused: $out" ;;
esac
"$prefix/bin/thaw" --help >/dev/null || fail "the installed thaw does not run"
echo "install_test: ok ($prefix)"
