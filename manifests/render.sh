#!/bin/sh
# Renders manifests/install and manifests/base into manifests/leader-job.yaml (`npm run
# manifests`); a test fails when they drift apart.
set -eu
cd "$(dirname "$0")"
{
  echo "# toil-ts leader, ready for: kubectl apply -f leader-job.yaml (hello world)"
  echo "# Generated from manifests/install and manifests/base by 'npm run manifests' (kubectl kustomize):"
  echo "# edit those, or make an overlay of your own (overlays/example), rather than this file."
  echo "---"
  kubectl kustomize install
  echo "---"
  kubectl kustomize base
} > leader-job.yaml
