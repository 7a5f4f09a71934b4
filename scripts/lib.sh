# Shared by the scripts in this folder: installs what Tally needs, builds the components.
# Source it; it changes nothing until a function is called.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs Debian packages that are missing, as root directly or through sudo.
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "missing: $*; install them with: apt-get install -y $*" >&2
      return 1
    fi
  fi
  say "installing $* with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Makes sure the toolchain target and redis-server are present.
ensure_prereqs() {
  command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust with rustup first" >&2; return 1; }
  warn_if_disk_low
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    say "adding the wasm32-wasip2 target (rustup target add wasm32-wasip2)"
    rustup target add wasm32-wasip2
  fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  # The browser test drives Debian's headless Chromium through chromedriver (no browser
  # downloads from anywhere else).
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium chromium-driver
  fi
  # All sources, including spin-sdk's WIT that the host's bindings are generated from.
  cargo fetch --locked --quiet
  ensure_js_deps
}

# A build from a clean clone fills target/ with about 5 GB (debug, release and wasm32 builds).
# When the disk runs out mid-link, the linker dies of SIGBUS ("ld terminated with signal 7 [Bus
# error]"), which says nothing about space: say it up front instead.
warn_if_disk_low() {
  local free_kb
  free_kb=$(df -Pk . 2>/dev/null | awk 'NR == 2 { print $4 }')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt $((6 * 1024 * 1024)) ]; then
    say "warning: only $((free_kb / 1024)) MB free on this disk; a clean build needs about 5 GB"
  fi
}

# Installs the dashboard's JavaScript (uPlot, pinned by components/assets/js/package-lock.json)
# from the npm registry into target/js/node_modules, where the assets component's build script
# compiles it in. Skipped while the installed lockfile matches the committed one.
ensure_js_deps() {
  local src=components/assets/js dest=target/js
  cmp -s "$src/package-lock.json" "$dest/installed-lock.json" 2>/dev/null && return 0
  command -v npm >/dev/null 2>&1 || apt_install npm
  say "installing the dashboard's JavaScript with npm ci (into $dest)"
  mkdir -p "$dest"
  rm -f "$dest/installed-lock.json"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$src/package-lock.json" "$dest/installed-lock.json"
}

# Makes sure the load tools of record are present (benchmarks only).
# The Python tools the tests use, pinned by infra/tests/requirements.txt, in a virtual
# environment under target/ (nothing installed system-wide).
ensure_python_tools() {
  local req=infra/tests/requirements.txt venv=target/venv
  cmp -s "$req" "$venv/installed-requirements.txt" 2>/dev/null && return 0
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  say "installing the Python test tools into $venv (pip, pinned by $req)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/installed-requirements.txt"
}
# kubectl renders the Kustomize overlays under infra/. They use only what the Kustomize in
# Debian's kubernetes-client (kubectl 1.20, Kustomize v2) reads, so that package will do; a
# newer kubectl renders the same objects (checked with 1.20 and 1.32).
ensure_kubectl() {
  command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client
}
ensure_load_tools() {
  local missing=()
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# Builds every component (and the test probe) for wasm32-wasip2 into target/wasm32-wasip2/component/.
build_components() {
  say "building the components for wasm32-wasip2"
  cargo build --target wasm32-wasip2 --profile component \
    -p visit -p visits -p metrics -p summary -p health -p assets -p spin-probe -p incr-yardstick
}

# Prints a free loopback TCP port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits (up to 60 s) until `curl URL` succeeds; fails if the process PID dies first.
wait_for_url() {
  local url=$1 pid=$2 deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited before $url answered" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "$url did not answer within 60 s" >&2; return 1; }
    sleep 0.1
  done
}

# Runs wrk and prints "req/s p50 p99" (latencies in ms).
wrk_figures() {
  local out
  out=$(wrk "$@" --latency)
  echo "$out" >&2
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec:/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

# Converts a wrk latency like 1.23ms, 850.00us or 1.01s to milliseconds.
to_ms() {
  python3 -c 'import sys,re; v=sys.argv[1]; m=re.match(r"([\d.]+)(us|ms|s)$", v); n=float(m.group(1)); print(round(n/1000 if m.group(2)=="us" else n*1000 if m.group(2)=="s" else n, 3))' "$1"
}

# The port of shard "a" from a tally-host log (the host prints "shard a = redis://...").
shard_port_from_log() {
  sed -n 's/^tally-host: shard a = redis:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1"
}

# Waits until no shard whose port is given is rewriting its AOF (a rewrite after a bulk load
# competes for the CPU with whatever is measured next).
wait_for_aof_quiet() {
  local port
  for port in "$@"; do
    while redis-cli -h 127.0.0.1 -p "$port" info persistence | tr -d '\r' \
        | grep -qE '^aof_rewrite_(in_progress|scheduled):1$'; do
      sleep 0.2
    done
  done
}

# The ports of every shard in a tally-host log.
shard_ports_from_log() {
  sed -n 's/^tally-host: shard [a-z0-9_-]* = redis:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1"
}

# redis-benchmark INCR with 64 clients against 127.0.0.1:$1, the yardstick every benchmark
# prints its figures against. Prints redis-benchmark's line on stderr and the ops/s on stdout.
incr_yardstick() {
  local out
  out=$(redis-benchmark -h 127.0.0.1 -p "$1" -t incr -c 64 -n 300000 -q 2>/dev/null | tr '\r' '\n' | grep 'INCR:' | tail -1)
  echo "$out" >&2
  echo "$out" | awk '{print $2}'
}

# The benches' host: `start_tally_host [NAME=value ...] [-- host flags ...]` starts
# target/release/tally-host with two local shards on a free loopback port, with the given
# environment (e.g. SPIN_VARIABLE_* settings), its components' log lines discarded. Sets $pid,
# $port, $log (the host's stderr: shard addresses) and $shard_port (shard a's port).
# `stop_tally_host` stops it; the benches also call it from their EXIT trap.
pid=""
start_tally_host() {
  local settings=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do settings+=("$1"); shift; done
  [ $# -eq 0 ] || shift
  port=$(free_port)
  log=$(mktemp)
  env "${settings[@]}" target/release/tally-host --quiet --shards 2 \
    --listen "127.0.0.1:$port" "$@" >/dev/null 2>"$log" &
  pid=$!
  wait_for_url "http://127.0.0.1:$port/health/live" "$pid"
  shard_port=$(shard_port_from_log "$log")
}
stop_tally_host() {
  [ -z "$pid" ] || { kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  pid=""
}
