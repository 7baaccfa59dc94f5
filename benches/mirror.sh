#!/usr/bin/env bash
# Benchmark: `mirror` of COMMITS (default 1000) commits, each changing the desired state,
# into a registry on 127.0.0.1: the backfill, the no-op run on the up-to-date mirror, one
# new commit on top, then 30 commits through a proxy that holds every request 20 ms (a
# registry across a network). Each row has the wall time and the number of registry
# requests (from the registry's access log).
#
# The registry keeps its storage in memory (/dev/shm) where there is one, so that the
# figures measure margo-gitops rather than this machine's disk: CNCF Distribution syncs
# every file it writes, and on a slow virtual disk that alone doubles the backfill.
# BENCH_REGISTRY_ON_DISK=1 keeps it in the work folder instead.
#
# usage: benches/mirror.sh [COMMITS]   (needs docker-registry and python3; builds release)
n=${1:-1000}
. "$(dirname "$0")/common.sh"
if [ -z "${BENCH_REGISTRY_ON_DISK:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  storage=$(mktemp -d /dev/shm/margo-bench.XXXXXX)
  trap 'cleanup; rm -rf "$storage"' EXIT
  where="in memory"
else
  storage="$work/registry"
  where="on disk"
fi
registry_storage=$storage start_registry "$work/access.log"
export MARGO_GITOPS_CACHE_DIR="$work/cache"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org
"$root/poc-app/images/build.sh" "$work/images" > /dev/null
"$bin" -q package prepare "$root/poc-app" --image "web=$work/images/poc-app-web.tar" \
  --image "redis=$work/images/redis.tar" -o "$work/dist" > /dev/null
"$bin" -q package publish "$work/dist" --plain-http --to "127.0.0.1:$port/bench/poc-app" > /dev/null

# history DIR REGISTRY COMMITS: a repository of COMMITS commits, each changing a value.
history() {
  git init -q -b main "$1" && cp -r "$root/poc-app" "$1/app"
  printf 'app: app\npackageRepository: %s/bench/poc-app\ndesiredStateRepository: %s/bench/%s-desired\nplainHttp: true\ndeployments:\n  - name: site-0001\n    values: [values.yaml]\n' "$2" "$2" "$1" > "$1/.margo-gitops.yaml"
  for i in $(seq 1 "$3"); do
    printf 'siteId: site-%s\n' "$i" > "$1/values.yaml"
    git -C "$1" add -A
    GIT_COMMITTER_DATE="@$((1700000000 + i * 60))" GIT_AUTHOR_DATE="@$((1700000000 + i * 60))" git -C "$1" commit -qm "change $i"
  done
}

requests() { grep -c '" [0-9][0-9][0-9] ' "$work/access.log" || true; }
run() {
  local label=$1; shift
  local before; before=$(requests)
  local start; start=$(date +%s%N)
  "$@" > /dev/null
  local end; end=$(date +%s%N)
  printf '%-36s %7.2f s  %6d registry requests\n' "$label" "$(echo "($end - $start) / 1000000000" | bc -l)" "$(( $(requests) - before ))"
}

echo "registry storage $where; $(nproc) cores"
history repo "127.0.0.1:$port" "$n"
cd repo
run "mirror $n commits (backfill)" "$bin" -q mirror
run "mirror again (no-op)" "$bin" -q mirror
printf 'siteId: one-more\n' > values.yaml && git commit -qam "one more"
run "mirror 1 new commit" "$bin" -q mirror
run "mirror --verify-existing (no-op)" "$bin" -q mirror --verify-existing
cd ..

# 30 commits through a proxy that adds 20 ms to every request.
python3 -u "$root/tests/support/fault_proxy.py" "$port" "$work/proxy.log" --latency 20 > "$work/proxy.out" & pids+=($!)
until grep -q listening "$work/proxy.out" 2>/dev/null; do sleep 0.05; done
proxy=$(awk '{print $2}' "$work/proxy.out")
history far "127.0.0.1:$proxy" 30
cd far
run "mirror 30 commits, 20 ms per request" "$bin" -q mirror
