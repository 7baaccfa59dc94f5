#!/usr/bin/env bash
# Installs margo-gitops for the GitHub Action (action.yml), then puts it on GITHUB_PATH.
#
# MARGO_GITOPS_INSTALL:
#   release  the release archive of this action's version for the runner's OS and
#            architecture, refused unless its SHA-256 is the one pinned in
#            scripts/action-checksums.txt (committed with the action, so a release asset
#            swapped after the fact cannot run);
#   source   `cargo install --locked` from the action's own source;
#   auto     (default) release when a checksum is pinned for this runner, else source.
#
# `action-install.sh plan` only decides: it writes `mode`, and for a source build
# `cache-path` and `cache-key`, to GITHUB_OUTPUT, so that the action restores an earlier
# build with actions/cache (the key: this version, the runner, the action's ref and the
# hashes of Cargo.lock and of the sources). A source install then reuses what the cache
# brought back when its recorded key is this one, and builds otherwise.
# Inputs (environment): ACTION_PATH, RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH,
# GITHUB_OUTPUT (plan), HOME, GITHUB_SERVER_URL, MARGO_GITOPS_ACTION_REF (the action's
# ref); MARGO_GITOPS_RELEASE_URL overrides where release archives are fetched from (a
# mirror, or a test server); MARGO_GITOPS_CHECKSUMS the pinned checksum file.
set -euo pipefail
step="${1:-install}"

mode="${MARGO_GITOPS_INSTALL:-auto}"
action="${ACTION_PATH:?ACTION_PATH is not set}"
checksums="${MARGO_GITOPS_CHECKSUMS:-$action/scripts/action-checksums.txt}"
root="${RUNNER_TEMP:?RUNNER_TEMP is not set}/margo-gitops"
mkdir -p "$root/bin"

fail() { echo "::error title=margo-gitops install::$1" >&2; exit 1; }
sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$@" | cut -d' ' -f1; else shasum -a 256 "$@" | cut -d' ' -f1; fi
}

version="$(awk '$1 == "version" { print $2 }' "$checksums")"
[ -n "$version" ] || fail "$checksums names no version"
case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac
file="margo-gitops-$version-$target.tar.gz"
pinned=""
[ -n "$target" ] && pinned="$(awk -v f="$file" '$2 == f { print $1 }' "$checksums")"

if [ "$mode" = auto ]; then
  if [ -n "$pinned" ]; then mode=release; else mode=source; fi
fi

# A source build lives outside RUNNER_TEMP (emptied with every job) so that actions/cache
# can save it at the end of the job and bring it back in the next one.
build="${HOME:?HOME is not set}/.cache/margo-gitops/source-build"
key() {
  local lock sources
  lock="$(sha256 "$action/Cargo.lock" | cut -c1-16)"
  sources="$(cd "$action" && find Cargo.toml src -type f | LC_ALL=C sort | while read -r f; do sha256 "$f"; done | sha256 | cut -c1-16)"
  echo "margo-gitops-$version-${RUNNER_OS:-os}-${RUNNER_ARCH:-arch}-${MARGO_GITOPS_ACTION_REF:-local}-lock-$lock-src-$sources"
}

if [ "$step" = plan ]; then
  {
    echo "mode=$mode"
    if [ "$mode" = source ]; then echo "cache-path=$build"; echo "cache-key=$(key)"; fi
  } >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
  exit 0
fi

case "$mode" in
  source)
    root="$build"
    wanted="$(key)"
    if [ -x "$root/bin/margo-gitops" ] && [ "$(cat "$root/key" 2>/dev/null)" = "$wanted" ]; then
      echo "margo-gitops $version: the source build restored from the cache ($wanted)"
    else
      echo "building margo-gitops $version from source with cargo"
      rm -rf "$root" && mkdir -p "$root"
      cargo install --locked --quiet --path "$action" --root "$root"
      echo "$wanted" > "$root/key"
    fi
    ;;
  release)
    [ -n "$target" ] || fail "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}; set install: source"
    [ -n "$pinned" ] || fail "no pinned SHA-256 for $file in $checksums; set install: source"
    base="${MARGO_GITOPS_RELEASE_URL:-${GITHUB_SERVER_URL:-https://github.com}/margo-gitops/margo-gitops/releases/download/v$version}"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 -o "$tmp/$file" "$base/$file" || fail "cannot download $base/$file"
    if command -v sha256sum >/dev/null; then
      actual="$(sha256sum "$tmp/$file" | cut -d' ' -f1)"
    else
      actual="$(shasum -a 256 "$tmp/$file" | cut -d' ' -f1)"
    fi
    [ "$actual" = "$pinned" ] || fail "$file has SHA-256 $actual, not the pinned $pinned: refusing to run it"
    tar -xzf "$tmp/$file" -C "$tmp"
    install -m 0755 "$tmp/margo-gitops-$version-$target/margo-gitops" "$root/bin/margo-gitops"
    echo "installed margo-gitops $version ($target), SHA-256 $actual verified"
    ;;
  *) fail "install: expected release, source or auto, got '$mode'" ;;
esac
echo "$root/bin" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
