# install.sh -- sourced (not run) by run.sh and cluster.sh from inside tests/clients/: checks the
# tools and installs the pinned client libraries when they are missing or stale.
#
#   .venv/         redis-py from requirements.txt; (re)built when absent or requirements.txt changed
#   node_modules/  `npm ci` from package-lock.json; rerun when absent or package-lock.json changed
#
# Both need network access to PyPI / npm the first time.
#
# The caller sets:
#   install_who   prefix for the messages (e.g. tests/clients/run.sh)
#   python        the Python to build the venv with (e.g. python3)
# On a missing tool or a failed install this exits the caller with status 2.

missing=()
command -v "$python" >/dev/null 2>&1 || missing+=("$python (Python 3.8+ with the venv module, e.g. apt-get install python3 python3-venv)")
command -v node >/dev/null 2>&1 || missing+=("node (Node.js 20+)")
command -v npm >/dev/null 2>&1 || missing+=("npm (comes with Node.js)")
if [ ${#missing[@]} -gt 0 ]; then
    for m in "${missing[@]}"; do echo "$install_who: missing: $m" >&2; done
    exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
    echo "$install_who: node $(node --version) is too old; ioredis 6 and node-redis 6 need Node.js 20+" >&2
    exit 2
fi

hash_of() { "$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"; }

# --- Python: .venv with the pinned redis-py ---------------------------------------------
want="$(hash_of requirements.txt)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
    echo "$install_who: installing redis-py into tests/clients/.venv ..." >&2
    t0=$SECONDS
    rm -rf .venv
    if ! "$python" -m venv .venv >&2; then
        echo "$install_who: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 2
    fi
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt >&2; then
        echo "$install_who: pip install -r requirements.txt failed (is PyPI reachable?)" >&2
        rm -rf .venv
        exit 2
    fi
    echo "$want" > .venv/.requirements.sha256
    echo "$install_who: venv ready in $((SECONDS - t0)) s" >&2
fi

# --- Node: npm ci from the committed package-lock.json ----------------------------------
want="$(hash_of package-lock.json)"
if [ ! -d node_modules ] || [ "$(cat node_modules/.lock.sha256 2>/dev/null)" != "$want" ]; then
    echo "$install_who: npm ci in tests/clients ..." >&2
    t0=$SECONDS
    if ! npm ci --no-audit --no-fund --loglevel=error >&2; then
        echo "$install_who: npm ci failed (is the npm registry reachable?)" >&2
        exit 2
    fi
    echo "$want" > node_modules/.lock.sha256
    echo "$install_who: node_modules ready in $((SECONDS - t0)) s" >&2
fi
