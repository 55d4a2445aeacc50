// dashboard.mjs FANOUT_BINARY -- drives a real browser (Debian's chromium through
// playwright-core; no browser is downloaded) against fanout's dashboard and SSE demo.
//
// Starts its own fanout on two free loopback ports (RESP and --http-port) and checks:
//   * the dashboard's cards fill in from /v1/stats (memory, clients, totals);
//   * the channel, pattern and client tables show a RESP subscriber (name, lib-name);
//   * the live tail (EventSource on /v1/sse) shows three messages published three ways:
//     PUBLISH over a raw RESP socket, POST /v1/publish/<channel>, and a binary payload
//     (shown as base64 with its marker); an HTML payload is shown as text, never run;
//   * on a phone-sized viewport the page does not scroll sideways (tables scroll inside);
//   * /demo subscribes, publishes through its form, and shows the message.
// Screenshots: docs/dashboard.png (1280x800), docs/dashboard-phone.png (390x844) and
// docs/demo.png (SCREENSHOT_DIR overrides docs/).
//
// Prints `N passed, M failed`; exits 0 only when nothing failed, 2 when chromium or the
// binary is missing. The whole run is bounded (120 s); the server is killed by its PID.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const OVERALL_MS = 120_000;
const STEP_MS = 15_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = path.resolve(process.env.SCREENSHOT_DIR || path.join(root, 'docs'));
// Without the background-networking flags chromium tries to reach Google's services and,
// on a closed network, stalls; no sandbox because CI runs as root in a container.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const bin = process.argv[2];
if (!bin) {
  console.error('usage: node tests/browser/dashboard.mjs FANOUT_BINARY');
  process.exit(2);
}
if (!fs.existsSync(bin)) {
  console.error(`tests/browser: fanout binary not found: ${bin} (cargo build --release first)`);
  process.exit(2);
}
if (!fs.existsSync(chromiumPath)) {
  console.error(`tests/browser: chromium is missing at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM)`);
  process.exit(2);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error(`tests/browser: playwright-core is not installed (run tests/browser/install.sh): ${e.message}`);
  process.exit(2);
}

let passed = 0;
let failed = 0;
let server = null;
let browser = null;
const sockets = [];

function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`ok   ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
  }
}

// Runs an async check; a thrown error (a wait that timed out) is that check's failure.
async function step(what, fn) {
  try {
    await fn();
    check(true, what);
  } catch (e) {
    check(false, what, String(e && e.message ? e.message : e).split('\n')[0]);
  }
}

async function cleanup() {
  for (const s of sockets) s.destroy();
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    const t = setTimeout(() => server.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

const overall = setTimeout(async () => {
  console.log(`FAIL overall: not finished within ${OVERALL_MS / 1000} s`);
  failed++;
  console.log(`${passed} passed, ${failed} failed`);
  await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 5000))]);
  if (server) server.kill('SIGKILL');
  process.exit(1);
}, OVERALL_MS);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A RESP command as bytes (arguments may be Buffers: binary payloads).
function resp(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// A raw RESP connection; `send` writes commands and resolves after `replies` CRLF-ended
// top-level lines have arrived (enough for the simple replies used here).
function respConnect(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => resolve(conn));
    sockets.push(sock);
    sock.setTimeout(STEP_MS, () => sock.destroy(new Error('RESP socket timed out')));
    sock.once('error', reject);
    let buf = Buffer.alloc(0);
    let waiter = null;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (waiter) waiter();
    });
    const conn = {
      sock,
      async send(args, until) {
        buf = Buffer.alloc(0);
        sock.write(resp(args));
        await new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error(`no reply to ${args[0]}`)), STEP_MS);
          waiter = () => {
            if (until(buf.toString('latin1'))) {
              clearTimeout(t);
              waiter = null;
              res();
            }
          };
          waiter();
        });
        return buf.toString('latin1');
      },
    };
  });
}

async function startServer(port, httpPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-browser-'));
  server = spawn(bin, ['--port', String(port), '--http-port', String(httpPort), '--bind', '127.0.0.1',
    '--http-bind', '127.0.0.1', '--loglevel', 'warning', '--dir', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  server.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const deadline = Date.now() + STEP_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`fanout exited with status ${server.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${httpPort}/v1/stats`);
      if (r.ok) return;
    } catch (_) { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fanout did not answer on http port ${httpPort}`);
}


async function main() {
  const [port, httpPort] = [await freePort(), await freePort()];
  await startServer(port, httpPort);
  const base = `http://127.0.0.1:${httpPort}`;
  console.log(`fanout on RESP ${port}, HTTP ${httpPort}; chromium ${chromiumPath}`);
  fs.mkdirSync(shots, { recursive: true });

  // A named RESP subscriber, so the tables have something to show.
  const sub = await respConnect(port);
  await sub.send(['CLIENT', 'SETNAME', 'browser-test-sub'], (b) => b.includes('\r\n'));
  await sub.send(['CLIENT', 'SETINFO', 'LIB-NAME', 'raw-node'], (b) => b.includes('\r\n'));
  await sub.send(['SUBSCRIBE', 'orders'], (b) => b.includes('orders'));
  await sub.send(['PSUBSCRIBE', 'news.*'], (b) => b.includes('news.*'));
  const pub = await respConnect(port);

  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, timeout: STEP_MS });
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desktop.newPage();
  page.setDefaultTimeout(STEP_MS);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  const resp0 = await page.goto(`${base}/`);
  check(resp0 && resp0.status() === 200, 'GET / answers 200', resp0 && `status ${resp0.status()}`);

  await step('cards fill in from /v1/stats (memory, clients)', async () => {
    await page.waitForFunction(() => /\d/.test(document.querySelector('#card-memory .value').textContent)
      && Number(document.querySelector('#card-clients .value').textContent.replace(/\D/g, '')) >= 1);
  });
  await step('channel table lists "orders" with 1 subscriber', async () => {
    await page.locator('#channels tbody tr', { hasText: 'orders' }).filter({ hasText: '1' }).waitFor();
  });
  await step('pattern table lists "news.*"', async () => {
    await page.locator('#patterns tbody tr', { hasText: 'news.*' }).waitFor();
  });
  await step('client table shows the subscriber\'s name and lib-name', async () => {
    await page.locator('#clients tbody tr', { hasText: 'browser-test-sub' }).filter({ hasText: 'raw-node' }).waitFor();
  });

  // The live tail on a channel.
  await page.fill('#tail-name', 'news.live');
  await page.click('#tail-start');
  await step('live tail subscribes (EventSource on /v1/sse)', async () => {
    await page.locator('#tail-status', { hasText: 'subscribed' }).waitFor();
  });
  const tag = Date.now().toString(36);
  await pub.send(['PUBLISH', 'news.live', `via resp ${tag}`], (b) => b.startsWith(':'));
  const r = await fetch(`${base}/v1/publish/news.live`, { method: 'POST', body: `via http ${tag}` });
  check(r.ok, 'POST /v1/publish answers 200', `status ${r.status}`);
  await pub.send(['PUBLISH', 'news.live', Buffer.from([0xff, 0xfe, 0x00, 0x41])], (b) => b.startsWith(':'));
  await pub.send(['PUBLISH', 'news.live', '<img src=x onerror="window.__xss=1">'], (b) => b.startsWith(':'));
  await step('tail shows the message published over RESP', () =>
    page.locator('#tail-list li', { hasText: `via resp ${tag}` }).waitFor());
  await step('tail shows the message published over HTTP', () =>
    page.locator('#tail-list li', { hasText: `via http ${tag}` }).waitFor());
  await step('tail shows the binary message as base64 with its marker', async () => {
    await page.locator('#tail-list li', { hasText: '//4AQQ==' }).locator('.b64').waitFor();
  });
  await step('an HTML payload is shown as text, not run', async () => {
    await page.locator('#tail-list li', { hasText: '<img src=x' }).waitFor();
    const ran = await page.evaluate(() => window.__xss === 1 || document.querySelector('#tail-list img') !== null);
    if (ran) throw new Error('the payload became markup');
  });
  await step('publish total counts the messages', async () => {
    await page.waitForFunction(() => {
      const m = document.querySelector('#card-pubrate .sub').textContent.match(/total ([\d,.\s]+)/);
      return m && Number(m[1].replace(/\D/g, '')) >= 4;
    });
  });
  await step('the tail\'s SSE client appears in the client table', () =>
    page.locator('#clients tbody tr', { hasText: 'fanout-http' }).filter({ hasText: 'sse' }).first().waitFor());
  // Some steady traffic for the screenshot (nonzero rates, ordinary payloads on top of the
  // test's odd ones), spread over more than one poll so the rate cards have two samples.
  for (let i = 1; i <= 16; i++) {
    await pub.send(['PUBLISH', 'news.live', JSON.stringify({ order: 1000 + i, status: 'shipped' })], (b) => b.startsWith(':'));
    await page.waitForTimeout(100);
  }
  await page.waitForTimeout(1100);
  await page.screenshot({ path: path.join(shots, 'dashboard.png') });

  // Phone-sized: the page must not scroll sideways (the tables scroll in their boxes).
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  const ppage = await phone.newPage();
  ppage.setDefaultTimeout(STEP_MS);
  ppage.on('pageerror', (e) => pageErrors.push(e.message));
  await ppage.goto(`${base}/`);
  await step('phone: cards fill in', () =>
    ppage.waitForFunction(() => /\d/.test(document.querySelector('#card-memory .value').textContent)));
  await step('phone: no sideways scrolling at 390 px', async () => {
    await ppage.locator('#clients tbody tr', { hasText: 'browser-test-sub' }).waitFor();
    const w = await ppage.evaluate(() => document.documentElement.scrollWidth);
    if (w > 390) throw new Error(`page is ${w} px wide`);
  });
  await ppage.screenshot({ path: path.join(shots, 'dashboard-phone.png') });

  // The SSE demo page: subscribe, publish through its form, see the message.
  const demo = await desktop.newPage();
  demo.setDefaultTimeout(STEP_MS);
  demo.on('pageerror', (e) => pageErrors.push(e.message));
  const dr = await demo.goto(`${base}/demo`);
  check(dr && dr.status() === 200, 'GET /demo answers 200', dr && `status ${dr.status()}`);
  await demo.setViewportSize({ width: 900, height: 600 });
  await demo.fill('#channel', 'demo');
  await demo.click('#subscribe button');
  await step('demo subscribes', () => demo.locator('#status', { hasText: 'subscribed to demo' }).waitFor());
  await demo.fill('#payload', `hello from the demo form ${tag}`);
  await demo.click('#publish button');
  await step('demo shows the message it published', () =>
    demo.locator('#messages li', { hasText: `hello from the demo form ${tag}` }).waitFor());
  await pub.send(['PUBLISH', 'demo', `and one from redis ${tag}`], (b) => b.startsWith(':'));
  await step('demo shows a message published over RESP', () =>
    demo.locator('#messages li', { hasText: `and one from redis ${tag}` }).waitFor());
  await demo.screenshot({ path: path.join(shots, 'demo.png') });

  check(pageErrors.length === 0, 'no script errors in the pages', pageErrors.join(' | '));
  for (const f of ['dashboard.png', 'dashboard-phone.png', 'demo.png']) {
    const p = path.join(shots, f);
    console.log(`     ${path.relative(root, p)}: ${fs.existsSync(p) ? fs.statSync(p).size : 0} bytes`);
  }
}

let status = 0;
try {
  await main();
} catch (e) {
  check(false, 'run', e && e.stack ? e.stack.split('\n').slice(0, 3).join(' / ') : String(e));
}
await cleanup();
clearTimeout(overall);
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0) {
  console.error('tests/browser: FAILED (see the FAIL lines above)');
  status = 1;
}
process.exit(status);
