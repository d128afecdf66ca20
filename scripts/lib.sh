# Shared by scripts/test, scripts/demo and the benchmarks: install what the
# build and the tests need (Debian 12 packages, idempotent) and build.
# shellcheck shell=bash

SA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Build and test dependencies.
SA_PACKAGES=(
  build-essential cmake pkg-config
  librsync-dev libgit2-dev libsqlite3-dev libpoco-dev libxxhash-dev
  libgtest-dev libgmock-dev libssl-dev libtomlplusplus-dev
  nginx curl git git-lfs fcgiwrap sqlite3 systemd ca-certificates
  strace  # tests/support/syscall_counter: system calls of a pass, counted
  prometheus  # promtool checks the metrics and the alert rules; a real Prometheus scrapes the daemon
  zlib1g-dev  # common/stats reads gzip'd access logs with zlib
  chromium  # tests/integration/stats_test: the --html report, screenshot headless
  time  # scripts/bench-stats: wall time and peak RSS (/usr/bin/time)
  clang libclang-rt-14-dev  # scripts/fuzz: clang with libFuzzer and the sanitizers
)

sa_log() { printf '==> %s\n' "$*" >&2; }

# Installs the packages that are missing. Runs apt-get only when needed.
sa_install_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  sa_log "installing: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # A package's service may fail to start where there is no init system; that is fine here.
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends --fix-broken "${missing[@]}"
  # Debian starts nginx after installing it; the tests run their own instances.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
    "${sudo[@]}" systemctl stop nginx || true
  fi
}

sa_install_deps() { sa_install_packages "${SA_PACKAGES[@]}"; }

# The real npm Hugging Face client that the Hub API tests drive (tests/js):
# Node and npm from Debian only where there are none (a newer Node may
# already be installed), and `npm ci` only when node_modules is missing or
# older than the lock file.
sa_install_js_clients() {
  local missing=()
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    sa_install_packages "${missing[@]}"
  fi
  local js="$SA_ROOT/tests/js"
  if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules" ]; then
    sa_log "installing the npm test clients in $js"
    npm ci --prefix "$js" --no-audit --no-fund --loglevel=error >&2
    # npm ci may keep the directory's old mtime; the next run must see it current.
    touch "$js/node_modules"
  fi
}

# sa_configure DIR [cmake args...]: configures a build in DIR.
sa_configure() {
  local dir="$1"
  shift
  cmake -S "$SA_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
}

# sa_build DIR [cmake args...]: configures and builds into DIR with 2 jobs.
sa_build() {
  local dir="$1"
  shift
  sa_log "building in $dir"
  sa_configure "$dir" "$@"
  cmake --build "$dir" -j2
}
