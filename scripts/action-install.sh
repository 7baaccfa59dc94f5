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
# Inputs (environment): ACTION_PATH, RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH,
# GITHUB_SERVER_URL; MARGO_GITOPS_RELEASE_URL overrides where release archives are fetched
# from (a mirror, or a test server); MARGO_GITOPS_CHECKSUMS the pinned checksum file.
set -euo pipefail

mode="${MARGO_GITOPS_INSTALL:-auto}"
action="${ACTION_PATH:?ACTION_PATH is not set}"
checksums="${MARGO_GITOPS_CHECKSUMS:-$action/scripts/action-checksums.txt}"
root="${RUNNER_TEMP:?RUNNER_TEMP is not set}/margo-gitops"
mkdir -p "$root/bin"

fail() { echo "::error title=margo-gitops install::$1" >&2; exit 1; }

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

case "$mode" in
  source)
    echo "building margo-gitops $version from source with cargo"
    cargo install --locked --quiet --path "$action" --root "$root"
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
