#!/usr/bin/env python3
"""Re-captures the golden files in this directory from a live Redis 7.0.15 cluster
laid out as described in README.md (ports 30001-30004 on 127.0.0.1).
Writes to $GOLDEN_OUT (default: this directory). Raw bytes only, no redis-cli."""
import socket, time, os, sys, subprocess

class Incomplete(Exception): pass

def parse(buf, pos):
    """Return end position of one complete RESP2/RESP3 value starting at pos, or raise Incomplete."""
    if pos >= len(buf): raise Incomplete
    t = chr(buf[pos])
    nl = buf.find(b"\r\n", pos)
    if nl < 0: raise Incomplete
    line = buf[pos+1:nl]
    after = nl + 2
    if t in "+-:_,#(":
        return after
    if t in "$!=":
        n = int(line)
        if n < 0: return after
        end = after + n + 2
        if len(buf) < end: raise Incomplete
        assert buf[end-2:end] == b"\r\n", "bad bulk terminator"
        return end
    if t in "*~>%|":
        n = int(line)
        if n < 0: return after
        cnt = n * 2 if t in "%|" else n
        p = after
        for _ in range(cnt):
            p = parse(buf, p)
        if t == "|":   # attribute: followed by the actual value
            p = parse(buf, p)
        return p
    raise ValueError("unknown RESP type %r at %d: %r" % (t, pos, buf[pos:pos+40]))

def frames(buf):
    """split buf into complete frames; returns (list, rest)"""
    out, p = [], 0
    while p < len(buf):
        try:
            e = parse(buf, p)
        except Incomplete:
            break
        out.append(buf[p:e]); p = e
    return out, buf[p:]

def enc(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str): a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)

class Conn:
    def __init__(self, port, resp3=False):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.hello = None
        if resp3:
            self.hello = self.cmd("HELLO", "3")
    def recv_some(self, timeout):
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        if not d: raise EOFError("closed")
        self.buf += d
        return True
    def read(self, nframes=1, idle=0.3, maxwait=10.0):
        """read at least nframes complete frames, then keep reading until idle for `idle` seconds.
        Returns raw bytes of all complete frames (must end at a frame boundary)."""
        t0 = time.time()
        while True:
            fr, rest = frames(self.buf)
            if len(fr) >= nframes and not rest:
                break
            if time.time() - t0 > maxwait:
                raise TimeoutError("only %d frames, rest=%r" % (len(fr), rest[:80]))
            self.recv_some(0.5)
        while self.recv_some(idle):
            pass
        fr, rest = frames(self.buf)
        assert not rest, "trailing partial frame %r" % rest[:80]
        out = self.buf; self.buf = b""
        return out
    def send(self, *args):
        self.s.sendall(enc(*args))
    def cmd(self, *args, nframes=1, idle=0.3):
        self.send(*args)
        return self.read(nframes, idle)
    def close(self): self.s.close()

OUT = os.environ.get("GOLDEN_OUT", os.path.dirname(os.path.abspath(__file__)))
def save(name, ext, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "%s.%s" % (name, ext)), "wb") as f:
        f.write(data)

A,B,C,D = 30001,30002,30003,30004

def capture_simple():
    ids = {p: subprocess.check_output(["redis-cli","-p",str(p),"cluster","myid"]).decode().strip() for p in (A,B,C,D)}
    print(ids)
    simple = [
     ("slots_A", A, ["CLUSTER","SLOTS"]), ("slots_D", D, ["CLUSTER","SLOTS"]),
     ("shards_A", A, ["CLUSTER","SHARDS"]), ("shards_D", D, ["CLUSTER","SHARDS"]),
     ("nodes_A", A, ["CLUSTER","NODES"]), ("nodes_D", D, ["CLUSTER","NODES"]),
     ("info_A", A, ["CLUSTER","INFO"]), ("info_D", D, ["CLUSTER","INFO"]),
     ("myid_A", A, ["CLUSTER","MYID"]),
     ("keyslot", A, ["CLUSTER","KEYSLOT","channel:123"]),
     ("countkeys", A, ["CLUSTER","COUNTKEYSINSLOT","3018"]),
     ("getkeys", A, ["CLUSTER","GETKEYSINSLOT","3018","10"]),
     ("replicas_B", A, ["CLUSTER","REPLICAS",ids[B]]),
     ("links_A", A, ["CLUSTER","LINKS"]),
     ("readonly", A, ["READONLY"]), ("readwrite", A, ["READWRITE"]), ("asking", A, ["ASKING"]),
     ("infocluster_A", A, ["INFO","cluster"]),
     ("moved_ssubscribe", A, ["SSUBSCRIBE","mychannel"]),
     ("moved_spublish", A, ["SPUBLISH","mychannel","hi"]),
     ("moved_sunsubscribe", A, ["SUNSUBSCRIBE","mychannel"]),
     ("bare_sunsubscribe", A, ["SUNSUBSCRIBE"]),
     ("crossslot_ssubscribe", B, ["SSUBSCRIBE","channel.0","channel.1"]),
     ("crossslot_sunsubscribe", B, ["SUNSUBSCRIBE","channel.0","channel.1"]),
     ("spublish_D", D, ["SPUBLISH","channel.0","x"]),
     ("moved_on_replica_other_shard", D, ["SSUBSCRIBE","channel:123"]),
     ("help", A, ["CLUSTER","HELP"]),
     ("command_info_shard", A, ["COMMAND","INFO","spublish","ssubscribe","sunsubscribe","publish","subscribe"]),
    ]
    for name, port, args in simple:
        for r3, ext in ((False,"resp2"),(True,"resp3")):
            c = Conn(port, r3)
            data = c.cmd(*args, idle=0.4)
            c.close()
            save(name, ext, data)
            fr,_ = frames(data)
            print("%-30s %s frames=%d %r" % (name, ext, len(fr), data[:120]))
    if True:
        for name, port in (("hello3_A",A),("hello3_D",D)):
            c = Conn(port, True); save(name, "resp3", c.hello); print(name, c.hello); c.close()

def capture_ssubscribe_D():
    for r3, ext in ((False,"resp2"),(True,"resp3")):
        s = Conn(D, r3)
        s.send("SSUBSCRIBE","channel.0")
        sub = s.read(1, idle=0.3)
        p = Conn(B, False)
        pr = p.cmd("SPUBLISH","channel.0","hello")
        msg = s.read(1, idle=0.5)
        save("ssubscribe_D", ext, sub+msg)
        print(ext, "spublish on B ->", pr, "\n  D sub got:", sub+msg)
        # extra experiment: SPUBLISH on D while D has a local subscriber
        q = Conn(D, False)
        print("  SPUBLISH on D with local subscriber ->", q.cmd("SPUBLISH","channel.0","fromD"))
        try:
            print("  D sub got after SPUBLISH on D:", s.read(1, idle=0.5, maxwait=2))
        except TimeoutError as e:
            print("  D sub got nothing:", e)
        s.close(); p.close(); q.close()

def capture_push():
    def states():
        return [subprocess.check_output(["redis-cli","-p",str(p),"cluster","info"]).decode().split("\r\n")[0] for p in (A,B,C,D)]
    for r3, ext in ((False,"resp2"),(True,"resp3")):
        print("before:", states())
        s1 = Conn(A, r3); s2 = Conn(A, r3); ctl = Conn(A, False)
        s1.send("SSUBSCRIBE","channel:123"); r1 = s1.read(1)
        s2.send("SSUBSCRIBE","channel:123"); r2a = s2.read(1)
        s2.send("SSUBSCRIBE","channel:0"); r2b = s2.read(1)
        print(ext, "sub replies:", r1, r2a, r2b)
        d = ctl.cmd("CLUSTER","DELSLOTS","3018")
        print("DELSLOTS ->", d)
        p1 = s1.read(1, idle=1.0, maxwait=5)
        try:
            p2 = s2.read(1, idle=1.0, maxwait=5)
        except TimeoutError as e:
            p2 = s2.buf; print("s2 timeout", e)
        save("push_sunsubscribe_one", ext, p1); save("push_sunsubscribe_two", ext, p2)
        print("S1 got:", p1); print("S2 got:", p2)
        # is S2 still subscribed to channel:0 ?
        print("SPUBLISH channel:0 ->", ctl.cmd("SPUBLISH","channel:0","still"))
        print("S2 after spublish channel:0:", s2.read(1, idle=0.5, maxwait=3))
        print("cluster_state after delslots (A):", states())
        print("SSUBSCRIBE channel:123 on A while slot unassigned:", Conn(A,False).cmd("SSUBSCRIBE","channel:123"))
        print("ADDSLOTS ->", ctl.cmd("CLUSTER","ADDSLOTS","3018"))
        for i in range(60):
            st = states()
            if all(x == "cluster_state:ok" for x in st): break
            time.sleep(0.5)
        print("after addslots:", st, "after", i*0.5, "s")
        s1.close(); s2.close(); ctl.close()

if __name__ == "__main__":
    capture_simple()
    capture_ssubscribe_D()
    capture_push()
