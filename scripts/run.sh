#!/usr/bin/env bash
# Runs a command with Node.js 24 and the project's dependencies in place.
#
# The machines this project runs on may only have Node 20. When the `node` on
# PATH is older than the project's version, a project-local Node 24 is installed
# from the npm registry (the `node` package, which carries the binary) into
# .tools/node and put first on PATH. Dependencies are (re)installed with `npm ci`
# whenever package-lock.json or the Node major version changed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_version="$(tr -d '[:space:]' < "$root/.node-version")"
required_major="${node_version%%.*}"
tools="$root/.tools/node"

log() { printf '[run] %s\n' "$*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  if command -v node >/dev/null 2>&1 && [ "$(node_major node)" -ge "$required_major" ]; then
    return
  fi
  local bin="$tools/node_modules/node/bin"
  if [ ! -x "$bin/node" ] || [ "$(node_major "$bin/node")" != "$required_major" ]; then
    log "node $(node -v 2>/dev/null || echo 'missing') found; installing Node.js $node_version into .tools/node (once)"
    rm -rf "$tools" && mkdir -p "$tools"
    echo '{"private":true}' > "$tools/package.json"
    npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "node@$node_version" >&2
    if [ "$(node_major "$bin/node")" != "$required_major" ]; then
      # The `node` package fetches its binary in a preinstall script; when the
      # npm client skips install scripts, take the platform package directly.
      local platform_pkg="node-$(uname -s | tr '[:upper:]' '[:lower:]')-$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')"
      npm install --prefix "$tools" --no-audit --no-fund --loglevel=error "$platform_pkg@$node_version" >&2
      mkdir -p "$bin" && ln -sf "$tools/node_modules/$platform_pkg/bin/node" "$bin/node"
    fi
  fi
  export PATH="$bin:$PATH"
  [ "$(node_major node)" -ge "$required_major" ] || { log "could not provide Node.js $required_major"; exit 1; }
}

ensure_deps() {
  local stamp="$root/node_modules/.install-stamp"
  local want
  want="$(node -v) $(sha256sum "$root/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing dependencies (npm ci) with node $(node -v)"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" > "$stamp"
  fi
}

ensure_node
ensure_deps
cd "$root"
exec "$@"
