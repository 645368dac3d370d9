#!/usr/bin/env bash
# A/B against an earlier revision: `bash loadtest/ab.sh <rev> [ab.ts flags]`. Checks <rev> out as a worktree under
# .data/ab/<rev> (sharing this tree's node_modules and tools), then runs loadtest/ab.ts with A = <rev> and
# B = this working tree, the load generator pinned to core 0 and both gateways to core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
rev="${1:?usage: bash loadtest/ab.sh <git rev> [--rounds N] [--seconds S]}"
shift
sha="$(git rev-parse --short "$rev")"
dir=".data/ab/$sha"
if [ ! -d "$dir" ]; then
  mkdir -p .data/ab
  git worktree add --detach "$dir" "$sha" >/dev/null
fi
[ -e "$dir/node_modules" ] || ln -s "$PWD/node_modules" "$dir/node_modules"
[ -e "$dir/.tools" ] || ln -s "$PWD/.tools" "$dir/.tools"
exec node loadtest/ab.ts --a "$dir" --b . "$@"
