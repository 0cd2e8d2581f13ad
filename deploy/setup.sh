#!/usr/bin/env bash
# Installs what thaw needs to build, test and benchmark on Debian 12.
# Idempotent and quiet: prints only what it installs, or what failed.
#   deploy/setup.sh            build + test dependencies
#   deploy/setup.sh --bench    also QEMU and hyperfine for the side-by-side benchmarks, gnuplot for bench/plot.sh
#   deploy/setup.sh --fuzz     also clang 14 and its libFuzzer/sanitizer runtimes (tests/fuzz)
#   deploy/setup.sh --service-user  also the `thaw` system user thawd runs as (group kvm)
#   deploy/setup.sh --examples also Node.js and the Node client example's packages (examples/node-client)
set -euo pipefail

service_user=0
examples=0
packages=(
  build-essential cmake pkg-config binutils
  liburing-dev libxxhash-dev capnproto libcapnp-dev libspdlog-dev libfmt-dev
  libseccomp-dev  # the seccomp filters on vCPU threads (base/seccomp_filter.h)
  libgtest-dev libcli11-dev nlohmann-json3-dev libtoml11-dev prometheus-cpp-dev
  liblua5.4-dev  # liblua5.4.a: the static Lua runtime (guest/runtimes/lua) and its tests
  busybox-static  # a real static program for the function runtime (tests, main job)
)
for arg in "$@"; do
  case "$arg" in
    --bench) packages+=(qemu-system-x86 hyperfine gnuplot-nox python3) ;;
    --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    --service-user) service_user=1 ;;
    --examples) examples=1
      # Debian's nodejs and npm, unless a Node.js is already there (NodeSource's includes npm).
      command -v node >/dev/null || packages+=(nodejs)
      command -v npm >/dev/null || packages+=(npm) ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then exec sudo "$0" "$@"; fi
  echo "setup.sh: run as root (apt-get needs it)" >&2
  exit 1
fi

# thawd's own unprivileged user: in the group that owns /dev/kvm (kvm on
# Debian, by udev), with no login and no home. thawd started as root with
# user = "thaw" becomes it; the systemd unit starts it as thaw directly.
if [ "$service_user" -eq 1 ]; then
  getent group kvm >/dev/null || groupadd --system kvm
  if ! getent passwd thaw >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --groups kvm thaw
    echo "setup.sh: created system user thaw (groups: thaw, kvm)"
  fi
fi

# The example's exact packages (package-lock.json) from npm's registry, as
# the user who owns the checkout, so that a later build as that user can
# write there.
install_example_packages() {
  local dir owner
  dir="$(cd "$(dirname "$0")/../examples/node-client" && pwd)"
  [ -f "$dir/node_modules/capnp-es/package.json" ] && [ "$dir/node_modules" -nt "$dir/package-lock.json" ] && return 0
  owner=$(stat -c %U "$dir")
  echo "setup.sh: installing the Node client example's packages (npm ci in $dir)"
  if [ "$owner" != root ] && command -v runuser >/dev/null; then
    runuser -u "$owner" -- npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  else
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: apt-get failed" >&2
    exit 1
  fi
fi
[ "$examples" -eq 0 ] || install_example_packages
