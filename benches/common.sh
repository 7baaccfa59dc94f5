# Sourced by the benchmarks: builds the release binary (`$bin`), makes a work folder
# (`$work`, removed on exit, the current folder), and `start_registry [ACCESS_LOG]` starts
# CNCF Distribution on a free 127.0.0.1 port (`$port`), stopped on exit; with ACCESS_LOG,
# its request log goes to that file; `$registry_storage` names its storage folder (default:
# `$work/registry`). Background processes added to `pids` are stopped too.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/margo-gitops"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_registry() {
  local log=${1:-}
  port=$(free_port)
  printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: %s}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$([ -n "$log" ] && echo false || echo true)" "${registry_storage:-$work/registry}" "$port" > "$work/registry.yml"
  docker-registry serve "$work/registry.yml" > "${log:-/dev/null}" 2>/dev/null & pids+=($!)
  until curl -s "http://127.0.0.1:$port/v2/" > /dev/null; do sleep 0.1; done
}
