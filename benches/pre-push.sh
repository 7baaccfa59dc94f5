#!/usr/bin/env bash
# Benchmark: time of the pre-push check on a typical GitOps repository: 200 commits,
# 10 deployment documents, a config rendering 3 deployments; a push of the last 20 commits.
#
# usage: benches/pre-push.sh   (builds release)
. "$(dirname "$0")/common.sh"
git init -q -b main repo && cd repo
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org
mkdir -p deploy values
printf 'metadata:\n  id: poc-app\n  version: 1.0.0\n' > margo.yaml
printf 'packageRepository: ghcr.io/acme/poc-app\ndeployments:\n' > .margo-gitops.yaml
for s in 1 2 3; do
  printf '  - name: site-%s\n    values: [values/site-%s.yaml]\n' "$s" "$s" >> .margo-gitops.yaml
  printf 'siteId: site-%s\npollFrequency: 30s\n' "$s" > "values/site-$s.yaml"
done
for i in $(seq 1 200); do
  d=$((i % 10))
  cat > "deploy/site-$d.yaml" <<YAML
apiVersion: application.margo.org/v1alpha1
kind: ApplicationDeployment
metadata:
  annotations:
    id: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b1$d
    applicationId: poc-app
  name: site-$d
  namespace: margo
spec:
  deploymentProfile:
    type: compose
    components:
      - name: poc-app
        properties:
          repository: oci://ghcr.io/acme/poc-app
          revision: 1.0.$i
  parameters: {}
YAML
  git add -A && GIT_COMMITTER_DATE="@$((1700000000 + i))" GIT_AUTHOR_DATE="@$((1700000000 + i))" git commit -qm "change $i"
done
updates="refs/heads/main $(git rev-parse HEAD) refs/heads/main $(git rev-parse HEAD~20)"
runs=20
start=$(date +%s%N)
for _ in $(seq 1 $runs); do echo "$updates" | "$bin" hook pre-push origin /dev/null; done
end=$(date +%s%N)
echo "pre-push check, push of 20 commits on a 200-commit repository: $(( (end - start) / runs / 1000000 )) ms per run (mean of $runs)"
