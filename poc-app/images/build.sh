#!/bin/sh
# Writes the poc-app's two image archives (OCI archives, as `docker buildx build
# --output type=oci` writes them) into OUT_DIR, with no network and no Docker engine:
# only tar, gzip and sha256sum. They are demo images: `web` holds the app's code on no
# base image and `redis` a placeholder file, enough to show packaging end to end. For a
# device that must run them, build the real ones (`docker build`, `docker save`) and pass
# those archives to `package prepare --image` instead.
#
# usage: poc-app/images/build.sh OUT_DIR
set -eu
out=${1:?usage: build.sh OUT_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c < "$1" | tr -d ' '; }

# image NAME TAG CMD_JSON ROOTFS_DIR
image() {
  name=$1 tag=$2 cmd=$3 rootfs=$4
  d="$work/$name"
  mkdir -p "$d/blobs/sha256"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar \
    -C "$rootfs" -cf "$d/layer.tar" .
  diff_id=$(sha "$d/layer.tar")
  gzip -n -9 -c "$d/layer.tar" > "$d/layer.tar.gz"
  layer=$(sha "$d/layer.tar.gz")
  mv "$d/layer.tar.gz" "$d/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":%s,"WorkingDir":"/app"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"poc-app/images/build.sh"}]}' \
    "$cmd" "$diff_id" > "$d/config.json"
  config=$(sha "$d/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config" "$(size "$d/config.json")" "$layer" "$(size "$d/blobs/sha256/$layer")" > "$d/manifest.json"
  manifest=$(sha "$d/manifest.json")
  mv "$d/config.json" "$d/blobs/sha256/$config"
  mv "$d/manifest.json" "$d/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/%s:%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$(size "$d/blobs/sha256/$manifest")" "$name" "$tag" "$tag" > "$d/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$d/oci-layout"
  rm "$d/layer.tar"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=ustar \
    -C "$d" -cf "$out/$name.tar" oci-layout index.json blobs
  echo "$out/$name.tar  sha256:$manifest"
}

mkdir -p "$work/web-root/app" "$work/redis-root/data"
cp "$here/app.py" "$here/requirements.txt" "$work/web-root/app/"
printf 'placeholder for the redis image of the margo-gitops quickstart\n' > "$work/redis-root/data/README"
image poc-app-web 1.0.0 '["python","app.py"]' "$work/web-root"
image redis alpine '["redis-server"]' "$work/redis-root"
