#!/usr/bin/env bash
# The Helm charts render and validate: `helm lint`, `helm template` of a development cell, a production-shaped
# cell and both tower shapes (deploy/helm/examples/), every rendered object decoded strictly against the
# Kubernetes API types (deploy/validate), and values that must be refused at install are refused.
# Builds helm and the validator on first use (scripts/deploy/tools.sh, ~3 min for helm; then ~10 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deploy/tools.sh
export PATH="$PWD/.tools/bin:$PATH"
ex=deploy/helm/examples
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*" >&2; fail=1; }

render() { # render NAME CHART VALUES...: lint, template, validate
  local name=$1 chart=$2
  shift 2
  local args=()
  for v in "$@"; do args+=(-f "$v"); done
  helm lint --strict "$chart" "${args[@]}" >/tmp/sibyl-lint.$$ 2>&1 || { cat /tmp/sibyl-lint.$$ >&2; bad "helm lint $chart $*"; }
  if helm template "$name" "$chart" "${args[@]}" >/tmp/sibyl-render.$$ && sibyl-validate /tmp/sibyl-render.$$ >/tmp/sibyl-valid.$$; then
    ok "$chart with $* ($(cat /tmp/sibyl-valid.$$))"
  else
    bad "$chart with $*"
  fi
}

render cell-a deploy/helm/sibyl-cell $ex/dev-cell-a.yaml
render eu deploy/helm/sibyl-cell $ex/prod-cell.yaml
render sibyl-tower deploy/helm/sibyl-tower $ex/dev-tower.yaml
render sibyl-tower deploy/helm/sibyl-tower $ex/prod-tower.yaml

# Values that must fail at install, each with the message that names the problem.
refuse() { # refuse WHAT EXPECTED-MESSAGE CHART VALUES-FILE HELM-ARGS...
  local what=$1 expect=$2 chart=$3 values=$4
  shift 4
  local out
  if out="$(helm template x "$chart" -f "$values" "$@" 2>&1)"; then
    bad "$what: rendered, expected a refusal"
  elif grep -qF -- "$expect" <<<"$out"; then
    ok "refused: $what"
  else
    echo "$out" >&2
    bad "$what: refused without '$expect'"
  fi
}
refuse 'a string for replicas' "got string, want integer" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set gateway.replicas=two
refuse 'an unknown value' "additional properties 'replica' not allowed" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set gateway.replica=2
refuse 'a cell that is not a DNS label' "/cell" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set cell=Cell_A
refuse 'a chart-managed variable in gateway.env' "invalid propertyName 'SIBYL_CELL'" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set gateway.env.SIBYL_CELL=b
refuse 'a drain grace not below its timeout' "graceMs must be less than" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set gateway.drain.graceMs=5000
refuse 'no Redis address for an external Redis' "redis.external.url" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set redis.mode=external
refuse 'no tower URL' "tower.url is required" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set tower.url=
refuse 'no workers' "/gateway/workers" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set gateway.workers=0
refuse 'workers neither a count nor auto' "/gateway/workers" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set gateway.workers=many
refuse 'a Kafka codec Kafka does not have' "/kafka/compression" deploy/helm/sibyl-cell $ex/dev-cell-a.yaml --set kafka.compression=brotli
refuse 'two tower replicas on PGlite' "replicas > 1 needs PostgreSQL" deploy/helm/sibyl-tower $ex/dev-tower.yaml --set replicas=2
refuse 'a tower without an admin token' "adminTokenSecret.name is required" deploy/helm/sibyl-tower $ex/dev-tower.yaml --set adminTokenSecret.name=

# The gateway's workers (SIBYL_WORKERS): auto follows the CPU limit, else the request (downward API), else 1.
workers() { # workers EXPECTED-GREP HELM-ARGS...: the SIBYL_WORKERS entry of the rendered gateway
  local expect=$1
  shift
  local out
  out="$(helm template x deploy/helm/sibyl-cell -f $ex/dev-cell-a.yaml "$@" | grep -A5 'name: SIBYL_WORKERS' | head -6)"
  if grep -qF -- "$expect" <<<"$out"; then ok "workers $* → $expect"; else echo "$out" >&2; bad "workers $*: expected '$expect'"; fi
}
workers 'resource: requests.cpu'
workers 'resource: limits.cpu' --set gateway.resources.limits.cpu=2
workers 'value: "1"' --set gateway.resources.requests.cpu=null
workers 'value: "3"' --set gateway.workers=3

# The prediction log's codec reaches the gateway as SIBYL_KAFKA_COMPRESSION.
out="$(helm template x deploy/helm/sibyl-cell -f $ex/dev-cell-a.yaml --set kafka.compression=zstd | grep -A1 'name: SIBYL_KAFKA_COMPRESSION')"
if grep -qF 'value: "zstd"' <<<"$out"; then ok "kafka.compression=zstd → SIBYL_KAFKA_COMPRESSION zstd"; else echo "$out" >&2; bad "kafka.compression: SIBYL_KAFKA_COMPRESSION not zstd"; fi

# The validator itself refuses unknown fields and wrong types.
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {a: b}, ports: [{port: 80, bogus: 1}]}\n' |
  sibyl-validate >/dev/null 2>&1 && bad "validator accepted an unknown field" || ok "validator refuses an unknown field"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {a: b}, ports: [{port: "80"}]}\n' |
  sibyl-validate >/dev/null 2>&1 && bad "validator accepted a wrong type" || ok "validator refuses a wrong type"
rm -f /tmp/sibyl-*.$$
exit $fail
