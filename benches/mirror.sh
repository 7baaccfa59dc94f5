#!/usr/bin/env bash
# Benchmark: `mirror` of COMMITS (default 1000) commits, each changing the desired state,
# into a registry on 127.0.0.1; then the no-op run on the up-to-date mirror, with the
# number of registry requests each run makes (from the registry's access log).
#
# usage: benches/mirror.sh [COMMITS]   (needs docker-registry; builds release)
n=${1:-1000}
. "$(dirname "$0")/common.sh"
start_registry "$work/access.log"
export MARGO_GITOPS_CACHE_DIR="$work/cache"

git init -q -b main repo && cd repo
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org
cp -r "$root/poc-app" app
"$root/poc-app/images/build.sh" "$work/images" > /dev/null
"$bin" -q package prepare app --image "web=$work/images/poc-app-web.tar" --image "redis=$work/images/redis.tar" -o "$work/dist" > /dev/null
"$bin" -q package publish "$work/dist" --plain-http --to "127.0.0.1:$port/bench/poc-app" > /dev/null
printf 'app: app\npackageRepository: 127.0.0.1:%s/bench/poc-app\ndesiredStateRepository: 127.0.0.1:%s/bench/desired\nplainHttp: true\ndeployments:\n  - name: site-0001\n    values: [values.yaml]\n' "$port" "$port" > .margo-gitops.yaml
for i in $(seq 1 "$n"); do
  printf 'siteId: site-%s\n' "$i" > values.yaml
  git add -A && GIT_COMMITTER_DATE="@$((1700000000 + i * 60))" GIT_AUTHOR_DATE="@$((1700000000 + i * 60))" git commit -qm "change $i"
done

requests() { grep -c '" [0-9][0-9][0-9] ' "$work/access.log" || true; }
run() {
  local label=$1; shift
  local before; before=$(requests)
  local start; start=$(date +%s%N)
  "$@" > /dev/null
  local end; end=$(date +%s%N)
  printf '%-32s %7.1f s  %6d registry requests\n' "$label" "$(echo "($end - $start) / 1000000000" | bc -l)" "$(( $(requests) - before ))"
}
run "mirror $n commits (backfill)" "$bin" -q mirror
run "mirror again (no-op)" "$bin" -q mirror
printf 'siteId: one-more\n' > values.yaml && git commit -qam "one more"
run "mirror 1 new commit" "$bin" -q mirror
