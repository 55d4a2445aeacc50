#!/usr/bin/env bash
# install.sh -- checks the tools for the browser test and installs the pinned playwright-core
# into tests/browser/node_modules when it is missing or stale (`npm ci` from the committed
# package-lock.json; rerun when package-lock.json changed since the last install). The browser
# is Debian's chromium (apt-get install chromium): playwright downloads none.
#
# Exit status: 0 ready, 2 a missing tool or a failed install (the message says which).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
who="tests/browser/install.sh"

missing=()
command -v node >/dev/null 2>&1 || missing+=("node (Node.js 20+)")
command -v npm >/dev/null 2>&1 || missing+=("npm (comes with Node.js)")
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=("chromium at ${CHROMIUM:-/usr/bin/chromium} (apt-get install -y chromium, or set CHROMIUM)")
if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do echo "$who: missing: $m" >&2; done
    exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
    echo "$who: node $(node --version) is too old; the test needs Node.js 20+ (fetch, top-level await)" >&2
    exit 2
fi

want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.lock.sha256 2>/dev/null)" != "$want" ]; then
    echo "$who: npm ci in tests/browser ..." >&2
    if ! npm ci --no-audit --no-fund --loglevel=error >&2; then
        echo "$who: npm ci failed (is the npm registry reachable?)" >&2
        exit 2
    fi
    echo "$want" > node_modules/.lock.sha256
fi
