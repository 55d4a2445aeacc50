#!/usr/bin/env python3
"""Drive redis-py's cluster clients against a 3-primary Redis Cluster (real Redis, or fanout's cluster mode).

Usage: cluster.py HOST:PORT[,HOST:PORT...]      (the seed nodes)

redis.cluster.RedisCluster (sync), run with RESP3 (redis-py's default) and with RESP2:
  topology        get_nodes() and get_primaries() count 3; CLUSTER KEYSLOT (cluster_keyslot, sent
                  to a node) of the shard channels and of keys with hash tags, equal to redis-py's
                  own keyslot()
  sharded pub/sub pubsub().ssubscribe() on channels in different slots (channel:123 slot 3018,
                  channel.0 7312, mychannel 10059, shard{foo} 12182); spublish() replies >= 1;
                  get_sharded_message(target_node=the channel's node) returns the smessage
  pub/sub         pubsub().subscribe(); publish() through the cluster and on every primary
                  (target_nodes=); the message arrives; the PUBLISH reply is not checked (in a
                  cluster it counts only that node's receivers)
  patterns        pubsub().psubscribe() gets pmessage published on every primary
  streams         xadd/xlen on two keys in different slots
redis.asyncio.cluster.RedisCluster: get_nodes(), spublish() to the sync subscriber (reply >= 1,
  message arrives), xadd/xlen on two keys in different slots.

Subscriptions are warmed up before each check: a probe is published every 100 ms until one
arrives (bounded), because a broker may route a new subscription with a small delay. Every wait
is bounded (socket timeouts, polling deadlines, and a watchdog alarm). Output: one PASS/FAIL line
per check, then a summary line. Exit status: 0 when every check passed, 1 if any failed, 2 on
usage errors or when redis-py is missing.
"""

import asyncio
import os
import random
import re
import signal
import sys
import time

try:
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
except ImportError:  # pragma: no cover - cluster.sh installs it
    print("cluster.py: redis-py is not installed (pip install -r requirements.txt)", file=sys.stderr)
    sys.exit(2)

TIMEOUT = 5.0  # seconds: one reply, one delivery
WATCHDOG = 40  # seconds: the whole script
TOK = f"{os.getpid()}-{random.randrange(10**9)}"
BASE = f"fanout-cluster-py:{TOK}"
ID_RE = re.compile(r"^[0-9]+-[0-9]+$")

SHARD_CHANNELS = [("channel:123", 3018), ("channel.0", 7312), ("mychannel", 10059), ("shard{foo}", 12182)]
KEYSLOTS = [("foo", 12182), ("bar", 5061), ("{user1000}.following", 3443), ("{user1}:x", None)]

PASSED = 0
FAILED = 0


class CheckFailed(Exception):
    pass


class Watchdog(BaseException):  # not an Exception: library retry loops must not swallow it
    pass


def check(cond, what, detail=""):
    global PASSED, FAILED
    if cond:
        PASSED += 1
        print(f"PASS {what}", flush=True)
        return
    FAILED += 1
    print(f"FAIL {what}{': ' + detail if detail else ''}", flush=True)
    raise CheckFailed(what)


def expect_eq(got, want, what):
    check(got == want, what, f"expected {want!r}, got {got!r}")


def section(name, fn, *args):
    """Run one group of checks; a failed check or an error ends the group, not the script."""
    global FAILED
    try:
        fn(*args)
    except CheckFailed:
        pass
    except Exception as e:  # an unexpected error reply, a timeout, a connection error
        FAILED += 1
        print(f"FAIL {name}: unexpected {type(e).__name__}: {e}", flush=True)


def is_probe(data):
    return isinstance(data, str) and data.startswith(f"{BASE}:probe:")


def ours(msg):
    return isinstance(msg.get("data"), str) and msg["data"].startswith(f"{BASE}:")


def next_message(get, types, timeout=TIMEOUT):
    """The next message of one of `types` that this run published, not a probe (None on timeout).

    `get(t)` reads one message, waiting at most t seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = get(min(0.1, max(0.0, deadline - time.monotonic())))
        if msg and msg["type"] in types and ours(msg) and not is_probe(msg["data"]):
            return msg
    return None


def wait_confirm(get, kind, name, what):
    """Wait for the (s|p)subscribe confirmation of `name`."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        msg = get(0.1)
        if msg and msg["type"] == kind and msg["channel"] == name:
            check(True, what)
            return
    check(False, what, f"no {kind} confirmation within {TIMEOUT}s")


def warm_up(get, types, publish, what):
    """Publish a probe every 100 ms until the subscriber sees one (at most TIMEOUT)."""
    deadline = time.monotonic() + TIMEOUT
    n = 0
    while time.monotonic() < deadline:
        publish(f"{BASE}:probe:{n}")
        n += 1
        until = time.monotonic() + 0.1
        while time.monotonic() < until:
            msg = get(0.05)
            if msg and msg["type"] in types and is_probe(msg.get("data")):
                if n > 1:
                    print(f"NOTE {what}: the subscription delivered from probe {n} on (earlier probes lost)")
                check(True, f"{what}: subscription is live (a probe arrived)")
                return
    check(False, f"{what}: subscription is live (a probe arrived)", f"none of {n} probes arrived within {TIMEOUT}s")


def seeds_nodes(seeds, cls):
    return [cls(host, port) for host, port in seeds]


def sync_client(seeds, protocol):
    return RedisCluster(
        startup_nodes=seeds_nodes(seeds, ClusterNode),
        decode_responses=True,
        protocol=protocol,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )


def topology(rc, tag):
    expect_eq(len(rc.get_nodes()), 3, f"{tag} get_nodes() count")
    expect_eq(len(rc.get_primaries()), 3, f"{tag} get_primaries() count")
    for name, slot in SHARD_CHANNELS + KEYSLOTS:
        got = rc.cluster_keyslot(name)
        expect_eq(got, rc.keyslot(name), f"{tag} CLUSTER KEYSLOT {name} equals redis-py's keyslot()")
        if slot is not None:
            expect_eq(got, slot, f"{tag} CLUSTER KEYSLOT {name}")


def sharded(rc, tag, state):
    p = rc.pubsub()
    state["spubsub"] = p
    # One call with channels in different slots: redis-py sends one SSUBSCRIBE per channel, each
    # to its slot's primary over a per-node connection.
    p.ssubscribe(*[ch for ch, _ in SHARD_CHANNELS])
    want = {ch for ch, _ in SHARD_CHANNELS}
    seen = set()
    deadline = time.monotonic() + TIMEOUT
    while seen != want and time.monotonic() < deadline:
        msg = p.get_sharded_message(timeout=0.05)  # round-robin over the per-node connections
        if msg and msg["type"] == "ssubscribe":
            seen.add(msg["channel"])
    expect_eq(sorted(seen), sorted(want), f"{tag} ssubscribe({len(want)} channels in different slots) confirmed")
    expect_eq(len(p.node_pubsub_mapping), len({rc.get_node_from_key(ch).name for ch in want}),
              f"{tag} one shard connection per primary that owns a channel")
    for ch, slot in SHARD_CHANNELS:
        node = rc.get_node_from_key(ch)
        get = lambda t, node=node: p.get_sharded_message(timeout=t, target_node=node)
        warm_up(get, ("smessage",), lambda m, ch=ch: rc.spublish(ch, m), f"{tag} ssubscribe {ch} (slot {slot})")
        msg = f"{BASE}:s:{ch}"
        n = rc.spublish(ch, msg)
        check(isinstance(n, int) and n >= 1, f"{tag} spublish {ch} -> >= 1 (the subscriber is on the slot's node)", repr(n))
        got = next_message(get, ("smessage",))
        expect_eq(got and (got["type"], got["channel"], got["data"]), ("smessage", ch, msg),
                  f"{tag} get_sharded_message(target_node={node.name}) returns the smessage on {ch}")
    state["sharded_ready"] = True


def plain(rc, tag, slug):
    ch = f"{BASE}:plain:{slug}"
    p = rc.pubsub()
    try:
        p.subscribe(ch)
        get = lambda t: p.get_message(timeout=t)
        wait_confirm(get, "subscribe", ch, f"{tag} subscribe {ch} confirmed")
        warm_up(get, ("message",), lambda m: rc.publish(ch, m), f"{tag} subscribe {ch}")
        m = f"{BASE}:p:cluster"
        n = rc.publish(ch, m)
        check(isinstance(n, int), f"{tag} publish through the cluster -> an integer (node-local count, not checked)", repr(n))
        got = next_message(get, ("message",))
        expect_eq(got and (got["channel"], got["data"]), (ch, m), f"{tag} message published through the cluster")
        for node in rc.get_primaries():
            m = f"{BASE}:p:{node.name}"
            n = rc.publish(ch, m, target_nodes=node)
            check(isinstance(n, int), f"{tag} PUBLISH on primary {node.name} -> an integer", repr(n))
            got = next_message(get, ("message",))
            expect_eq(got and (got["channel"], got["data"]), (ch, m), f"{tag} message published on primary {node.name} arrives")
    finally:
        p.close()


def patterns(rc, tag, slug):
    pattern = f"{BASE}:pat:{slug}:*"
    ch = f"{BASE}:pat:{slug}:x"
    p = rc.pubsub()
    try:
        p.psubscribe(pattern)
        get = lambda t: p.get_message(timeout=t)
        wait_confirm(get, "psubscribe", pattern, f"{tag} psubscribe {pattern} confirmed")
        warm_up(get, ("pmessage",), lambda m: rc.publish(ch, m), f"{tag} psubscribe {pattern}")
        for node in rc.get_primaries():
            m = f"{BASE}:pm:{node.name}"
            rc.publish(ch, m, target_nodes=node)
            got = next_message(get, ("pmessage",))
            expect_eq(got and (got["type"], got["pattern"], got["channel"], got["data"]), ("pmessage", pattern, ch, m),
                      f"{tag} pmessage published on primary {node.name}")
    finally:
        p.close()


def streams(rc, tag, slug):
    ka = f"{BASE}:{{foo}}:stream:{slug}"  # slot 12182
    kb = f"{BASE}:{{bar}}:stream:{slug}"  # slot 5061
    expect_eq((rc.keyslot(ka), rc.keyslot(kb)), (12182, 5061), f"{tag} the two stream keys are in slots 12182 and 5061")
    for k in (ka, kb):
        i = rc.xadd(k, {"n": 1})
        check(isinstance(i, str) and ID_RE.match(i), f"{tag} xadd {k} -> an ID", repr(i))
        expect_eq(rc.xlen(k), 1, f"{tag} xlen {k}")
        expect_eq(rc.xrange(k), [(i, {"n": "1"})], f"{tag} xrange {k}")
    for k in (ka, kb):
        expect_eq(rc.delete(k), 1, f"{tag} delete {k}")


async def async_scenarios(seeds, spubsub, sync_rc):
    tag = f"[redis-py {redis.__version__} asyncio]"
    arc = AsyncRedisCluster(
        startup_nodes=seeds_nodes(seeds, AsyncClusterNode),
        decode_responses=True,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )
    try:
        await asyncio.wait_for(arc.initialize(), TIMEOUT)
        expect_eq(len(arc.get_nodes()), 3, f"{tag} get_nodes() count")
        if spubsub is None:
            global FAILED
            FAILED += 1
            print(f"FAIL {tag} spublish: skipped, the sync shard subscriber's section failed", flush=True)
        for ch, slot in SHARD_CHANNELS if spubsub is not None else []:
            node = sync_rc.get_node_from_key(ch)
            get = lambda t, node=node: spubsub.get_sharded_message(timeout=t, target_node=node)
            msg = f"{BASE}:as:{ch}"
            n = await asyncio.wait_for(arc.spublish(ch, msg), TIMEOUT)
            check(isinstance(n, int) and n >= 1, f"{tag} spublish {ch} (slot {slot}) -> >= 1", repr(n))
            got = next_message(get, ("smessage",))
            expect_eq(got and (got["channel"], got["data"]), (ch, msg), f"{tag} the sync subscriber got the smessage on {ch}")
        ka = f"{BASE}:{{foo}}:astream"
        kb = f"{BASE}:{{bar}}:astream"
        for k in (ka, kb):
            i = await asyncio.wait_for(arc.xadd(k, {"a": 1}), TIMEOUT)
            check(isinstance(i, str) and ID_RE.match(i), f"{tag} xadd {k} -> an ID", repr(i))
            expect_eq(await asyncio.wait_for(arc.xlen(k), TIMEOUT), 1, f"{tag} xlen {k}")
            expect_eq(await asyncio.wait_for(arc.delete(k), TIMEOUT), 1, f"{tag} delete {k}")
    finally:
        await arc.aclose()


def run_async(seeds, spubsub, sync_rc):
    async def bounded():
        try:
            await asyncio.wait_for(async_scenarios(seeds, spubsub, sync_rc), 3 * TIMEOUT)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the asyncio checks did not finish within {3 * TIMEOUT}s") from None

    asyncio.run(bounded())


def sync_scenarios(seeds, protocol, keep):
    tag = f"[redis-py {redis.__version__} RESP{protocol}]"
    slug = f"resp{protocol}"  # for channel names: tag's brackets would be a glob class in a pattern
    try:
        rc = sync_client(seeds, protocol)
    except Exception as e:
        check(False, f"{tag} connect", f"{type(e).__name__}: {e}")
    state = {}
    try:
        section(f"{tag} topology", topology, rc, tag)
        section(f"{tag} sharded pub/sub", sharded, rc, tag, state)
        section(f"{tag} pub/sub", plain, rc, tag, slug)
        section(f"{tag} psubscribe", patterns, rc, tag, slug)
        section(f"{tag} streams", streams, rc, tag, slug)
        if keep:
            # The asyncio client publishes to this run's shard subscriber.
            spubsub = state["spubsub"] if state.get("sharded_ready") else None
            section(f"[redis-py {redis.__version__} asyncio]", run_async, seeds, spubsub, rc)
    finally:
        if state.get("spubsub") is not None:
            state["spubsub"].close()
        rc.close()


def parse_seeds(arg):
    seeds = []
    for s in arg.split(","):
        host, sep, port = s.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            return None
        seeds.append((host, int(port)))
    return seeds or None


def main(argv):
    seeds = parse_seeds(argv[1]) if len(argv) > 1 else None
    if not seeds:
        print("usage: cluster.py HOST:PORT[,HOST:PORT...]", file=sys.stderr)
        return 2
    global FAILED

    def on_alarm(_sig, _frame):
        raise Watchdog(f"not finished within {WATCHDOG}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(WATCHDOG)
    started = time.monotonic()
    try:
        for protocol in (3, 2):
            try:
                sync_scenarios(seeds, protocol, keep=(protocol == 3))
            except CheckFailed:
                pass
    except Watchdog as e:
        FAILED += 1
        print(f"FAIL cluster.py: {e}")
    finally:
        signal.alarm(0)
    took = time.monotonic() - started
    print(f"# cluster.py: redis-py {redis.__version__} against {argv[1]} in {took:.1f}s")
    print(f"cluster.py: {PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 and PASSED > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
