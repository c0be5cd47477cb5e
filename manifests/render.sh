#!/bin/sh
# Renders manifests/base into manifests/leader-job.yaml (`npm run manifests`); a test fails
# when the two drift apart.
set -eu
cd "$(dirname "$0")"
{
  echo "# toil-ts leader, ready for: kubectl apply -f leader-job.yaml"
  echo "# Generated from manifests/base by 'npm run manifests' (kubectl kustomize base): edit the"
  echo "# base, or copy overlays/example for your own runs, rather than this file."
  echo "---"
  kubectl kustomize base
} > leader-job.yaml
