#!/usr/bin/env bash
# cluster.sh HOST:PORT,HOST:PORT,HOST:PORT -- drive real cluster clients against a 3-primary
# Redis Cluster that is already running (real Redis 7.0, e.g. from redis-cluster.sh, or fanout's
# cluster mode); the arguments are the three primaries.
#
#   cluster.py    redis-py RedisCluster (sync RESP3 and RESP2, and asyncio): sharded pub/sub,
#                 pub/sub, patterns, streams routed by key, CLUSTER KEYSLOT, node count
#   cluster.mjs   ioredis Cluster (shardedSubscribers: true) and node-redis createCluster (RESP2
#                 and RESP3): the same, plus ordering and MULTI/EXEC on a hash tag
#   redis-cli     here: SPUBLISH routing (MOVED from the two non-owners of slot 10059, -c
#                 follows it), XADD with -c to a key on another node, CROSSSLOT, CLUSTER
#                 INFO/MYID/KEYSLOT on every node, `redis-cli --cluster check`
#
# Differential run against real Redis:
#   seeds=$(./redis-cluster.sh start /tmp/rc) && ./cluster.sh "$seeds"; ./redis-cluster.sh stop /tmp/rc
#
# Installs the clients like run.sh (install.sh). Environment: PYTHON (default python3).
# Exit status: 0 if every check passed, 1 if any failed, 2 on usage errors, a missing tool or a
# failed install. The last line is the summary 'cluster.sh: N passed, M failed'.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

seeds="${1:-}"
usage() { echo "usage: $0 HOST:PORT,HOST:PORT,HOST:PORT   (a running 3-primary cluster)" >&2; exit 2; }
[ $# -eq 1 ] || usage
IFS=, read -r -a nodes <<<"$seeds"
[ ${#nodes[@]} -ge 1 ] || usage
for n in "${nodes[@]}"; do
    case "$n" in
        *:*) p="${n##*:}"; h="${n%:*}"; [ -n "$h" ] || usage; case "$p" in ''|*[!0-9]*) usage ;; esac ;;
        *) usage ;;
    esac
done
python="${PYTHON:-python3}"

if ! command -v redis-cli >/dev/null 2>&1; then
    echo "tests/clients/cluster.sh: missing: redis-cli 7.0+ (Debian/Ubuntu: apt-get install redis-tools)" >&2
    exit 2
fi
if ! command -v timeout >/dev/null 2>&1; then
    echo "tests/clients/cluster.sh: missing: timeout (coreutils)" >&2
    exit 2
fi
install_who="tests/clients/cluster.sh"
# Tool checks and installs (exits 2 on a missing tool or a failed install).
. "$here/install.sh"

started=$SECONDS
total_pass=0
total_fail=0
summary=()

# Run one client script; add up its 'NAME: N passed, M failed' line.
run_script() {
    local name="$1"; shift
    local out rc line p f
    out="$(mktemp)"
    timeout 120 "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line="$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed\$" "$out" | tail -1)"
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "FAIL $name: no summary line (exit status $rc)"
        total_fail=$((total_fail + 1))
        summary+=("$name: no summary (exit $rc)")
        return
    fi
    p="$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")"
    f="$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exit status $rc"
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    summary+=("$name: $p passed, $f failed")
}

# --- redis-cli checks -----------------------------------------------------------------
cli_pass=0
cli_fail=0
pass() { cli_pass=$((cli_pass + 1)); echo "PASS [redis-cli] $1"; }
fail() { cli_fail=$((cli_fail + 1)); echo "FAIL [redis-cli] $1${2:+: $2}"; }
# cli HOST:PORT ARGS... : one redis-cli call, bounded, CR and blank lines stripped.
cli() {
    local hp="$1"; shift
    timeout 5 redis-cli -h "${hp%:*}" -p "${hp##*:}" "$@" 2>&1 | tr -d '\r' | sed '/^$/d'
}

redis_cli_checks() {
    local n out id owner owners=() movers=0 key k slot target
    local tok="fanout-cluster-sh:$$"

    # A node that does not answer PING: one FAIL each, and the rest is skipped.
    local down=0
    for n in "${nodes[@]}"; do
        out="$(cli "$n" PING)"
        if [ "$out" = "PONG" ]; then pass "$n PING -> PONG"
        else fail "$n PING -> PONG" "$out"; down=$((down + 1)); fi
    done
    if [ "$down" -gt 0 ]; then
        echo "SKIP [redis-cli] the other redis-cli checks: $down node(s) unreachable"
        return
    fi

    # Every node: CLUSTER INFO says ok, CLUSTER MYID is a 40-hex id, CLUSTER KEYSLOT vectors.
    for n in "${nodes[@]}"; do
        out="$(cli "$n" CLUSTER INFO)"
        if grep -qx 'cluster_state:ok' <<<"$out"; then pass "$n CLUSTER INFO cluster_state:ok"
        else fail "$n CLUSTER INFO cluster_state:ok" "$(head -3 <<<"$out" | tr '\n' ' ')"; fi
        id="$(cli "$n" CLUSTER MYID)"
        if [[ "$id" =~ ^[0-9a-f]{40}$ ]]; then pass "$n CLUSTER MYID is a 40-hex node id"
        else fail "$n CLUSTER MYID is a 40-hex node id" "$id"; fi
        local vectors=("foo 12182" "bar 5061" "channel:123 3018" "{user1000}.following 3443"
                       "foo{}{bar} 8363" "foo{{bar}}zap 4015" "foo{bar}{zap} 5061")
        local v
        for v in "${vectors[@]}"; do
            k="${v% *}"; slot="${v##* }"
            out="$(cli "$n" CLUSTER KEYSLOT "$k")"
            if [ "$out" = "$slot" ]; then pass "$n CLUSTER KEYSLOT $k -> $slot"
            else fail "$n CLUSTER KEYSLOT $k -> $slot" "got '$out'"; fi
        done
    done

    # SPUBLISH mychannel (slot 10059) without -c: one node owns the slot and answers an
    # integer; the others answer MOVED 10059 <that node>. With -c every node's answer is an
    # integer (redis-cli followed the MOVED).
    for n in "${nodes[@]}"; do
        out="$(cli "$n" SPUBLISH mychannel x)"
        if [[ "$out" =~ ^[0-9]+$ ]]; then owners+=("$n")
        elif [[ "$out" =~ ^MOVED\ 10059\ (.+:[0-9]+)$ ]]; then movers=$((movers + 1)); target="${BASH_REMATCH[1]}"
        else fail "$n SPUBLISH mychannel x (no -c) -> an integer or MOVED 10059" "$out"; fi
    done
    if [ ${#owners[@]} -eq 1 ] && [ "$movers" -eq $((${#nodes[@]} - 1)) ]; then
        pass "SPUBLISH mychannel: ${owners[0]} answers, the other $movers nodes answer MOVED 10059"
        if [ "$movers" -eq 0 ] || [ "$target" = "${owners[0]}" ]; then pass "MOVED 10059 names the owner ${owners[0]}"
        else fail "MOVED 10059 names the owner ${owners[0]}" "names $target"; fi
    else
        fail "SPUBLISH mychannel: exactly one node answers, the others MOVED" "owners: ${owners[*]:-none}, MOVED: $movers"
    fi
    for n in "${nodes[@]}"; do
        out="$(cli "$n" -c SPUBLISH mychannel x)"
        if [[ "$out" =~ ^[0-9]+$ ]]; then pass "redis-cli -c on $n: SPUBLISH mychannel x -> integer $out"
        else fail "redis-cli -c on $n: SPUBLISH mychannel x -> an integer" "$out"; fi
    done

    # XADD with -c to a key that the first node does not own: find one by its MOVED reply.
    n="${nodes[0]}"
    key=""
    for k in foo bar channel:123 channel.0 mychannel user1000 zap; do
        out="$(cli "$n" XLEN "$tok:{$k}")"
        if [[ "$out" =~ ^MOVED\ ([0-9]+)\ (.+:[0-9]+)$ ]]; then
            key="$tok:{$k}"; slot="${BASH_REMATCH[1]}"; target="${BASH_REMATCH[2]}"
            break
        fi
    done
    if [ -z "$key" ]; then
        fail "a key owned by another node than $n" "none of the candidate keys got MOVED from $n"
    else
        pass "XLEN $key on $n -> MOVED $slot $target"
        out="$(cli "$n" CLUSTER KEYSLOT "$key")"
        if [ "$out" = "$slot" ]; then pass "the MOVED slot is CLUSTER KEYSLOT $key ($slot)"
        else fail "the MOVED slot is CLUSTER KEYSLOT $key" "MOVED $slot, KEYSLOT $out"; fi
        out="$(cli "$n" -c XADD "$key" '*' f v)"
        if [[ "$out" =~ ^[0-9]+-[0-9]+$ ]]; then pass "redis-cli -c on $n: XADD $key (owned by $target) -> $out"
        else fail "redis-cli -c on $n: XADD $key -> an ID" "$out"; fi
        out="$(cli "$target" XLEN "$key")"
        if [ "$out" = "1" ]; then pass "XLEN $key on $target -> 1"
        else fail "XLEN $key on $target -> 1" "$out"; fi
        out="$(cli "$n" -c DEL "$key")"
        if [ "$out" = "1" ]; then pass "redis-cli -c on $n: DEL $key -> 1"
        else fail "redis-cli -c on $n: DEL $key -> 1" "$out"; fi
    fi

    # Keys in different slots in one command: CROSSSLOT.
    out="$(cli "${nodes[0]}" -c EXISTS "$tok:{foo}" "$tok:{bar}")"
    if [[ "$out" == CROSSSLOT* ]]; then pass "EXISTS on keys in slots 12182 and 5061 -> CROSSSLOT"
    else fail "EXISTS on keys in slots 12182 and 5061 -> CROSSSLOT" "$out"; fi

    # redis-cli --cluster check (CLUSTER NODES, CLUSTER INFO, slot coverage).
    out="$(timeout 20 redis-cli --cluster check "${nodes[0]}" 2>&1)"
    local rc=$?
    if [ "$rc" -eq 0 ]; then pass "redis-cli --cluster check ${nodes[0]} exits 0"
    else fail "redis-cli --cluster check ${nodes[0]} exits 0" "exit $rc: $(tail -3 <<<"$out" | tr '\n' ' ')"; fi
    if grep -qF '[OK] All 16384 slots covered' <<<"$out"; then pass "redis-cli --cluster check: [OK] All 16384 slots covered"
    else fail "redis-cli --cluster check: [OK] All 16384 slots covered" "$(tail -3 <<<"$out" | tr '\n' ' ')"; fi
}

echo "== cluster.py (redis-py) against $seeds"
run_script cluster.py .venv/bin/python cluster.py "$seeds"
echo "== cluster.mjs (ioredis, node-redis) against $seeds"
run_script cluster.mjs node cluster.mjs "$seeds"
echo "== redis-cli $(redis-cli --version | awk '{print $2}') against $seeds"
redis_cli_checks
echo "redis-cli: $cli_pass passed, $cli_fail failed"
total_pass=$((total_pass + cli_pass))
total_fail=$((total_fail + cli_fail))
summary+=("redis-cli: $cli_pass passed, $cli_fail failed")

echo "== summary against $seeds ($((SECONDS - started)) s)"
for s in "${summary[@]}"; do echo "   $s"; done
echo "cluster.sh: $total_pass passed, $total_fail failed"
if [ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]; then exit 0; fi
exit 1
