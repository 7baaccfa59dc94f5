#!/usr/bin/env bash
# Benchmark: keyless signing and complete verification of a published package, against a
# CNCF Distribution registry and the loopback Sigstore stand-in (tests/support/
# sigstore-standin, which scripts/test installs). N rounds (default 20) of `package sign
# --sign keyless` (Actions token, Fulcio, Rekor, self-verification, referrer push) and of
# `package verify` (chain, SCT, SET, inclusion proof, checkpoint, identity); mean wall time
# and peak RSS of each.
#
# usage: benches/sign.sh [ROUNDS]   (builds release)
rounds=${1:-20}
. "$(dirname "$0")/common.sh"
start_registry
node "$root/tests/support/sigstore-standin/server.js" "$work/sigstore" bench-request-token > "$work/sigstore.out" & pids+=($!)
until [ -s "$work/sigstore.out" ]; do sleep 0.1; done
sig_port=$(awk '{print $2}' "$work/sigstore.out")
export ACTIONS_ID_TOKEN_REQUEST_URL="http://127.0.0.1:$sig_port/actions-token?api-version=2.0"
export ACTIONS_ID_TOKEN_REQUEST_TOKEN=bench-request-token
export MARGO_GITOPS_CACHE_DIR="$work/cache"
trust="$work/sigstore/trust_config.json"

"$root/poc-app/images/build.sh" images >/dev/null
"$bin" package prepare "$root/poc-app" -o dist --plain-http \
  --image web=images/poc-app-web.tar --image redis=images/redis.tar >/dev/null
"$bin" package publish dist --plain-http --to "127.0.0.1:$port/acme/poc-app" >/dev/null
ref="127.0.0.1:$port/acme/poc-app:1.0.0"
identity="https://github.com/margo-gitops/poc-app/.github/workflows/publish.yml@refs/heads/main"

measure() { # label, command...
  local label=$1; shift
  local total=0 peak=0
  for _ in $(seq 1 "$rounds"); do
    /usr/bin/time -f '%e %M' -o "$work/t" "$@" >/dev/null
    read -r secs kib < "$work/t"
    total=$(python3 -c "print($total + $secs)")
    [ "$kib" -gt "$peak" ] && peak=$kib
  done
  python3 -c "print(f'$label: mean {$total / $rounds * 1000:.0f} ms over $rounds runs, peak RSS {$peak / 1024:.1f} MiB')"
}
measure "keyless sign  " "$bin" package sign --plain-http --sign keyless --trust-config "$trust" "$ref"
measure "keyless verify" "$bin" package verify --plain-http --trust-config "$trust" \
  --certificate-identity "$identity" \
  --certificate-oidc-issuer https://token.actions.githubusercontent.com "$ref"
