#!/usr/bin/env bash
# Tools for the deployment checks, installed idempotently:
#   helm           built from the Go module proxy into .tools/bin (~3 min the first time)
#   sibyl-validate deploy/validate/ (k8s.io/api + apimachinery from the Go module proxy) into .tools/bin
#   --podman       also Debian's podman, runc, netavark, aardvark-dns, iptables (netavark's port forwarding and
#                  NAT; not a dependency of the package) and mmdebstrap (the container test; needs root or sudo)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/services/common.sh
mkdir -p .tools/bin
export GOBIN="$PWD/.tools/bin"
HELM_VERSION=v4.3.2
# `go install` does not stamp helm's version into the binary: a marker file records which one was built.
if [ ! -x .tools/bin/helm ] || [ ! -f ".tools/bin/.helm-$HELM_VERSION" ]; then
  sibyl_log "building helm $HELM_VERSION from the Go module proxy (a few minutes)"
  go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
  touch ".tools/bin/.helm-$HELM_VERSION"
fi
# The validator is rebuilt when its sources change (go build caches the rest).
(cd deploy/validate && go build -o "$GOBIN/sibyl-validate" .)
if [ "${1:-}" = --podman ]; then
  sibyl_apt_install podman runc catatonit netavark aardvark-dns iptables mmdebstrap uidmap fuse-overlayfs
fi
