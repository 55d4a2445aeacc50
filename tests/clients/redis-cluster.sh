#!/usr/bin/env bash
# redis-cluster.sh -- a throwaway 3-primary Redis Cluster on loopback, for differential runs of
# cluster.sh (the same client scripts against real Redis and against fanout's cluster mode).
#
#   redis-cluster.sh start DIR   start 3 redis-server on free 127.0.0.1 ports (cluster-enabled,
#                                no persistence: --save '' --appendonly no; nodes-PORT.conf,
#                                logs and the data dir in DIR), join them with
#                                `redis-cli --cluster create ... --cluster-yes` (no replicas),
#                                wait until every node reports cluster_state:ok, then print the
#                                seed list 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 on stdout
#                                (and nothing else) and write the PIDs to DIR/pids.
#   redis-cluster.sh stop DIR    kill exactly the PIDs in DIR/pids (still redis-server ones),
#                                wait for them to exit, remove DIR/pids and the nodes' files
#                                (listed in DIR/ports). Other files in DIR are left alone.
#
# Example:
#   seeds=$(tests/clients/redis-cluster.sh start /tmp/rc) && tests/clients/cluster.sh "$seeds"
#   tests/clients/redis-cluster.sh stop /tmp/rc
#
# Needs redis-server and redis-cli 7.0+ (Debian 12: apt-get install redis-server) and python3
# (for the free-port probe). Exit status: 0 on success, 1 on failure (a failed start stops what
# it started), 2 on usage errors or a missing tool. Every wait is bounded.
set -u

me="redis-cluster.sh"
NODES=3
START_TIMEOUT=${REDIS_CLUSTER_TIMEOUT:-30}   # seconds, for each bounded wait below

usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd="$1"
dir="$2"
[ -n "$dir" ] || usage

alive() { kill -0 "$1" 2>/dev/null; }
is_redis() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "redis-server" ]; }

# Kill the given PIDs (only those that still are redis-server processes); SIGTERM first, SIGKILL
# after 10 s. Returns 1 if one survived.
kill_pids() {
    local pid live=() t
    for pid in "$@"; do
        case "$pid" in ''|*[!0-9]*) continue ;; esac
        if alive "$pid" && is_redis "$pid"; then
            kill "$pid" 2>/dev/null && live+=("$pid")
        fi
    done
    for t in $(seq 100); do
        local left=()
        for pid in ${live[@]+"${live[@]}"}; do alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        live=("${left[@]}")
        sleep 0.1
    done
    for pid in "${live[@]}"; do is_redis "$pid" && kill -9 "$pid" 2>/dev/null; done
    sleep 0.2
    for pid in "${live[@]}"; do
        if alive "$pid"; then echo "$me: pid $pid did not exit" >&2; return 1; fi
    done
    return 0
}

stop() {
    if [ ! -f "$dir/pids" ]; then
        echo "$me: no $dir/pids (nothing started there?)" >&2
        return 1
    fi
    # shellcheck disable=SC2046
    kill_pids $(cat "$dir/pids") || return 1
    rm -f "$dir/pids"
    # Remove the stopped nodes' files (kept if a start failed, for its logs).
    local port
    for port in $(cat "$dir/ports" 2>/dev/null); do
        case "$port" in ''|*[!0-9]*) continue ;; esac
        rm -f "$dir/nodes-$port.conf" "$dir/redis-$port.pid" "$dir/redis-$port.log"
    done
    rm -f "$dir/ports" "$dir/create.log"
    echo "$me: stopped the cluster in $dir" >&2
}

# A port P is free when both P and its cluster bus port P+10000 can be bound on 127.0.0.1.
free_port() {
    python3 - "$@" <<'EOF'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]}
def bindable(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(500):
    p = random.randrange(20000, 30000)
    if p in taken or p + 10000 in taken or p - 10000 in taken:
        continue
    if bindable(p) and bindable(p + 10000):
        print(p)
        sys.exit(0)
sys.exit(1)
EOF
}

start() {
    local t pid port ports=() pids=()
    for tool in redis-server redis-cli python3; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$me: missing: $tool (Debian/Ubuntu: apt-get install redis-server redis-tools python3)" >&2
            exit 2
        fi
    done
    mkdir -p "$dir" || exit 1
    dir="$(cd "$dir" && pwd)"
    if [ -f "$dir/pids" ]; then
        for pid in $(cat "$dir/pids"); do
            if alive "$pid" && is_redis "$pid"; then
                echo "$me: $dir/pids names a running redis-server ($pid): stop it first" >&2
                exit 1
            fi
        done
        rm -f "$dir/pids"
    fi
    # Only this script's own files are touched: per-port files of the ports it picks, create.log.
    rm -f "$dir/create.log" "$dir/ports"

    fail() {
        echo "$me: $*" >&2
        kill_pids ${pids[@]+"${pids[@]}"} || true
        rm -f "$dir/pids"
        exit 1
    }

    # Start each node; if its port was taken in the meantime, try another (a few times).
    local n attempt
    for n in $(seq "$NODES"); do
        for attempt in 1 2 3 4 5; do
            port="$(free_port ${ports[@]+"${ports[@]}"})" || fail "no free port pair found"
            rm -f "$dir/redis-$port.pid" "$dir/nodes-$port.conf" "$dir/redis-$port.log"
            redis-server --port "$port" --bind 127.0.0.1 --protected-mode no \
                --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" \
                --cluster-node-timeout 5000 --save '' --appendonly no --dir "$dir" \
                --daemonize yes --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log" \
                >/dev/null 2>&1
            pid=""
            for t in $(seq $((START_TIMEOUT * 10))); do
                if [ -s "$dir/redis-$port.pid" ] && redis-cli -p "$port" PING 2>/dev/null | grep -q PONG; then
                    pid="$(cat "$dir/redis-$port.pid")"
                    break
                fi
                # A daemonized server that failed to bind is gone and leaves no pidfile.
                if [ "$t" -gt 20 ] && [ ! -s "$dir/redis-$port.pid" ]; then break; fi
                sleep 0.1
            done
            if [ -n "$pid" ]; then
                ports+=("$port")
                pids+=("$pid")
                printf '%s\n' "${pids[@]}" > "$dir/pids"
                printf '%s\n' "${ports[@]}" > "$dir/ports"
                break
            fi
            echo "$me: redis-server on port $port did not come up (attempt $attempt); see $dir/redis-$port.log" >&2
        done
        [ -n "$pid" ] || fail "could not start node $n"
    done

    local addrs=()
    for port in "${ports[@]}"; do addrs+=("127.0.0.1:$port"); done
    if ! timeout "$START_TIMEOUT" redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
            >"$dir/create.log" 2>&1; then
        cat "$dir/create.log" >&2
        fail "redis-cli --cluster create failed"
    fi

    # Every node must say cluster_state:ok and know all the slots.
    local ok
    for t in $(seq $((START_TIMEOUT * 10))); do
        ok=0
        for port in "${ports[@]}"; do
            info="$(redis-cli -p "$port" CLUSTER INFO 2>/dev/null | tr -d '\r')"
            if grep -q '^cluster_state:ok$' <<<"$info" && grep -q '^cluster_slots_ok:16384$' <<<"$info" \
                    && grep -q "^cluster_known_nodes:$NODES\$" <<<"$info"; then
                ok=$((ok + 1))
            fi
        done
        [ "$ok" -eq "$NODES" ] && break
        sleep 0.1
    done
    [ "$ok" -eq "$NODES" ] || fail "cluster_state:ok not reached on every node within ${START_TIMEOUT}s"

    echo "$me: 3-primary Redis cluster up in $dir (pids ${pids[*]})" >&2
    local IFS=,
    echo "${addrs[*]}"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
