#!/usr/bin/env python3
"""Drive redis-py's Redis Streams API (and the generic key commands on streams) against a server.

Usage: streams.py PORT [HOST]        (HOST defaults to 127.0.0.1)

Every scenario goes through redis-py's own stream methods (xadd, xreadgroup, xinfo_stream, ...)
so that redis-py's reply parsers -- tuples of (id, {field: value}), the xpending dicts, the
xinfo dicts with 'entries-read', 'lag', 'inactive' -- are what is checked. Each scenario runs
twice: once with RESP3 (redis-py's default since 8.0, HELLO 3) and once with RESP2, on keys
with a per-process prefix that are deleted first. The last scenario FLUSHDBs (fanout's
keyspace holds streams only; run this against a scratch server).

A reference redis-server 7.0.x is accepted too: the few 7.2-only fields (XINFO CONSUMERS
'inactive', XINFO STREAM FULL 'active-time') are then required to be absent instead of present
(the server's INFO redis_version decides).

Exit status: 0 when every check passed, 1 on the first failed check (the message says
which), 2 when the server cannot be reached. The last line is a one-line summary.
"""

import os
import re
import sys
import threading
import time

try:
    import redis
    from redis.exceptions import ResponseError, WatchError
except ImportError:  # pragma: no cover - run.sh installs it
    print("streams.py: redis-py is not installed (pip install -r requirements.txt)", file=sys.stderr)
    sys.exit(2)

TIMEOUT = 5.0  # seconds; a server that never answers fails the check instead of hanging
CHECKS = 0
ID_RE = re.compile(r"^[0-9]+-[0-9]+$")


class CheckFailed(Exception):
    pass


def check(cond, what, detail=""):
    global CHECKS
    if not cond:
        raise CheckFailed(f"{what}{': ' + detail if detail else ''}")
    CHECKS += 1


def expect_eq(got, want, what):
    check(got == want, what, f"expected {want!r}, got {got!r}")


def expect_error(fn, what, test):
    try:
        res = fn()
    except ResponseError as e:
        check(test(str(e)), what, f"unexpected error {type(e).__name__}: {e}")
    else:
        check(False, what, f"expected an error reply, got {res!r}")


def client(host, port, protocol, **kw):
    kw.setdefault("socket_timeout", TIMEOUT)
    return redis.Redis(
        host=host,
        port=port,
        protocol=protocol,
        decode_responses=True,
        socket_connect_timeout=TIMEOUT,
        **kw,
    )


def id_key(i):
    ms, seq = i.split("-")
    return int(ms), int(seq)


def streams_reply(protocol, pairs):
    """redis-py's parsed XREAD/XREADGROUP reply for [(key, [entries]), ...].

    RESP2: [[key, [(id, fields), ...]], ...]. RESP3: {key: [[(id, fields), ...]]} -- redis-py's
    RESP3 parser wraps each stream's entry list in one more list."""
    if protocol == 3:
        return {k: [entries] for k, entries in pairs}
    return [[k, entries] for k, entries in pairs]


def wait_blocked(r, n, what, timeout=TIMEOUT):
    """Poll INFO clients until blocked_clients >= n (the blocked call has reached the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(r.info("clients")["blocked_clients"]) >= n:
            return
        time.sleep(0.01)
    check(False, what, f"blocked_clients did not reach {n} within {timeout}s")


class Background:
    """Run fn() in a thread; result() joins with a timeout and re-raises its exception."""

    def __init__(self, fn):
        self.value, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e

    def result(self, what, timeout=TIMEOUT):
        self.thread.join(timeout)
        check(not self.thread.is_alive(), what, f"no reply within {timeout}s")
        if self.error is not None:
            raise self.error
        return self.value


def basics(r, tag, base):
    """XADD (explicit / auto id, MAXLEN ~, NOMKSTREAM), XLEN, XRANGE/XREVRANGE, XDEL, XTRIM."""
    s, missing, big = f"{base}:basic", f"{base}:missing", f"{base}:big"

    expect_eq(r.xadd(s, {"f": "v1"}, id="1-1"), "1-1", f"[{tag}] XADD explicit id")
    expect_eq(r.xadd(s, {"f": "v2", "g": "w2"}, id="2-0"), "2-0", f"[{tag}] XADD explicit id, two fields")
    auto = r.xadd(s, {"f": "v3"})
    check(isinstance(auto, str) and ID_RE.match(auto) and id_key(auto) > (2, 0),
          f"[{tag}] XADD * returns a new ms-seq id above the last", repr(auto))
    expect_eq(r.xlen(s), 3, f"[{tag}] XLEN")
    expect_eq(r.xlen(missing), 0, f"[{tag}] XLEN of a missing key")

    expect_eq(r.xadd(missing, {"f": "v"}, nomkstream=True), None, f"[{tag}] XADD NOMKSTREAM on a missing key -> None")
    expect_eq(r.exists(missing), 0, f"[{tag}] XADD NOMKSTREAM created no key")
    expect_eq(r.xadd(s, {"f": "v4"}, id="*", nomkstream=True) is not None, True,
              f"[{tag}] XADD NOMKSTREAM on an existing stream adds")
    last = r.xrevrange(s, count=1)[0][0]

    expect_eq(r.xrange(s, count=2), [("1-1", {"f": "v1"}), ("2-0", {"f": "v2", "g": "w2"})],
              f"[{tag}] XRANGE - + COUNT 2 parsed as (id, dict) tuples")
    expect_eq(r.xrange(s, min="2-0", max="2-0"), [("2-0", {"f": "v2", "g": "w2"})], f"[{tag}] XRANGE single id")
    expect_eq(r.xrange(s, min="(1-1", max=auto), [("2-0", {"f": "v2", "g": "w2"}), (auto, {"f": "v3"})],
              f"[{tag}] XRANGE exclusive start")
    expect_eq(r.xrevrange(s, count=2), [(last, {"f": "v4"}), (auto, {"f": "v3"})], f"[{tag}] XREVRANGE + - COUNT 2")
    expect_eq(r.xrevrange(s, max="2-0", min="-"), [("2-0", {"f": "v2", "g": "w2"}), ("1-1", {"f": "v1"})],
              f"[{tag}] XREVRANGE 2-0 -")
    expect_eq(r.xrange(missing), [], f"[{tag}] XRANGE of a missing key -> []")

    expect_eq(r.xdel(s, "2-0", "9-9"), 1, f"[{tag}] XDEL counts only existing ids")
    expect_eq(r.xrange(s, count=2), [("1-1", {"f": "v1"}), (auto, {"f": "v3"})], f"[{tag}] XRANGE after XDEL")

    # redis-py's xtrim() defaults to approximate=True ('~'), which on a one-node stream trims nothing.
    expect_eq(r.xtrim(s, minid=auto), 0, f"[{tag}] XTRIM MINID ~ (redis-py's default) on a small stream removes nothing")
    expect_eq(r.xtrim(s, minid=auto, approximate=False), 1, f"[{tag}] XTRIM MINID = removes the entries below")
    expect_eq(r.xtrim(s, maxlen=1, approximate=False), 1, f"[{tag}] XTRIM MAXLEN = 1")
    expect_eq(r.xrange(s), [(last, {"f": "v4"})], f"[{tag}] XRANGE after both XTRIMs")
    expect_eq(r.xtrim(missing, maxlen=0), 0, f"[{tag}] XTRIM of a missing key -> 0")

    # MAXLEN ~: only whole macro nodes (100 entries each by default) go. 250 entries, then
    # XADD MAXLEN ~ 120 -> 251 entries, the first node of 100 is dropped -> 151 left.
    pipe = r.pipeline(transaction=False)
    for i in range(1, 251):
        pipe.xadd(big, {"i": i}, id=f"{i}-0")
    pipe.execute()
    expect_eq(r.xadd(big, {"i": 251}, id="251-0", maxlen=120, approximate=True), "251-0", f"[{tag}] XADD MAXLEN ~ 120")
    expect_eq(r.xlen(big), 151, f"[{tag}] XADD MAXLEN ~ 120 on 251 entries drops one whole node")
    expect_eq(r.xrange(big, count=1), [("101-0", {"i": "101"})], f"[{tag}] first entry after the approximate trim")
    expect_eq(r.xadd(big, {"i": 252}, id="252-0", maxlen=10, approximate=False), "252-0", f"[{tag}] XADD MAXLEN = 10")
    expect_eq(r.xlen(big), 10, f"[{tag}] XADD MAXLEN = 10 trims exactly")
    expect_eq(r.xtrim(big, maxlen=5, approximate=True), 0, f"[{tag}] XTRIM MAXLEN ~ 5 on one partial node removes nothing")


def reads(r, r2, tag, base, protocol):
    """XREAD over several streams with ids and $, and a blocking XREAD woken by another client."""
    a, b, empty, missing = f"{base}:ra", f"{base}:rb", f"{base}:rempty", f"{base}:rmissing"
    for i in (1, 2, 3):
        r.xadd(a, {"a": i}, id=f"{i}-0")
    r.xadd(b, {"b": 1}, id="5-0")
    r.xadd(empty, {"x": 0}, id="1-0")
    r.xdel(empty, "1-0")

    ea = [(f"{i}-0", {"a": str(i)}) for i in (1, 2, 3)]
    eb = [("5-0", {"b": "1"})]
    expect_eq(r.xread({a: "0", b: "0"}), streams_reply(protocol, [(a, ea), (b, eb)]),
              f"[{tag}] XREAD two streams from 0")
    expect_eq(r.xread({a: "1-0", b: "0", missing: "0"}, count=1),
              streams_reply(protocol, [(a, ea[1:2]), (b, eb)]),
              f"[{tag}] XREAD COUNT 1 from ids; a missing key is left out")
    expect_eq(r.xread({b: "5-0", a: "2-0"}), streams_reply(protocol, [(a, ea[2:])]),
              f"[{tag}] XREAD only keys with data are in the reply")
    nothing = {} if protocol == 3 else []
    expect_eq(r.xread({a: "$", b: "$", missing: "$"}), nothing, f"[{tag}] XREAD $ without BLOCK -> empty")
    expect_eq(r.xread({empty: "0"}), nothing, f"[{tag}] XREAD on a stream emptied by XDEL -> empty")

    t0 = time.monotonic()
    expect_eq(r.xread({a: "$"}, block=100), nothing, f"[{tag}] XREAD BLOCK 100 times out -> empty")
    took = time.monotonic() - t0
    check(0.09 <= took < 2.0, f"[{tag}] XREAD BLOCK 100 waited about 100 ms", f"{took:.3f}s")

    # Blocking XREAD on several keys with $ (BLOCK 0 = forever), woken by r2's XADD.
    reader = client(r.connection_pool.connection_kwargs["host"], r.connection_pool.connection_kwargs["port"],
                    protocol, socket_timeout=TIMEOUT + 1)
    try:
        before = int(r.info("clients")["blocked_clients"])
        job = Background(lambda: reader.xread({a: "$", b: "$"}, block=0))
        wait_blocked(r, before + 1, f"[{tag}] XREAD BLOCK 0 is blocked")
        expect_eq(r2.xadd(b, {"woke": "yes"}, id="6-0"), "6-0", f"[{tag}] second client's XADD")
        got = job.result(f"[{tag}] blocked XREAD woken by XADD")
        expect_eq(got, streams_reply(protocol, [(b, [("6-0", {"woke": "yes"})])]),
                  f"[{tag}] blocked XREAD reply parsed: only the woken key, the new entry")

        # BLOCK 3000 from an explicit id, woken by a MULTI of two XADDs: both entries at once.
        job = Background(lambda: reader.xread({a: "3-0"}, block=3000))
        wait_blocked(r, before + 1, f"[{tag}] XREAD BLOCK 3000 is blocked")
        pipe = r2.pipeline()
        pipe.xadd(a, {"a": 4}, id="4-0")
        pipe.xadd(a, {"a": 5}, id="5-0")
        expect_eq(pipe.execute(), ["4-0", "5-0"], f"[{tag}] MULTI of two XADDs")
        got = job.result(f"[{tag}] blocked XREAD woken by MULTI/EXEC")
        expect_eq(got, streams_reply(protocol, [(a, [("4-0", {"a": "4"}), ("5-0", {"a": "5"})])]),
                  f"[{tag}] blocked XREAD gets both entries of the transaction")
    finally:
        reader.close()


def groups(r, r2, tag, base, protocol, v72):
    """Consumer groups: create, read, ack, pending, claim, autoclaim, consumers, setid, destroy, XINFO."""
    s, nokey = f"{base}:grp", f"{base}:grp-missing"
    host, port = r.connection_pool.connection_kwargs["host"], r.connection_pool.connection_kwargs["port"]

    expect_error(lambda: r.xgroup_create(nokey, "g", id="$"), f"[{tag}] XGROUP CREATE on a missing key without MKSTREAM",
                 lambda m: "requires the key to exist" in m)
    expect_eq(r.xgroup_create(s, "g", id="$", mkstream=True), True, f"[{tag}] XGROUP CREATE $ MKSTREAM")
    expect_eq((r.exists(s), r.xlen(s), r.type(s)), (1, 0, "stream"), f"[{tag}] MKSTREAM made an empty stream")
    expect_error(lambda: r.xgroup_create(s, "g", id="$"), f"[{tag}] XGROUP CREATE twice -> BUSYGROUP",
                 lambda m: "already exists" in m)
    for i in (1, 2, 3, 4, 5):
        r.xadd(s, {"n": i}, id=f"{i}-0")
    expect_eq(r.xgroup_create(s, "g0", id="0"), True, f"[{tag}] XGROUP CREATE 0 on a non-empty stream")
    e = {i: (f"{i}-0", {"n": str(i)}) for i in (1, 2, 3, 4, 5)}

    expect_eq(r.xreadgroup("g", "alice", {s: ">"}, count=2), streams_reply(protocol, [(s, [e[1], e[2]])]),
              f"[{tag}] XREADGROUP > COUNT 2 (alice)")
    expect_eq(r.xreadgroup("g", "bob", {s: ">"}, count=10), streams_reply(protocol, [(s, [e[3], e[4], e[5]])]),
              f"[{tag}] XREADGROUP > COUNT 10 (bob) gets the rest")
    nothing = {} if protocol == 3 else []
    expect_eq(r.xreadgroup("g", "alice", {s: ">"}), nothing, f"[{tag}] XREADGROUP > with nothing new -> empty")
    expect_eq(r.xreadgroup("g", "alice", {s: "0"}), streams_reply(protocol, [(s, [e[1], e[2]])]),
              f"[{tag}] XREADGROUP 0 re-reads alice's own history")
    expect_error(lambda: r.xreadgroup("g", "alice", {nokey: ">"}), f"[{tag}] XREADGROUP on a missing key -> NOGROUP",
                 lambda m: "No such key" in m)

    expect_eq(r.xack(s, "g", "1-0"), 1, f"[{tag}] XACK one pending id")
    expect_eq(r.xack(s, "g", "1-0", "9-0"), 0, f"[{tag}] XACK again / unknown id -> 0")
    expect_eq(r.xpending(s, "g"), {"pending": 4, "min": "2-0", "max": "5-0",
                                   "consumers": [{"name": "alice", "pending": 1}, {"name": "bob", "pending": 3}]},
              f"[{tag}] XPENDING summary parsed into a dict")
    expect_eq(r.xpending(s, "g0"), {"pending": 0, "min": None, "max": None, "consumers": []},
              f"[{tag}] XPENDING summary of an empty PEL")

    rng = r.xpending_range(s, "g", "-", "+", 10, consumername="bob", idle=0)
    expect_eq([(p["message_id"], p["consumer"], p["times_delivered"]) for p in rng],
              [("3-0", "bob", 1), ("4-0", "bob", 1), ("5-0", "bob", 1)], f"[{tag}] XPENDING IDLE 0 - + 10 bob")
    expect_eq([p["message_id"] for p in r.xpending_range(s, "g", "(3-0", "+", 1, consumername="bob")], ["4-0"],
              f"[{tag}] XPENDING (3-0 + 1 bob: exclusive start, count")
    check(all(isinstance(p["time_since_delivered"], int) and 0 <= p["time_since_delivered"] < 5000 for p in rng),
          f"[{tag}] XPENDING time_since_delivered is a small int", repr(rng))
    expect_eq([p["message_id"] for p in r.xpending_range(s, "g", "-", "+", 10, idle=0)], ["2-0", "3-0", "4-0", "5-0"],
              f"[{tag}] XPENDING IDLE 0 - + 10 lists the whole PEL")
    expect_eq(r.xpending_range(s, "g", "-", "+", 10, idle=60000), [], f"[{tag}] XPENDING IDLE 60000 -> []")
    expect_eq(r.xpending_range(s, "g", "-", "+", 10, consumername="nobody"), [], f"[{tag}] XPENDING unknown consumer -> []")

    # alice's read of history above made 2-0's delivery count 2; XCLAIM makes it 3.
    expect_eq(r.xclaim(s, "g", "carol", 0, ["2-0"]), [e[2]], f"[{tag}] XCLAIM returns the claimed entry")
    expect_eq(r.xclaim(s, "g", "carol", 0, ["3-0"], justid=True), ["3-0"], f"[{tag}] XCLAIM JUSTID returns ids")
    expect_eq(r.xclaim(s, "g", "carol", 60000, ["4-0"]), [], f"[{tag}] XCLAIM below min-idle-time claims nothing")
    got = {p["message_id"]: (p["consumer"], p["times_delivered"]) for p in r.xpending_range(s, "g", "-", "+", 10)}
    expect_eq(got, {"2-0": ("carol", 3), "3-0": ("carol", 1), "4-0": ("bob", 1), "5-0": ("bob", 1)},
              f"[{tag}] PEL owners and delivery counts after XCLAIM (JUSTID does not count)")

    # XAUTOCLAIM: 4-0 is deleted while pending -> reported in element 3 and dropped from the PEL.
    expect_eq(r.xdel(s, "4-0"), 1, f"[{tag}] XDEL a pending entry")
    expect_eq(r.xautoclaim(s, "g", "dave", 0, "0-0", count=10),
              ["0-0", [e[2], e[3], e[5]], ["4-0"]],
              f"[{tag}] XAUTOCLAIM -> [cursor, entries, deleted ids]")
    expect_eq(r.xautoclaim(s, "g", "dave", 0, "0-0", count=2), ["5-0", [e[2], e[3]], []],
              f"[{tag}] XAUTOCLAIM COUNT 2 returns the next cursor")
    expect_eq(r.xautoclaim(s, "g", "erin", 0, "(3-0", justid=True), ["5-0"],
              f"[{tag}] XAUTOCLAIM JUSTID from an exclusive start (redis-py returns the ids)")
    expect_eq(r.xpending(s, "g")["consumers"], [{"name": "dave", "pending": 2}, {"name": "erin", "pending": 1}],
              f"[{tag}] XPENDING consumers after XAUTOCLAIM")

    expect_eq(r.xgroup_createconsumer(s, "g", "frank"), 1, f"[{tag}] XGROUP CREATECONSUMER new")
    expect_eq(r.xgroup_createconsumer(s, "g", "frank"), 0, f"[{tag}] XGROUP CREATECONSUMER existing")
    expect_eq(r.xgroup_delconsumer(s, "g", "dave"), 2, f"[{tag}] XGROUP DELCONSUMER returns its pending count")
    expect_eq(r.xgroup_delconsumer(s, "g", "nobody"), 0, f"[{tag}] XGROUP DELCONSUMER of an unknown consumer")

    # XINFO CONSUMERS: alice bob carol erin frank (dave deleted), by name.
    cons = r.xinfo_consumers(s, "g")
    expect_eq([(c["name"], c["pending"]) for c in cons],
              [("alice", 0), ("bob", 0), ("carol", 0), ("erin", 1), ("frank", 0)],
              f"[{tag}] XINFO CONSUMERS names and pending")
    check(all(isinstance(c["idle"], int) and c["idle"] >= 0 for c in cons), f"[{tag}] XINFO CONSUMERS idle", repr(cons))
    if v72:
        check(all(isinstance(c.get("inactive"), int) for c in cons), f"[{tag}] XINFO CONSUMERS inactive (7.2)", repr(cons))
        expect_eq(cons[4]["inactive"], -1, f"[{tag}] XINFO CONSUMERS inactive of a never-active consumer is -1")
        check(cons[3]["inactive"] >= 0, f"[{tag}] XINFO CONSUMERS inactive of an active consumer", repr(cons[3]))
    else:
        check(all("inactive" not in c for c in cons), f"[{tag}] XINFO CONSUMERS has no inactive (7.0)", repr(cons))

    # XINFO GROUPS: g (read everything: entries-read 5, lag 0) and g0 (never read: entries-read
    # None; lag None because of the XDEL tombstone at 4-0 after its last-delivered-id 0-0).
    expect_eq(r.xinfo_groups(s), [
        {"name": "g", "consumers": 5, "pending": 1, "last-delivered-id": "5-0", "entries-read": 5, "lag": 0},
        {"name": "g0", "consumers": 0, "pending": 0, "last-delivered-id": "0-0", "entries-read": None, "lag": None},
    ], f"[{tag}] XINFO GROUPS parsed into dicts")

    info = r.xinfo_stream(s)
    expect_eq({k: v for k, v in info.items() if k not in ("radix-tree-keys", "radix-tree-nodes")}, {
        "length": 4, "last-generated-id": "5-0", "max-deleted-entry-id": "4-0", "entries-added": 5,
        "recorded-first-entry-id": "1-0", "groups": 2, "first-entry": e[1], "last-entry": e[5],
    }, f"[{tag}] XINFO STREAM parsed, first/last entry as (id, dict)")
    check(isinstance(info["radix-tree-keys"], int) and isinstance(info["radix-tree-nodes"], int),
          f"[{tag}] XINFO STREAM radix-tree fields are ints", repr(info))

    full = r.xinfo_stream(s, full=True)
    expect_eq(full["entries"], {"1-0": {"n": "1"}, "2-0": {"n": "2"}, "3-0": {"n": "3"}, "5-0": {"n": "5"}},
              f"[{tag}] XINFO STREAM FULL entries parsed into {{id: fields}}")
    expect_eq((full["length"], full["entries-added"], full["last-generated-id"]), (4, 5, "5-0"),
              f"[{tag}] XINFO STREAM FULL top-level fields")
    fg = {g["name"]: g for g in full["groups"]}
    expect_eq(sorted(fg), ["g", "g0"], f"[{tag}] XINFO STREAM FULL groups")
    g = fg["g"]
    expect_eq((g["last-delivered-id"], g["entries-read"], g["lag"], g["pel-count"]), ("5-0", 5, 0, 1),
              f"[{tag}] XINFO STREAM FULL group fields")
    expect_eq([(p[0], p[1], p[3]) for p in g["pending"]], [("5-0", "erin", 2)],
              f"[{tag}] XINFO STREAM FULL group pending [id, consumer, time, count]")
    expect_eq([(c["name"], c["pel-count"]) for c in g["consumers"]],
              [("alice", 0), ("bob", 0), ("carol", 0), ("erin", 1), ("frank", 0)],
              f"[{tag}] XINFO STREAM FULL consumers")
    erin = g["consumers"][3]
    expect_eq([(p[0], p[2]) for p in erin["pending"]], [("5-0", 2)], f"[{tag}] XINFO STREAM FULL consumer pending")
    check(isinstance(erin["seen-time"], int) and erin["seen-time"] > 0, f"[{tag}] FULL seen-time", repr(erin))
    if v72:
        check(all(isinstance(c.get("active-time"), int) for c in g["consumers"]),
              f"[{tag}] XINFO STREAM FULL active-time (7.2)", repr(g["consumers"]))
    else:
        check(all("active-time" not in c for c in g["consumers"]),
              f"[{tag}] XINFO STREAM FULL has no active-time (7.0)", repr(g["consumers"]))
    expect_eq((fg["g0"]["entries-read"], fg["g0"]["pel-count"], fg["g0"]["consumers"]), (None, 0, []),
              f"[{tag}] XINFO STREAM FULL idle group")

    expect_eq(r.xgroup_setid(s, "g", "0"), True, f"[{tag}] XGROUP SETID 0")
    expect_eq(r.xreadgroup("g", "frank", {s: ">"}, count=1), streams_reply(protocol, [(s, [e[1]])]),
              f"[{tag}] XREADGROUP > after SETID 0 re-delivers from the start")
    expect_eq(r.xgroup_setid(s, "g", "$"), True, f"[{tag}] XGROUP SETID $")
    gi = [x for x in r.xinfo_groups(s) if x["name"] == "g"][0]
    expect_eq((gi["last-delivered-id"], gi["lag"]), ("5-0", 0), f"[{tag}] XINFO GROUPS after SETID $")
    expect_error(lambda: r.xgroup_setid(s, "nogroup", "$"), f"[{tag}] XGROUP SETID of a missing group -> NOGROUP",
                 lambda m: "No such consumer group" in m)

    # Blocking XREADGROUP > woken by another client's XADD.
    reader = client(host, port, protocol, socket_timeout=TIMEOUT + 1)
    try:
        before = int(r.info("clients")["blocked_clients"])
        job = Background(lambda: reader.xreadgroup("g", "frank", {s: ">"}, count=5, block=3000))
        wait_blocked(r, before + 1, f"[{tag}] XREADGROUP BLOCK 3000 is blocked")
        expect_eq(r2.xadd(s, {"n": 6}, id="6-0"), "6-0", f"[{tag}] second client's XADD to the group's stream")
        expect_eq(job.result(f"[{tag}] blocked XREADGROUP woken"), streams_reply(protocol, [(s, [("6-0", {"n": "6"})])]),
                  f"[{tag}] blocked XREADGROUP reply parsed")
    finally:
        reader.close()
    expect_eq([(p["message_id"], p["consumer"]) for p in r.xpending_range(s, "g", "6-0", "6-0", 1)], [("6-0", "frank")],
              f"[{tag}] the woken XREADGROUP entered the PEL")

    expect_eq(r.xgroup_destroy(s, "g"), 1, f"[{tag}] XGROUP DESTROY")
    expect_eq(r.xgroup_destroy(s, "g"), 0, f"[{tag}] XGROUP DESTROY of a gone group")
    expect_eq([x["name"] for x in r.xinfo_groups(s)], ["g0"], f"[{tag}] XINFO GROUPS after DESTROY")
    expect_error(lambda: r.xinfo_stream(nokey), f"[{tag}] XINFO STREAM of a missing key", lambda m: "no such key" in m)


def deleted_pending(r, tag, base, protocol):
    """A pending entry whose stream entry was XDELed: history reads show it with no fields
    (the server sends [id, nil]; redis-py parses that as (id, {})), and XCLAIM drops it."""
    s = f"{base}:delpel"
    r.xadd(s, {"a": 1}, id="1-0")
    r.xadd(s, {"a": 2}, id="2-0")
    r.xgroup_create(s, "g", id="0")
    expect_eq(r.xreadgroup("g", "c", {s: ">"}), streams_reply(protocol, [(s, [("1-0", {"a": "1"}), ("2-0", {"a": "2"})])]),
              f"[{tag}] XREADGROUP > before the XDEL")
    expect_eq(r.xdel(s, "1-0"), 1, f"[{tag}] XDEL a pending entry")
    expect_eq(r.xreadgroup("g", "c", {s: "0"}), streams_reply(protocol, [(s, [("1-0", {}), ("2-0", {"a": "2"})])]),
              f"[{tag}] XREADGROUP history shows the deleted pending entry with no fields")
    expect_eq(r.xclaim(s, "g", "d", 0, ["1-0", "2-0"]), [("2-0", {"a": "2"})], f"[{tag}] XCLAIM skips the deleted entry")
    expect_eq(r.xpending(s, "g"), {"pending": 1, "min": "2-0", "max": "2-0", "consumers": [{"name": "d", "pending": 1}]},
              f"[{tag}] XCLAIM removed the deleted entry from the PEL")
    expect_eq(r.xreadgroup("g", "c", {s: "0"}), streams_reply(protocol, [(s, [])]),
              f"[{tag}] XREADGROUP history with nothing pending still names the key")


def keyspace(r, tag, base):
    """Generic key commands on stream keys: EXISTS TYPE DEL RENAME EXPIRE TTL PERSIST SCAN KEYS DBSIZE FLUSHDB."""
    ks = f"{base}:ks"
    k1, k2, k3, renamed = f"{ks}:k1", f"{ks}:k2", f"{ks}:k3", f"{ks}:renamed"
    for k in (k1, k2, k3):
        r.xadd(k, {"k": k})
    expect_eq(r.exists(k1, k2, k3, f"{base}:none"), 3, f"[{tag}] EXISTS counts stream keys")
    expect_eq((r.type(k1), r.type(f"{base}:none")), ("stream", "none"), f"[{tag}] TYPE")
    expect_eq(r.rename(k3, renamed), True, f"[{tag}] RENAME")
    expect_eq((r.exists(k3), r.xrange(renamed)[0][1]), (0, {"k": k3}), f"[{tag}] RENAME moved the stream")
    expect_error(lambda: r.rename(k3, k1), f"[{tag}] RENAME of a missing key", lambda m: "no such key" in m)

    expect_eq(r.ttl(k1), -1, f"[{tag}] TTL without expiry -> -1")
    expect_eq(r.expire(k1, 100), True, f"[{tag}] EXPIRE")
    ttl = r.ttl(k1)
    check(90 <= ttl <= 100, f"[{tag}] TTL after EXPIRE 100", repr(ttl))
    expect_eq(r.persist(k1), True, f"[{tag}] PERSIST")
    expect_eq(r.ttl(k1), -1, f"[{tag}] TTL after PERSIST")
    expect_eq(r.ttl(f"{base}:none"), -2, f"[{tag}] TTL of a missing key -> -2")
    expect_eq(r.pexpire(k2, 50), True, f"[{tag}] PEXPIRE 50")
    time.sleep(0.12)
    expect_eq((r.exists(k2), r.xlen(k2)), (0, 0), f"[{tag}] the stream expired")

    want = sorted([k1, renamed])
    expect_eq(sorted(r.scan_iter(match=f"{ks}:*", count=2)), want, f"[{tag}] scan_iter MATCH")
    expect_eq(sorted(r.scan_iter(match=f"{ks}:*", _type="stream")), want, f"[{tag}] scan_iter MATCH TYPE stream")
    expect_eq(list(r.scan_iter(match=f"{ks}:*", _type="string")), [], f"[{tag}] scan_iter TYPE string -> none")
    expect_eq(sorted(r.keys(f"{ks}:*")), want, f"[{tag}] KEYS pattern")
    n = r.dbsize()
    check(n >= 2, f"[{tag}] DBSIZE counts the streams", repr(n))
    expect_eq(r.delete(k1, renamed, f"{base}:none"), 2, f"[{tag}] DEL counts deleted keys")
    expect_eq(r.dbsize(), n - 2, f"[{tag}] DBSIZE after DEL")

    r.xadd(k1, {"again": 1})
    expect_eq(r.flushdb(), True, f"[{tag}] FLUSHDB")
    expect_eq((r.dbsize(), r.exists(k1), r.keys("*")), (0, 0, []), f"[{tag}] nothing left after FLUSHDB")


def transactions(r, r2, tag, base, protocol):
    """MULTI/EXEC and plain pipelines mixing stream commands; WATCH on a stream broken by XADD."""
    s = f"{base}:tx"
    pipe = r.pipeline()
    pipe.xadd(s, {"t": 1}, id="1-0")
    pipe.xadd(s, {"t": 2}, id="2-0")
    pipe.xrange(s)
    pipe.xlen(s)
    pipe.xread({s: "1-0"})
    pipe.xread({s: "$"}, block=0)  # would block: inside MULTI it answers the null reply at once
    pipe.xrevrange(s, count=1)
    got = pipe.execute()
    nothing = {} if protocol == 3 else []
    expect_eq(got, ["1-0", "2-0", [("1-0", {"t": "1"}), ("2-0", {"t": "2"})], 2,
                    streams_reply(protocol, [(s, [("2-0", {"t": "2"})])]), nothing, [("2-0", {"t": "2"})]],
              f"[{tag}] MULTI/EXEC: XADD, XRANGE, XLEN, XREAD, XREAD BLOCK (null), XREVRANGE parsed")

    pipe = r.pipeline(transaction=False)
    pipe.xadd(s, {"t": 3}, id="3-0")
    pipe.xdel(s, "1-0")
    pipe.xrange(s, "-", "+", count=5)
    expect_eq(pipe.execute(), ["3-0", 1, [("2-0", {"t": "2"}), ("3-0", {"t": "3"})]],
              f"[{tag}] pipeline(transaction=False) with stream commands")

    # WATCH a stream; another client's XADD aborts the transaction.
    with r.pipeline() as pipe:
        expect_eq(pipe.watch(s), True, f"[{tag}] WATCH a stream")
        expect_eq(pipe.xlen(s), 2, f"[{tag}] XLEN in watch mode runs immediately")
        expect_eq(r2.xadd(s, {"t": "other"}, id="4-0"), "4-0", f"[{tag}] other client's XADD on the watched stream")
        pipe.multi()
        pipe.xadd(s, {"t": "mine"}, id="5-0")
        try:
            res = pipe.execute()
        except WatchError:
            check(True, f"[{tag}] EXEC after the watched stream changed raises WatchError")
        else:
            check(False, f"[{tag}] EXEC after the watched stream changed must raise WatchError", f"got {res!r}")
    expect_eq(r.xrevrange(s, count=1), [("4-0", {"t": "other"})], f"[{tag}] the aborted XADD did not run")

    # WATCH with an untouched stream succeeds; XREADGROUP on a watched stream does not abort (not a write to it).
    with r.pipeline() as pipe:
        pipe.watch(s)
        r2.xrange(s)
        pipe.multi()
        pipe.xadd(s, {"t": "mine"}, id="5-0")
        pipe.xlen(s)
        expect_eq(pipe.execute(), ["5-0", 4], f"[{tag}] WATCH + MULTI/EXEC with an untouched stream")

    # r.transaction(): the retry helper re-runs the body when the watched stream changed.
    attempts = []

    def body(p):
        n = p.xlen(s)
        attempts.append(n)
        if len(attempts) == 1:
            r2.xadd(s, {"t": "race"}, id="6-0")
        p.multi()
        p.xadd(s, {"t": f"after-{n}"}, id=f"{10 + n}-0")

    expect_eq(r.transaction(body, s), ["15-0"], f"[{tag}] r.transaction() retried after a concurrent XADD")
    expect_eq(attempts, [4, 5], f"[{tag}] r.transaction() body ran twice")


def scenarios(host, port, protocol):
    tag = f"RESP{protocol}"
    base = f"fanout-streams:{os.getpid()}:{protocol}"
    r = client(host, port, protocol)
    r2 = client(host, port, protocol)
    try:
        expect_eq(r.ping(), True, f"[{tag}] PING")
        version = r.info("server")["redis_version"]
        v72 = not str(version).startswith("7.0.")
        stale = list(r.scan_iter(match=f"{base}:*"))
        if stale:
            r.delete(*stale)
        basics(r, tag, base)
        reads(r, r2, tag, base, protocol)
        groups(r, r2, tag, base, protocol, v72)
        deleted_pending(r, tag, base, protocol)
        transactions(r, r2, tag, base, protocol)
        keyspace(r, tag, base)  # last: ends with FLUSHDB
    finally:
        r.close()
        r2.close()


def main(argv):
    if len(argv) < 2 or not argv[1].isdigit():
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    port = int(argv[1])
    host = argv[2] if len(argv) > 2 else "127.0.0.1"
    started = time.monotonic()
    counts = []
    try:
        for protocol in (3, 2):
            mark = CHECKS
            scenarios(host, port, protocol)
            counts.append(f"RESP{protocol} {CHECKS - mark}")
    except CheckFailed as e:
        print(f"FAIL streams.py (redis-py {redis.__version__}): {e}", file=sys.stderr)
        print(f"streams.py: redis-py {redis.__version__} against {host}:{port}: FAILED after {CHECKS} checks")
        return 1
    except redis.exceptions.ConnectionError as e:
        print(f"FAIL streams.py: cannot talk to {host}:{port}: {e}", file=sys.stderr)
        print(f"streams.py: redis-py {redis.__version__} against {host}:{port}: FAILED (connection) after {CHECKS} checks")
        return 2 if CHECKS == 0 else 1
    except Exception as e:  # an unexpected error reply or timeout is a failure too
        print(f"FAIL streams.py: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        print(f"streams.py: redis-py {redis.__version__} against {host}:{port}: FAILED after {CHECKS} checks")
        return 1
    took = time.monotonic() - started
    print(f"streams.py: redis-py {redis.__version__} against {host}:{port}: "
          f"{CHECKS} checks passed ({', '.join(counts)}) in {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
