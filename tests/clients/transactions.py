#!/usr/bin/env python3
"""Drive redis-py's transactions (MULTI/EXEC pipelines, WATCH, DISCARD) against a server.

Usage: transactions.py PORT [HOST]        (HOST defaults to 127.0.0.1)

fanout has no keyspace, so everything here is PUBLISH/PING/ECHO inside transactions while
a redis-py PubSub subscriber checks what was (and was not) delivered. Every scenario runs
twice: once with RESP3 (redis-py's default since 8.0, HELLO 3) and once with RESP2.

Exit status: 0 when every check passed, 1 on the first failed check (the message says
which), 2 when the server cannot be reached. The last line is a one-line summary.
"""

import os
import sys
import time

try:
    import redis
    from redis.exceptions import ExecAbortError, ResponseError
except ImportError:  # pragma: no cover - run.sh installs it
    print("transactions.py: redis-py is not installed (pip install -r requirements.txt)", file=sys.stderr)
    sys.exit(2)

TIMEOUT = 5.0  # seconds; a server that never answers fails the check instead of hanging
CHECKS = 0


class CheckFailed(Exception):
    pass


def check(cond, what, detail=""):
    global CHECKS
    if not cond:
        raise CheckFailed(f"{what}{': ' + detail if detail else ''}")
    CHECKS += 1


def expect_eq(got, want, what):
    check(got == want, what, f"expected {want!r}, got {got!r}")


def client(host, port, protocol, **kw):
    return redis.Redis(
        host=host,
        port=port,
        protocol=protocol,
        decode_responses=True,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        **kw,
    )


def collect(pubsub, n, timeout=2.0):
    """Read up to n 'message' payloads (channel, data) within timeout seconds."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        m = pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 0.25))
        if m is not None and m.get("type") == "message":
            got.append((m["channel"], m["data"]))
    return got


def expect_messages(pubsub, chan, payloads, what):
    got = collect(pubsub, len(payloads))
    expect_eq(got, [(chan, p) for p in payloads], what)


def expect_nothing_then(pubsub, r, chan, what):
    """Prove nothing is pending for chan: publish a sentinel and require it to be the next message."""
    sentinel = f"sentinel-{time.monotonic_ns()}"
    expect_eq(r.publish(chan, sentinel), 1, f"{what}: sentinel PUBLISH receiver count")
    expect_messages(pubsub, chan, [sentinel], f"{what}: next message is the sentinel (nothing else was published)")


def scenarios(host, port, protocol):
    tag = f"RESP{protocol}"
    base = f"fanout-tx:{os.getpid()}:{protocol}"
    chan, other, quiet = f"{base}:chan", f"{base}:other", f"{base}:nobody"

    r = client(host, port, protocol)
    sub_conn = client(host, port, protocol)
    pubsub = sub_conn.pubsub()
    try:
        expect_eq(r.ping(), True, f"[{tag}] PING before anything")
        pubsub.subscribe(chan, other)
        # Wait for both subscribe confirmations so the publishes below have a receiver.
        confirmed = 0
        deadline = time.monotonic() + TIMEOUT
        while confirmed < 2 and time.monotonic() < deadline:
            m = pubsub.get_message(timeout=0.25)
            if m and m["type"] == "subscribe":
                confirmed += 1
        expect_eq(confirmed, 2, f"[{tag}] subscriber confirmations")

        # 1. r.pipeline(): transactional by default, MULTI ... EXEC.
        pipe = r.pipeline()
        pipe.publish(chan, "m1")
        pipe.publish(chan, "m2")
        pipe.publish(other, "o1")
        pipe.publish(quiet, "nobody-listens")
        pipe.publish(chan, "m3")
        expect_eq(pipe.execute(), [1, 1, 1, 0, 1], f"[{tag}] pipeline() EXEC result = receiver counts")
        got = collect(pubsub, 4)
        expect_eq(got, [(chan, "m1"), (chan, "m2"), (other, "o1"), (chan, "m3")],
                  f"[{tag}] subscriber got the transaction's messages in order")

        # 2. Explicit pipe.multi() on a transactional pipeline, with PING and ECHO inside.
        with r.pipeline() as pipe:
            pipe.multi()
            pipe.ping()
            pipe.echo("inside-multi")
            pipe.publish(chan, "e1")
            pipe.publish(chan, "e2")
            expect_eq(pipe.execute(), [True, "inside-multi", 1, 1],
                      f"[{tag}] pipe.multi(); PING, ECHO, PUBLISH x2; EXEC result")
        expect_messages(pubsub, chan, ["e1", "e2"], f"[{tag}] messages from the explicit multi()")

        # 3. An empty transaction (MULTI + EXEC, nothing queued).
        with r.pipeline() as pipe:
            pipe.multi()
            expect_eq(pipe.execute(), [], f"[{tag}] empty transaction")

        # 4. EXECABORT: a command with the wrong arity is rejected while queueing, so EXEC
        #    discards the whole transaction and nothing is published.
        pipe = r.pipeline()
        pipe.publish(chan, "aborted-before")
        pipe.execute_command("PUBLISH", "only-one-arg")
        pipe.publish(chan, "aborted-after")
        try:
            res = pipe.execute()
        except ResponseError as e:
            # redis-py raises the queueing error (a ResponseError) when there is one, and
            # ExecAbortError (a ResponseError subclass) for a bare EXECABORT.
            msg = str(e)
            check("wrong number of arguments" in msg.lower() or isinstance(e, ExecAbortError),
                  f"[{tag}] EXECABORT error text", f"{type(e).__name__}: {msg}")
        else:
            check(False, f"[{tag}] transaction with a wrong-arity PUBLISH must raise ResponseError",
                  f"EXEC returned {res!r}")
        expect_eq(r.ping(), True, f"[{tag}] connection usable after EXECABORT (MULTI state cleared)")
        expect_nothing_then(pubsub, r, chan, f"[{tag}] aborted transaction published nothing")

        # 5. Unknown command while queueing: also EXECABORT.
        pipe = r.pipeline()
        pipe.publish(chan, "aborted-unknown")
        pipe.execute_command("NO-SUCH-COMMAND-FOR-TX", "x")
        try:
            res = pipe.execute()
        except ResponseError as e:
            check("unknown command" in str(e).lower() or isinstance(e, ExecAbortError),
                  f"[{tag}] unknown-command EXECABORT error text", f"{type(e).__name__}: {e}")
        else:
            check(False, f"[{tag}] transaction with an unknown command must raise ResponseError",
                  f"EXEC returned {res!r}")
        expect_nothing_then(pubsub, r, chan, f"[{tag}] transaction with an unknown command published nothing")

        # 6. Non-transactional pipeline: no MULTI/EXEC, plain replies.
        pipe = r.pipeline(transaction=False)
        pipe.publish(chan, "p1")
        pipe.ping()
        pipe.publish(quiet, "p-nobody")
        pipe.publish(chan, "p2")
        expect_eq(pipe.execute(), [1, True, 0, 1], f"[{tag}] pipeline(transaction=False) results")
        expect_messages(pubsub, chan, ["p1", "p2"], f"[{tag}] messages from the plain pipeline")

        # 7. WATCH on keys that do not exist (fanout has no keyspace; nothing writes them),
        #    then MULTI/EXEC succeeds.
        with r.pipeline() as pipe:
            expect_eq(pipe.watch(f"{base}:watched-a", f"{base}:watched-b"), True, f"[{tag}] WATCH reply")
            pipe.multi()
            pipe.publish(chan, "w1")
            pipe.echo("watched")
            expect_eq(pipe.execute(), [1, "watched"], f"[{tag}] WATCH + MULTI/EXEC result")
        expect_messages(pubsub, chan, ["w1"], f"[{tag}] message from the watched transaction")

        # 8. r.transaction(): redis-py's WATCH/MULTI/EXEC retry helper.
        def body(p):
            p.multi()
            p.publish(chan, "t1")

        expect_eq(r.transaction(body, f"{base}:watched-c"), [1], f"[{tag}] r.transaction() result")
        expect_messages(pubsub, chan, ["t1"], f"[{tag}] message from r.transaction()")

        # 9. WATCH then UNWATCH via pipe.reset() (sends UNWATCH), and a bare UNWATCH.
        pipe = r.pipeline()
        pipe.watch(f"{base}:watched-d")
        pipe.reset()
        expect_eq(r.execute_command("UNWATCH"), True, f"[{tag}] UNWATCH with nothing watched")

        # 10. Raw MULTI / QUEUED / DISCARD on one connection: DISCARD drops the queue.
        one = client(host, port, protocol, single_connection_client=True)
        try:
            expect_eq(one.execute_command("MULTI"), "OK", f"[{tag}] raw MULTI")
            expect_eq(one.execute_command("PUBLISH", chan, "discarded"), "QUEUED", f"[{tag}] raw PUBLISH is QUEUED")
            expect_eq(one.execute_command("DISCARD"), "OK", f"[{tag}] raw DISCARD")
            try:
                one.execute_command("EXEC")
            except ResponseError as e:
                check("without multi" in str(e).lower(), f"[{tag}] EXEC after DISCARD error text", str(e))
            else:
                check(False, f"[{tag}] EXEC after DISCARD must fail with 'EXEC without MULTI'")
        finally:
            one.close()
        expect_nothing_then(pubsub, r, chan, f"[{tag}] DISCARDed PUBLISH was not delivered")
    finally:
        try:
            pubsub.close()
        finally:
            sub_conn.close()
            r.close()


def main(argv):
    if len(argv) < 2 or not argv[1].isdigit():
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    port = int(argv[1])
    host = argv[2] if len(argv) > 2 else "127.0.0.1"
    started = time.monotonic()
    try:
        for protocol in (3, 2):
            scenarios(host, port, protocol)
    except CheckFailed as e:
        print(f"FAIL transactions.py (redis-py {redis.__version__}): {e}", file=sys.stderr)
        print(f"transactions.py: redis-py {redis.__version__} against {host}:{port}: FAILED after {CHECKS} checks")
        return 1
    except redis.exceptions.ConnectionError as e:
        print(f"FAIL transactions.py: cannot talk to {host}:{port}: {e}", file=sys.stderr)
        print(f"transactions.py: redis-py {redis.__version__} against {host}:{port}: FAILED (connection) after {CHECKS} checks")
        return 2 if CHECKS == 0 else 1
    except Exception as e:  # an unexpected error reply or timeout is a failure too
        print(f"FAIL transactions.py: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        print(f"transactions.py: redis-py {redis.__version__} against {host}:{port}: FAILED after {CHECKS} checks")
        return 1
    took = time.monotonic() - started
    print(f"transactions.py: redis-py {redis.__version__} against {host}:{port}: "
          f"{CHECKS} checks passed (RESP3 and RESP2) in {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
