#!/usr/bin/env bash
# Installs margo-gitops for the GitHub Action (action.yml), then puts it on GITHUB_PATH.
#
# MARGO_GITOPS_INSTALL (empty means auto):
#   release  the release archive of this action's version for the runner's OS and
#            architecture, refused unless its SHA-256 is the one pinned in
#            scripts/action-checksums.txt (committed in the release commit the action's
#            tag points at, so an archive swapped after the fact cannot run);
#   source   `cargo install --locked` from the action's own source;
#   auto     release when a checksum is pinned for this runner, else source.
#
# `action-install.sh plan` only decides: it writes `mode`, and for a source build
# `cache-path` and `cache-key`, to GITHUB_OUTPUT, so that the action restores an earlier
# build with actions/cache. The key covers everything the binary is made of: this
# version, the runner, the action's ref, the toolchain (`rustc -V`, `cargo -V`) and the
# hashes of Cargo.toml, Cargo.lock, src/, templates/ and hooks/ (the last two are embedded).
# A source build records its key and its binary's SHA-256 next to it; a restored build is
# used only when both match (else it is built again). That is an integrity check (a partial
# or mixed-up restore), not a signature: whoever can write the cache entry can write both.
# A build made here writes `built=true` to GITHUB_OUTPUT, and the action saves it then.
#
# Inputs (environment): ACTION_PATH, RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH,
# GITHUB_OUTPUT (plan), HOME, GITHUB_SERVER_URL, MARGO_GITOPS_ACTION_REF and
# MARGO_GITOPS_ACTION_REPOSITORY (the action's ref and repository: the release archives are
# downloaded from SERVER/REPOSITORY/releases/download/vVERSION).
# Tests only: `--test-overrides` after the step lets MARGO_GITOPS_CHECKSUMS (another pin
# file) and MARGO_GITOPS_RELEASE_URL (another download location) take effect; action.yml
# never passes it, so nothing in a workflow's environment can switch the pin off.
set -euo pipefail
step="${1:-install}"
overrides=false
[ "${2:-}" = "--test-overrides" ] && overrides=true

fail() { echo "::error title=margo-gitops install::$1" >&2; exit 1; }
sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$@" | cut -d' ' -f1; else shasum -a 256 "$@" | cut -d' ' -f1; fi
}

mode="${MARGO_GITOPS_INSTALL:-auto}"
action="${ACTION_PATH:?ACTION_PATH is not set}"
checksums="$action/scripts/action-checksums.txt"
release_url=""
if $overrides; then
  checksums="${MARGO_GITOPS_CHECKSUMS:-$checksums}"
  release_url="${MARGO_GITOPS_RELEASE_URL:-}"
elif [ -n "${MARGO_GITOPS_CHECKSUMS:-}${MARGO_GITOPS_RELEASE_URL:-}" ]; then
  echo "::warning title=margo-gitops install::MARGO_GITOPS_CHECKSUMS and MARGO_GITOPS_RELEASE_URL are for the action's tests and are ignored: the action installs only what its own checksum file pins"
fi
root="${RUNNER_TEMP:?RUNNER_TEMP is not set}/margo-gitops"
mkdir -p "$root/bin"

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
# What the binary is made of, relative to the action (templates/ and hooks/ are embedded).
EMBEDDED="Cargo.toml Cargo.lock src templates hooks"
# Run in the action's folder, so that rustup takes the runner's default toolchain, not the
# one a `rust-toolchain.toml` of the repository being checked out would ask for.
key() {
  local sources toolchain
  sources="$(cd "$action" && find $EMBEDDED -type f 2>/dev/null | LC_ALL=C sort | while read -r f; do printf '%s %s\n' "$(sha256 "$f")" "$f"; done | sha256 /dev/stdin | cut -c1-16)"
  toolchain="$(cd "$action" && { rustc -V 2>/dev/null || echo no-rustc; cargo -V 2>/dev/null || echo no-cargo; } | sha256 /dev/stdin | cut -c1-12)"
  echo "margo-gitops-$version-${RUNNER_OS:-os}-${RUNNER_ARCH:-arch}-${MARGO_GITOPS_ACTION_REF:-local}-rust-$toolchain-src-$sources"
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
    restored=false
    if [ -x "$root/bin/margo-gitops" ] && [ -f "$root/build.txt" ]; then
      recorded_key="$(awk '$1 == "key" { print $2 }' "$root/build.txt")"
      recorded_sha="$(awk '$1 == "sha256" { print $2 }' "$root/build.txt")"
      actual="$(sha256 "$root/bin/margo-gitops")"
      if [ "$recorded_key" != "$wanted" ]; then
        echo "the cached build is of other sources ($recorded_key): building again"
      elif [ "$actual" != "$recorded_sha" ]; then
        echo "::warning title=margo-gitops install::the cached binary has SHA-256 $actual, not the $recorded_sha recorded when it was built: not using it, building again"
      else
        restored=true
        echo "margo-gitops $version: the source build restored from the cache ($wanted), SHA-256 $actual verified"
      fi
    fi
    if ! $restored; then
      echo "building margo-gitops $version from source with cargo"
      rm -rf "$root" && mkdir -p "$root"
      command -v cargo >/dev/null || fail "install: source needs cargo on the runner (a Rust toolchain); or use a release of the action"
      if [ -n "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]; then
        echo "::warning title=margo-gitops install::building from source in a job that may sign (id-token: write): the crates' build scripts run as this job and could reach its identity; use a release of the action (install: release), or build in a job without id-token: write"
      fi
      # The crates' build scripts run here. Not handing them the job's OIDC identity or the
      # runner's cache token is defence in depth only: a process of the same user can read
      # them from its parents' environment (/proc), hence the warning above.
      (cd "$action" && env -u ACTIONS_ID_TOKEN_REQUEST_URL -u ACTIONS_ID_TOKEN_REQUEST_TOKEN \
        -u ACTIONS_RUNTIME_TOKEN -u ACTIONS_RESULTS_URL -u ACTIONS_CACHE_URL \
        cargo install --locked --quiet --path "$action" --root "$root")
      printf 'key %s\nsha256 %s\n' "$wanted" "$(sha256 "$root/bin/margo-gitops")" > "$root/build.txt"
      echo "built=true" >> "${GITHUB_OUTPUT:-/dev/null}"
    fi
    ;;
  release)
    [ -n "$target" ] || fail "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}; set install: source"
    [ -n "$pinned" ] || fail "no pinned SHA-256 for $file in $checksums; set install: source"
    repository="${MARGO_GITOPS_ACTION_REPOSITORY:-margo-gitops/margo-gitops}"
    base="${release_url:-${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download/v$version}"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 -o "$tmp/$file" "$base/$file" || fail "cannot download $base/$file"
    actual="$(sha256 "$tmp/$file")"
    [ "$actual" = "$pinned" ] || fail "$file has SHA-256 $actual, not the pinned $pinned: refusing to run it"
    tar -xzf "$tmp/$file" -C "$tmp"
    install -m 0755 "$tmp/margo-gitops-$version-$target/margo-gitops" "$root/bin/margo-gitops"
    echo "installed margo-gitops $version ($target), SHA-256 $actual verified"
    ;;
  *) fail "install: expected release, source or auto, got '$mode'" ;;
esac
echo "$root/bin" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
