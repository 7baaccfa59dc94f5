#!/usr/bin/env bash
# Benchmark: peak memory and time of `package prepare` and `package publish` with an image
# of SIZE_MIB (default 1024) MiB of incompressible data, against a registry on 127.0.0.1.
# Memory must stay flat as images grow: blobs stream from and to files, never whole.
#
# usage: benches/big-image.sh [SIZE_MIB]   (needs docker-registry, /usr/bin/time; builds release)
size=${1:-1024}
. "$(dirname "$0")/common.sh"
start_registry

# A one-layer OCI archive: SIZE_MIB of random bytes, gzipped fast (random data does not shrink).
mkdir -p rootfs oci/blobs/sha256 app
head -c "$((size * 1024 * 1024))" /dev/urandom > rootfs/blob.bin
tar -C rootfs -cf - . | tee >(sha256sum | cut -d' ' -f1 > diffid) | gzip -1 > layer.tgz
layer=$(sha256sum layer.tgz | cut -d' ' -f1); mv layer.tgz "oci/blobs/sha256/$layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$(cat diffid)" > c.json
config=$(sha256sum c.json | cut -d' ' -f1); mv c.json "oci/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$(wc -c < "oci/blobs/sha256/$config")" "$layer" "$(wc -c < "oci/blobs/sha256/$layer")" > m.json
manifest=$(sha256sum m.json | cut -d' ' -f1); msize=$(wc -c < m.json); mv m.json "oci/blobs/sha256/$manifest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' "$manifest" "$msize" > oci/index.json
printf '{"imageLayoutVersion":"1.0.0"}' > oci/oci-layout
tar -C oci -cf big.tar oci-layout index.json blobs
rm -rf rootfs oci
printf 'services:\n  big:\n    build: .\n    image: big:1\n' > app/compose.yaml

measure() {
  local label=$1; shift
  /usr/bin/time -f "%M %e" -o t.txt "$@" > /dev/null
  read -r rss secs < t.txt
  printf '%-34s peak RSS %6d KiB  %6.2f s\n' "$label" "$rss" "$secs"
}
echo "image: $size MiB of random data, layer $(du -m big.tar | cut -f1) MiB"
export MARGO_GITOPS_CACHE_DIR="$work/cache" SOURCE_DATE_EPOCH=0
measure "prepare (cold cache)" "$bin" -q package prepare app --version 1.0.0 --image big=big.tar -o dist
measure "prepare (warm cache)" "$bin" -q package prepare app --version 1.0.0 --image big=big.tar -o dist
echo "package: $(du -m dist/*.tar.gz | cut -f1) MiB"
if command -v skopeo >/dev/null; then
  skopeo copy -q --dest-tls-verify=false oci-archive:big.tar "docker://127.0.0.1:$port/bench/image:1"
  mkdir -p pulled && printf 'services:\n  big:\n    image: 127.0.0.1:%s/bench/image:1\n' "$port" > pulled/compose.yaml
  MARGO_GITOPS_CACHE_DIR="$work/cache2" measure "prepare (pulled from registry)" "$bin" -q package prepare pulled --plain-http --version 1.0.0 -o dist2
fi
measure "publish (registry, new)" "$bin" -q package publish dist --plain-http --to "127.0.0.1:$port/bench/big"
measure "publish (registry, unchanged)" "$bin" -q package publish dist --plain-http --to "127.0.0.1:$port/bench/big"
measure "publish (OCI layout)" "$bin" -q package publish dist --to "oci-layout:$work/layout"
