/* tally widget.js: live giving-day totals for any page, no dependencies.
 * DESIGN: a TallyLive owns one websocket to <origin>/live (subprotocol tally.live.v1) for
 * its channels ("campaign:SLUG", "leaderboard"): at most 8, the server's limit per connection;
 * a TallyLive.Pool spreads more over several websockets. It keeps each channel's last seq and
 * drops older snapshots/updates (unless 3 come in a row: the server's counter restarted).
 * On close: reconnect after 0.5 s doubling to 10 s, jittered; resubscribe with "since".
 * Money stays integer minor units until Intl.NumberFormat; server text only via textContent.
 * Auto-mount: <div data-tally-campaign="SLUG" data-tally-kind="thermometer|total|donors|wall">
 * plus <script src="https://HOST/widget.js">; the server is the script's origin. */
(function (root) {
  'use strict';
  var PROTOCOL = 'tally.live.v1', BASE_MS = 500, MAX_MS = 10000, CONNECT_MS = 10000, STALE_RESET = 3;
  var doc = root.document, me = doc && doc.currentScript, scriptOrigin = null;
  try { if (me && me.src) scriptOrigin = new URL(me.src, root.location.href).origin; } catch (e) { /* page origin */ }

  function defaultOrigin() { return scriptOrigin || root.location.origin; }

  function liveUrl(origin) {
    var u = new URL('/live', origin || scriptOrigin || root.location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  function isNum(x) { return typeof x === 'number' && isFinite(x); }
  function int(x) { return isNum(x) ? Math.trunc(x) : 0; }
  function validSlug(s) { return typeof s === 'string' && /^[a-z0-9][a-z0-9-]{0,63}$/.test(s); }

  function TallyLive(opts) {
    if (!(this instanceof TallyLive)) return new TallyLive(opts);
    opts = opts || {};
    this.url = opts.url || liveUrl(opts.origin);
    this.state = 'closed'; /* connecting | open | closed */
    this._subs = Object.create(null);
    this._ev = { state: [], message: [] };
    this._ws = this._timer = null;
    this._attempt = 0;
    this._stopped = false;
    var self = this;
    if (root.addEventListener) {
      var kick = function () { if (self._timer && !self._stopped) { clearTimeout(self._timer); self._connect(); } };
      root.addEventListener('online', kick);
      if (doc) doc.addEventListener('visibilitychange', function () { if (!doc.hidden) kick(); });
    }
  }
  var P = TallyLive.prototype;

  /* on('state'|'message', fn) -> off() */
  P.on = function (type, fn) {
    var l = this._ev[type];
    l.push(fn);
    return function () { var i = l.indexOf(fn); if (i >= 0) l.splice(i, 1); };
  };

  P._emit = function (list, arg) {
    list.slice().forEach(function (fn) { try { fn(arg); } catch (e) { setTimeout(function () { throw e; }); } });
  };

  P._setState = function (s) {
    if (this.state !== s) this._emit(this._ev.state, this.state = s);
  };

  /* subscribe(channel, fn) -> unsubscribe(). fn gets every message of the channel:
   * {type:"snapshot"|"update", seq, data} / {type:"donation", data} / {type:"error", code, message}.
   * A late subscriber to a known channel gets the latest state at once. */
  P.subscribe = function (channel, fn) {
    var self = this, s = this._subs[channel];
    if (!s) {
      s = this._subs[channel] = { fns: [], seq: null, last: null, stale: 0, ok: false };
      this._sendSub(channel);
    } else if (s.last) {
      var last = s.last;
      setTimeout(function () { if (s.fns.indexOf(fn) >= 0) self._emit([fn], last); });
    }
    s.fns.push(fn);
    this._stopped = false;
    if (!this._ws && !this._timer) this._connect();
    return function () {
      var i = s.fns.indexOf(fn);
      if (i < 0) return;
      s.fns.splice(i, 1);
      if (!s.fns.length && self._subs[channel] === s) {
        delete self._subs[channel];
        self._send({ op: 'unsubscribe', channel: channel });
      }
    };
  };

  P.lastSeq = function (channel) { var s = this._subs[channel]; return s ? s.seq : null; };

  P.close = function () {
    var ws = this._ws;
    this._stopped = true;
    clearTimeout(this._timer);
    this._ws = this._timer = null;
    if (ws) ws.close(1000);
    this._setState('closed');
  };

  P._send = function (obj) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(obj));
  };

  P._sendSub = function (channel) {
    var s = this._subs[channel], m = { op: 'subscribe', channel: channel };
    if (s.seq !== null) m.since = s.seq;
    this._send(m);
  };

  P._connect = function () {
    var self = this, ws;
    this._timer = null;
    if (this._stopped) return;
    this._setState('connecting');
    try { ws = new WebSocket(this.url, PROTOCOL); } catch (e) { this._setState('closed'); return this._retry(); }
    this._ws = ws;
    var guard = setTimeout(function () { if (ws.readyState === 0) ws.close(); }, CONNECT_MS);
    ws.onopen = function () {
      clearTimeout(guard);
      if (self._ws !== ws) return;
      self._setState('open');
      for (var ch in self._subs) { self._subs[ch].ok = false; self._sendSub(ch); }
    };
    ws.onmessage = function (ev) {
      if (self._ws !== ws) return;
      self._attempt = 0; /* the server talks to us: the next outage starts at the short delay */
      self._onMessage(ev.data);
    };
    ws.onerror = function () { /* a close event follows */ };
    ws.onclose = function () {
      clearTimeout(guard);
      if (self._ws !== ws) return;
      self._ws = null;
      self._setState('closed');
      if (!self._stopped) self._retry();
    };
  };

  P._retry = function () {
    if (this._timer || this._stopped) return;
    var cap = Math.min(MAX_MS, BASE_MS * Math.pow(2, Math.min(this._attempt++, 16)));
    this._timer = setTimeout(this._connect.bind(this), cap / 2 + Math.random() * cap / 2); /* equal jitter */
  };

  P._onMessage = function (raw) {
    var m;
    try { m = JSON.parse(raw); } catch (e) { return; }
    if (!m || typeof m !== 'object') return;
    this._emit(this._ev.message, m);
    var s = typeof m.channel === 'string' ? this._subs[m.channel] : null;
    if (m.type === 'snapshot' || m.type === 'update') {
      if (!s || !m.data || typeof m.data !== 'object') return;
      if (isNum(m.seq) && s.seq !== null && m.seq < s.seq && ++s.stale < STALE_RESET) return; /* out of order */
      s.stale = 0; s.ok = true;
      if (isNum(m.seq)) s.seq = m.seq;
      s.last = m;
      this._emit(s.fns, m);
    } else if (m.type === 'error') {
      if (s) { this._emit(s.fns, m); return; }
      /* no channel named: tell the channels still waiting for their snapshot (or all) */
      var subs = this._subs, all = Object.keys(subs).map(function (c) { return subs[c]; });
      var waiting = all.filter(function (x) { return !x.ok; });
      (waiting.length ? waiting : all).forEach(function (x) { this._emit(x.fns, m); }, this);
    } else if (s) {
      this._emit(s.fns, m); /* donation and anything newer */
    }
  };

  /* Pool(opts): TallyLive's subscribe / on / state / lastSeq / close over as many websockets
   * as its channels need, PER_SOCKET channels to each (the server refuses a ninth on one
   * connection); a channel stays on its socket, a socket left with no channel closes, and
   * each reconnects and resubscribes with "since" on its own. state: "open" when every
   * socket is open, "closed" when one is (or there is none), else "connecting". */
  var PER_SOCKET = 8;
  function Pool(opts) {
    if (!(this instanceof Pool)) return new Pool(opts);
    this.opts = opts || {};
    this.state = 'closed';
    this._socks = []; /* {live, n: channels on it} */
    this._on = Object.create(null); /* channel -> {sock, refs} */
    this._ev = { state: [], message: [] };
  }
  var Q = Pool.prototype;
  Q.on = P.on;
  Q._emit = P._emit;

  Q._add = function () {
    var self = this, s = { live: new TallyLive(this.opts), n: 0 };
    s.live.on('state', function () { self._update(); });
    s.live.on('message', function (m) { self._emit(self._ev.message, m); });
    this._socks.push(s);
    return s;
  };

  Q._update = function () {
    var st = this._socks.map(function (s) { return s.live.state; });
    var next = !st.length || st.indexOf('closed') >= 0 ? 'closed' : st.indexOf('connecting') >= 0 ? 'connecting' : 'open';
    if (this.state !== next) this._emit(this._ev.state, this.state = next);
  };

  Q.subscribe = function (channel, fn) {
    var self = this, c = this._on[channel];
    if (!c) {
      var sock = this._socks.filter(function (s) { return s.n < PER_SOCKET; })[0] || this._add();
      sock.n++;
      c = this._on[channel] = { sock: sock, refs: 0 };
    }
    c.refs++;
    var off = c.sock.live.subscribe(channel, fn), done = false;
    this._update();
    return function () {
      if (done) return;
      done = true;
      off();
      if (--c.refs) return;
      delete self._on[channel];
      if (--c.sock.n) return;
      self._socks.splice(self._socks.indexOf(c.sock), 1);
      c.sock.live.close();
      self._update();
    };
  };

  Q.lastSeq = function (channel) { var c = this._on[channel]; return c ? c.sock.live.lastSeq(channel) : null; };

  Q.close = function () {
    var socks = this._socks;
    this._socks = [];
    this._on = Object.create(null);
    socks.forEach(function (s) { s.live.close(); });
    this._update();
  };

  var shared = Object.create(null);
  /* One pool of connections per server origin, shared by all auto-mounted widgets. */
  TallyLive.shared = function (origin) {
    origin = origin || defaultOrigin();
    return shared[origin] || (shared[origin] = new Pool({ origin: origin }));
  };

  var fmts = Object.create(null);
  function moneyFmt(currency, locale, digits) {
    var key = locale + currency + digits, o = { style: 'currency', currency: currency };
    o.minimumFractionDigits = o.maximumFractionDigits = digits;
    if (!(key in fmts)) try { fmts[key] = new Intl.NumberFormat(locale || undefined, o); } catch (e) { fmts[key] = null; }
    return fmts[key];
  }

  /* ISO 4217 exponents other than 2: the server's table (base/currency.c). Amounts are
   * integers in these minor units; Intl's own digits (CLDR) differ for some codes
   * (IQD: 0 there, 3 here) and are unknown without Intl, so they are never used. */
  var EXPONENTS = { BHD: 3, BIF: 0, CLF: 4, CLP: 0, DJF: 0, GNF: 0, IQD: 3, ISK: 0, JOD: 3, JPY: 0,
    KMF: 0, KRW: 0, KWD: 3, LYD: 3, OMR: 3, PYG: 0, RWF: 0, TND: 3, UGX: 0, UYI: 0, UYW: 4,
    VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0 };
  function exponent(currency) { return Object.prototype.hasOwnProperty.call(EXPONENTS, currency) ? EXPONENTS[currency] : 2; }

  /* Integer minor units -> "$1,234.56", "¥1,234", "KWD 1.234". The exponent is ISO 4217's
   * (exponent()). opts: {locale, whole: drop the minor part}. */
  function formatMoney(cents, currency, opts) {
    opts = opts || {};
    if (!isNum(cents)) return '\u2014';
    currency = typeof currency === 'string' && currency ? currency.toUpperCase() : 'USD';
    var d = exponent(currency), shown = opts.whole ? 0 : d, f = moneyFmt(currency, opts.locale, shown);
    var s = String(Math.abs(Math.trunc(cents))).padStart(d + 1, '0'), i = s.length - d;
    var dec = (cents < 0 ? '-' : '') + s.slice(0, i) + (shown ? '.' + s.slice(i) : ''); /* exact decimal string */
    if (!f) return dec + ' ' + currency;
    try { return f.format(dec); } catch (e) { return f.format(Number(dec)); }
  }

  var countFmt = null;
  function formatCount(n) {
    try { countFmt = countFmt || new Intl.NumberFormat(); return countFmt.format(int(n)); } catch (e) { return String(int(n)); }
  }

  /* whole percent of goal (floor), or null without a goal */
  function percent(total, goal) { return int(goal) > 0 ? Math.floor(Math.max(0, int(total)) * 100 / int(goal)) : null; }

  /* The server's clock: offset = server now - local now at receipt (the day's now_ms),
   * so a countdown follows the server's time, not the viewer's. */
  var clockOffset = 0, clockSet = false, clockAsk = null;
  function setServerNow(ms) { if (isNum(ms)) { clockOffset = ms - Date.now(); clockSet = true; } }
  function serverNow() { return Date.now() + clockOffset; }
  /* Once per page: GET /api/v1/day's now_ms (for widgets, which watch no day channel). */
  function askServerClock() {
    if (clockSet || clockAsk || !root.fetch) return;
    clockAsk = fetch(defaultOrigin() + '/api/v1/day', { cache: 'no-store' })
      .then(function (r) { return r.json(); }).then(function (d) { if (!clockSet) setServerNow(d.now_ms); })
      .catch(function () { /* the local clock then */ });
  }

  /* ms -> "2:14:05" ("1d 2:14:05" past a day); whole seconds, rounded up. */
  function formatCountdown(ms) {
    var s = Math.max(0, Math.ceil((isNum(ms) ? ms : 0) / 1000)), d = Math.floor(s / 86400);
    var h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return (d ? d + 'd ' : '') + h + ':' + pad(m) + ':' + pad(s % 60);
  }

  /* The giving day's phase at server time now, by the server's rule (GET /api/v1/day):
   * none | before | early | open | closed. */
  function dayPhase(day, now) {
    var t = function (k) { var v = day && typeof day[k] === 'string' ? Date.parse(day[k]) : NaN; return isNaN(v) ? null : v; };
    var early = t('early_at'), opens = t('opens_at'), closes = t('closes_at');
    if (opens === null || closes === null) return 'none';
    return now >= closes ? 'closed' : now >= opens ? 'open' : early !== null && now >= early ? 'early' : 'before';
  }

  function ago(iso) {
    var t = Date.parse(iso), s = (Date.now() - t) / 1000;
    return isNaN(t) ? '' : s < 45 ? 'just now' : s < 3600 ? Math.round(s / 60) + ' min ago'
      : s < 86400 ? Math.round(s / 3600) + ' h ago' : new Date(t).toLocaleDateString();
  }

  /* el('span.a.b', {part: 'total', href: ...}, children|text) — no HTML parsing anywhere. */
  function el(spec, attrs, kids) {
    var bits = spec.split('.'), e = doc.createElement(bits.shift() || 'div');
    e.className = bits.join(' ');
    for (var k in attrs || {}) {
      if (attrs[k] == null) continue;
      if (k === 'part') e.setAttribute('data-part', attrs[k]);
      else if (k === 'hidden') e.hidden = !!attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (typeof kids === 'string') e.textContent = kids;
    else if (kids) e.append.apply(e, kids); /* strings become text nodes */
    return e;
  }

  /* <span data-state="open|connecting|closed">live|connecting…|offline</span> */
  function connText(c, state) {
    if (!c) return;
    c.setAttribute('data-state', state);
    setText(c, state === 'open' ? 'live' : state === 'connecting' ? 'connecting\u2026' : 'offline');
  }
  function setText(e, t) { if (e && e.textContent !== t) e.textContent = t; }
  function bump(e, cls) { e.classList.remove(cls); void e.offsetWidth; e.classList.add(cls); } /* restart animation */

  var CSS = '.tally{--ta:var(--tally-accent,#16a34a);--tt:var(--tally-track,rgba(127,127,127,.22));' +
    '--tm:var(--tally-muted,#6b7280);font-variant-numeric:tabular-nums;line-height:1.35}' +
    '.tally [hidden]{display:none!important}' +
    '.tally:is([data-error=invalid_campaign],[data-error=campaign_not_found])>:not(.tally-error,.tally-keep){display:none}' +
    '.tally-head{display:flex;align-items:center;justify-content:space-between;gap:.5em}' +
    '.tally-name{font-weight:700;overflow-wrap:anywhere;color:inherit}' +
    '.tally-badge{font-size:.75em;padding:.1em .65em;border-radius:1em;border:1px solid currentColor;white-space:nowrap;font-weight:600}' +
    '.tally-badge[data-status=active]{color:var(--ta)}' +
    '.tally-badge:empty{display:none}.tally-badge:not([data-status=active]){color:#fff;background:#4b5563;border-color:transparent}' +
    '.tally-badge[data-status=paused]{background:#d97706}' +
    '.tally-notice{margin:.5em 0;padding:.4em .7em;border-radius:.4em;background:rgba(217,119,6,.16);font-weight:600}' +
    '.tally-match{margin:.5em 0;padding:.4em .7em;border-radius:.4em;background:rgba(22,163,74,.14);font-weight:600}' +
    '.tally-match[data-state=exhausted],.tally-match[data-state=paused]{background:rgba(100,116,139,.16)}' +
    '.tally-gift-match{margin-left:.4em;font-size:.85em;color:#15803d}' +
    '.tally-challenge{margin:.5em 0;font-weight:600}.tally-challenge[data-state=unlocked]{color:#b45309}' +
    '.tally-amounts{margin-top:.3em;display:flex;flex-wrap:wrap;align-items:baseline;gap:0 .6em}' +
    '.tally-total{font-size:1.9em;font-weight:800;display:inline-block;transform-origin:0}.tally-of,.tally-meta{color:var(--tm)}' +
    '.tally-track{height:.8em;border-radius:1em;background:var(--tt);overflow:hidden;margin:.45em 0}' +
    '.tally-bar{height:100%;width:0;background:var(--ta);border-radius:inherit;transition:width .7s ease}' +
    '.tally[data-status=paused] .tally-bar{background:#d97706}.tally[data-status=closed] .tally-bar{background:#6b7280}' +
    '.tally-meta{font-size:.9em;display:flex;justify-content:space-between;gap:.5em}' +
    '.tally-wall{list-style:none;margin:.6em 0 0;padding:0}' +
    '.tally-wall li{padding:.4em 0;border-top:1px solid var(--tt);display:flex;flex-wrap:wrap;align-items:baseline;gap:0 .5em}' +
    '.tally-gift-name{font-weight:600;overflow-wrap:anywhere}.tally-gift-amount{color:var(--ta);font-weight:700}' +
    '.tally-gift-at{margin-left:auto;color:var(--tm);font-size:.8em;white-space:nowrap}' +
    '.tally-gift-msg{flex-basis:100%;color:var(--tm);font-style:italic;overflow-wrap:anywhere}' +
    '.tally-new{animation:tally-in 1.2s ease}@keyframes tally-in{from{background:rgba(22,163,74,.28)}}' +
    '.tally-bump{animation:tally-bump .5s ease}@keyframes tally-bump{40%{transform:scale(1.05)}}' +
    '.tally-error{color:#b91c1c;font-weight:600;overflow-wrap:anywhere}' +
    '@media (prefers-reduced-motion:reduce){.tally *{animation:none!important;transition:none!important}}';

  function injectStyle() {
    if (!doc || doc.getElementById('tally-widget-css')) return;
    var s = el('style', { id: 'tally-widget-css' }, CSS), h = doc.head || doc.documentElement;
    h.insertBefore(s, h.firstChild); /* first, so the page's own rules win */
  }

  /* Markup for one widget kind; parts are found by data-part. opts.href links the name. */
  function template(kind, opts) {
    opts = opts || {};
    var err = el('p.tally-error', { part: 'error', role: 'alert', hidden: true });
    if (kind === 'total') return [el('span.tally-total', { part: 'total' }, '\u2014'), err];
    if (kind === 'donors') {
      return [el('span.tally-donors', { part: 'donors' }, '\u2014'), ' ', el('span', { part: 'donorslabel' }, 'donors'), err];
    }
    if (kind === 'wall') return [el('ul.tally-wall', { part: 'wall', 'aria-live': 'polite' }), err];
    return [
      el('div.tally-head', null, [
        el(opts.href ? 'a.tally-name' : 'strong.tally-name', { part: 'name', href: opts.href }, '\u2026'),
        el('span.tally-badge', { part: 'status' })
      ]),
      el('p.tally-notice', { part: 'notice', hidden: true }),
      el('p.tally-match', { part: 'match', hidden: true }),
      el('p.tally-challenge', { part: 'challenge', hidden: true }),
      el('div.tally-amounts', null, [
        el('span.tally-total', { part: 'total' }, '\u2014'),
        el('span.tally-of', { part: 'goalwrap', hidden: true }, ['of ', el('span', { part: 'goal' }), ' goal'])
      ]),
      el('div.tally-track', { part: 'track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' },
        [el('div.tally-bar', { part: 'bar' })]),
      el('div.tally-meta', null, [
        el('span', null, [el('span.tally-donors', { part: 'donors' }, '0'), ' ', el('span', { part: 'donorslabel' }, 'donors')]),
        el('span', { part: 'pct' })
      ]),
      err
    ];
  }

  function giftKey(g) { return [g.at, g.name, g.amount_cents, g.message].join('\u0001'); }

  var views = [];
  /* View: renders campaign state into the [data-part] elements under root.
   * opts: {wall: max gifts (default 5), locale, whole: drop cents}. */
  function View(rootEl, opts) {
    this.root = rootEl;
    this.opts = opts || {};
    this.p = {};
    this.gifts = [];
    rootEl.querySelectorAll('[data-part]').forEach(function (e) { this.p[e.getAttribute('data-part')] = e; }, this);
    rootEl.classList.add('tally');
    injectStyle();
    views.push(this);
  }
  var V = View.prototype;

  V.handler = function () { var self = this; return function (m) { self.apply(m); }; };

  V.apply = function (m) {
    if (m.type === 'snapshot' || m.type === 'update') {
      var d = m.data || {};
      this.state = d;
      if (Array.isArray(d.recent)) this.gifts = d.recent.slice();
      this.showError(null);
      this.render();
    } else if (m.type === 'donation' && m.data && typeof m.data === 'object') {
      var k = giftKey(m.data);
      if (!this.gifts.some(function (g) { return giftKey(g) === k; })) {
        this.gifts.unshift(m.data);
        this.renderWall();
      }
    } else if (m.type === 'challenge' && this.p.challenge) {
      bump(this.p.challenge, 'tally-bump'); /* the update that follows shows it */
    } else if (m.type === 'error') {
      this.showError(m.code || 'error', m.message || m.code || 'error');
    }
  };

  /* HTTP-fetched campaign object: applied unless older than what is shown. */
  V.applyHttp = function (c) {
    if (c && !(this.state && c.seq < this.state.seq)) this.apply({ type: 'snapshot', data: c });
  };

  V.showError = function (code, message) {
    var e = this.p.error, r = this.root;
    if (code == null) r.removeAttribute('data-error'); else r.setAttribute('data-error', code);
    if (!e) return;
    e.hidden = code == null;
    e.setAttribute('data-code', code || '');
    setText(e, code == null ? '' : message);
  };

  V.setConn = function (state) { connText(this.p.conn, state); };

  V.render = function () {
    var d = this.state, p = this.p, o = this.opts;
    if (!d) return;
    var cur = d.currency, total = int(d.total_cents);
    var goal = int(d.goal_cents), count = int(d.donor_count), pc = percent(total, goal);
    var status = typeof d.status === 'string' && d.status ? d.status : 'active';
    setText(p.name, String(d.name || d.slug || ''));
    if (p.total) {
      var old = p.total.getAttribute('data-cents');
      setText(p.total, formatMoney(total, cur, o));
      p.total.setAttribute('data-cents', total);
      if (old && +old < total) bump(p.total, 'tally-bump');
    }
    if (p.goal) { setText(p.goal, goal > 0 ? formatMoney(goal, cur, o) : ''); p.goal.setAttribute('data-cents', goal); }
    if (p.goalwrap) p.goalwrap.hidden = !(goal > 0);
    if (p.track) { p.track.hidden = !(goal > 0); p.track.setAttribute('aria-valuenow', Math.min(100, pc || 0)); }
    if (p.bar) {
      p.bar.style.width = goal > 0 ? Math.min(100, Math.max(0, total) * 100 / goal) + '%' : '0%';
      p.bar.setAttribute('data-pct', pc === null ? '' : pc);
    }
    setText(p.pct, pc === null ? '' : pc + '% of goal');
    if (p.donors) { setText(p.donors, formatCount(count)); p.donors.setAttribute('data-count', count); }
    setText(p.donorslabel, count === 1 ? 'donor' : 'donors');
    if (p.status) { setText(p.status, status); p.status.setAttribute('data-status', status); }
    this.root.setAttribute('data-status', status);
    this.renderNotice();
    renderMatch(p.match, d.match, cur, o);
    renderChallenges(p.challenge, d.challenges, cur, o);
    this.renderWall();
  };

  /* Closed for now (its own window or the giving day's, with opens_at): "Opens in 2:14:05",
   * counted by the server's clock; closed for good: "Closed". */
  V.renderNotice = function () {
    var d = this.state, p = this.p;
    if (!d) return;
    var status = typeof d.status === 'string' && d.status ? d.status : 'active';
    var opens = status === 'closed' && typeof d.opens_at === 'string' ? Date.parse(d.opens_at) : NaN;
    if (!isNaN(opens)) askServerClock();
    this.root.setAttribute('data-opens', isNaN(opens) ? '' : d.opens_at);
    if (p.notice) {
      p.notice.hidden = status === 'active';
      setText(p.notice, status === 'paused' ? 'Donations are paused for now.'
        : !isNaN(opens) ? 'Opens in ' + formatCountdown(opens - serverNow())
          : status === 'closed' ? 'Closed. Thank you!' : '');
    }
  };

  /* The match banner: "Gifts matched 2:1 by ACME: $1,200 of match left", or
   * that it ran out or is paused; hidden without a pool, before its window
   * and after it ended. */
  function matchText(m, cur, o) {
    var by = m.sponsor ? ' by ' + m.sponsor : '';
    if (m.state === 'exhausted') return 'The match' + by + ' has run out. Thank you!';
    if (m.state === 'paused') return 'The match' + by + ' is paused for now.';
    return 'Gifts matched ' + int(m.ratio) + ':1' + by + ': ' + formatMoney(int(m.remaining_cents), cur, o) +
      ' of match left';
  }
  /* Challenges: the unlocked ones ("Unlocked: Power hour, +$1,000.00 from
   * ACME"), else the open one closest to done ("Power hour: 12 of 25
   * donors"). */
  function renderChallenges(node, list, cur, o) {
    if (!node) return;
    list = Array.isArray(list) ? list : [];
    var won = list.filter(function (c) { return c && c.state === 'unlocked'; });
    var open = list.filter(function (c) { return c && c.state === 'open'; });
    var what = function (c, n) {
      return c.kind === 'amount' ? formatMoney(n, cur, o)
        : formatCount(n) + (c.kind === 'donors' ? (n === 1 ? ' donor' : ' donors') : (n === 1 ? ' gift' : ' gifts'));
    };
    var text = won.length ? 'Unlocked: ' + won.map(function (c) {
      return String(c.name) + ', +' + formatMoney(int(c.bonus_cents), cur, o) + (c.sponsor ? ' from ' + c.sponsor : '');
    }).join('; ')
      : open.length ? String(open[0].name) + ': ' + what(open[0], int(open[0].progress)) + ' of ' +
        what(open[0], int(open[0].threshold)) : '';
    node.hidden = !text;
    node.setAttribute('data-state', won.length ? 'unlocked' : open.length ? 'open' : '');
    setText(node, text);
  }

  function renderMatch(node, m, cur, o) {
    if (!node) return;
    var show = !!m && typeof m === 'object' && (m.state === 'open' || m.state === 'exhausted' || m.state === 'paused');
    node.hidden = !show;
    node.setAttribute('data-state', show ? m.state : '');
    setText(node, show ? matchText(m, cur, o) : '');
  }

  V.renderWall = function () {
    var ul = this.p.wall;
    if (!ul) return;
    var max = isNum(this.opts.wall) ? this.opts.wall : 5, cur = this.state && this.state.currency, o = this.opts;
    var gifts = this.gifts = this.gifts.slice(0, Math.max(max, 20)), have = {}, keep = {}, first = !ul.hasAttribute('data-ready');
    [].forEach.call(ul.children, function (li) { have[li.getAttribute('data-key')] = li; });
    gifts.slice(0, max).forEach(function (g, i) {
      var k = giftKey(g), li;
      while (keep[k]) k += '+'; /* identical gifts get their own row */
      li = have[k];
      if (!li) {
        var kids = [el('span.tally-gift-name', null, String(g.name || 'Anonymous'))];
        if (isNum(g.amount_cents)) {
          kids.push(el('span.tally-gift-amount', { 'data-cents': int(g.amount_cents) }, formatMoney(g.amount_cents, cur, o)));
          if (int(g.matched_cents) > 0) {
            kids.push(el('span.tally-gift-match', { 'data-cents': int(g.matched_cents) },
              '+' + formatMoney(g.matched_cents, cur, o) + ' matched'));
          }
        }
        kids.push(el('time.tally-gift-at', { datetime: typeof g.at === 'string' ? g.at : null }, ago(g.at)));
        if (g.message) kids.push(el('span.tally-gift-msg', null, String(g.message)));
        li = el(first ? 'li' : 'li.tally-new', { 'data-key': k }, kids);
      }
      keep[k] = 1;
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    });
    for (var k in have) if (!keep[k]) have[k].remove();
    ul.setAttribute('data-ready', '');
  };

  V.destroy = function () {
    var i = views.indexOf(this);
    if (i >= 0) views.splice(i, 1);
    if (this.unsubscribe) this.unsubscribe();
  };

  V.tick = function () {
    this.root.querySelectorAll('time[datetime]').forEach(function (t) { setText(t, ago(t.getAttribute('datetime'))); });
  };

  if (root.setInterval) setInterval(function () { views.forEach(function (v) { v.tick(); }); }, 30000);
  if (root.setInterval) setInterval(function () { views.forEach(function (v) { if (v.root.getAttribute('data-opens')) v.renderNotice(); }); }, 1000);

  var KINDS = { thermometer: 1, total: 1, donors: 1, wall: 1 };
  function mount(node, live) {
    if (node.__tally) return node.__tally;
    var slug = node.getAttribute('data-tally-campaign'), kind = node.getAttribute('data-tally-kind') || 'thermometer';
    if (!KINDS[kind]) kind = 'thermometer';
    node.replaceChildren.apply(node, template(kind));
    node.classList.add('tally-' + kind);
    var wall = parseInt(node.getAttribute('data-tally-wall'), 10);
    var view = node.__tally = new View(node, { locale: node.getAttribute('data-tally-locale') || undefined, wall: isNaN(wall) ? 5 : wall });
    if (!validSlug(slug)) { view.showError('invalid_campaign', 'tally: invalid campaign "' + (slug || '') + '"'); return view; }
    view.live = live || TallyLive.shared();
    view.unsubscribe = view.live.subscribe('campaign:' + slug, view.handler());
    return view;
  }

  function mountAll(scope) {
    (scope || doc).querySelectorAll('[data-tally-campaign]').forEach(function (n) { mount(n); });
  }

  TallyLive.View = View;
  TallyLive.Pool = Pool;
  TallyLive.template = template;
  TallyLive.el = el;
  TallyLive.mount = mount;
  TallyLive.mountAll = mountAll;
  TallyLive.formatMoney = formatMoney;
  TallyLive.formatCount = formatCount;
  TallyLive.percent = percent;
  TallyLive.connText = connText;
  TallyLive.bump = bump;
  TallyLive.validSlug = validSlug;
  TallyLive.formatCountdown = formatCountdown;
  TallyLive.dayPhase = dayPhase;
  TallyLive.setServerNow = setServerNow;
  TallyLive.serverNow = serverNow;
  TallyLive.version = '1';

  /* All campaigns from GET /api/v1/campaigns, following "next" (as ?cursor=), at most 20 pages. */
  TallyLive.fetchCampaigns = async function (origin) {
    var out = [], url = (origin || defaultOrigin()) + '/api/v1/campaigns', q = '';
    for (var n = 0; n < 20; n++) {
      var r = await fetch(url + q, { cache: 'no-cache', headers: { Accept: 'application/json' } }), j = r.ok && await r.json();
      if (!j || !Array.isArray(j.campaigns)) { if (n) break; throw new Error('HTTP ' + r.status); }
      out = out.concat(j.campaigns);
      if (j.next == null || j.next === '') break;
      q = '?cursor=' + encodeURIComponent(j.next);
    }
    return out;
  };

  root.TallyLive = TallyLive;
  if (typeof module === 'object' && module.exports) module.exports = TallyLive;

  if (doc) {
    if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', function () { mountAll(); });
    else mountAll();
  }
})(typeof window !== 'undefined' ? window : this);
