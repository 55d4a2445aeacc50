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
# Installs only what is missing or stale (install.sh, shared with cluster.sh): the venv is
# (re)built when .venv/ is absent or requirements.txt changed since the last install; `npm ci`
# runs when node_modules/ is absent or package-lock.json changed. Both need network access to
# PyPI / npm the first time.
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

install_who="tests/clients/run.sh"
# Tool checks and installs (exits 2 on a missing tool or a failed install).
. "$here/install.sh"

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
