#!/usr/bin/env bash
# Release steps of .github/workflows/release.yml, in an order that gives every tag the pins
# of its own binaries. Runs in a checkout of the commit the binaries were built from; needs
# only git, so that tests run it against a local repository.
#
#   scripts/release.sh check VERSION
#       VERSION is X.Y.Z, Cargo.toml says the same, and no tag vX.Y.Z exists yet (here or
#       at the remote).
#   scripts/release.sh tag VERSION DIST
#       DIST holds margo-gitops-VERSION-TARGET.tar.gz and its .sha256 for every target the
#       action installs; each .sha256 must match its archive. Writes their checksums into
#       scripts/action-checksums.txt, commits that on top of the built commit (the
#       release commit: the same sources plus the pins) and pushes tag vX.Y.Z, pointing at
#       it, to the remote. No branch is pushed: main keeps building from source, a tag
#       installs the binaries it pins. Run again with the same archives (a re-run of a
#       release whose later step failed), it finds the tag pinning exactly these and goes
#       on; with other archives it refuses: a version is released once.
#   scripts/release.sh major VERSION
#       Moves the major tag (v0 for 0.x.y, v1 for 1.x.y, …) to vX.Y.Z's release commit, only
#       forward: when the major tag names a newer version already (a patch of an older line)
#       it stays; when it points at something that is not a release commit, nothing moves
#       and the step fails. Run it after the GitHub release has its assets, so that no one
#       following the major tag meets a pin whose archive is not downloadable yet.
#
# Environment: RELEASE_REMOTE (default origin); RELEASE_TOKEN, when set, authenticates the
# pushes to GITHUB_SERVER_URL (default https://github.com) through git's environment, never
# on the command line or in .git/config (the checkout keeps no credentials).
set -euo pipefail

TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin"
PINS=scripts/action-checksums.txt
remote="${RELEASE_REMOTE:-origin}"

fail() { echo "::error title=release::$1" >&2; exit 1; }
usage() { echo "usage: scripts/release.sh check|tag|major VERSION [DIST]" >&2; exit 2; }
sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

if [ -n "${RELEASE_TOKEN:-}" ]; then
  auth="$(printf 'x-access-token:%s' "$RELEASE_TOKEN" | base64 | tr -d '\n')"
  export GIT_CONFIG_COUNT=1
  export GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader"
  export GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $auth"
fi

step="${1:-}"
version="${2:-}"
[ -n "$step" ] && [ -n "$version" ] || usage
[[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] \
  || fail "version '$version' is not X.Y.Z"
tag="v$version"
major="v${version%%.*}"

# The release version a commit pins (the `version` line of its checksum file), or nothing
# (also when it has no such file).
pinned_version() {
  { git show "$1:$PINS" 2>/dev/null || true; } | awk '$1 == "version" { print $2 }'
}
# True when the commit's checksum file pins at least one archive.
has_pins() {
  git show "$1:$PINS" 2>/dev/null | grep -qE '^[0-9a-f]{64}  margo-gitops-'
}

case "$step" in
  check)
    cargo_version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
    [ "$cargo_version" = "$version" ] || fail "Cargo.toml says version $cargo_version, not $version: bump it first"
    git fetch -q --tags "$remote" 2>/dev/null || true
    if git rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
      fail "tag $tag exists already: releases are immutable, pick the next version"
    fi
    echo "release $tag from $(git rev-parse HEAD)"
    ;;

  tag)
    dist="${3:-}"
    [ -d "$dist" ] || usage
    built="$(git rev-parse HEAD)"
    lines=""
    for target in $TARGETS; do
      file="margo-gitops-$version-$target.tar.gz"
      [ -f "$dist/$file" ] || fail "$dist/$file is missing: every target the action installs is released together"
      [ -f "$dist/$file.sha256" ] || fail "$dist/$file.sha256 is missing"
      actual="$(sha256 "$dist/$file")"
      recorded="$(cut -d' ' -f1 < "$dist/$file.sha256")"
      [ "$actual" = "$recorded" ] || fail "$file has SHA-256 $actual but its .sha256 says $recorded"
      lines="$lines$actual  $file"$'\n'
    done
    git fetch -q --tags "$remote" 2>/dev/null || true
    if existing="$(git rev-parse -q --verify "refs/tags/$tag^{commit}")"; then
      pinned_lines="$({ git show "$existing:$PINS" 2>/dev/null || true; } | grep -E '^[0-9a-f]{64}  ' || true)"
      if [ "$pinned_lines" = "${lines%$'\n'}" ]; then
        echo "$tag exists and pins exactly these archives ($existing): nothing to do"
        exit 0
      fi
      fail "tag $tag exists already and pins other archives: releases are immutable"
    fi
    {
      echo "# SHA-256 of the release archives the GitHub Action installs; the action refuses any other."
      echo "# Written by scripts/release.sh into the release commit that tag v<version> points at,"
      echo "# so a tag (or its commit SHA) carries the pins of its own binaries; one line per target:"
      echo "# <sha256>  margo-gitops-<version>-<target>.tar.gz"
      echo "version $version"
      printf '%s' "$lines"
    } > "$PINS"
    git add "$PINS"
    git -c user.name="${GIT_AUTHOR_NAME:-github-actions[bot]}" \
        -c user.email="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
        commit -q -m "Release $tag: pin the checksums of its binaries" -m "Built from $built."
    release="$(git rev-parse HEAD)"
    git -c user.name="${GIT_AUTHOR_NAME:-github-actions[bot]}" \
        -c user.email="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
        tag -a "$tag" -m "margo-gitops $version" "$release"
    git push -q "$remote" "refs/tags/$tag"
    echo "tagged $tag at $release (built from $built)"
    ;;

  major)
    git fetch -q --force --tags "$remote" 2>/dev/null || true
    release="$(git rev-parse -q --verify "refs/tags/$tag^{commit}")" || fail "tag $tag does not exist: run the tag step first"
    [ "$(pinned_version "$release")" = "$version" ] && has_pins "$release" \
      || fail "$tag does not point at a release commit (its $PINS does not pin version $version)"
    if current="$(git rev-parse -q --verify "refs/tags/$major^{commit}")"; then
      at="$(pinned_version "$current")"
      if [ -z "$at" ] || ! has_pins "$current" || [ "$(git rev-parse -q --verify "refs/tags/v$at^{commit}")" != "$current" ]; then
        fail "$major points at $current, which is not a release commit: move it by hand to a release tag first"
      fi
      if [ "$current" = "$release" ]; then
        echo "$major is at $tag already"
        exit 0
      fi
      newest="$(printf '%s\n%s\n' "$at" "$version" | sort -V | tail -1)"
      if [ "$newest" != "$version" ]; then
        echo "::notice title=release::$major stays at v$at, which is newer than $tag"
        exit 0
      fi
    fi
    git tag -f "$major" "$release" >/dev/null
    git push -q --force "$remote" "refs/tags/$major"
    echo "$major now points at $tag ($release)"
    ;;

  *) usage ;;
esac
