// fanout dashboard: polls GET /v1/stats every second and renders it; a live tail on
// GET /v1/sse. Server data only ever goes into the page through textContent (channel
// names, client names and payloads are anyone's bytes), never through innerHTML.
'use strict';

const POLL_MS = 1000;
const TAIL_MAX = 100;

const $ = (id) => document.getElementById(id);

// el('td', {className: 'num'}, 'text'): an element with properties and text children.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// A name from the JSON: `key` when UTF-8, else `key_b64` (shown with a marker).
function nameNode(obj, key) {
  if (obj[key] !== undefined && obj[key] !== null) return document.createTextNode(String(obj[key]));
  if (obj[key + '_b64'] !== undefined) {
    return el('span', {}, el('span', { className: 'b64', title: 'not UTF-8: shown as base64' }, 'b64'), obj[key + '_b64']);
  }
  return document.createTextNode('');
}

const fmt = new Intl.NumberFormat();
function num(v) { return typeof v === 'number' ? fmt.format(v) : (v ?? '–'); }
function bytes(n) {
  if (typeof n !== 'number') return '–';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + units[i];
}

function setStatus(text, error) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!error);
}

function card(id, value, sub, bad) {
  const c = $(id);
  c.querySelector('.value').textContent = value;
  c.querySelector('.sub').textContent = sub || '';
  c.classList.toggle('bad', !!bad);
}

// Rates from two samples' counters; a counter that went down (a restarted server)
// gives no rate rather than a negative one.
let prev = null;
function rate(cur, key) {
  if (!prev) return null;
  const dt = (cur.time_ms - prev.time_ms) / 1000;
  const d = cur.totals[key] - prev.totals[key];
  if (!(dt > 0) || !(d >= 0)) return null;
  return d / dt;
}
function rateText(r) { return r === null ? '–' : (r < 10 ? r.toFixed(1) : fmt.format(Math.round(r))); }

function fillTable(id, listing, row, cols, noteId, refused) {
  const tbody = $(id).querySelector('tbody');
  const note = $(noteId);
  if (!listing) {
    // Refused by ACL: the server's text says which command.
    tbody.replaceChildren(el('tr', {}, el('td', { className: 'empty', colSpan: cols }, refused || 'not available')));
    note.textContent = '';
    return;
  }
  note.textContent = listing.capped
    ? `(first ${listing.list.length} of ${fmt.format(listing.total)})`
    : `(${fmt.format(listing.total)})`;
  const rows = listing.list.map(row);
  if (!rows.length) rows.push(el('tr', {}, el('td', { className: 'empty', colSpan: cols }, 'none')));
  tbody.replaceChildren(...rows);
}

function render(s) {
  const i = s.info || {};
  $('version').textContent = i.fanout_version ? `v${i.fanout_version} · up ${num(i.uptime_in_seconds)} s` : '';
  card('card-memory', i.used_memory_human ?? bytes(i.used_memory),
    i.used_memory_rss_human ? `RSS ${i.used_memory_rss_human}` + (i.maxmemory ? ` · max ${bytes(i.maxmemory)}` : '') : '');
  card('card-clients', num(i.connected_clients),
    `${num(i.pubsub_clients)} subscribed · max ${num(i.maxclients)}`);
  card('card-blocked', num(i.blocked_clients), '', false);
  const t = s.totals;
  card('card-pubrate', rateText(rate(s, 'published')), `total ${num(t.published)}`);
  card('card-delrate', rateText(rate(s, 'delivered')), `total ${num(t.delivered)}`);
  const dr = rate(s, 'dropped');
  card('card-droprate', rateText(dr),
    `total ${num(t.dropped)} · obuf disconnects ${num(t.obuf_disconnections)}`,
    (dr !== null && dr > 0));
  prev = s;

  const errs = s.errors || {};
  const named = (key) => (c) => el('tr', {}, el('td', {}, nameNode(c, key)), el('td', { className: 'num' }, num(c.subscribers)));
  fillTable('channels', s.channels, named('channel'), 2, 'channels-note', errs.channels);
  fillTable('patterns', s.patterns, named('pattern'), 2, 'patterns-note', errs.patterns);
  fillTable('clients', s.clients, (c) => {
    const tr = el('tr', {},
      el('td', { className: 'num' }, num(c.id)),
      el('td', {}, nameNode(c, 'name')),
      el('td', {}, nameNode(c, 'lib-name')),
      el('td', {}, c.addr ?? ''),
      el('td', {}, c.user ?? ''),
      el('td', { className: 'num dropped' }, num(c.dropped)),
      el('td', { className: 'num', title: `${num(c.omem)} bytes, ${num(c.oll)} frames queued` }, bytes(c.omem)),
      el('td', { className: 'num' }, num(c.sub)),
      el('td', { className: 'num' }, num(c.psub)),
      el('td', {}, c.flags ?? ''),
      el('td', { className: 'num' }, num(c.age)),
      el('td', { className: 'num' }, num(c.idle)),
      el('td', {}, c.cmd ?? ''));
    // A subscriber losing messages stands out.
    if (c.dropped > 0) tr.classList.add('drops');
    return tr;
  }, 13, 'clients-note', errs.clients);
}

async function poll() {
  try {
    // Same origin: on a 401 (WWW-Authenticate: Basic) the browser asks for the user and
    // password itself and sends them from then on, EventSource included.
    const r = await fetch('/v1/stats', { cache: 'no-store', credentials: 'same-origin' });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON: a proxy's page */ }
    if (!r.ok) {
      setStatus(`${r.status}: ${body && body.error ? body.error : r.statusText}`, true);
    } else if (body) {
      render(body);
      setStatus('updated ' + new Date().toLocaleTimeString());
    }
  } catch (e) {
    setStatus('cannot reach fanout: ' + e.message, true);
  }
  // Scheduled after the answer, so a slow server is never asked twice at once.
  setTimeout(poll, POLL_MS);
}

// --- Live tail ------------------------------------------------------------------------
let source = null;

function tailLine(className, ...parts) {
  const list = $('tail-list');
  list.prepend(el('li', { className }, el('span', { className: 't' }, new Date().toLocaleTimeString()), ...parts));
  while (list.childElementCount > TAIL_MAX) list.lastElementChild.remove();
}

function onMessage(e) {
  let m;
  try { m = JSON.parse(e.data); } catch (_) { return; }
  const where = el('span', { className: 'ch' }, nameNode(m, 'channel'));
  if (m.pattern !== undefined || m.pattern_b64 !== undefined) where.append(' (', nameNode(m, 'pattern'), ')');
  tailLine('msg', where, nameNode(m, 'data'));
}

function stopTail(note) {
  if (source) source.close();
  source = null;
  $('tail-start').disabled = false;
  $('tail-stop').disabled = true;
  $('tail-status').textContent = note || '';
}

function startTail(kind, name) {
  stopTail();
  $('tail-list').replaceChildren();
  source = new EventSource('/v1/sse?' + new URLSearchParams({ [kind]: name }));
  $('tail-start').disabled = true;
  $('tail-stop').disabled = false;
  $('tail-status').textContent = 'connecting…';
  const es = source;
  const confirmed = (e) => {
    let m = {};
    try { m = JSON.parse(e.data); } catch (_) { /* keep going */ }
    $('tail-status').textContent = `subscribed (${m.count ?? '?'})`;
  };
  es.addEventListener('subscribe', confirmed);
  es.addEventListener('psubscribe', confirmed);
  for (const kind of ['message', 'pmessage', 'smessage']) es.addEventListener(kind, onMessage);
  es.addEventListener('dropped', (e) => {
    let m = {};
    try { m = JSON.parse(e.data); } catch (_) { /* keep going */ }
    tailLine('bad', `${m.dropped ?? '?'} message(s) dropped here (this browser read too slowly); ${m.total ?? '?'} in all`);
  });
  es.addEventListener('error', (e) => {
    if (e.data) {
      // An `event: error` sent by fanout: Redis's text.
      let m = {};
      try { m = JSON.parse(e.data); } catch (_) { /* keep going */ }
      tailLine('bad', m.error ?? e.data);
    } else if (es.readyState === EventSource.CLOSED) {
      // A refused request (401/403/400) is not retried by the browser.
      stopTail('refused or closed (check the name and your permissions)');
    } else {
      $('tail-status').textContent = 'connection lost, retrying…';
    }
  });
}

$('tail-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('tail-name').value;
  if (name) startTail($('tail-kind').value, name);
});
$('tail-stop').addEventListener('click', () => stopTail('stopped'));

poll();
