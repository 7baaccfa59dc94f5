#!/usr/bin/env bash
# Benchmark: the registry transport and the package's compression, each side by side with
# the tool a user would compare it with, against CNCF Distribution on 127.0.0.1:
#   1. prepare pulling an image of 4 random 64 MiB layers   vs  skopeo copy docker://… oci:…
#   2. prepare from a docker-save archive (256 MiB random)  vs  tar -czf of that archive
#      (the PoC's step), and the same with compressible data (a tar of /usr/lib)
#   3. publish of a fresh package                            vs  curl's monolithic PUT of it
#   4. publish through a proxy failing 10% of requests: successes and time vs no faults
# Each pair runs alternately, ROUNDS (default 5) times, so that both sides see the same
# machine; a row gives the median and, in brackets, the best time of each side, and the
# ratio of the medians (ours / theirs: below 1 is faster).
#
# usage: benches/transport.sh [ROUNDS]   (needs docker-registry, skopeo, curl; builds release)
rounds=${1:-5}
. "$(dirname "$0")/common.sh"
start_registry
reg="127.0.0.1:$port"
export MARGO_GITOPS_CACHE_DIR="$work/cache" SOURCE_DATE_EPOCH=0

timed() { # SETUP COMMAND: wall time in ns of COMMAND, SETUP run before it, untimed
  eval "$1"
  local s; s=$(date +%s%N)
  eval "$2" > /dev/null 2>&1 || { echo "failed: $2" >&2; exit 1; }
  echo $(( $(date +%s%N) - s ))
}
stats() { # NS... → "median s (best s)"
  python3 -c 'import statistics,sys; t=[int(a)/1e9 for a in sys.argv[1:]]; print(f"{statistics.median(t):.2f} s ({min(t):.2f})")' "$@"
}
median() { python3 -c 'import statistics,sys; print(statistics.median(int(a) for a in sys.argv[1:]))' "$@"; }
# LABEL SETUP COMMAND THEIR_LABEL THEIR_SETUP THEIR_COMMAND: one row, the two run in turns.
side_by_side() {
  local ours=() theirs=()
  for round in $(seq 1 "$rounds"); do
    ours+=("$(timed "$2" "$3")")
    theirs+=("$(timed "$5" "$6")")
  done
  printf '%-48s %-16s %-30s %-16s %s\n' "$1" "$(stats "${ours[@]}")" "$4" "$(stats "${theirs[@]}")" \
    "$(python3 -c "print(f'{$(median "${ours[@]}") / $(median "${theirs[@]}"):.2f}x')")"
}
best() { # SETUP COMMAND: "median s (best s)" of ROUNDS runs
  local all=()
  for round in $(seq 1 "$rounds"); do all+=("$(timed "$1" "$2")"); done
  stats "${all[@]}"
}

# An OCI image layout of LAYERS layers of SIZE MiB from SOURCE (random or a file).
make_image() { # dir layers size_mib source
  local dir=$1 n=$2 size=$3 src=$4 diffs="" layers=""
  mkdir -p "$dir/blobs/sha256" rootfs
  for i in $(seq 1 "$n"); do
    if [ "$src" = random ]; then head -c "$((size << 20))" /dev/urandom > rootfs/blob.bin
    else cp "$src" rootfs/blob.bin; fi
    tar -C rootfs -cf layer.tar . && rm rootfs/blob.bin
    diffs="$diffs\"sha256:$(sha256sum layer.tar | cut -d' ' -f1)\","
    gzip -1 layer.tar
    local d; d=$(sha256sum layer.tar.gz | cut -d' ' -f1)
    layers="$layers{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s layer.tar.gz)},"
    mv layer.tar.gz "$dir/blobs/sha256/$d"
  done
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "${diffs%,}" > c.json
  local c; c=$(sha256sum c.json | cut -d' ' -f1); local cs; cs=$(stat -c %s c.json); mv c.json "$dir/blobs/sha256/$c"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$c" "$cs" "${layers%,}" > m.json
  local m; m=$(sha256sum m.json | cut -d' ' -f1); local ms; ms=$(stat -c %s m.json); mv m.json "$dir/blobs/sha256/$m"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' "$m" "$ms" > "$dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  rmdir rootfs
}

echo "machine: $(nproc) cores; $rounds rounds, each pair run in turns; median (best)"

# 1. Pulling an image: 4 layers of 64 MiB of random data.
make_image four 4 64 random
skopeo copy -q --dest-tls-verify=false oci:four:1 "docker://$reg/bench/four:1"
mkdir -p pulled && printf 'services:\n  four:\n    image: %s/bench/four:1\n' "$reg" > pulled/compose.yaml
side_by_side "prepare pulling 4 x 64 MiB layers (cold cache)" \
  'rm -rf "$work/cache" dist' '"$bin" -q package prepare pulled --plain-http --version 1.0.0 -o dist' \
  "skopeo copy docker:// oci:" 'rm -rf out' 'skopeo copy -q --src-tls-verify=false "docker://$reg/bench/four:1" oci:out:1'

# 2. A docker-save archive (uncompressed layer) compressed into the package.
archive() { # name source_for_one_layer size
  make_image "img-$1" 1 "$3" "$2"
  skopeo copy -q "oci:img-$1:1" "docker-archive:$1.tar:bench/$1:1" 2>/dev/null
  mkdir -p "app-$1" && printf 'services:\n  x:\n    build: .\n    image: bench/%s:1\n' "$1" > "app-$1/compose.yaml"
}
archive random random 256
side_by_side "prepare from docker save, 256 MiB random" \
  'rm -rf "$work/cache" dist' '"$bin" -q package prepare app-random --version 1.0.0 --image x=random.tar -o dist' \
  "tar -czf (the PoC)" 'rm -f poc.tar.gz' 'tar -czf poc.tar.gz random.tar'
find /usr/lib -maxdepth 2 -type f -size -20M 2>/dev/null | head -4000 | tar -cf usr-files.tar -T - 2>/dev/null || true
archive usr "$work/usr-files.tar" 0
size=$(du -m usr-files.tar | cut -f1)
side_by_side "prepare from docker save, ${size} MiB of /usr/lib" \
  'rm -rf "$work/cache" dist' '"$bin" -q package prepare app-usr --version 1.0.0 --image x=usr.tar -o dist' \
  "tar -czf (the PoC)" 'rm -f poc.tar.gz' 'tar -czf poc.tar.gz usr.tar'
echo "  package $(du -m dist/*.tar.gz | cut -f1) MiB, tar -czf $(du -m poc.tar.gz | cut -f1) MiB"
# How compression scales: the same on one core (the bytes are the same).
if [ "$(nproc)" -gt 1 ]; then
  printf '%-48s %-16s (%s cores: the row above)\n' "  the same pinned to one core (taskset -c 0)" \
    "$(best 'rm -rf "$work/cache" dist' 'taskset -c 0 "$bin" -q package prepare app-usr --version 1.0.0 --image x=usr.tar -o dist')" "$(nproc)"
fi

# 3. Publishing a fresh package (one 256 MiB archive, random) vs one monolithic PUT; each
#    round into a new repository, with nothing remembered that would let it mount the blob.
"$bin" -q package prepare app-random --version 1.0.0 --image "x=random.tar" -o dist-random > /dev/null
pkg=$(ls dist-random/*.tar.gz)
digest="sha256:$(sha256sum "$pkg" | cut -d' ' -f1)"   # known beforehand, as publish knows it
put() {
  local loc; loc=$(curl -sf -X POST -D - -o /dev/null "http://$reg/v2/bench/curl-$round/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:" {print $2}')
  case "$loc" in http*) ;; *) loc="http://$reg$loc";; esac
  # -T streams the file (--data-binary would read it into memory first).
  curl -sf -T "$pkg" -H 'Content-Type: application/octet-stream' "$loc&digest=$digest" -o /dev/null
}
side_by_side "publish a fresh $(du -m "$pkg" | cut -f1) MiB package" \
  'rm -f "$work/cache/blob-locations.json"' '"$bin" -q package publish dist-random --plain-http --to "$reg/bench/fresh-$round"' \
  "curl POST, then PUT -T (streamed)" ':' 'put'
printf '%-48s %s\n' "publish it again, unchanged" "$(best ':' '"$bin" -q package publish dist-random --plain-http --to "$reg/bench/fresh-1"')"

# 4. Publishing through a proxy that fails 10% of requests (503, 429 + Retry-After: 1,
#    resets before and after the registry acted, bodies cut short): the quickstart's package.
python3 "$root/tests/support/fault_proxy.py" "$port" "$work/proxy.log" --seed 1 --rate 0 > proxy.out & pids+=($!)
until [ -s proxy.out ]; do sleep 0.1; done
pport=$(awk '{print $2}' proxy.out)
"$root/poc-app/images/build.sh" demo > /dev/null
"$bin" -q package prepare "$root/poc-app" -o dist-poc --image web=demo/poc-app-web.tar --image redis=demo/redis.tar > /dev/null
runs=20 ok=0 clean=0 faulty=0
for i in $(seq 1 $runs); do
  rm -f "$work/cache/blob-locations.json"
  curl -sf "http://127.0.0.1:$pport/_proxy?seed=$i&rate=0" > /dev/null
  s=$(date +%s%N); "$bin" -q package publish dist-poc --plain-http --to "127.0.0.1:$pport/bench/clean-$i" > /dev/null 2>&1
  clean=$(( clean + $(date +%s%N) - s ))
  rm -f "$work/cache/blob-locations.json"
  curl -sf "http://127.0.0.1:$pport/_proxy?seed=$i&rate=0.1" > /dev/null
  s=$(date +%s%N)
  if "$bin" -q package publish dist-poc --plain-http --to "127.0.0.1:$pport/bench/faulty-$i" > /dev/null 2>&1; then ok=$((ok+1)); fi
  faulty=$(( faulty + $(date +%s%N) - s ))
done
faults=$(grep -cE ' (503|429|reset|reset-after-[0-9]+|[0-9]+ truncated)$' "$work/proxy.log" || true)
printf '%-48s %-16s mean %.2f s with faults, %.2f s without; %s faults injected\n' \
  "publish under 10% transient faults, $runs runs" "$ok/$runs ok" \
  "$(python3 -c "print($faulty/$runs/1e9)")" "$(python3 -c "print($clean/$runs/1e9)")" "$faults"
