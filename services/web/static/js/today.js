// The residents' page: today's markets in the chosen city, the pitch plan of
// each square with its stalls, and the live feed from the notifier's
// websocket. It keeps running (and the feed live) while other pages show.
//
// Hooks for browser tests:
//   #feed li[data-seq]             one entry per live notification, newest first
//   #stalls li[data-vendor-id]     today's stalls (also data-pitch, data-market-day-id,
//                                  data-status, data-live-state: expected | open | closed)
//   #conn-status[data-state]       live | connecting | offline
//   body[data-ready="1"]           first /today render done and websocket subscribed
//                                  (removed on a city switch, set again when both are done)

import {
  $, h, svg, state as shell, t, tn, tEnum, has, formatNumber, formatTime, formatDate, collator,
  storageGet, storageSet, AppError, errorText, loadCatalog, useMessages, FALLBACK_LANG,
} from './core.js';
import { api } from './api.js';

const WS_PATH = '/api/v1/notifier/ws';
const FEED_MAX = 50;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const REFRESH_DEBOUNCE_MS = 250;
const STORE_CITY = 'piazza.city';
const STORE_LANG = 'piazza.lang';
// Stalls in these states hold no pitch and are not shown to residents.
const GONE_STALL_STATUSES = new Set(['rejected', 'withdrawn', 'cancelled']);

const el = {
  citySelect: $('city-select'),
  langSelect: $('lang-select'),
  conn: $('conn-status'),
  connText: $('conn-text'),
  alert: $('alert'),
  main: $('main'),
  today: $('today'),
  todayHeading: $('today-heading'),
  todayDate: $('today-date'),
  todayTz: $('today-tz'),
  todayLoading: $('today-loading'),
  todayEmpty: $('today-empty'),
  markets: $('markets'),
  stallsCount: $('stalls-count'),
  stalls: $('stalls'),
  feed: $('feed'),
  feedEmpty: $('feed-empty'),
};

// The page's own state lives on the shell's state object.
const state = Object.assign(shell, {
  today: null, // last /today payload for state.city
  todayFor: null, // slug of the city state.today belongs to
  todayGen: 0,
  todayAbort: null,
  todayLoadedAt: 0, // performance.now() when the last /today request started
  refreshTimer: 0,
  highlight: null, // {marketDayId, pitch} of the latest registration
  alertSource: null,
  langToken: 0,
  // websocket
  ws: null,
  wsAttempt: 0,
  wsTimer: 0,
  everLive: false,
  sentTopic: null, // topic subscribed on the current socket
  wantedTopic: null, // topic for the chosen city
  subscribedTopic: null, // topic the server confirmed on the current socket
  subscribedAt: 0,
  lastSeq: null,
  feed: new Map(), // seq -> notification, for re-rendering in another language
});

const cityListeners = new Set();
export function onCityChange(fn) { cityListeners.add(fn); }
const languageListeners = new Set();
export function onLanguageChange(fn) { languageListeners.add(fn); }

// todayDate is today's date in the chosen city, as the server sees it.
export const todayOf = (slug) => (state.todayFor === slug ? state.today?.date ?? null : null);

// ---------- language ----------

function offeredLanguages(city) {
  const wanted = [FALLBACK_LANG, ...(city?.languages ?? [])].map((l) => String(l).toLowerCase());
  return [...new Set(wanted)].filter((l) => state.languages.includes(l));
}

function pickLanguage(city) {
  const offered = offeredLanguages(city);
  const stored = storageGet(STORE_LANG);
  if (stored && offered.includes(stored)) return stored;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = String(tag ?? '').toLowerCase().split('-')[0];
    if (offered.includes(base)) return base;
  }
  const first = (city?.languages ?? []).map((l) => String(l).toLowerCase()).find((l) => offered.includes(l));
  return first ?? FALLBACK_LANG;
}

export function chooseLanguage(lang) {
  storageSet(STORE_LANG, lang);
  return setLanguage(lang);
}

async function setLanguage(lang) {
  const token = ++state.langToken;
  let messages;
  try {
    messages = await loadCatalog(lang);
  } catch (err) {
    showError(err, 'lang');
    lang = FALLBACK_LANG;
    messages = state.fallback;
  }
  if (token !== state.langToken) return;
  const changed = state.lang !== lang || state.messages !== messages;
  useMessages(lang, messages);
  renderLanguageSelect();
  renderAll();
  if (changed) for (const fn of languageListeners) fn(lang);
  // Warm the other offered catalogs so that switching is instant.
  for (const l of offeredLanguages(state.city)) loadCatalog(l).catch(() => {});
}

async function renderLanguageSelect() {
  const offered = offeredLanguages(state.city);
  const names = await Promise.all(offered.map((l) => loadCatalog(l).then((m) => m['language.name'] || l, () => l)));
  el.langSelect.replaceChildren(...offered.map((code, i) => h('option', { value: code, lang: code }, names[i])));
  el.langSelect.value = state.lang;
  el.langSelect.disabled = offered.length < 2;
}

export function applyStaticText() {
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  document.title = state.city ? t('app.title_city', { city: state.city.name }) : t('app.title');
}

function renderAll() {
  applyStaticText();
  renderConn();
  renderToday();
  renderFeedText();
  renderAlert();
}

// ---------- alerts (problem+json details, network errors) ----------

let currentError = null;

export function showError(err, source, retry) {
  if (err?.name === 'AbortError') return;
  console.warn('piazza:', err);
  currentError = { err, retry };
  state.alertSource = source;
  renderAlert();
}

export function clearError(source) {
  if (source && state.alertSource !== source) return;
  currentError = null;
  state.alertSource = null;
  el.alert.replaceChildren();
}

export function renderAlert() {
  if (!currentError) return;
  const { err, retry } = currentError;
  el.alert.replaceChildren(
    h('p', { class: 'alert-text' }, errorText(err)),
    h('div', { class: 'alert-actions' },
      retry && h('button', { type: 'button', class: 'button', onclick: () => { clearError(); retry(); } }, t('action.retry')),
      h('button', { type: 'button', class: 'button button-quiet', onclick: () => { clearError(); el.main.focus(); } }, t('action.dismiss')),
    ),
  );
}

// ---------- cities and routing ----------

export function findCity(slug) {
  return state.cities.find((c) => c.slug === slug) ?? null;
}

export function initialCity(hint) {
  const fromHash = findCity(hint);
  if (fromHash) return fromHash;
  const stored = findCity(storageGet(STORE_CITY));
  if (stored) return stored;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return state.cities.find((c) => c.timezone === zone) ?? state.cities[0];
}

export function renderCitySelect() {
  const sorted = [...state.cities].sort((a, b) => collator().compare(a.name, b.name));
  el.citySelect.replaceChildren(...sorted.map((c) => h('option', { value: c.slug }, c.name)));
  el.citySelect.disabled = sorted.length === 0;
  if (state.city) el.citySelect.value = state.city.slug;
}

// selectCity makes city the chosen one: today's markets, the live feed and
// the language follow. syncHash puts it in the URL (the residents' page).
export async function selectCity(city, { syncHash = false } = {}) {
  const changed = state.city?.slug !== city.slug;
  state.city = city;
  storageSet(STORE_CITY, city.slug);
  if (syncHash && location.hash !== `#/${city.slug}`) history.replaceState(null, '', `#/${city.slug}`);
  el.citySelect.value = city.slug;
  if (!changed) return;

  delete document.body.dataset.ready;
  state.today = null;
  state.todayFor = null;
  state.highlight = null;
  state.lastSeq = null;
  state.feed.clear();
  el.feed.replaceChildren();
  clearError();
  renderToday();

  retopic();
  for (const fn of cityListeners) fn(city);
  await Promise.all([setLanguage(pickLanguage(city)), loadToday()]);
}

// ---------- today ----------

export function scheduleTodayRefresh(delay = REFRESH_DEBOUNCE_MS) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => loadToday({ quiet: true }), delay);
}

export async function loadToday({ quiet = false } = {}) {
  const city = state.city;
  if (!city) return;
  const gen = ++state.todayGen;
  state.todayAbort?.abort();
  const ctrl = new AbortController();
  state.todayAbort = ctrl;
  state.todayLoadedAt = performance.now();
  if (!quiet) {
    el.today.setAttribute('aria-busy', 'true');
    el.todayLoading.hidden = state.todayFor === city.slug;
  }
  try {
    const data = await api('GET', `cities/${encodeURIComponent(city.slug)}/today`, { signal: ctrl.signal, auth: false });
    if (gen !== state.todayGen) return;
    state.today = data;
    state.todayFor = city.slug;
    clearError('today');
    renderToday();
    state.highlight = null; // shown once, on the render that brought the new stall
    maybeReady();
  } catch (err) {
    if (gen !== state.todayGen) return;
    showError(err, 'today', () => loadToday());
  } finally {
    if (gen === state.todayGen) {
      el.today.setAttribute('aria-busy', 'false');
      el.todayLoading.hidden = true;
    }
  }
}

export function activeStalls(day) {
  return (day.stalls ?? []).filter((s) => !GONE_STALL_STATUSES.has(s.status));
}

export function renderToday() {
  const city = state.city;
  if (!city) {
    el.todayHeading.textContent = '';
    return;
  }
  const data = state.todayFor === city.slug ? state.today : null;
  const tz = data?.city?.timezone || city.timezone;
  el.todayHeading.textContent = t('today.heading', { city: data?.city?.name || city.name });
  if (data) el.todayLoading.hidden = true;

  if (!data) {
    el.todayDate.replaceChildren();
    el.todayTz.textContent = '';
    el.todayEmpty.hidden = true;
    el.markets.replaceChildren();
    el.stalls.replaceChildren();
    el.stallsCount.textContent = '';
    return;
  }

  el.todayDate.replaceChildren(data.date ? h('time', { datetime: data.date }, formatDate(data.date)) : '');
  el.todayTz.textContent = tz ? t('today.timezone', { timezone: tz }) : '';

  const days = [...(data.market_days ?? [])].sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)));
  el.todayEmpty.textContent = t('today.empty', { city: data.city?.name || city.name });
  el.todayEmpty.hidden = days.length > 0;
  el.markets.replaceChildren(...days.map((day) => renderMarketDay(day, tz)));

  const cmp = collator();
  const rows = [];
  for (const day of days) {
    const stalls = activeStalls(day).sort((a, b) => cmp.compare(a.pitch ?? '', b.pitch ?? ''));
    for (const stall of stalls) rows.push(renderStall(stall, day));
  }
  el.stalls.replaceChildren(...rows);
  el.stallsCount.textContent = rows.length ? tn('stalls.count', rows.length) : t('stalls.empty');
}

function renderMarketDay(day, tz) {
  const headingId = `md-${day.id}`;
  const status = day.status ?? 'scheduled';
  return h('article', { class: `card status-${status}`, 'aria-labelledby': headingId, dataset: { marketDayId: day.id } },
    h('header', { class: 'card-head' },
      h('h2', { id: headingId, class: 'card-title' }, day.market?.name ?? ''),
      h('span', { class: `badge badge-${status}` }, tEnum('market_day.status', status)),
    ),
    h('dl', { class: 'facts' },
      h('div', {},
        h('dt', {}, t('market.place')),
        h('dd', {}, day.place?.name ?? ''),
      ),
      h('div', {},
        h('dt', {}, t('market.hours')),
        h('dd', {}, t('market.hours_range', { start: formatTime(day.starts_at, tz), end: formatTime(day.ends_at, tz) })),
      ),
    ),
    renderPlan(day),
  );
}

// renderPlan draws the square's pitches (x, y, w, h in metres) as an SVG
// picture, with a text list of the same information for screen readers.
export function renderPlan(day) {
  const pitches = (day.pitches ?? []).filter((p) => [p.x, p.y, p.w, p.h].every(Number.isFinite) && p.w > 0 && p.h > 0);
  if (!pitches.length) return h('p', { class: 'muted' }, t('plan.none'));

  const byPitch = new Map();
  for (const stall of activeStalls(day)) if (stall.pitch) byPitch.set(stall.pitch, stall);

  const minX = Math.min(...pitches.map((p) => p.x));
  const minY = Math.min(...pitches.map((p) => p.y));
  const maxX = Math.max(...pitches.map((p) => p.x + p.w));
  const maxY = Math.max(...pitches.map((p) => p.y + p.h));
  const pad = Math.max(0.5, Math.max(maxX - minX, maxY - minY) * 0.04);
  const vb = [minX - pad, minY - pad, maxX - minX + 2 * pad, maxY - minY + 2 * pad];
  const stroke = Math.max(0.06, Math.min(...pitches.map((p) => Math.min(p.w, p.h))) * 0.04);

  const cmp = collator();
  const sorted = [...pitches].sort((a, b) => cmp.compare(a.code, b.code));
  const fresh = state.highlight?.marketDayId === day.id ? state.highlight.pitch : null;
  const taken = sorted.filter((p) => byPitch.has(p.code)).length;
  const label = (p) => {
    const stall = byPitch.get(p.code);
    return stall
      ? t('plan.pitch_taken', { pitch: p.code, vendor: stall.vendor?.name ?? '' })
      : t('plan.pitch_free', { pitch: p.code });
  };

  const picture = svg('svg', {
    class: 'plan',
    viewBox: vb.map((n) => +n.toFixed(3)).join(' '),
    role: 'img',
    'aria-label': t('plan.label', { place: day.place?.name ?? day.market?.name ?? '' }),
    preserveAspectRatio: 'xMidYMid meet',
  },
  svg('rect', { class: 'plan-ground', x: vb[0], y: vb[1], width: vb[2], height: vb[3], rx: pad }),
  sorted.map((p) => {
    const isTaken = byPitch.has(p.code);
    const code = String(p.code ?? '');
    const size = Math.min(Math.min(p.w, p.h) * 0.42, (p.w * 0.85) / Math.max(1, code.length * 0.62));
    return svg('g', {
      class: `pitch ${isTaken ? 'pitch-taken' : 'pitch-free'}${fresh === p.code ? ' pitch-fresh' : ''}`,
      dataset: { pitch: code, state: isTaken ? 'taken' : 'free' },
    },
    svg('title', {}, label(p)),
    svg('rect', {
      x: p.x, y: p.y, width: p.w, height: p.h,
      rx: Math.min(p.w, p.h) * 0.08, 'stroke-width': stroke,
    }),
    svg('text', {
      x: p.x + p.w / 2, y: p.y + p.h / 2, 'font-size': +size.toFixed(3),
      'text-anchor': 'middle', 'dominant-baseline': 'central',
    }, code));
  }));

  return h('figure', { class: 'plan-figure' },
    picture,
    h('figcaption', { class: 'plan-caption' },
      h('span', {}, tn('plan.summary', sorted.length, { taken: formatNumber(taken) })),
      h('span', { class: 'legend', 'aria-hidden': 'true' },
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-taken' }), t('plan.taken')),
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-free' }), t('plan.free')),
      ),
    ),
    h('ul', { class: 'visually-hidden' }, sorted.map((p) => h('li', {}, label(p)))),
  );
}

function renderStall(stall, day) {
  const kind = stall.vendor?.kind;
  const meta = t('stall.meta', { kind: kind ? tEnum('vendor.kind', kind) : '', market: day.market?.name ?? '' });
  return h('li', {
    class: 'stall',
    dataset: {
      vendorId: stall.vendor?.id ?? '', pitch: stall.pitch, marketDayId: day.id, status: stall.status,
      liveState: stall.live_state, applicationId: stall.application_id,
    },
  },
  // The badge shows the bare code; screen readers get the catalogued phrase.
  stall.pitch
    ? h('span', { class: 'stall-pitch' },
      h('span', { class: 'visually-hidden' }, t('stall.pitch', { pitch: stall.pitch })),
      h('span', { 'aria-hidden': 'true' }, stall.pitch))
    : null,
  h('span', { class: 'stall-body' },
    h('span', { class: 'stall-vendor' }, stall.vendor?.name ?? ''),
    h('span', { class: 'stall-meta' }, meta),
    stall.status && stall.status !== 'accepted'
      ? h('span', { class: `stall-status stall-status-${stall.status}` }, tEnum('stall.status', stall.status))
      : null,
    stall.live_state
      ? h('span', { class: `stall-live stall-live-${stall.live_state}` }, tEnum('stall.live', stall.live_state))
      : null,
    stall.status_text && stall.live_state !== 'closed'
      ? h('q', { class: 'stall-post' }, stall.status_text)
      : null,
  ));
}

// ---------- live feed ----------

function feedText(n) {
  const d = n.data ?? {};
  if (n.kind === 'stall.registered') {
    return t('feed.stall_registered', {
      vendor: d.vendor_name ?? '', market: d.market_name ?? d.place_name ?? '', pitch: d.pitch ?? '',
    });
  }
  const vendor = d.vendor_name ?? '';
  const market = d.market_name ?? d.place_name ?? '';
  if (n.kind === 'stall.checked_in' && vendor) return t('feed.stall_checked_in', { vendor, market });
  if (n.kind === 'stall.checked_out' && vendor) return t('feed.stall_checked_out', { vendor, market });
  if (n.kind === 'stall.status_posted' && vendor && d.text) return t('feed.stall_status', { vendor, text: d.text });
  if (n.kind === 'market_day.opened' && market) return t('feed.day_opened', { market });
  if (n.kind === 'market_day.closed' && market) return t('feed.day_closed', { market });
  if (n.kind === 'market_day.cancelled' && market) return t('feed.day_cancelled', { market, reason: d.reason ?? '' });
  return t('feed.other', { city: state.city?.name ?? n.city ?? '' });
}

function feedTimeZone() {
  return (state.todayFor === state.city?.slug && state.today?.city?.timezone) || state.city?.timezone;
}

function addFeedEntry(seq, n) {
  const key = Number.isFinite(seq) ? seq : `local-${performance.now()}`;
  state.feed.set(String(key), n);
  const li = h('li', { class: 'feed-item', dataset: { seq: String(key), kind: n.kind } },
    h('time', { class: 'feed-time', datetime: n.time ?? '' }, n.time ? formatTime(n.time, feedTimeZone()) : ''),
    h('span', { class: 'feed-text' }, feedText(n)),
  );
  el.feed.prepend(li);
  while (el.feed.children.length > FEED_MAX) {
    const last = el.feed.lastElementChild;
    state.feed.delete(last.dataset.seq);
    last.remove();
  }
  el.feedEmpty.hidden = true;
}

// renderFeedText updates entries in place (no new nodes), so that a language
// switch is not announced again by the live region.
export function renderFeedText() {
  for (const li of el.feed.children) {
    const n = state.feed.get(li.dataset.seq);
    if (!n) continue;
    li.querySelector('.feed-text').textContent = feedText(n);
    if (n.time) li.querySelector('.feed-time').textContent = formatTime(n.time, feedTimeZone());
  }
  el.feedEmpty.hidden = el.feed.children.length > 0;
}

// ---------- websocket ----------

const topicFor = (city) => `city:${city.slug}`;

function wsURL() {
  const url = new URL(WS_PATH, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

function send(msg) {
  if (state.ws?.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(msg));
  return true;
}

function sendSubscribe() {
  if (!state.wantedTopic) return;
  const msg = { type: 'subscribe', topics: [state.wantedTopic] };
  if (state.lastSeq !== null) msg.since = state.lastSeq;
  if (send(msg)) state.sentTopic = state.wantedTopic;
}

// retopic moves the socket's subscription to the chosen city.
function retopic() {
  const topic = topicFor(state.city);
  if (state.wantedTopic === topic) return;
  state.wantedTopic = topic;
  state.subscribedTopic = null;
  if (state.ws?.readyState === WebSocket.OPEN) {
    if (state.sentTopic && state.sentTopic !== topic) send({ type: 'unsubscribe', topics: [state.sentTopic] });
    state.sentTopic = null;
    sendSubscribe();
  }
}

export function connect() {
  clearTimeout(state.wsTimer);
  state.wsTimer = 0;
  if (state.ws) return;
  let ws;
  try {
    ws = new WebSocket(wsURL());
  } catch (err) {
    console.warn('piazza: websocket', err);
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  state.sentTopic = null;
  state.subscribedTopic = null;
  setConn('connecting');
  ws.addEventListener('open', () => {
    if (state.ws === ws) sendSubscribe();
  });
  ws.addEventListener('message', (ev) => {
    if (state.ws === ws) onMessage(ev.data);
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.sentTopic = null;
    state.subscribedTopic = null;
    scheduleReconnect();
  });
  // 'error' is always followed by 'close'; nothing to do here.
}

function scheduleReconnect() {
  setConn('offline');
  clearTimeout(state.wsTimer);
  // Exponential backoff with jitter: base 1 s, 2 s, 4 s … capped at 30 s;
  // the wait is drawn from [base/2, base], never below 1 s.
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.wsAttempt);
  const delay = Math.max(BACKOFF_MIN_MS, base / 2 + Math.random() * (base / 2));
  state.wsAttempt += 1;
  state.wsTimer = setTimeout(connect, delay);
}

export function reconnectNow() {
  if (state.ws || !state.wsTimer) return;
  state.wsAttempt = 0;
  connect();
}

function onMessage(raw) {
  let msg;
  try { msg = JSON.parse(raw); } catch { return; }
  switch (msg?.type) {
    case 'subscribed': onSubscribed(msg); break;
    case 'notification': onNotification(msg); break;
    case 'reset': onReset(msg); break;
    case 'error':
      showError(new AppError({ detail: typeof msg.message === 'string' ? msg.message : undefined }), 'ws');
      break;
    default: break; // unknown frame types are ignored: the protocol may grow
  }
}

function onSubscribed(msg) {
  if (!Array.isArray(msg.topics) || !msg.topics.includes(state.wantedTopic)) return;
  state.subscribedTopic = state.wantedTopic;
  state.subscribedAt = performance.now();
  if (state.lastSeq === null && Number.isFinite(msg.seq)) state.lastSeq = msg.seq;
  state.wsAttempt = 0;
  state.everLive = true;
  setConn('live');
  clearError('ws');
  // Anything that happened between our /today request and this point (or
  // while we were disconnected) may be missing from the plan: reconcile.
  if (state.todayLoadedAt && state.todayLoadedAt < state.subscribedAt) scheduleTodayRefresh(0);
  maybeReady();
}

function onNotification(msg) {
  if (!state.subscribedTopic || (msg.topic && msg.topic !== state.subscribedTopic)) return;
  const seq = msg.seq;
  if (Number.isFinite(seq)) {
    if (state.lastSeq !== null && seq <= state.lastSeq) return; // already seen
    state.lastSeq = seq;
  }
  const n = msg.notification;
  if (!n || typeof n !== 'object') return;
  if (n.city && state.city && n.city !== state.city.slug) return;
  addFeedEntry(seq, n);
  if (n.kind === 'stall.registered' && n.data) {
    state.highlight = { marketDayId: n.data.market_day_id, pitch: n.data.pitch };
  }
  scheduleTodayRefresh();
}

// onReset: our position is out of the server's retention; start over from a
// fresh snapshot.
function onReset(msg) {
  state.lastSeq = Number.isFinite(msg.seq) ? msg.seq : null;
  scheduleTodayRefresh(0);
}

function setConn(s) {
  el.conn.dataset.state = s;
  renderConn();
}

export function renderConn() {
  const s = el.conn.dataset.state;
  let key;
  if (s === 'live') key = 'conn.live';
  else if (navigator.onLine === false) key = 'conn.offline';
  else key = state.everLive ? 'conn.reconnecting' : 'conn.connecting';
  // Only touch the text when it changes: the status region announces changes.
  const text = t(key);
  if (el.connText.textContent !== text) el.connText.textContent = text;
}

function maybeReady() {
  const city = state.city;
  if (city && state.todayFor === city.slug && state.subscribedTopic === topicFor(city)) {
    document.body.dataset.ready = '1';
  }
}

