#!/usr/bin/env node
// Drive Node client libraries' transactions against a server: ioredis and node-redis ("redis").
//
// Usage: node transactions.mjs PORT [HOST]        (HOST defaults to 127.0.0.1)
//
// fanout has no keyspace, so the transactions carry PUBLISH/PING/ECHO while a subscriber
// connection of the same library checks what was (and was not) delivered, and in order.
// Exit status: 0 when every check passed, 1 on the first failed check (the message says
// which), 2 on usage errors or when the server cannot be reached. The last line is a
// one-line summary.

import { createRequire } from "node:module";
import Redis from "ioredis";
import { createClient } from "redis";

const require = createRequire(import.meta.url);
const IOREDIS_VERSION = require("ioredis/package.json").version;
const NODE_REDIS_VERSION = require("redis/package.json").version;

const TIMEOUT_MS = 5000;
let checks = 0;

class CheckFailed extends Error {}
class ConnectFailed extends Error {}

async function connect(what, promise, host, port) {
  try {
    await withTimeout(promise, what);
  } catch (e) {
    throw new ConnectFailed(`${what}: cannot connect to ${host}:${port}: ${e?.message}`);
  }
}

function check(cond, what, detail = "") {
  if (!cond) throw new CheckFailed(detail ? `${what}: ${detail}` : what);
  checks++;
}

const show = (v) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

function expectEq(got, want, what) {
  check(show(got) === show(want), what, `expected ${show(want)}, got ${show(got)}`);
}

function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new CheckFailed(`${what}: no reply within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// A queue of [channel, message] pairs fed by a subscriber callback.
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }
  push(channel, message) {
    this.items.push([channel, message]);
    for (const w of this.waiters.splice(0)) w();
  }
  async take(n, what, ms = 2000) {
    const deadline = Date.now() + ms;
    while (this.items.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.items.splice(0, n);
  }
}

async function expectMessages(inbox, channel, payloads, what) {
  const got = await inbox.take(payloads.length, what);
  expectEq(got, payloads.map((p) => [channel, p]), what);
}

// Nothing is pending on `channel`: a sentinel published now must be the next message.
async function expectNothingThen(inbox, publish, channel, what) {
  const sentinel = `sentinel-${process.hrtime.bigint()}`;
  expectEq(await withTimeout(publish(channel, sentinel), what), 1, `${what}: sentinel PUBLISH receiver count`);
  await expectMessages(inbox, channel, [sentinel], `${what}: next message is the sentinel (nothing else was published)`);
}

async function expectReject(promise, what, test) {
  let res;
  try {
    res = await withTimeout(promise, what);
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    check(test(e), what, `unexpected error ${e?.name}: ${e?.message}`);
    return e;
  }
  check(false, what, `expected an error, got ${show(res)}`);
}

async function ioredisScenarios(host, port) {
  const base = `fanout-tx:${process.pid}:ioredis`;
  const chan = `${base}:chan`;
  const quiet = `${base}:nobody`;
  const opts = {
    host,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // no reconnect loop: fail fast
    enableOfflineQueue: false,
    connectTimeout: TIMEOUT_MS,
    commandTimeout: TIMEOUT_MS,
  };
  const pub = new Redis(opts);
  const sub = new Redis(opts);
  for (const c of [pub, sub]) c.on("error", () => {}); // errors surface through the awaited calls
  try {
    await connect("[ioredis] connect", pub.connect(), host, port);
    await connect("[ioredis] connect subscriber", sub.connect(), host, port);
    const inbox = new Inbox();
    sub.on("message", (channel, message) => inbox.push(channel, message));
    expectEq(await sub.subscribe(chan), 1, "[ioredis] SUBSCRIBE count");

    // multi().publish().publish().exec() -> [[null, n], ...]
    let res = await withTimeout(
      pub.multi().publish(chan, "m1").publish(chan, "m2").publish(quiet, "nobody").publish(chan, "m3").exec(),
      "[ioredis] multi/exec",
    );
    expectEq(res, [[null, 1], [null, 1], [null, 0], [null, 1]], "[ioredis] multi().publish()...exec() result");
    await expectMessages(inbox, chan, ["m1", "m2", "m3"], "[ioredis] subscriber got the transaction's messages in order");

    // PING and ECHO inside MULTI.
    res = await withTimeout(pub.multi().ping().echo("inside-multi").publish(chan, "e1").exec(), "[ioredis] ping/echo");
    expectEq(res, [[null, "PONG"], [null, "inside-multi"], [null, 1]], "[ioredis] PING/ECHO/PUBLISH inside MULTI");
    await expectMessages(inbox, chan, ["e1"], "[ioredis] message after PING/ECHO transaction");

    // multi({ pipeline: false }): MULTI is sent at once, each command replies QUEUED.
    expectEq(await pub.multi({ pipeline: false }), "OK", "[ioredis] multi({pipeline:false}) -> OK");
    expectEq(await pub.publish(chan, "q1"), "QUEUED", "[ioredis] PUBLISH inside MULTI -> QUEUED");
    expectEq(await pub.echo("q2"), "QUEUED", "[ioredis] ECHO inside MULTI -> QUEUED");
    expectEq(await pub.exec(), [[null, 1], [null, "q2"]], "[ioredis] EXEC after non-pipelined MULTI");
    await expectMessages(inbox, chan, ["q1"], "[ioredis] message from the non-pipelined MULTI");

    // EXECABORT: wrong arity while queueing; nothing is published.
    const err = await expectReject(
      pub.multi().publish(chan, "aborted-before").call("PUBLISH", "only-one-arg").publish(chan, "aborted-after").exec(),
      "[ioredis] transaction with a wrong-arity PUBLISH must reject with EXECABORT",
      (e) => /^EXECABORT/.test(e.message),
    );
    check(
      Array.isArray(err.previousErrors) && err.previousErrors.some((p) => /wrong number of arguments/i.test(p.message)),
      "[ioredis] EXECABORT carries the queueing error in previousErrors",
      show((err.previousErrors || []).map((p) => p.message)),
    );
    expectEq(await pub.ping(), "PONG", "[ioredis] connection usable after EXECABORT");
    await expectNothingThen(inbox, (c, m) => pub.publish(c, m), chan, "[ioredis] aborted transaction published nothing");

    // Non-transactional pipeline.
    res = await withTimeout(pub.pipeline().publish(chan, "p1").ping().publish(chan, "p2").exec(), "[ioredis] pipeline");
    expectEq(res, [[null, 1], [null, "PONG"], [null, 1]], "[ioredis] pipeline() results");
    await expectMessages(inbox, chan, ["p1", "p2"], "[ioredis] messages from the plain pipeline");

    // WATCH on keys nothing writes (no keyspace needed), then MULTI/EXEC; UNWATCH.
    expectEq(await pub.watch(`${base}:w1`, `${base}:w2`), "OK", "[ioredis] WATCH");
    res = await withTimeout(pub.multi().publish(chan, "w1").exec(), "[ioredis] watched multi/exec");
    expectEq(res, [[null, 1]], "[ioredis] WATCH + MULTI/EXEC result (not null: nothing touched the keys)");
    await expectMessages(inbox, chan, ["w1"], "[ioredis] message from the watched transaction");
    expectEq(await pub.unwatch(), "OK", "[ioredis] UNWATCH");

    // DISCARD drops the queue.
    expectEq(await pub.multi({ pipeline: false }), "OK", "[ioredis] MULTI before DISCARD");
    expectEq(await pub.publish(chan, "discarded"), "QUEUED", "[ioredis] queued before DISCARD");
    expectEq(await pub.discard(), "OK", "[ioredis] DISCARD");
    await expectNothingThen(inbox, (c, m) => pub.publish(c, m), chan, "[ioredis] DISCARDed PUBLISH was not delivered");
  } finally {
    pub.disconnect();
    sub.disconnect();
  }
}

async function nodeRedisScenarios(host, port, RESP) {
  const tag = `[node-redis RESP${RESP}]`;
  const base = `fanout-tx:${process.pid}:node-redis:${RESP}`;
  const chan = `${base}:chan`;
  const quiet = `${base}:nobody`;
  const client = createClient({
    socket: { host, port, reconnectStrategy: false, connectTimeout: TIMEOUT_MS },
    RESP,
  });
  client.on("error", () => {});
  const sub = client.duplicate();
  sub.on("error", () => {});
  try {
    await connect(`${tag} connect`, client.connect(), host, port);
    await connect(`${tag} connect subscriber`, sub.connect(), host, port);
    const inbox = new Inbox();
    await withTimeout(
      sub.subscribe(chan, (message, channel) => inbox.push(channel, message)),
      `${tag} SUBSCRIBE`,
    );

    let res = await withTimeout(
      client.multi().publish(chan, "m1").publish(chan, "m2").publish(quiet, "nobody").ping().echo("hi").exec(),
      `${tag} multi/exec`,
    );
    expectEq(res, [1, 1, 0, "PONG", "hi"], `${tag} multi().publish()...exec() result`);
    await expectMessages(inbox, chan, ["m1", "m2"], `${tag} subscriber got the transaction's messages in order`);

    // execAsPipeline(): the same commands without MULTI/EXEC.
    res = await withTimeout(client.multi().publish(chan, "p1").publish(chan, "p2").execAsPipeline(), `${tag} pipeline`);
    expectEq(res, [1, 1], `${tag} execAsPipeline() results`);
    await expectMessages(inbox, chan, ["p1", "p2"], `${tag} messages from execAsPipeline()`);

    // EXECABORT: wrong arity while queueing; nothing is published.
    await expectReject(
      client.multi().publish(chan, "aborted-before").addCommand(["PUBLISH", "only-one-arg"]).publish(chan, "aborted-after").exec(),
      `${tag} transaction with a wrong-arity PUBLISH must reject`,
      (e) => /wrong number of arguments|EXECABORT/i.test(e.message),
    );
    expectEq(await client.ping(), "PONG", `${tag} connection usable after EXECABORT`);
    await expectNothingThen(inbox, (c, m) => client.publish(c, m), chan, `${tag} aborted transaction published nothing`);

    // WATCH (keys need not exist), then MULTI/EXEC; UNWATCH.
    expectEq(await client.watch([`${base}:w1`, `${base}:w2`]), "OK", `${tag} WATCH`);
    res = await withTimeout(client.multi().publish(chan, "w1").exec(), `${tag} watched multi/exec`);
    expectEq(res, [1], `${tag} WATCH + MULTI/EXEC result`);
    await expectMessages(inbox, chan, ["w1"], `${tag} message from the watched transaction`);
    expectEq(await client.unwatch(), "OK", `${tag} UNWATCH`);
  } finally {
    await Promise.allSettled([client.isOpen ? client.quit() : null, sub.isOpen ? sub.quit() : null]);
  }
}

async function main() {
  const port = Number(process.argv[2]);
  const host = process.argv[3] || "127.0.0.1";
  if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: node transactions.mjs PORT [HOST]");
    return 2;
  }
  const started = Date.now();
  const libs = `ioredis ${IOREDIS_VERSION}, node-redis ${NODE_REDIS_VERSION}`;
  try {
    await ioredisScenarios(host, port);
    await nodeRedisScenarios(host, port, 2);
    await nodeRedisScenarios(host, port, 3);
  } catch (e) {
    const conn = e instanceof ConnectFailed;
    if (e instanceof CheckFailed || conn) console.error(`FAIL transactions.mjs: ${e.message}`);
    else console.error(`FAIL transactions.mjs: unexpected ${e?.name}: ${e?.message}`);
    console.log(`transactions.mjs: ${libs} against ${host}:${port}: FAILED${conn ? " (connection)" : ""} after ${checks} checks`);
    return conn ? 2 : 1;
  }
  const took = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`transactions.mjs: ${libs} against ${host}:${port}: ${checks} checks passed in ${took}s`);
  return 0;
}

process.exitCode = await main();
