#!/usr/bin/env node
// Drive the Node cluster clients against a 3-primary Redis Cluster (real Redis, or fanout's
// cluster mode): ioredis `Cluster` and node-redis `createCluster`, each with RESP3 and RESP2.
//
// Usage: node cluster.mjs HOST:PORT[,HOST:PORT...]      (the seed nodes)
//
// Checks, per library:
//   sharded pub/sub  SSUBSCRIBE on channels in different slots (channel:123 slot 3018,
//                    channel.0 7312, mychannel 10059, shard{foo} 12182: every primary in an
//                    even 3-way split) gets the SPUBLISHed messages; SPUBLISH replies >= 1
//                    (the subscriber is on the slot's node); 200 SPUBLISH arrive in order
//   pub/sub          SUBSCRIBE on one Cluster, PUBLISH from another, and from each primary's
//                    own connection (PUBLISH on any node reaches every node); the PUBLISH reply
//                    is not checked: in a cluster it counts only that node's receivers
//   patterns         PSUBSCRIBE gets pmessage (pattern, channel, message) from every primary
//   order            200 PUBLISH through one node connection arrive in order (ioredis)
//   streams          XADD/XLEN routed by key to two keys in different slots; MULTI/EXEC on
//                    keys sharing the hash tag {user1}
//   topology         3 masters; CLUSTER KEYSLOT of the channels (ioredis)
//
// ioredis needs `shardedSubscribers: true` for SSUBSCRIBE in a cluster (without it 6.0.0
// fails with "Too many Cluster redirections"). Both libraries speak RESP3 by default (HELLO 3;
// ioredis 6 `protocol: 3`, node-redis 6 `RESP: 3`); each is run with RESP3 and with RESP2,
// set explicitly.
//
// Subscriptions are warmed up before each check: a probe is published every 100 ms until
// one arrives (bounded), because a broker may route a new subscription with a small delay.
// Every wait is bounded (a global watchdog ends the script too). Output: one PASS/FAIL line
// per check, then a summary line. Exit status: 0 when every check passed, 1 if any failed,
// 2 on usage errors.

import { createRequire } from "node:module";
import { Cluster } from "ioredis";
import { createCluster } from "redis";

const require = createRequire(import.meta.url);
const IOREDIS_VERSION = require("ioredis/package.json").version;
const NODE_REDIS_VERSION = require("redis/package.json").version;

const TIMEOUT_MS = 5000; // one reply, one delivery, one connect
const ORDER_MS = 10000; // 200 ordered messages
const WATCHDOG_MS = 40000; // the whole script
const ORDER_N = 200;
const TOK = `${process.pid}-${Math.floor(Math.random() * 1e9)}`;
const BASE = `fanout-cluster:${TOK}`;

// Shard channels in different slots (and, with an even split, on all three primaries).
const SHARD_CHANNELS = [
  ["channel:123", 3018],
  ["channel.0", 7312],
  ["mychannel", 10059],
  ["shard{foo}", 12182],
];

let passed = 0;
let failed = 0;

class CheckFailed extends Error {}

function check(cond, what, detail = "") {
  if (cond) {
    passed++;
    console.log(`PASS ${what}`);
    return;
  }
  failed++;
  console.log(`FAIL ${what}${detail ? `: ${detail}` : ""}`);
  throw new CheckFailed(what);
}

const show = (v) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

function expectEq(got, want, what) {
  check(show(got) === show(want), what, `expected ${show(want)}, got ${show(got)}`);
}

function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    Promise.resolve(promise),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no reply within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Run one group of checks; a failed check or an error ends the group, not the script.
async function section(name, fn) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof CheckFailed)) {
      failed++;
      console.log(`FAIL ${name}: unexpected ${e?.name}: ${e?.message}`);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isProbe = (msg) => typeof msg === "string" && msg.startsWith(`${BASE}:probe:`);

// Messages delivered to a subscriber callback; each item is an array ending with the message.
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }
  push(item) {
    const msg = item[item.length - 1];
    if (typeof msg !== "string" || !msg.startsWith(`${BASE}:`)) return; // another run's traffic
    this.items.push(item);
    for (const w of this.waiters.splice(0)) w();
  }
  async wait(left) {
    if (left <= 0) return;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, left);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  // The next n non-probe items (fewer on timeout). Probes are dropped.
  async take(n, ms = TIMEOUT_MS) {
    const deadline = Date.now() + ms;
    const out = [];
    for (;;) {
      while (this.items.length && out.length < n) {
        const it = this.items.shift();
        if (!isProbe(it[it.length - 1])) out.push(it);
      }
      if (out.length >= n || Date.now() >= deadline) return out;
      await this.wait(deadline - Date.now());
    }
  }
  // True once a probe arrived within ms (and drops everything up to it).
  async probeArrived(ms) {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.items.findIndex((it) => isProbe(it[it.length - 1]));
      if (i >= 0) {
        this.items.splice(0, i + 1);
        return true;
      }
      if (Date.now() >= deadline) return false;
      await this.wait(deadline - Date.now());
    }
  }
}

// Publish a probe every 100 ms until the subscriber sees one (at most TIMEOUT_MS).
async function warmUp(inbox, publish, what) {
  const deadline = Date.now() + TIMEOUT_MS;
  let n = 0;
  while (Date.now() < deadline) {
    await withTimeout(publish(`${BASE}:probe:${n++}`), `${what}: probe publish`);
    if (await inbox.probeArrived(100)) {
      if (n > 1) console.log(`NOTE ${what}: the subscription delivered from probe ${n} on (earlier probes lost)`);
      check(true, `${what}: subscription is live (a probe arrived)`);
      return;
    }
  }
  check(false, `${what}: subscription is live (a probe arrived)`, `none of ${n} probes arrived within ${TIMEOUT_MS} ms`);
}

async function expectItems(inbox, want, what, ms = TIMEOUT_MS) {
  const got = await inbox.take(want.length, ms);
  if (want.length > 10) {
    // Long sequences: report the first difference, not the whole list.
    const i = want.findIndex((w, k) => show(w) !== show(got[k]));
    check(i < 0, what, `got ${got.length}/${want.length}; first difference at ${i}: expected ${show(want[i])}, got ${show(got[i])}`);
  } else {
    expectEq(got, want, what);
  }
}

const ID_RE = /^[0-9]+-[0-9]+$/;

// ---------------------------------------------------------------------------- ioredis
async function ioredisScenarios(seeds, protocol) {
  const tag = `[ioredis ${IOREDIS_VERSION} RESP${protocol}]`;
  const opts = {
    shardedSubscribers: true,
    lazyConnect: true,
    slotsRefreshTimeout: 2000,
    redisOptions: { connectTimeout: TIMEOUT_MS, maxRetriesPerRequest: 2, protocol },
  };
  const pub = new Cluster(seeds, opts);
  const sub = new Cluster(seeds, opts);
  for (const c of [pub, sub]) c.on("error", () => {}); // errors surface through the awaited calls
  try {
    let up = false;
    await section(`${tag} connect`, async () => {
      await withTimeout(pub.connect(), `${tag} connect publisher`);
      await withTimeout(sub.connect(), `${tag} connect subscriber`);
      check(pub.status === "ready" && sub.status === "ready", `${tag} both Clusters ready`, `${pub.status}/${sub.status}`);
      up = true;
    });
    if (!up) return;

    await section(`${tag} topology`, async () => {
      expectEq(pub.nodes("master").length, 3, `${tag} cluster.nodes('master').length`);
      for (const [ch, slot] of SHARD_CHANNELS) {
        expectEq(await withTimeout(pub.cluster("KEYSLOT", ch), `${tag} CLUSTER KEYSLOT`), slot, `${tag} CLUSTER KEYSLOT ${ch}`);
      }
    });

    await section(`${tag} sharded pub/sub`, async () => {
      const inbox = new Inbox();
      sub.on("smessage", (ch, msg) => inbox.push([ch, msg]));
      for (const [ch] of SHARD_CHANNELS) {
        const n = await withTimeout(sub.ssubscribe(ch), `${tag} SSUBSCRIBE ${ch}`);
        check(Number.isInteger(n) && n >= 1, `${tag} SSUBSCRIBE ${ch} -> subscription count`, show(n));
      }
      for (const [ch, slot] of SHARD_CHANNELS) {
        await warmUp(inbox, (m) => pub.spublish(ch, m), `${tag} SSUBSCRIBE ${ch} (slot ${slot})`);
        const msg = `${BASE}:s:${ch}:${protocol}`;
        const n = await withTimeout(pub.spublish(ch, msg), `${tag} SPUBLISH ${ch}`);
        check(n >= 1, `${tag} SPUBLISH ${ch} -> >= 1 (the subscriber is on the slot's node)`, show(n));
        await expectItems(inbox, [[ch, msg]], `${tag} smessage on ${ch}`);
      }
      const ch = SHARD_CHANNELS[0][0];
      const want = [];
      const sends = [];
      for (let i = 0; i < ORDER_N; i++) {
        const m = `${BASE}:sorder:${i}`;
        want.push([ch, m]);
        sends.push(pub.spublish(ch, m));
      }
      const counts = await withTimeout(Promise.all(sends), `${tag} ${ORDER_N} SPUBLISH`, ORDER_MS);
      check(counts.every((n) => n >= 1), `${tag} ${ORDER_N} SPUBLISH on ${ch} all -> >= 1`);
      await expectItems(inbox, want, `${tag} ${ORDER_N} smessages on ${ch} in order`, ORDER_MS);
    });

    await section(`${tag} pub/sub`, async () => {
      const ch = `${BASE}:plain:io${protocol}`;
      const inbox = new Inbox();
      sub.on("message", (c, m) => inbox.push([c, m]));
      expectEq(await withTimeout(sub.subscribe(ch), `${tag} SUBSCRIBE`), 1, `${tag} SUBSCRIBE count`);
      await warmUp(inbox, (m) => pub.publish(ch, m), `${tag} SUBSCRIBE ${ch}`);
      const n = await withTimeout(pub.publish(ch, `${BASE}:p:cluster`), `${tag} PUBLISH`);
      check(Number.isInteger(n), `${tag} PUBLISH through the Cluster -> an integer (node-local count, not checked)`, show(n));
      await expectItems(inbox, [[ch, `${BASE}:p:cluster`]], `${tag} message published through the Cluster`);
      const masters = pub.nodes("master");
      for (const [i, node] of masters.entries()) {
        const who = `${node.options.host}:${node.options.port}`;
        const m = `${BASE}:p:node${i}`;
        const r = await withTimeout(node.publish(ch, m), `${tag} PUBLISH on ${who}`);
        check(Number.isInteger(r), `${tag} PUBLISH on primary ${who} -> an integer`, show(r));
        await expectItems(inbox, [[ch, m]], `${tag} message published on primary ${who} arrives`);
      }
      // Per-publisher order: one connection, pipelined.
      const node = masters[masters.length - 1];
      const p = node.pipeline();
      const want = [];
      for (let i = 0; i < ORDER_N; i++) {
        const m = `${BASE}:order:${i}`;
        want.push([ch, m]);
        p.publish(ch, m);
      }
      const res = await withTimeout(p.exec(), `${tag} ${ORDER_N} pipelined PUBLISH`, ORDER_MS);
      check(res.every(([err]) => !err), `${tag} ${ORDER_N} pipelined PUBLISH on one primary succeed`);
      await expectItems(inbox, want, `${tag} ${ORDER_N} messages from one publisher in order`, ORDER_MS);
      await withTimeout(sub.unsubscribe(ch), `${tag} UNSUBSCRIBE`);
    });

    await section(`${tag} psubscribe`, async () => {
      const pattern = `${BASE}:patio${protocol}:*`;
      const ch = `${BASE}:patio${protocol}:x`;
      const inbox = new Inbox();
      sub.on("pmessage", (pat, c, m) => inbox.push([pat, c, m]));
      const n = await withTimeout(sub.psubscribe(pattern), `${tag} PSUBSCRIBE`);
      check(Number.isInteger(n) && n >= 1, `${tag} PSUBSCRIBE count`, show(n));
      await warmUp(inbox, (m) => pub.publish(ch, m), `${tag} PSUBSCRIBE ${pattern}`);
      for (const [i, node] of pub.nodes("master").entries()) {
        const m = `${BASE}:pm:node${i}`;
        await withTimeout(node.publish(ch, m), `${tag} PUBLISH`);
        await expectItems(inbox, [[pattern, ch, m]], `${tag} pmessage from primary ${node.options.host}:${node.options.port}`);
      }
      await withTimeout(sub.punsubscribe(pattern), `${tag} PUNSUBSCRIBE`);
    });

    await section(`${tag} streams`, async () => {
      const ka = `${BASE}:{foo}:streamio${protocol}`; // slot 12182
      const kb = `${BASE}:{bar}:streamio${protocol}`; // slot 5061
      const sa = await withTimeout(pub.cluster("KEYSLOT", ka), `${tag} KEYSLOT`);
      const sb = await withTimeout(pub.cluster("KEYSLOT", kb), `${tag} KEYSLOT`);
      expectEq([sa, sb], [12182, 5061], `${tag} the two stream keys are in slots 12182 and 5061`);
      for (const k of [ka, kb]) {
        const id = await withTimeout(pub.xadd(k, "*", "n", "1"), `${tag} XADD`);
        check(ID_RE.test(id), `${tag} XADD ${k} -> an ID`, show(id));
        expectEq(await withTimeout(pub.xlen(k), `${tag} XLEN`), 1, `${tag} XLEN ${k}`);
      }
      const ta = `{user1}:${BASE}:aio${protocol}`;
      const tb = `{user1}:${BASE}:bio${protocol}`;
      const res = await withTimeout(
        pub.multi().xadd(ta, "*", "f", "1").xadd(tb, "*", "f", "2").xlen(ta).xlen(tb).exec(),
        `${tag} MULTI/EXEC`,
      );
      check(
        Array.isArray(res) && res.length === 4 && res.every(([e]) => !e) && ID_RE.test(res[0][1]) && ID_RE.test(res[1][1]),
        `${tag} MULTI/EXEC XADD on two {user1} keys -> two IDs`,
        show(res),
      );
      expectEq([res[2], res[3]], [[null, 1], [null, 1]], `${tag} MULTI/EXEC XLEN of the {user1} keys`);
      for (const k of [ka, kb, ta, tb]) expectEq(await withTimeout(pub.del(k), `${tag} DEL`), 1, `${tag} DEL ${k}`);
    });
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
}

// ------------------------------------------------------------------------- node-redis
async function nodeRedisScenarios(seeds, RESP) {
  const tag = `[node-redis ${NODE_REDIS_VERSION} RESP${RESP}]`;
  const pub = createCluster({
    rootNodes: seeds.map(({ host, port }) => ({ socket: { host, port } })),
    defaults: { socket: { connectTimeout: TIMEOUT_MS, reconnectStrategy: false } },
    RESP,
  });
  pub.on("error", () => {});
  const sub = pub.duplicate();
  sub.on("error", () => {});
  try {
    let up = false;
    await section(`${tag} connect`, async () => {
      await withTimeout(pub.connect(), `${tag} connect publisher`);
      await withTimeout(sub.connect(), `${tag} connect subscriber`);
      check(pub.isReady && sub.isReady, `${tag} both clusters ready`);
      expectEq(pub.masters.length, 3, `${tag} cluster.masters.length`);
      up = true;
    });
    if (!up) return;

    await section(`${tag} sharded pub/sub`, async () => {
      const inbox = new Inbox();
      for (const [ch] of SHARD_CHANNELS) {
        await withTimeout(sub.sSubscribe(ch, (m, c) => inbox.push([c, m])), `${tag} SSUBSCRIBE ${ch}`);
        check(true, `${tag} sSubscribe ${ch}`);
      }
      for (const [ch, slot] of SHARD_CHANNELS) {
        await warmUp(inbox, (m) => pub.sPublish(ch, m), `${tag} SSUBSCRIBE ${ch} (slot ${slot})`);
        const msg = `${BASE}:s:${ch}:${RESP}`;
        const n = await withTimeout(pub.sPublish(ch, msg), `${tag} SPUBLISH ${ch}`);
        check(n >= 1, `${tag} sPublish ${ch} -> >= 1 (the subscriber is on the slot's node)`, show(n));
        await expectItems(inbox, [[ch, msg]], `${tag} sharded message on ${ch}`);
      }
      for (const [ch] of SHARD_CHANNELS) await withTimeout(sub.sUnsubscribe(ch), `${tag} SUNSUBSCRIBE ${ch}`);
    });

    await section(`${tag} pub/sub`, async () => {
      const ch = `${BASE}:plain:${RESP}`;
      const inbox = new Inbox();
      await withTimeout(sub.subscribe(ch, (m, c) => inbox.push([c, m])), `${tag} SUBSCRIBE`);
      check(true, `${tag} subscribe ${ch}`);
      await warmUp(inbox, (m) => pub.publish(ch, m), `${tag} SUBSCRIBE ${ch}`);
      const n = await withTimeout(pub.publish(ch, `${BASE}:p:cluster`), `${tag} PUBLISH`);
      check(Number.isInteger(n), `${tag} publish through the cluster -> an integer (node-local count, not checked)`, show(n));
      await expectItems(inbox, [[ch, `${BASE}:p:cluster`]], `${tag} message published through the cluster`);
      for (const [i, master] of pub.masters.entries()) {
        const node = await withTimeout(pub.nodeClient(master), `${tag} nodeClient`);
        const m = `${BASE}:p:node${i}`;
        const r = await withTimeout(node.publish(ch, m), `${tag} PUBLISH on ${master.address}`);
        check(Number.isInteger(r), `${tag} PUBLISH on primary ${master.address} -> an integer`, show(r));
        await expectItems(inbox, [[ch, m]], `${tag} message published on primary ${master.address} arrives`);
      }
      await withTimeout(sub.unsubscribe(ch), `${tag} UNSUBSCRIBE`);
    });

    await section(`${tag} pSubscribe`, async () => {
      const pattern = `${BASE}:pat${RESP}:*`;
      const ch = `${BASE}:pat${RESP}:x`;
      const inbox = new Inbox();
      await withTimeout(sub.pSubscribe(pattern, (m, c) => inbox.push([c, m])), `${tag} PSUBSCRIBE`);
      check(true, `${tag} pSubscribe ${pattern}`);
      await warmUp(inbox, (m) => pub.publish(ch, m), `${tag} PSUBSCRIBE ${pattern}`);
      for (const [i, master] of pub.masters.entries()) {
        const node = await withTimeout(pub.nodeClient(master), `${tag} nodeClient`);
        const m = `${BASE}:pm:node${i}`;
        await withTimeout(node.publish(ch, m), `${tag} PUBLISH`);
        await expectItems(inbox, [[ch, m]], `${tag} pattern message from primary ${master.address}`);
      }
      await withTimeout(sub.pUnsubscribe(pattern), `${tag} PUNSUBSCRIBE`);
    });

    await section(`${tag} streams`, async () => {
      const ka = `${BASE}:{foo}:stream${RESP}`; // slot 12182
      const kb = `${BASE}:{bar}:stream${RESP}`; // slot 5061
      for (const k of [ka, kb]) {
        const id = await withTimeout(pub.xAdd(k, "*", { n: "1" }), `${tag} XADD`);
        check(ID_RE.test(id), `${tag} xAdd ${k} -> an ID`, show(id));
        expectEq(await withTimeout(pub.xLen(k), `${tag} XLEN`), 1, `${tag} xLen ${k}`);
      }
      const ta = `{user1}:${BASE}:a${RESP}`;
      const tb = `{user1}:${BASE}:b${RESP}`;
      const res = await withTimeout(
        pub.multi(ta).xAdd(ta, "*", { f: "1" }).xAdd(tb, "*", { f: "2" }).xLen(ta).xLen(tb).exec(),
        `${tag} MULTI/EXEC`,
      );
      check(
        Array.isArray(res) && res.length === 4 && ID_RE.test(res[0]) && ID_RE.test(res[1]),
        `${tag} multi() xAdd on two {user1} keys -> two IDs`,
        show(res),
      );
      expectEq([res[2], res[3]], [1, 1], `${tag} multi() xLen of the {user1} keys`);
      for (const k of [ka, kb, ta, tb]) expectEq(await withTimeout(pub.del(k), `${tag} DEL`), 1, `${tag} DEL ${k}`);
    });
  } finally {
    for (const c of [sub, pub]) {
      try {
        c.destroy();
      } catch {
        // not connected
      }
    }
  }
}

function parseSeeds(arg) {
  if (!arg) return null;
  const seeds = [];
  for (const s of arg.split(",")) {
    const m = /^(.+):([0-9]+)$/.exec(s.trim());
    if (!m) return null;
    seeds.push({ host: m[1], port: Number(m[2]) });
  }
  return seeds.length ? seeds : null;
}

async function main() {
  const seeds = parseSeeds(process.argv[2]);
  if (!seeds) {
    console.error("usage: node cluster.mjs HOST:PORT[,HOST:PORT...]");
    return 2;
  }
  const started = Date.now();
  const libs = `ioredis ${IOREDIS_VERSION}, node-redis ${NODE_REDIS_VERSION}`;
  const watchdog = setTimeout(() => {
    console.log(`FAIL cluster.mjs: not finished within ${WATCHDOG_MS} ms`);
    console.log(`cluster.mjs: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  }, WATCHDOG_MS);
  await ioredisScenarios(seeds, 3);
  await ioredisScenarios(seeds, 2);
  await nodeRedisScenarios(seeds, 2);
  await nodeRedisScenarios(seeds, 3);
  clearTimeout(watchdog);
  const took = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`# cluster.mjs: ${libs} against ${process.argv[2]} in ${took}s`);
  console.log(`cluster.mjs: ${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

process.exit(await main());
