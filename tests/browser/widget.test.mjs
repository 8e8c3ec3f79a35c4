// Real-browser test of the tally widget pages (headless Chromium driven by playwright-core).
//
//   node widget.test.mjs [TALLY_BINARY] [ASSETS_DIR]      (or: tests/browser/run ...)
//
// Defaults: ../../build/release/tally and ../../assets, relative to this file.
// Environment: CHROMIUM (browser binary, default /usr/bin/chromium), TMPDIR (screenshot
// goes to $TMPDIR/tally-widget.png), TALLY_LIVE_MS (deadline POST -> DOM, default 1000).
// Starts its own tally on 127.0.0.1:0 with a fresh database in a temp dir, and always
// kills it and removes the temp dir. Last line of output: "N passed, N failed".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(process.argv[2] || path.join(HERE, '../../build/release/tally'));
const ASSETS = path.resolve(process.argv[3] || path.join(HERE, '../../assets'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'tok';
const LIVE_MS = Number(process.env.TALLY_LIVE_MS) || 1000; // POST -> DOM deadline
const RECONNECT_MS = 12000; // widget backoff caps at 10 s (jittered)
const CASE_MS = 40000; // safety net per case
const TOTAL_MS = 180000; // safety net for the whole run
const SHOT = path.join(process.env.TMPDIR || os.tmpdir() || '/tmp', 'tally-widget.png');

let passed = 0, failed = 0;
let server = null; // {proc, port, origin, log}
let browser = null;
let tmp = null;

// ---------- cleanup on every exit path ----------
function killServerSync() {
  const p = server && server.proc;
  if (p && p.exitCode === null && p.signalCode === null) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
function removeTmp() {
  if (tmp) { try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* ignore */ } tmp = null; }
}
process.on('exit', () => { killServerSync(); removeTmp(); });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { console.log(`interrupted by ${sig}`); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
}
process.on('uncaughtException', (e) => { console.log(`uncaught: ${e && e.stack || e}`); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
process.on('unhandledRejection', (e) => { console.log(`unhandled rejection: ${e && e.stack || e}`); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
setTimeout(() => {
  console.log(`watchdog: the whole run took more than ${TOTAL_MS} ms`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, TOTAL_MS).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// ---------- the server ----------
function startServer(listen) {
  const proc = spawn(BIN, ['--headless', '--listen', listen, '--db', path.join(tmp, 't.db'), '--assets', ASSETS], {
    env: { ...process.env, TALLY_ADMIN_TOKEN: TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const s = { proc, port: 0, origin: '', log: '' };
  server = s;
  return withTimeout(new Promise((resolve, reject) => {
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      s.log = (s.log + d).slice(-20000); // keep draining; keep the tail for diagnostics
      const m = !s.port && /tally: serving http:\/\/([0-9.]+):(\d+)\//.exec(s.log);
      if (m) { s.port = Number(m[2]); s.origin = `http://${m[1]}:${m[2]}`; resolve(s); }
    });
    proc.on('error', reject);
    proc.on('exit', (code, sig) => {
      if (!s.port) reject(new Error(`tally exited (${code ?? sig}) before serving:\n${s.log.slice(-2000)}`));
    });
  }), 10000, 'tally start').catch((e) => { killServerSync(); throw e; });
}

async function stopServer(signal) {
  const p = server && server.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  try { await withTimeout(gone, 5000, `tally exit after ${signal}`); } catch (e) {
    p.kill('SIGKILL');
    await withTimeout(gone, 5000, 'tally exit after SIGKILL');
    if (signal !== 'SIGKILL') throw e;
  }
}

async function api(method, urlPath, body, { admin = false } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (admin) headers.Authorization = `Bearer ${TOKEN}`;
  const r = await fetch(server.origin + urlPath, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(5000),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

async function donate(amount, donor, extra = {}, slug = 'food') {
  const r = await api('POST', `/api/v1/campaigns/${slug}/donations`, {
    amount_cents: amount, currency: 'USD', donor, ...extra,
  });
  assert.equal(r.status, 202, `donation POST: ${r.status} ${r.text}`);
  return r;
}

// The server again on the same port and database, after it was killed; the port may take a
// moment to be free again.
async function restartOn(port) {
  for (let i = 0; ; i++) {
    try { await startServer(`127.0.0.1:${port}`); break; } catch (e) {
      if (i >= 10) throw e;
      await sleep(300);
    }
  }
  assert.equal(server.port, port, 'restarted on another port');
}

// ---------- browser helpers ----------
const pageErrors = []; // uncaught exceptions in any page: always a failure
const consoleErrors = []; // console.error and failed loads: a failure unless the case allows it
const wsFrames = []; // every websocket frame any page received
const benign = []; // console errors that are not the page's: reported, never a failure

async function openPage(ctx, label, url, { onWebSocket = null } = {}) {
  const page = await ctx.newPage();
  if (onWebSocket) page.on('websocket', onWebSocket);
  page.setDefaultTimeout(5000);
  page.on('pageerror', (e) => pageErrors.push(`[${label}] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location() && m.location().url;
    // the browser's own favicon probe is not the page's doing (tally serves no favicon)
    if (/\/favicon\.ico$/.test(where || '')) { benign.push(`[${label}] ${m.text()} ${where}`); return; }
    consoleErrors.push(`[${label}] ${m.text()}${where ? ` (${where})` : ''}`);
  });
  page.on('websocket', (ws) => ws.on('framereceived', (f) => wsFrames.push(String(f.payload))));
  const resp = await page.goto(server.origin + url, { waitUntil: 'load', timeout: 10000 });
  assert.ok(resp && resp.ok(), `GET ${url}: ${resp && resp.status()}`);
  return page;
}

// Two-step DOM watch, so that the observer is in place before the action it should time:
// arm() installs a MutationObserver; result() resolves with the page's Date.now() at the first
// mutation after which `sel` (with textContent containing `text`, if given) exists.
let watchSeq = 0;
async function arm(page, sel, text, timeout = Math.max(3000, 3 * LIVE_MS)) {
  const id = `w${++watchSeq}`;
  await page.evaluate(({ id, sel, text, timeout }) => {
    const hit = () => [...document.querySelectorAll(sel)].some((e) => text == null || e.textContent.includes(text));
    const w = (window.__tallyWatch = window.__tallyWatch || {});
    w[id] = new Promise((resolve) => {
      if (hit()) return resolve({ t: Date.now(), before: true });
      const mo = new MutationObserver(() => {
        if (hit()) { mo.disconnect(); clearTimeout(to); resolve({ t: Date.now() }); }
      });
      mo.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
      const to = setTimeout(() => { mo.disconnect(); resolve({ t: null }); }, timeout);
    });
  }, { id, sel, text: text ?? null, timeout });
  return {
    async result() {
      return page.evaluate((id) => window.__tallyWatch[id], id);
    },
  };
}

const attr = (page, sel, name) => page.$eval(sel, (e, n) => e.getAttribute(n), name);
const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
const usd = (cents) => new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(cents / 100);

// ---------- cases ----------
async function runCase(name, fn, { allowConsole = null } = {}) {
  const pe = pageErrors.length, ce = consoleErrors.length, t = Date.now();
  try {
    await withTimeout(Promise.resolve().then(fn), CASE_MS, name);
    const newPage = pageErrors.slice(pe);
    assert.equal(newPage.length, 0, `uncaught page error(s):\n  ${newPage.join('\n  ')}`);
    const newCons = consoleErrors.slice(ce).filter((m) => !(allowConsole && allowConsole.test(m)));
    assert.equal(newCons.length, 0, `console error(s):\n  ${newCons.join('\n  ')}`);
    passed++;
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} (${Date.now() - t} ms)\n     ${String(e && e.message || e).replace(/\n/g, '\n     ')}`);
  }
}

async function main() {
  for (const [what, p] of [['tally binary', BIN], ['assets dir', ASSETS], ['chromium', CHROMIUM]]) {
    if (!fs.existsSync(p)) throw new Error(`${what} not found: ${p}`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-browser-'));
  const started = Date.now();
  const latencies = [];
  let total = 0; // what the campaign's total_cents should be
  let widget = null;

  try {
    await startServer('127.0.0.1:0');
    console.log(`# tally at ${server.origin}, db in ${tmp}`);
    const c = await api('POST', '/api/v1/admin/campaigns',
      { slug: 'food', name: 'Food Bank', currency: 'USD', goal_cents: 100000 }, { admin: true });
    assert.equal(c.status, 201, `create campaign: ${c.status} ${c.text}`);

    browser = await withTimeout(chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }), 30000, 'chromium launch');
    console.log(`# chromium ${browser.version()}`);
    const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 480, height: 640 } });

    await runCase('a. widget shows the campaign, a zero total and an open connection', async () => {
      widget = await openPage(ctx, 'widget', '/widget.html?campaign=food');
      await widget.waitForSelector('#conn[data-state="open"]', { timeout: 5000 });
      await widget.waitForSelector('#total[data-cents="0"]', { timeout: 5000 });
      await widget.waitForFunction(() => document.getElementById('name').textContent.trim() === 'Food Bank', null, { timeout: 5000 });
      assert.equal(await text(widget, '#total'), usd(0));
      assert.equal(await text(widget, '#status'), 'active');
      assert.equal(await attr(widget, '#donors', 'data-count'), '0');
      assert.equal(await widget.$$eval('#wall li', (l) => l.length), 0);
      assert.ok(await widget.$eval('#error', (e) => e.hidden), '#error is shown');
      assert.equal(await widget.title(), 'Food Bank — tally');
    });

    await runCase(`b. a donation appears in the open widget within ${LIVE_MS} ms`, async () => {
      assert.ok(widget, 'no widget page (case a failed)');
      const wTotal = await arm(widget, '#total[data-cents="2500"]');
      const wWall = await arm(widget, '#wall li', 'Ada');
      const wDonors = await arm(widget, '#donors[data-count="1"]');
      const t0 = Date.now();
      const r = await donate(2500, { name: 'Ada', email: 'ada@example.org' }, { message: 'Go team!' });
      const tPost = Date.now() - t0;
      total += 2500;
      const [a, b, d] = [await wTotal.result(), await wWall.result(), await wDonors.result()];
      for (const [what, x] of [['#total[data-cents=2500]', a], ['#wall li "Ada"', b], ['#donors[data-count=1]', d]]) {
        assert.ok(x.t !== null, `${what} never appeared`);
        assert.ok(!x.before, `${what} was there before the POST`);
      }
      const lat = { total: a.t - t0, wall: b.t - t0, donors: d.t - t0 };
      latencies.push(lat.total);
      console.log(`#   POST answered ${r.json && r.json.status} in ${tPost} ms; POST->DOM: total ${lat.total} ms, wall ${lat.wall} ms, donors ${lat.donors} ms`);
      for (const [k, v] of Object.entries(lat)) assert.ok(v <= LIVE_MS, `${k} took ${v} ms (> ${LIVE_MS} ms)`);
      assert.equal(await text(widget, '#total'), usd(2500));
      const li = await widget.$eval('#wall li', (e) => e.textContent);
      assert.match(li, /Ada/);
      assert.match(li, /\$25\.00/);
      assert.match(li, /Go team!/);
      await widget.waitForTimeout(1300); // let the "new gift" highlight and bump animations finish
      await widget.screenshot({ path: SHOT, fullPage: true });
      console.log(`#   screenshot: ${SHOT}`);
    });

    await runCase('c. an anonymous gift shows "Anonymous", never the donor\'s name', async () => {
      assert.ok(widget, 'no widget page (case a failed)');
      const want = total + 1000;
      const wTotal = await arm(widget, `#total[data-cents="${want}"]`);
      const wWall = await arm(widget, '#wall li', 'Anonymous');
      const t0 = Date.now();
      await donate(1000, { name: 'Grace Hopperton', email: 'grace@example.org' }, { anonymous: true, message: 'Quietly' });
      total = want;
      const [a, b] = [await wTotal.result(), await wWall.result()];
      assert.ok(a.t !== null, `total never became ${want}`);
      assert.ok(b.t !== null, 'no "Anonymous" gift on the wall');
      latencies.push(a.t - t0);
      console.log(`#   POST->DOM: total ${a.t - t0} ms, wall ${b.t - t0} ms`);
      assert.ok(a.t - t0 <= LIVE_MS && b.t - t0 <= LIVE_MS, `took ${a.t - t0}/${b.t - t0} ms (> ${LIVE_MS} ms)`);
      const first = await widget.$eval('#wall li', (e) => e.textContent);
      assert.match(first, /Anonymous/);
      assert.match(first, /Quietly/);
      const html = await widget.content();
      const body = await widget.evaluate(() => document.body.innerText + document.title);
      for (const secret of ['Grace', 'Hopperton', 'grace@example.org']) {
        assert.ok(!html.includes(secret) && !body.includes(secret), `page shows "${secret}"`);
        assert.ok(!wsFrames.some((f) => f.includes(secret)), `a websocket frame carried "${secret}"`);
      }
      assert.ok(!wsFrames.some((f) => f.includes('@example.org')), 'a websocket frame carried an email');
      assert.equal(await attr(widget, '#donors', 'data-count'), '2');
    });

    await runCase(`d. pausing the campaign shows "paused" within ${LIVE_MS} ms`, async () => {
      assert.ok(widget, 'no widget page (case a failed)');
      const w = await arm(widget, '#status', 'paused');
      const t0 = Date.now();
      const r = await api('POST', '/api/v1/admin/campaigns/food/pause', undefined, { admin: true });
      assert.equal(r.status, 200, `pause: ${r.status} ${r.text}`);
      const x = await w.result();
      assert.ok(x.t !== null, '#status never said "paused"');
      console.log(`#   pause->DOM: ${x.t - t0} ms`);
      assert.ok(x.t - t0 <= LIVE_MS, `took ${x.t - t0} ms (> ${LIVE_MS} ms)`);
      assert.equal(await text(widget, '#status'), 'paused');
      assert.equal(await attr(widget, '#status', 'data-status'), 'paused');
      assert.ok(await widget.isVisible('#notice'), 'no "paused" notice');
      assert.equal(await attr(widget, '#total', 'data-cents'), String(total), 'total changed on pause');
      // and back, so later cases can donate again
      const r2 = await api('POST', '/api/v1/admin/campaigns/food/resume', undefined, { admin: true });
      assert.equal(r2.status, 200, `resume: ${r2.status} ${r2.text}`);
      await widget.waitForFunction(() => document.getElementById('status').textContent === 'active', null, { timeout: LIVE_MS });
      assert.ok(!(await widget.isVisible('#notice')), 'notice still shown after resume');
    });

    await runCase('e. unknown or missing campaign shows an error', async () => {
      const nope = await openPage(ctx, 'nope', '/widget.html?campaign=nope');
      await nope.waitForSelector('#error[data-code="campaign_not_found"]', { state: 'visible', timeout: 5000 });
      assert.ok((await text(nope, '#error')).length > 0, 'empty error message');
      assert.ok(!(await nope.isVisible('#total')), '#total visible next to the error');
      await nope.close();
      const none = await openPage(ctx, 'noparam', '/widget.html');
      await none.waitForSelector('#error:not([hidden])', { state: 'visible', timeout: 5000 });
      const code = await attr(none, '#error', 'data-code');
      assert.ok(code, 'no data-code on the error');
      assert.equal(code, 'invalid_campaign');
      assert.match(await text(none, '#error'), /campaign/i);
      await none.close();
    });

    await runCase('f. index.html lists the campaign with its total', async () => {
      const idx = await openPage(ctx, 'index', '/');
      const card = `#campaigns li[data-slug="food"]`;
      await idx.waitForSelector(`${card} [data-part="total"][data-cents="${total}"]`, { timeout: 5000 });
      assert.equal(await text(idx, `${card} [data-part="name"]`), 'Food Bank');
      assert.equal(await text(idx, `${card} [data-part="total"]`), usd(total));
      assert.equal(await idx.$$eval('#campaigns li', (l) => l.length), 1);
      assert.equal(await attr(idx, `${card} a[href^="widget.html"]`, 'href'), 'widget.html?campaign=food');
      await idx.close();
    });

    await runCase('g. after a server restart (SIGKILL) the widget reconnects and goes on', async () => {
      assert.ok(widget, 'no widget page (case a failed)');
      const port = server.port;
      assert.equal(await attr(widget, '#total', 'data-cents'), String(total));
      await stopServer('SIGKILL');
      await widget.waitForSelector('#conn:not([data-state="open"])', { timeout: 5000 });
      const down = Date.now();
      await restartOn(port);
      await widget.waitForSelector('#conn[data-state="open"]', { timeout: RECONNECT_MS });
      console.log(`#   reconnected ${Date.now() - down} ms after the kill`);
      const api1 = await api('GET', '/api/v1/campaigns/food');
      assert.equal(api1.json && api1.json.total_cents, total, 'total lost across the restart');
      assert.equal(await attr(widget, '#total', 'data-cents'), String(total));
      const want = total + 700;
      const wTotal = await arm(widget, `#total[data-cents="${want}"]`);
      const wWall = await arm(widget, '#wall li', 'Linus');
      const t0 = Date.now();
      await donate(700, { name: 'Linus', email: 'linus@example.org' });
      total = want;
      const [a, b] = [await wTotal.result(), await wWall.result()];
      assert.ok(a.t !== null, `after the restart the total never became ${want}`);
      assert.ok(b.t !== null, 'after the restart the new gift never reached the wall');
      latencies.push(a.t - t0);
      console.log(`#   POST->DOM after restart: total ${a.t - t0} ms, wall ${b.t - t0} ms`);
      assert.ok(a.t - t0 <= LIVE_MS && b.t - t0 <= LIVE_MS, `took ${a.t - t0}/${b.t - t0} ms (> ${LIVE_MS} ms)`);
      assert.equal(await attr(widget, '#donors', 'data-count'), '3');
      assert.equal(await text(widget, '#conn'), 'live');
    }, { allowConsole: /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET/ });

    await runCase('h. index.html keeps eleven campaigns live, eight to a websocket, across a restart', async () => {
      const slugs = ['food'];
      for (let i = 1; i <= 10; i++) {
        const slug = `extra-${i}`;
        const r = await api('POST', '/api/v1/admin/campaigns',
          { slug, name: `Extra ${i}`, currency: 'USD', goal_cents: 50000 }, { admin: true });
        assert.equal(r.status, 201, `create ${slug}: ${r.status} ${r.text}`);
        slugs.push(slug);
      }
      const socks = []; // per websocket of the page: the messages it sent and received
      const idx = await openPage(ctx, 'index11', '/', {
        onWebSocket: (ws) => {
          const k = { sent: [], got: [] };
          socks.push(k);
          ws.on('framesent', (f) => k.sent.push(String(f.payload)));
          ws.on('framereceived', (f) => k.got.push(String(f.payload)));
        },
      });
      const card = (slug) => `#campaigns li[data-slug="${slug}"]`;
      await idx.waitForSelector('#conn[data-state="open"]', { timeout: 5000 });
      for (const slug of slugs) await idx.waitForSelector(`${card(slug)} [data-part="total"][data-cents]`, { timeout: 5000 });
      const subs = (k) => k.sent.map((t) => JSON.parse(t)).filter((m) => m.op === 'subscribe');
      assert.equal(socks.length, 2, `${socks.length} websockets for 11 campaigns`);
      const chans = socks.map((k) => subs(k).map((m) => m.channel));
      assert.ok(chans.every((c) => c.length <= 8), `subscriptions per websocket: ${chans.map((c) => c.length)}`);
      assert.deepEqual(chans.flat().sort(), slugs.map((x) => `campaign:${x}`).sort());
      // every campaign goes live: a gift to each shows in its card within the live deadline
      const gift = async (label) => {
        const want = Object.fromEntries(await Promise.all(slugs.map(async (slug) =>
          [slug, Number(await attr(idx, `${card(slug)} [data-part="total"]`, 'data-cents')) + 300])));
        const watches = await Promise.all(slugs.map((slug) => arm(idx, `${card(slug)} [data-part="total"][data-cents="${want[slug]}"]`)));
        const t0 = Date.now();
        await Promise.all(slugs.map((slug) => donate(300, { name: 'Pat', email: 'pat@example.org' }, {}, slug)));
        const res = await Promise.all(watches.map((w) => w.result()));
        const late = slugs.filter((slug, i) => res[i].t === null || res[i].before || res[i].t - t0 > LIVE_MS);
        console.log(`#   ${label}: slowest card ${Math.max(...res.map((x) => (x.t === null ? Infinity : x.t - t0)))} ms after the first POST`);
        assert.deepEqual(late, [], `${label}: cards not updated live within ${LIVE_MS} ms`);
      };
      await gift('11 gifts');
      for (const k of socks) {
        assert.ok(!k.got.some((t) => t.includes('"type":"error"')), `an error frame: ${k.got.find((t) => t.includes('error'))}`);
      }
      // a restart: each websocket comes back and resubscribes its channels with "since"
      const port = server.port, before = socks.length;
      await stopServer('SIGKILL');
      await idx.waitForSelector('#conn:not([data-state="open"])', { timeout: 5000 });
      await restartOn(port);
      await idx.waitForSelector('#conn[data-state="open"]', { timeout: RECONNECT_MS });
      // attempts made while the server was down fail and count as
      // websockets too: those that reached the new server subscribe (the
      // page is open with the first; wait a bounded while for the second)
      const reached = () => socks.slice(before).filter((k) => subs(k).length > 0);
      for (const t0 = Date.now(); reached().length < 2 && Date.now() - t0 < RECONNECT_MS;)
        await new Promise((r) => setTimeout(r, 50));
      const again = reached();
      assert.equal(again.length, 2, `${again.length} websockets after the restart`);
      const resub = again.flatMap(subs);
      assert.deepEqual(resub.map((m) => m.channel).sort(), slugs.map((x) => `campaign:${x}`).sort());
      assert.ok(resub.every((m) => Number.isInteger(m.since)), `a resubscription without since: ${JSON.stringify(resub)}`);
      await gift('11 gifts after the restart');
      await idx.close();
    }, { allowConsole: /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|Failed to fetch/ });

    await runCase('i. nine auto-mounted widgets on one page all go live, over two websockets', async () => {
      const slugs = ['food', ...Array.from({ length: 8 }, (_, i) => `extra-${i + 1}`)];
      let sockets = 0;
      const page = await ctx.newPage();
      page.setDefaultTimeout(5000);
      page.on('pageerror', (e) => pageErrors.push(`[mount9] ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`[mount9] ${m.text()}`); });
      page.on('websocket', () => { sockets++; });
      await page.setContent('<!doctype html><body>' +
        slugs.map((x) => `<div data-tally-campaign="${x}" data-tally-kind="total"></div>`).join('') +
        `<script src="${server.origin}/widget.js"></script></body>`, { waitUntil: 'load' });
      const box = (slug) => `[data-tally-campaign="${slug}"] [data-part="total"]`;
      for (const slug of slugs) await page.waitForSelector(`${box(slug)}[data-cents]`, { timeout: 5000 });
      assert.equal(sockets, 2, `${sockets} websockets for 9 widgets`);
      const want = {};
      for (const slug of slugs) want[slug] = Number(await attr(page, box(slug), 'data-cents')) + 200;
      const watches = await Promise.all(slugs.map((slug) => arm(page, `${box(slug)}[data-cents="${want[slug]}"]`)));
      const t0 = Date.now();
      await Promise.all(slugs.map((slug) => donate(200, { name: 'Sam', email: 'sam@example.org' }, {}, slug)));
      const res = await Promise.all(watches.map((w) => w.result()));
      const late = slugs.filter((slug, i) => res[i].t === null || res[i].before || res[i].t - t0 > LIVE_MS);
      assert.deepEqual(late, [], `widgets not updated live within ${LIVE_MS} ms`);
      await page.close();
    });

    await runCase('j. the match banner counts down, a matched gift says so, and an empty pool shows it', async () => {
      const cp = await api('POST', '/api/v1/admin/campaigns',
        { slug: 'matched', name: 'Matched', currency: 'USD', goal_cents: 100000 }, { admin: true });
      assert.equal(cp.status, 201, `create campaign: ${cp.status} ${cp.text}`);
      const pool = await api('POST', '/api/v1/admin/match-pools',
        { slug: 'acme', name: 'ACME match', sponsor: 'ACME', amount_cents: 3000, ratio: 2, campaigns: ['matched'] },
        { admin: true });
      assert.equal(pool.status, 201, `create pool: ${pool.status} ${pool.text}`);
      const page = await openPage(ctx, 'matched', '/widget.html?campaign=matched');
      await page.waitForSelector('#match[data-state="open"]', { timeout: 5000 });
      assert.match(await text(page, '#match'), /matched 2:1 by ACME: \$30\.00 of match left/);
      const wMatch = await arm(page, '#match', '$10.00 of match left');
      const wGift = await arm(page, '#wall li', '+$20.00 matched');
      const r = await donate(1000, { name: 'Mo', email: 'mo@example.org' }, {}, 'matched');
      assert.equal(r.json.matched_cents, 2000);
      assert.ok((await wMatch.result()).t !== null, 'the banner never showed $10.00 left');
      assert.ok((await wGift.result()).t !== null, 'the gift never showed its match');
      assert.equal(await attr(page, '#total', 'data-cents'), '3000');
      const wOut = await arm(page, '#match[data-state="exhausted"]');
      const r2 = await donate(2000, { name: 'Li', email: 'li@example.org' }, {}, 'matched');
      assert.equal(r2.json.matched_cents, 1000);
      assert.ok((await wOut.result()).t !== null, 'the banner never said the match ran out');
      assert.match(await text(page, '#match'), /run out/);
      // a challenge for 4 gifts: the 2 made count, then 1 more, then the 4th unlocks it
      const now = Date.now();
      const ch = await api('POST', '/api/v1/admin/challenges', {
        slug: 'hour', name: 'Power hour', sponsor: 'Bakery', kind: 'gifts', threshold: 4, bonus_cents: 5000,
        campaign: 'matched', starts_at: new Date(now - 60000).toISOString(), ends_at: new Date(now + 3600000).toISOString(),
      }, { admin: true });
      assert.equal(ch.status, 201, `create challenge: ${ch.status} ${ch.text}`);
      await page.waitForSelector('#challenge[data-state="open"]', { timeout: 5000 });
      assert.match(await text(page, '#challenge'), /Power hour: 2 gifts of 4 gifts/);
      const wOpen = await arm(page, '#challenge', '3 gifts of 4');
      await donate(100, { name: 'Jo', email: 'jo@example.org' }, {}, 'matched');
      assert.ok((await wOpen.result()).t !== null, `the challenge's progress never showed: ${await text(page, '#challenge')}`);
      const wWon = await arm(page, '#challenge[data-state="unlocked"]');
      await donate(100, { name: 'Jo', email: 'jo@example.org' }, {}, 'matched');
      assert.ok((await wWon.result()).t !== null, 'the challenge never showed unlocked');
      assert.match(await text(page, '#challenge'), /Unlocked: Power hour, \+\$50\.00 from Bakery/);
      await page.close();
    });

    await runCase('k. amounts follow ISO 4217 minor units: JPY none, KWD and IQD three', async () => {
      const page = await openPage(ctx, 'money', '/board.html');
      const got = await page.evaluate(() => {
        const f = (c, cur, o) => TallyLive.formatMoney(c, cur, Object.assign({ locale: 'en-US' }, o));
        return [f(123456, 'JPY'), f(1234567, 'KWD'), f(1234567, 'IQD'), f(1234567, 'KWD', { whole: true }),
          f(123456, 'USD'), f(5, 'KWD'), f(-5, 'USD'), f(1, 'CLF')];
      });
      const nf = (cur, v, d) => new Intl.NumberFormat('en-US', { style: 'currency', currency: cur,
        minimumFractionDigits: d, maximumFractionDigits: d }).format(v);
      assert.deepEqual(got, [nf('JPY', 123456, 0), nf('KWD', 1234.567, 3), nf('IQD', 1234.567, 3),
        nf('KWD', 1234, 0), nf('USD', 1234.56, 2), nf('KWD', 0.005, 3), nf('USD', -0.05, 2), nf('CLF', 0.0001, 4)]);
      assert.equal(got[0], '\u00a5123,456');
      await page.close();
    });

    await runCase('l. board.html shows a board per category beside the overall one, each live', async () => {
      for (const [slug, cat] of [['art-1', 'Arts'], ['art-2', 'Arts'], ['pet-1', 'Animals']]) {
        const r = await api('POST', '/api/v1/admin/campaigns',
          { slug, name: `Campaign ${slug}`, currency: 'USD', category: cat }, { admin: true });
        assert.equal(r.status, 201, `create ${slug}: ${r.status} ${r.text}`);
      }
      await donate(300, { name: 'Ann', email: 'ann@example.org' }, {}, 'art-1');
      const page = await openPage(ctx, 'board', '/board.html?rotate_ms=2000&limit=20');
      await page.waitForSelector('#board li', { timeout: 5000 }); /* the overall board stays */
      await page.waitForSelector('#cats:not([hidden]) .cat-board li', { timeout: 5000 });
      const seen = new Set();
      for (let i = 0; i < 40 && seen.size < 2; i++) {
        const name = await page.$eval('#cats', (e) => e.getAttribute('data-category'));
        const slugs = await page.$$eval('#cat-board li', (l) => l.map((e) => e.getAttribute('data-slug')));
        if (slugs.length) {
          const want = name === 'Arts' ? ['art-1', 'art-2'] : ['pet-1'];
          assert.deepEqual(slugs, want, `the ${name} board shows ${slugs}`);
          seen.add(name);
        }
        await sleep(250);
      }
      assert.deepEqual([...seen].sort(), ['Animals', 'Arts'], 'the category boards did not take turns');
      await page.close();
    });

    await runCase(`m. board.html?category=Arts shows only Arts, live within ${LIVE_MS} ms`, async () => {
      const page = await openPage(ctx, 'board-arts', '/board.html?category=Arts');
      await page.waitForSelector('#board li[data-slug="art-2"]', { timeout: 5000 });
      const slugs = await page.$$eval('#board li', (l) => l.map((e) => e.getAttribute('data-slug')));
      assert.deepEqual(slugs, ['art-1', 'art-2']);
      assert.ok(await page.$eval('#cats', (e) => e.hidden), 'a one-category board shows no rotation');
      assert.equal(await text(page, '#title'), 'Arts Leaderboard');
      const w = await arm(page, '#board li[data-slug="art-2"] .total[data-cents="900"]');
      const t0 = Date.now();
      await donate(900, { name: 'Bo', email: 'bo@example.org' }, {}, 'art-2');
      const x = await w.result();
      assert.ok(x.t !== null && !x.before, 'art-2 never showed 900');
      assert.ok(x.t - t0 <= LIVE_MS, `art-2's gift took ${x.t - t0} ms`);
      const order = await page.$$eval('#board li', (l) => l.map((e) => e.getAttribute('data-slug')));
      assert.deepEqual(order, ['art-2', 'art-1'], 'art-2 moved to the top of its board');
      await page.close();
    });

    await runCase('n. with two currencies the board never ranks them together; the day sums each', async () => {
      const r = await api('POST', '/api/v1/admin/campaigns',
        { slug: 'yen-1', name: 'Yen Campaign', currency: 'JPY', category: 'Arts' }, { admin: true });
      assert.equal(r.status, 201, `create yen-1: ${r.status} ${r.text}`);
      const g = await api('POST', '/api/v1/campaigns/yen-1/donations',
        { amount_cents: 5000, currency: 'JPY', donor: { name: 'Kei', email: 'kei@example.org' } });
      assert.equal(g.status, 202, `JPY gift: ${g.status} ${g.text}`);
      const page = await openPage(ctx, 'board-mixed', '/board.html?limit=20');
      await page.waitForSelector('#board[data-currency="JPY"] li[data-slug="yen-1"]', { timeout: 5000 });
      const slugs = await page.$$eval('#board li', (l) => l.map((e) => e.getAttribute('data-slug')));
      assert.deepEqual(slugs, ['yen-1'], 'only JPY campaigns on the JPY board');
      await page.waitForFunction(() => /\u00a55,000/.test(document.getElementById('board').textContent), null, { timeout: 5000 });
      await page.waitForFunction(() => /\u00a5/.test(document.getElementById('day-total').textContent) &&
        /\$/.test(document.getElementById('day-total').textContent), null, { timeout: 5000 });
      const usdBoard = await openPage(ctx, 'board-usd', '/board.html?currency=USD&limit=20');
      await usdBoard.waitForSelector('#board[data-currency="USD"] li', { timeout: 5000 });
      assert.equal(await usdBoard.$$eval('#board li[data-slug="yen-1"]', (l) => l.length), 0);
      await usdBoard.close();
      await page.close();
    });

    // the giving day's schedule: times relative to now, as RFC 3339
    const at = (ms) => new Date(Date.now() + ms).toISOString();
    const putDay = async (body) => {
      const r = await api('PUT', '/api/v1/admin/day', { name: 'Giving Day', ...body }, { admin: true });
      assert.equal(r.status, 200, `PUT day: ${r.status} ${r.text}`);
    };
    const secs = (s) => s.split(':').reduce((a, x) => a * 60 + Number(x), 0);

    await runCase('o. the board counts down to the opening, and the widget says when its campaign opens', async () => {
      await putDay({ opens_at: at(2 * 3600 * 1000), closes_at: at(5 * 3600 * 1000) });
      const board = await openPage(ctx, 'board', '/board.html');
      await board.waitForSelector('#phase[data-phase="before"]', { timeout: 5000 });
      assert.equal(await text(board, '#phase-label'), 'Opens in');
      const first = await text(board, '#countdown');
      assert.match(first, /^\d+:\d\d:\d\d$/, `countdown "${first}"`);
      assert.ok(secs(first) <= 7200 && secs(first) >= 7200 - 30, `countdown ${first} is not about 2:00:00`);
      assert.match(await text(board, '#phase'), /^Opens in 1:59:\d\d|^Opens in 2:00:00/);
      assert.equal(await text(board, '#title'), 'Giving Day');
      // it ticks by itself
      await board.waitForFunction((was) => document.getElementById('countdown').textContent.trim() !== was, first, { timeout: 3000 });
      assert.ok(secs(await text(board, '#countdown')) < secs(first), 'the countdown went up');
      // the widget of a campaign closed until then
      await widget.waitForFunction(() => /^Opens in \d+:\d\d:\d\d$/.test(document.getElementById('notice').textContent), null, { timeout: 5000 });
      assert.equal(await text(widget, '#status'), 'closed');
      assert.ok(await widget.isVisible('#notice'), 'no "Opens in" notice');
      // early giving before the opening
      await putDay({ early_at: at(-60000), opens_at: at(3600 * 1000), closes_at: at(5 * 3600 * 1000) });
      await board.waitForSelector('#phase[data-phase="early"]', { timeout: 5000 });
      assert.equal(await text(board, '#phase-label'), 'Early giving');
      assert.match(await text(board, '#countdown'), /opens in 0:59:\d\d|opens in 1:00:00/);
      await widget.waitForFunction(() => document.getElementById('status').textContent === 'active', null, { timeout: 5000 });
      assert.ok(!(await widget.isVisible('#notice')), 'a notice while the campaign takes gifts');
      await board.close();
    });

    await runCase('p. the board and the widget show "Closed" once the day closes, on time and unasked', async () => {
      const board = await openPage(ctx, 'board2', '/board.html');
      await putDay({ opens_at: at(1500), closes_at: at(3500) });
      await board.waitForSelector('#phase[data-phase="before"]', { timeout: 5000 });
      await board.waitForSelector('#phase[data-phase="open"]', { timeout: 5000 });
      assert.match(await text(board, '#countdown'), /closes in 0:00:0\d/);
      await board.waitForSelector('#phase[data-phase="closed"]', { timeout: 5000 });
      assert.equal(await text(board, '#phase'), 'Closed');
      await widget.waitForFunction(() => document.getElementById('notice').textContent === 'Closed. Thank you!', null, { timeout: 5000 });
      assert.equal(await text(widget, '#status'), 'closed');
      const r = await api('POST', '/api/v1/campaigns/food/donations',
        { amount_cents: 500, currency: 'USD', donor: { name: 'Late', email: 'late@example.org' } });
      assert.equal(r.status, 409, `a gift after the closing: ${r.status} ${r.text}`);
      // without a schedule the phase line goes away
      const d = await api('DELETE', '/api/v1/admin/day', undefined, { admin: true });
      assert.equal(d.status, 200, `DELETE day: ${d.status} ${d.text}`);
      await board.waitForSelector('#phase', { state: 'hidden', timeout: 5000 });
      await widget.waitForFunction(() => document.getElementById('status').textContent === 'active', null, { timeout: 5000 });
      await board.close();
    });
  } finally {
    if (browser) await withTimeout(browser.close(), 10000, 'browser close').catch((e) => console.log(`# ${e.message}`));
    await stopServer('SIGTERM').catch((e) => console.log(`# ${e.message}`));
    removeTmp();
  }
  if (benign.length) console.log(`# ignored: ${[...new Set(benign.map((m) => m.replace(/^\[\w+\] /, '')))].join('; ')}`);
  if (consoleErrors.length) console.log(`# console errors seen (allowed where expected):\n#   ${consoleErrors.join('\n#   ')}`);
  if (failed && server) console.log(`# tally log tail:\n${server.log.slice(-3000)}`);
  console.log(`# POST->DOM latencies (ms): ${latencies.join(', ')}; run time ${Date.now() - started} ms`);
}

try {
  await main();
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e && e.stack || e}`);
  if (server) console.log(`# tally log tail:\n${server.log.slice(-3000)}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
