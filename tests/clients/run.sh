#!/usr/bin/env bash
# run.sh PORT -- drive real client libraries against a server that is already running on
# 127.0.0.1:PORT: their transactions (MULTI/EXEC/DISCARD/WATCH with PUBLISH, PING, ECHO), then
# their Redis Streams APIs (XADD ... XINFO, consumer groups, blocking reads, key commands on
# streams, MULTI and WATCH on streams).
#
#   transactions.py   redis-py, pinned in requirements.txt, from a venv in .venv/
#   transactions.mjs  ioredis and node-redis ("redis"), pinned in package.json/package-lock.json
#   streams.py        redis-py (RESP3 and RESP2)
#   streams.mjs       ioredis (RESP2) and node-redis (RESP2 and RESP3)
#
# The stream scripts end with FLUSHDB: point this at a scratch server.
#
# Installs only what is missing or stale: the venv is (re)built when .venv/ is absent or
# requirements.txt changed since the last install; `npm ci` runs when node_modules/ is absent
# or package-lock.json changed. Both need network access to PyPI / npm the first time.
#
# Environment: CLIENTS_HOST (default 127.0.0.1), PYTHON (default python3).
# Exit status: 0 if all four scripts passed, 1 if any check failed, 2 if a tool is missing or an
# install failed.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

port="${1:-}"
case "$port" in
    ''|*[!0-9]*) echo "usage: $0 PORT   (server already listening on ${CLIENTS_HOST:-127.0.0.1}:PORT)" >&2; exit 2 ;;
esac
host="${CLIENTS_HOST:-127.0.0.1}"
python="${PYTHON:-python3}"

missing=()
command -v "$python" >/dev/null 2>&1 || missing+=("$python (Python 3.8+ with the venv module, e.g. apt-get install python3 python3-venv)")
command -v node >/dev/null 2>&1 || missing+=("node (Node.js 20+)")
command -v npm >/dev/null 2>&1 || missing+=("npm (comes with Node.js)")
if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do echo "tests/clients/run.sh: missing: $m" >&2; done
    exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
    echo "tests/clients/run.sh: node $(node --version) is too old; ioredis 6 and node-redis 6 need Node.js 20+" >&2
    exit 2
fi

hash_of() { "$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

# --- Python: .venv with the pinned redis-py ---------------------------------------------
want="$(hash_of requirements.txt)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
    echo "tests/clients/run.sh: installing redis-py into tests/clients/.venv ..." >&2
    t0=$SECONDS
    rm -rf .venv
    if ! "$python" -m venv .venv >&2; then
        echo "tests/clients/run.sh: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 2
    fi
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt >&2; then
        echo "tests/clients/run.sh: pip install -r requirements.txt failed (is PyPI reachable?)" >&2
        rm -rf .venv
        exit 2
    fi
    echo "$want" > .venv/.requirements.sha256
    echo "tests/clients/run.sh: venv ready in $((SECONDS - t0)) s" >&2
fi

# --- Node: npm ci from the committed package-lock.json ----------------------------------
want="$(hash_of package-lock.json)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.lock.sha256 2>/dev/null)" != "$want" ]; then
    echo "tests/clients/run.sh: npm ci in tests/clients ..." >&2
    t0=$SECONDS
    if ! npm ci --no-audit --no-fund --loglevel=error >&2; then
        echo "tests/clients/run.sh: npm ci failed (is the npm registry reachable?)" >&2
        exit 2
    fi
    echo "$want" > node_modules/.lock.sha256
    echo "tests/clients/run.sh: node_modules ready in $((SECONDS - t0)) s" >&2
fi

# --- Run all four; a failure in one does not hide the others ----------------------------
status=0
.venv/bin/python transactions.py "$port" "$host" || status=1
node transactions.mjs "$port" "$host" || status=1
.venv/bin/python streams.py "$port" "$host" || status=1
node streams.mjs "$port" "$host" || status=1
if [ "$status" -eq 0 ]; then
    echo "tests/clients: all client transaction and stream checks passed against $host:$port"
else
    echo "tests/clients: FAILED against $host:$port (see the FAIL lines above)" >&2
fi
exit "$status"
