#!/usr/bin/env bash
# fanout-cluster.sh -- three fanout nodes as one Redis Cluster on loopback, with a nats-server
# as the bus between them: the fanout side of cluster.sh's differential runs (redis-cluster.sh
# is the Redis side).
#
#   fanout-cluster.sh start DIR BINARY   start nats-server and 3 fanout nodes (BINARY, e.g.
#                                        target/release/fanout) on free 127.0.0.1 ports, with the
#                                        topology file DIR/cluster.conf (Redis's default 3-way
#                                        split), wait until each node answers and its bus is
#                                        connected, print the seed list on stdout (and nothing
#                                        else), write the PIDs to DIR/pids
#   fanout-cluster.sh stop DIR           kill exactly those PIDs and remove the files it wrote
#
# Example:
#   seeds=$(tests/clients/fanout-cluster.sh start /tmp/fc target/release/fanout) &&
#       tests/clients/cluster.sh "$seeds"; tests/clients/fanout-cluster.sh stop /tmp/fc
#
# Needs nats-server (apt-get install nats-server), redis-cli and python3 (free ports). Exit
# status: 0 on success, 1 on failure (a failed start stops what it started), 2 on usage errors
# or a missing tool. Every wait is bounded.
set -u

me="fanout-cluster.sh"
usage() { echo "usage: $0 start DIR BINARY | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"
dir="$2"

alive() { kill -0 "$1" 2>/dev/null; }

stop() {
    [ -f "$dir/pids" ] || { echo "$me: no $dir/pids (nothing started there?)" >&2; return 1; }
    local pid
    for pid in $(cat "$dir/pids"); do alive "$pid" && kill "$pid" 2>/dev/null; done
    for _ in $(seq 100); do
        local left=0
        for pid in $(cat "$dir/pids"); do alive "$pid" && left=1; done
        [ "$left" -eq 0 ] && break
        sleep 0.1
    done
    for pid in $(cat "$dir/pids"); do alive "$pid" && kill -9 "$pid" 2>/dev/null; done
    rm -f "$dir/pids" "$dir/cluster.conf" "$dir"/fanout-*.log "$dir/nats.log"
    echo "$me: stopped the cluster in $dir" >&2
}

free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

start() {
    local bin="${1:-}"
    [ -x "$bin" ] || { echo "$me: no fanout binary at '$bin'" >&2; exit 2; }
    local nats
    nats="$(command -v nats-server || echo /usr/sbin/nats-server)"
    [ -x "$nats" ] || { echo "$me: missing: nats-server (apt-get install nats-server)" >&2; exit 2; }
    command -v redis-cli >/dev/null || { echo "$me: missing: redis-cli (apt-get install redis-tools)" >&2; exit 2; }
    mkdir -p "$dir"
    read -r np p1 p2 p3 <<<"$(free_ports 4)"
    : > "$dir/pids"
    "$nats" -a 127.0.0.1 -p "$np" > "$dir/nats.log" 2>&1 &
    echo $! >> "$dir/pids"
    cat > "$dir/cluster.conf" <<EOF
# written by $me
shard a slots 0-5460 primary 127.0.0.1:$p1
shard b slots 5461-10922 primary 127.0.0.1:$p2
shard c slots 10923-16383 primary 127.0.0.1:$p3
EOF
    local p
    for p in $p1 $p2 $p3; do
        "$bin" --port "$p" --cluster-enabled yes --cluster-config-file "$dir/cluster.conf" \
            --cluster-bus "nats://127.0.0.1:$np" --loglevel warning > "$dir/fanout-$p.log" 2>&1 &
        echo $! >> "$dir/pids"
    done
    for p in $p1 $p2 $p3; do
        local ok=0
        for _ in $(seq 100); do
            if redis-cli -p "$p" INFO cluster 2>/dev/null | grep -q '^cluster_bus_connected:1'; then ok=1; break; fi
            sleep 0.1
        done
        if [ "$ok" -ne 1 ]; then
            echo "$me: node $p did not come up with its bus connected:" >&2
            cat "$dir/fanout-$p.log" >&2
            stop
            exit 1
        fi
    done
    echo "127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3"
}

case "$cmd" in
    start) start "${3:-}" ;;
    stop) stop ;;
    *) usage ;;
esac
