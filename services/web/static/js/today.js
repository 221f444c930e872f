// The residents' page: today's markets in the chosen city, grouped by
// whether they are on now, later today or over (by the server's clock, in the
// city's timezone); each square's pitch plan lighting up as vendors check in,
// with their latest status; follow buttons; and the live feed from the
// notifier's websocket (js/live.js). It keeps running (and the feed live)
// while other pages show.
//
// Live updates never reload the page: a notification patches the snapshot at
// once (a stall opens, a status changes, a day opens or is cancelled), and a
// debounced re-fetch of /today reconciles. Every render builds the page anew
// and morphs it into the document, so focus stays where it was and nothing
// flickers.
//
// Hooks for browser tests:
//   #feed li[data-seq]             one entry per notification, newest (highest seq) first;
//                                  also data-kind, data-vendor-id, data-followed="1"
//   #markets [data-phase]          now | later | done | cancelled: the groups, each with
//                                  article[data-market-day-id] (data-status)
//   .plan g[data-pitch]            a pitch (data-state taken | free, data-live-state)
//   #stalls li[data-vendor-id]     today's stalls (also data-pitch, data-market-day-id,
//                                  data-status, data-live-state: expected | open | closed)
//   button[data-follow-topic]      follow toggles (js/follows.js)
//   #conn-status[data-state]       live | connecting | offline
//   body[data-ready="1"]           first /today render done and websocket subscribed
//                                  (removed on a city switch, set again when both are done)
//   window.__piazzaTest            under automation: dropSocket(), restoreSocket(), stats

import {
  $, h, svg, state as shell, t, tn, tEnum, formatNumber, formatTime, formatDate, collator,
  storageGet, storageSet, sessionGet, sessionSet, AppError, errorText, loadCatalog, useMessages, FALLBACK_LANG,
  morph, morphChildren,
} from './core.js';
import { api } from './api.js';
import { followButton, isFollowing, loadFollows, onFollowsChange } from './follows.js';
import { startLive, setTopic, restart, liveState, wasEverLive, isSubscribed, reconnectNow as liveReconnect } from './live.js';
import { notificationText } from './messages.js';

const FEED_MAX = 50;
const REFRESH_DEBOUNCE_MS = 250;
const TICK_MS = 60_000;
const STORE_CITY = 'piazza.city';
const STORE_LANG = 'piazza.lang';
const STORE_FEED = 'piazza.feed';
// Stalls in these states hold no pitch and are not shown to residents.
const GONE_STALL_STATUSES = new Set(['rejected', 'withdrawn', 'cancelled']);
const PHASES = ['now', 'later', 'done', 'cancelled'];

const el = {
  citySelect: $('city-select'),
  langSelect: $('lang-select'),
  conn: $('conn-status'),
  connText: $('conn-text'),
  alert: $('alert'),
  main: $('main'),
  today: $('today'),
  todayHeading: $('today-heading'),
  todayFollow: $('today-follow'),
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
  today: null, // last /today payload for state.city (patched by notifications)
  todayFor: null, // slug of the city state.today belongs to
  todayGen: 0,
  todayAbort: null,
  clockSkew: 0, // the server's clock minus ours, from /today's as_of
  refreshTimer: 0,
  highlight: null, // {marketDayId, pitch} of the latest change, shown once
  alertSource: null,
  langToken: 0,
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
  state.feed.clear();
  el.feed.replaceChildren();
  restoreFeed(city);
  el.feedEmpty.hidden = el.feed.children.length > 0;
  clearError();
  renderToday();

  setTopic(topicFor(city));
  loadFollows();
  for (const fn of cityListeners) fn(city);
  await Promise.all([setLanguage(pickLanguage(city)), loadToday()]);
}

// ---------- today ----------

export function scheduleTodayRefresh(delay = REFRESH_DEBOUNCE_MS) {
  clearTimeout(state.refreshTimer);
  // A request already under way may predate the change: drop its answer.
  if (state.todayAbort) { state.todayGen += 1; state.todayAbort.abort(); state.todayAbort = null; }
  state.refreshTimer = setTimeout(() => loadToday({ quiet: true }), delay);
}

export async function loadToday({ quiet = false } = {}) {
  const city = state.city;
  if (!city) return;
  const gen = ++state.todayGen;
  state.todayAbort?.abort();
  const ctrl = new AbortController();
  state.todayAbort = ctrl;
  if (!quiet) {
    el.today.setAttribute('aria-busy', 'true');
    el.todayLoading.hidden = state.todayFor === city.slug;
  }
  try {
    const data = await api('GET', `cities/${encodeURIComponent(city.slug)}/today`, { signal: ctrl.signal, auth: false });
    if (gen !== state.todayGen) return;
    const asOf = Date.parse(data?.as_of ?? '');
    if (Number.isFinite(asOf)) state.clockSkew = asOf - Date.now();
    state.today = data;
    state.todayFor = city.slug;
    clearError('today');
    renderToday();
    state.highlight = null; // shown once, on the render that brought the change
    maybeReady();
  } catch (err) {
    if (gen !== state.todayGen) return;
    showError(err, 'today', () => loadToday());
  } finally {
    if (gen === state.todayGen) {
      state.todayAbort = null;
      el.today.setAttribute('aria-busy', 'false');
      el.todayLoading.hidden = true;
    }
  }
}

export function activeStalls(day) {
  return (day.stalls ?? []).filter((s) => !GONE_STALL_STATUSES.has(s.status));
}

const serverNow = () => Date.now() + state.clockSkew;

// phaseOf says where a market day belongs today: on now, later, over, or
// cancelled. The day's status wins (a day the manager has opened is on until
// it is closed); a scheduled day's hours decide by the server's clock when
// /today says what time it is (as_of), else by ours.
export function phaseOf(day, now = serverNow()) {
  const status = day.status ?? 'scheduled';
  if (status === 'cancelled') return 'cancelled';
  if (status === 'closed') return 'done';
  if (status === 'open') return 'now';
  const start = Date.parse(day.starts_at);
  const end = Date.parse(day.ends_at);
  if (Number.isFinite(end) && now >= end) return 'done';
  if (Number.isFinite(start) && now < start) return 'later';
  return 'now';
}

export function renderToday() {
  const city = state.city;
  if (!city) {
    el.todayHeading.textContent = '';
    el.todayFollow.replaceChildren();
    return;
  }
  const data = state.todayFor === city.slug ? state.today : null;
  const tz = data?.city?.timezone || city.timezone;
  const name = data?.city?.name || city.name;
  setText(el.todayHeading, t('today.heading', { city: name }));
  morphChildren(el.todayFollow, [followButton(`city:${city.slug}`, t('follow.city', { name }))]);
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

  morphChildren(el.todayDate, [data.date ? h('time', { datetime: data.date }, formatDate(data.date)) : document.createTextNode('')]);
  setText(el.todayTz, tz ? t('today.timezone', { timezone: tz }) : '');

  const days = [...(data.market_days ?? [])].sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)));
  setText(el.todayEmpty, t('today.empty', { city: name }));
  el.todayEmpty.hidden = days.length > 0;

  const now = serverNow();
  const groups = new Map(PHASES.map((p) => [p, []]));
  for (const day of days) groups.get(phaseOf(day, now)).push(day);
  const sections = [];
  for (const phase of PHASES) {
    const list = groups.get(phase);
    if (!list.length) continue;
    const headingId = `phase-${phase}`;
    sections.push(h('section', { class: `phase phase-${phase}`, 'aria-labelledby': headingId, dataset: { key: phase, phase } },
      h('h2', { id: headingId, class: 'phase-heading' }, t(`today.phase.${phase}`), ' ',
        h('span', { class: 'phase-count' }, tn('today.phase_count', list.length))),
      h('div', { class: 'markets-list' }, list.map((day) => renderMarketDay(day, tz, phase)))));
  }
  morphChildren(el.markets, sections);

  const cmp = collator();
  const rows = [];
  for (const day of days) {
    if (phaseOf(day, now) === 'cancelled') continue;
    const stalls = activeStalls(day).sort((a, b) => cmp.compare(a.pitch ?? '', b.pitch ?? ''));
    for (const stall of stalls) rows.push(renderStall(stall, day));
  }
  morphChildren(el.stalls, rows);
  setText(el.stallsCount, rows.length ? tn('stalls.count', rows.length) : t('stalls.empty'));
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function renderMarketDay(day, tz, phase) {
  const headingId = `md-${day.id}`;
  const status = day.status ?? 'scheduled';
  const start = formatTime(day.starts_at, tz);
  const end = formatTime(day.ends_at, tz);
  let when;
  if (phase === 'now') when = t('market.until', { end });
  else if (phase === 'later') when = t('market.opens_at', { start });
  else if (phase === 'cancelled') when = day.cancel_reason ? t('market.cancelled_because', { reason: day.cancel_reason }) : t('market.cancelled');
  else when = t('market.ended');
  const marketId = day.market?.id;
  const placeId = day.place?.id;
  return h('article', {
    class: `card status-${status}`, 'aria-labelledby': headingId,
    dataset: { key: day.id, marketDayId: day.id, status, phase },
  },
  h('header', { class: 'card-head' },
    h('h3', { id: headingId, class: 'card-title' }, day.market?.name ?? ''),
    h('span', { class: `badge badge-${status}` }, tEnum('market_day.status', status)),
  ),
  h('p', { class: 'card-when' }, when),
  h('dl', { class: 'facts' },
    h('div', {},
      h('dt', {}, t('market.place')),
      h('dd', {}, day.place?.name ?? ''),
    ),
    h('div', {},
      h('dt', {}, t('market.hours')),
      h('dd', {}, t('market.hours_range', { start, end })),
    ),
  ),
  h('div', { class: 'follow-row' },
    marketId ? followButton(`market:${marketId}`, t('follow.market', { name: day.market?.name ?? '' })) : null,
    placeId ? followButton(`place:${placeId}`, t('follow.place', { name: day.place?.name ?? '' })) : null,
  ),
  renderPlan(day),
  );
}

// liveOf is a stall's live state as residents see it.
const liveOf = (stall) => stall.live_state || 'expected';

// renderPlan draws the square's pitches (x, y, w, h in metres) as an SVG
// picture: free pitches blank, stalls expected in outline, open stalls lit,
// closed ones grey; with a text list of the same for screen readers.
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
  const open = sorted.filter((p) => byPitch.has(p.code) && liveOf(byPitch.get(p.code)) === 'open').length;
  const label = (p) => {
    const stall = byPitch.get(p.code);
    if (!stall) return t('plan.pitch_free', { pitch: p.code });
    const vendor = stall.vendor?.name ?? '';
    const live = liveOf(stall);
    if (live === 'open' && stall.status_text) return t('plan.pitch_open_status', { pitch: p.code, vendor, text: stall.status_text });
    if (live === 'open') return t('plan.pitch_open', { pitch: p.code, vendor });
    if (live === 'closed') return t('plan.pitch_closed', { pitch: p.code, vendor });
    return t('plan.pitch_expected', { pitch: p.code, vendor });
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
    const stall = byPitch.get(p.code);
    const live = stall ? liveOf(stall) : null;
    const code = String(p.code ?? '');
    const size = Math.min(Math.min(p.w, p.h) * 0.42, (p.w * 0.85) / Math.max(1, code.length * 0.62));
    return svg('g', {
      class: `pitch ${stall ? `pitch-taken pitch-${live}` : 'pitch-free'}${fresh === p.code ? ' pitch-fresh' : ''}`,
      dataset: { key: code, pitch: code, state: stall ? 'taken' : 'free', liveState: live, vendorId: stall?.vendor?.id },
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
      h('span', {}, tn('plan.live_summary', sorted.length, { taken: formatNumber(taken), open: formatNumber(open) })),
      h('span', { class: 'legend', 'aria-hidden': 'true' },
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-open' }), t('plan.open')),
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-expected' }), t('plan.expected')),
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-closed' }), t('plan.closed')),
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-free' }), t('plan.free')),
      ),
    ),
    h('ul', { class: 'visually-hidden' }, sorted.map((p) => h('li', { dataset: { key: p.code } }, label(p)))),
  );
}

function renderStall(stall, day) {
  const kind = stall.vendor?.kind;
  const live = liveOf(stall);
  const meta = t('stall.meta', { kind: kind ? tEnum('vendor.kind', kind) : '', market: day.market?.name ?? '' });
  const vendorId = stall.vendor?.id ?? '';
  return h('li', {
    class: `stall stall-${live}`,
    dataset: {
      key: `${day.id}/${stall.application_id ?? vendorId}`,
      vendorId, pitch: stall.pitch, marketDayId: day.id, status: stall.status,
      liveState: live, applicationId: stall.application_id,
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
    h('span', { class: `stall-live stall-live-${live}` }, tEnum('stall.live', live)),
    stall.status_text && live !== 'closed'
      ? h('q', { class: 'stall-post' }, stall.status_text)
      : null,
  ),
  vendorId ? followButton(`vendor:${vendorId}`, t('follow.vendor', { name: stall.vendor?.name ?? '' })) : null,
  );
}

// ---------- patching the snapshot from notifications ----------

function findDay(id) {
  return (state.today?.market_days ?? []).find((d) => d.id === id) ?? null;
}

// applyNotification changes the snapshot as the notification says, at once;
// it returns whether it could (else only the re-fetch will show it).
function applyNotification(n) {
  const d = n.data ?? {};
  if (!state.today || state.todayFor !== n.city) return false;
  switch (n.kind) {
    case 'stall.checked_in':
    case 'stall.checked_out':
    case 'stall.status_posted': {
      const day = findDay(d.market_day_id);
      if (!day) return false;
      const stall = (day.stalls ?? []).find((s) => (d.application_id && s.application_id === d.application_id)
        || (!d.application_id && s.vendor?.id === d.vendor_id));
      if (!stall) return false;
      if (typeof d.live_state === 'string' && d.live_state) stall.live_state = d.live_state;
      if ('status_text' in d) stall.status_text = d.status_text || undefined;
      if (n.kind === 'stall.checked_out') stall.status_text = undefined;
      state.highlight = { marketDayId: day.id, pitch: stall.pitch };
      return true;
    }
    case 'stall.registered': {
      const day = findDay(d.market_day_id);
      if (!day || !d.pitch || !d.vendor_id) return false;
      day.stalls = day.stalls ?? [];
      if (!day.stalls.some((s) => s.vendor?.id === d.vendor_id)) {
        day.stalls.push({
          vendor: { id: d.vendor_id, name: d.vendor_name ?? '', kind: d.vendor_kind },
          pitch: d.pitch, status: 'accepted', live_state: 'expected',
        });
      }
      state.highlight = { marketDayId: day.id, pitch: d.pitch };
      return true;
    }
    case 'market_day.opened':
    case 'market_day.closed':
    case 'market_day.cancelled':
    case 'market_day.hours_changed': {
      const day = findDay(d.id ?? d.market_day_id);
      if (!day) return false;
      if (typeof d.status === 'string' && d.status) day.status = d.status;
      if (d.starts_at) day.starts_at = d.starts_at;
      if (d.ends_at) day.ends_at = d.ends_at;
      if (d.cancel_reason) day.cancel_reason = d.cancel_reason;
      return true;
    }
    default:
      return false;
  }
}

// ---------- live feed ----------

function feedTimeZone() {
  return (state.todayFor === state.city?.slug && state.today?.city?.timezone) || state.city?.timezone;
}

const followedAny = (n) => Array.isArray(n.topics) && n.topics.some((topic) => isFollowing(topic));

function feedItem(seq, n) {
  const followed = followedAny(n);
  return h('li', {
    class: `feed-item${followed ? ' feed-followed' : ''}`,
    dataset: { key: String(seq), seq: String(seq), kind: n.kind, vendorId: n.data?.vendor_id, followed: followed ? '1' : null },
  },
  h('time', { class: 'feed-time', datetime: n.time ?? '' }, n.time ? formatTime(n.time, feedTimeZone()) : ''),
  h('span', { class: 'feed-text' },
    notificationText(n, state.city?.name),
    followed ? h('span', { class: 'feed-tag' }, ' ', t('feed.followed')) : null),
  );
}

// addFeedEntry puts the entry in its place: the feed is ordered by seq,
// newest first, whatever order replays and live frames arrive in.
function addFeedEntry(seq, n) {
  const key = String(seq);
  if (state.feed.has(key)) return;
  state.feed.set(key, n);
  const li = feedItem(seq, n);
  let before = null;
  for (const c of el.feed.children) {
    if (Number(c.dataset.seq) < seq) { before = c; break; }
  }
  el.feed.insertBefore(li, before);
  while (el.feed.children.length > FEED_MAX) {
    const last = el.feed.lastElementChild;
    state.feed.delete(last.dataset.seq);
    last.remove();
  }
  el.feedEmpty.hidden = true;
  saveFeed();
}

function saveFeed() {
  if (!state.city) return;
  const items = [...el.feed.children].map((li) => [Number(li.dataset.seq), state.feed.get(li.dataset.seq)]);
  sessionSet(STORE_FEED, JSON.stringify({ city: state.city.slug, items }));
}

// restoreFeed shows the entries this tab had for city before a reload.
function restoreFeed(city) {
  let stored;
  try { stored = JSON.parse(sessionGet(STORE_FEED) ?? 'null'); } catch { stored = null; }
  if (stored?.city !== city.slug || !Array.isArray(stored.items)) return;
  for (const [seq, n] of stored.items) {
    if (Number.isSafeInteger(seq) && n && typeof n === 'object') addFeedEntry(seq, n);
  }
}

// renderFeedText updates entries in place (the same nodes), so that a
// language switch or a new follow is not announced again by the live region.
export function renderFeedText() {
  const items = [];
  for (const li of el.feed.children) {
    const n = state.feed.get(li.dataset.seq);
    items.push(n ? feedItem(Number(li.dataset.seq), n) : li.cloneNode(true));
  }
  morphChildren(el.feed, items);
  el.feedEmpty.hidden = el.feed.children.length > 0;
}

// ---------- the live connection ----------

const topicFor = (city) => `city:${city.slug}`;

export function connect() {
  startLive({
    onNotification(seq, n) {
      // The feed is the chosen city's; what is for the account alone
      // (a waitlist offer) shows too. The rest is in the inbox.
      const mine = Array.isArray(n.topics) && n.topics.some((x) => String(x).startsWith('account:'));
      if (!state.city || (n.city !== state.city.slug && !mine)) return;
      addFeedEntry(seq, n);
      if (applyNotification(n)) renderToday();
      scheduleTodayRefresh();
    },
    onSubscribed() {
      clearError('ws');
      // Whatever happened before this point, while we were away or before
      // the first snapshot, is in a fresh snapshot.
      scheduleTodayRefresh(0);
      maybeReady();
    },
    onReset() {
      scheduleTodayRefresh(0);
    },
    onState: setConn,
    onError(msg) {
      showError(new AppError({ detail: typeof msg.message === 'string' ? msg.message : undefined }), 'ws');
    },
  });
  onFollowsChange(() => renderFeedText());
  setInterval(() => { if (state.today) renderToday(); }, TICK_MS); // markets move from later to now
}

export function reconnectNow() {
  liveReconnect();
}

// resubscribe renews the live connection (the resident signed in or out).
export function resubscribe() {
  restart();
}

function setConn(s) {
  el.conn.dataset.state = s;
  renderConn();
  if (s !== 'live') delete document.body.dataset.ready;
}

export function renderConn() {
  const s = el.conn.dataset.state;
  let key;
  if (s === 'live') key = 'conn.live';
  else if (navigator.onLine === false) key = 'conn.offline';
  else key = wasEverLive() ? 'conn.reconnecting' : 'conn.connecting';
  // Only touch the text when it changes: the status region announces changes.
  setText(el.connText, t(key));
}

function maybeReady() {
  const city = state.city;
  if (city && state.todayFor === city.slug && isSubscribed(topicFor(city)) && liveState() === 'live') {
    document.body.dataset.ready = '1';
  }
}
