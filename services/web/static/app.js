// Piazza web client: the shell. It loads the catalogs and the cities, keeps
// the session, draws the navigation and routes by hash:
//
//   #/<city>                  residents: today in the city (js/today.js)
//   #/signin, #/signup        js/auth.js
//   #/vendor                  the vendor's profile, applications and today's stall
//   #/vendor/profile          create or edit the vendor profile
//   #/vendor/markets/<city>   a city's markets
//   #/vendor/apply/<market>   apply for dates or the season of a market
//   #/manage/<city>           a manager's market days of a city
//   #/manage/day/<id>         one market day: review, pitch plan, open/close/cancel
//   #/inbox                   the resident's notifications (js/inbox.js)
//
// Plain ES modules, no build step, no dependencies. Every visible word comes
// from the message catalogs; data from the API is always inserted as text.
//
// Hooks for browser tests (besides those of each page module):
//   body[data-route]                 the current route's name (today, signin, vendor, …)
//   #view[data-loaded="1"]           the current page has rendered its data
//   #view[data-error="1"]            the current page failed to load (message in #view)
//   #nav a[data-nav], #signout       the navigation; body[data-signed-in="1"], data-roles
//   #notice[data-kind]               polite live region with an action's result (ok | error)
//   (and js/today.js: #feed, #stalls, #conn-status, body[data-ready="1"])
//   navigator.serviceWorker: /sw.js is registered at boot (offline app shell)

import {
  $, h, t, state, loadCatalog, useMessages, fetchStatic, FALLBACK_LANG, errorText, clearNotice, notify,
} from './js/core.js';
import { api, session, signedIn, hasRole, isManager, onSessionChange, restore, signOut } from './js/api.js';
import {
  initialCity, findCity, selectCity, renderCitySelect, chooseLanguage, applyStaticText, connect, reconnectNow,
  renderConn, showError, onLanguageChange, onCityChange, resubscribe,
} from './js/today.js';
import { initFollows, loadFollows } from './js/follows.js';
import { inboxPage } from './js/inbox.js';
import { signinPage, signupPage } from './js/auth.js';
import { dashboardPage, profilePage, marketsPage, applyPage } from './js/vendor.js';
import { cityPage, dayPage } from './js/manager.js';
import { calendarPage } from './js/calendar.js';
import { editorPage, moderationPage, suggestPage } from './js/calendar-editor.js';

const el = {
  citySelect: $('city-select'),
  langSelect: $('lang-select'),
  main: $('main'),
  todayPage: $('today-page'),
  todayHeading: $('today-heading'),
  view: $('view'),
  nav: $('nav-list'),
  todayLoading: $('today-loading'),
  todayEmpty: $('today-empty'),
  today: $('today'),
};

// ---------- routes ----------

const TODAY = { name: 'today' };

function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  const [a, b, c] = parts;
  switch (a) {
    case undefined: return { page: TODAY, params: {} };
    case 'signin': return { page: signinPage, params: {} };
    case 'signup': return { page: signupPage, params: {} };
    case 'inbox': return b ? null : { page: inboxPage, params: {} };
    case 'vendor':
      if (!b) return { page: dashboardPage, params: {} };
      if (b === 'profile' && !c) return { page: profilePage, params: {} };
      if (b === 'markets') return { page: marketsPage, params: { city: c?.toLowerCase() ?? state.city?.slug } };
      if (b === 'apply' && c) return { page: applyPage, params: { id: c } };
      return null;
    case 'manage':
      if (b === 'day' && c) return { page: dayPage, params: { id: c } };
      if (b && !c) return { page: cityPage, params: { city: b.toLowerCase() } };
      if (!b) return { page: cityPage, params: { city: homeCity() } };
      return null;
    // the events calendar (js/calendar.js, js/calendar-editor.js)
    case 'calendar':
      return { page: calendarPage, params: { city: (b ?? state.city?.slug ?? '').toLowerCase(), date: c } };
    case 'manage-calendar':
      if (c === 'moderation') return { page: moderationPage, params: { city: b.toLowerCase() } };
      return { page: editorPage, params: { city: (b ?? homeCity()).toLowerCase(), id: c } };
    case 'suggest-event':
      return { page: suggestPage, params: { city: (b ?? state.city?.slug ?? '').toLowerCase() } };
    default:
      if (!b && /^[a-z0-9-]+$/i.test(a)) return { page: TODAY, params: { city: a.toLowerCase() } };
      return null;
  }
}

function homeCity() {
  const mine = session.account?.cities ?? [];
  if (state.city && (hasRole('admin') || mine.includes(state.city.slug))) return state.city.slug;
  return mine[0] ?? state.city?.slug ?? state.cities[0]?.slug ?? '';
}

// home is where a signed-in person starts.
function home() {
  if (isManager()) return `#/manage/${encodeURIComponent(homeCity())}`;
  if (signedIn()) return '#/vendor';
  return `#/${state.city?.slug ?? ''}`;
}

function allowed(page) {
  if (!page.access) return true;
  if (!signedIn()) return false;
  if (page.access === 'manager') return isManager();
  return true;
}

// ---------- the router ----------

const route = {
  gen: 0,
  current: null, // {page, params, data, state, key}
  abort: null,
  next: null, // where to go after signing in
  first: true,
};

function ctxFor(r) {
  return {
    params: r.params,
    state: r.state,
    get signal() { return r.abort?.signal; },
    reload: (opts) => load(r, opts),
    repaint: (opts) => paint(r, opts),
    go: (hash) => {
      if (location.hash === hash) load(r, { focusHeading: true }); // same page: show it afresh
      else location.hash = hash;
    },
    useCity: (slug) => { const c = findCity(slug); if (c && c !== state.city) selectCity(c); return c; },
    signedIn: () => { const n = route.next; route.next = null; location.hash = n ?? home(); },
  };
}

async function onRoute() {
  const parsed = parseRoute(location.hash);
  if (!parsed) { history.replaceState(null, '', home()); return onRoute(); }
  const { page, params } = parsed;
  const key = location.hash;
  route.gen += 1;
  route.abort?.abort();
  clearNotice();

  if (page === TODAY) {
    route.current = { page, params, key };
    showToday(params.city);
    return;
  }
  if (!allowed(page)) {
    if (!signedIn()) {
      route.next = location.hash;
      history.replaceState(null, '', '#/signin');
      notify(t('auth.signin_needed'), 'error');
      return showPage({ page: signinPage, params: {}, key: '#/signin', state: {} });
    }
    return showPage({ page: forbiddenPage, params: {}, key, state: {} });
  }
  if ((page === signinPage || page === signupPage) && signedIn()) {
    history.replaceState(null, '', home());
    return onRoute();
  }
  return showPage({ page, params, key, state: {} });
}

function showToday(slug) {
  document.body.dataset.route = 'today';
  el.view.hidden = true;
  el.view.replaceChildren();
  delete el.view.dataset.loaded;
  el.todayPage.hidden = false;
  renderNav();
  const city = findCity(slug) ?? (slug ? null : state.city ?? initialCity(null));
  if (!city) {
    if (state.city) history.replaceState(null, '', `#/${state.city.slug}`);
    return;
  }
  selectCity(city, { syncHash: true });
  if (!route.first) el.todayHeading.focus();
  route.first = false;
}

async function showPage(r) {
  route.current = r;
  document.body.dataset.route = r.page.name;
  el.todayPage.hidden = true;
  el.view.hidden = false;
  renderNav();
  await load(r, { focusHeading: true });
}

async function load(r, { focusHeading = false, focusKey } = {}) {
  const gen = route.gen;
  r.abort?.abort();
  r.abort = new AbortController();
  route.abort = r.abort;
  delete el.view.dataset.loaded;
  delete el.view.dataset.error;
  el.view.setAttribute('aria-busy', 'true');
  if (!r.data && !r.page.load) r.data = {};
  if (r.page.load) {
    if (!r.data) el.view.replaceChildren(h('p', { class: 'muted' }, t('page.loading')));
    try {
      r.data = await r.page.load(ctxFor(r));
    } catch (err) {
      if (err?.name === 'AbortError' || gen !== route.gen) return;
      el.view.setAttribute('aria-busy', 'false');
      if (err?.status === 401 && !signedIn()) {
        route.next = r.key;
        location.hash = '#/signin';
        return;
      }
      el.view.dataset.error = '1';
      el.view.replaceChildren(
        h('h1', { tabindex: '-1' }, t('page.error_heading')),
        h('p', { class: 'alert' }, errorText(err)),
        h('button', { type: 'button', class: 'button', onclick: () => load(r, { focusHeading: true }) }, t('action.retry')),
      );
      if (focusHeading) el.view.querySelector('h1').focus();
      return;
    }
    if (gen !== route.gen) return;
  }
  paint(r, { focusHeading, focusKey });
}

// paint renders the page from its data, keeping what was typed into forms
// and the focus (by data-focus-key) across a repaint.
function paint(r, { focusHeading = false, focusKey } = {}) {
  if (route.current !== r) return;
  const active = document.activeElement;
  const keepKey = focusKey === undefined ? active?.closest?.('[data-focus-key]')?.dataset.focusKey : focusKey;
  const typed = snapshot(el.view);
  el.view.replaceChildren(...[r.page.render(ctxFor(r), r.data)].flat(Infinity).filter(Boolean));
  restoreSnapshot(el.view, typed);
  el.view.setAttribute('aria-busy', 'false');
  el.view.dataset.loaded = '1';
  const title = el.view.querySelector('h1')?.textContent;
  document.title = title ? t('app.title_page', { page: title }) : t('app.title');
  if (focusHeading) {
    el.view.querySelector('h1')?.focus();
  } else if (keepKey) {
    const target = el.view.querySelector(`[data-focus-key="${CSS.escape(keepKey)}"]`);
    if (target) target.focus();
    else if (el.view.contains(active) === false && active !== document.body) { /* focus is elsewhere: leave it */ }
    else el.view.querySelector('h1')?.focus();
  } else if (active && active !== document.body && !document.contains(active)) {
    el.view.querySelector('h1')?.focus();
  }
}

function snapshot(root) {
  const out = new Map();
  for (const form of root.querySelectorAll('form[data-form]')) {
    const counts = new Map();
    for (const c of form.querySelectorAll('input[name], textarea[name], select[name]')) {
      const n = counts.get(c.name) ?? 0;
      counts.set(c.name, n + 1);
      const k = `${form.dataset.form}|${c.closest('[data-application-id]')?.dataset.applicationId ?? ''}|${c.name}|${n}`;
      out.set(k, (c.type === 'checkbox' || c.type === 'radio') ? { checked: c.checked, value: c.value } : { value: c.value });
    }
  }
  return out;
}

function restoreSnapshot(root, snap) {
  if (!snap.size) return;
  for (const form of root.querySelectorAll('form[data-form]')) {
    const counts = new Map();
    for (const c of form.querySelectorAll('input[name], textarea[name], select[name]')) {
      const n = counts.get(c.name) ?? 0;
      counts.set(c.name, n + 1);
      const k = `${form.dataset.form}|${c.closest('[data-application-id]')?.dataset.applicationId ?? ''}|${c.name}|${n}`;
      const v = snap.get(k);
      if (!v) continue;
      if (c.type === 'checkbox' || c.type === 'radio') { if (v.value === c.value && !c.disabled) c.checked = v.checked; }
      else c.value = v.value;
    }
  }
}

const forbiddenPage = {
  name: 'forbidden',
  render: () => [
    h('h1', { tabindex: '-1' }, t('page.forbidden_heading')),
    h('p', {}, t('page.forbidden')),
    h('a', { class: 'button', href: home() }, t('nav.home')),
  ],
};

// ---------- navigation ----------

let navSignature = '';

function renderNav() {
  const r = route.current;
  const name = r?.page?.name;
  const link = (href, key, label, active) => h('li', {},
    h('a', { href, dataset: { nav: key }, 'aria-current': active ? 'page' : null }, label));
  const items = [
    link(`#/${state.city?.slug ?? ''}`, 'today', t('nav.today'), name === 'today'),
    link('#/inbox', 'inbox', t('nav.inbox'), name === 'inbox'),
    link(`#/calendar/${encodeURIComponent(state.city?.slug ?? '')}`, 'calendar', t('nav.calendar'), ['calendar', 'calendar-editor', 'calendar-moderation', 'suggest-event'].includes(name)),
  ];
  if (signedIn()) {
    if (!isManager() || hasRole('vendor')) {
      items.push(link('#/vendor', 'vendor', t('nav.vendor'), name === 'vendor' || name === 'vendor-profile'));
      items.push(link(`#/vendor/markets/${encodeURIComponent(state.city?.slug ?? '')}`, 'markets', t('nav.markets'), name === 'vendor-markets' || name === 'vendor-apply'));
    }
    if (isManager()) items.push(link(`#/manage/${encodeURIComponent(homeCity())}`, 'manage', t('nav.manage'), name?.startsWith('manage')));
    items.push(h('li', { class: 'nav-account' },
      h('span', { class: 'nav-who' }, t('nav.signed_in_as', { name: session.account?.name || session.account?.email || '' })),
      h('button', { type: 'button', id: 'signout', class: 'button button-quiet button-small', onclick: () => {
        location.hash = `#/${state.city?.slug ?? ''}`;
        signOut(); // forgets the session at once; telling the server may take a moment
        notify(t('auth.signed_out'));
      } }, t('nav.signout'))));
  } else {
    items.push(link('#/signin', 'signin', t('nav.signin'), name === 'signin'));
    items.push(link('#/signup', 'signup', t('nav.signup'), name === 'signup'));
  }
  // Only touch the menu when it changes: focus stays on its links.
  const signature = items.map((li) => li.outerHTML).join('');
  if (signature !== navSignature) {
    navSignature = signature;
    el.nav.replaceChildren(...items);
  }
  document.body.dataset.signedIn = signedIn() ? '1' : '0';
  document.body.dataset.roles = (session.account?.roles ?? []).join(' ');
}

// ---------- start ----------

function wire() {
  el.citySelect.addEventListener('change', () => {
    const city = findCity(el.citySelect.value);
    if (!city) return;
    const name = route.current?.page?.name;
    if (name === 'today' || !name) location.hash = `#/${city.slug}`; // hashchange does the rest, and Back works
    else if (name === 'manage-city') location.hash = `#/manage/${encodeURIComponent(city.slug)}`;
    else if (name === 'calendar') location.hash = `#/calendar/${encodeURIComponent(city.slug)}`;
    else if (name === 'vendor-markets') location.hash = `#/vendor/markets/${encodeURIComponent(city.slug)}`;
    else selectCity(city);
  });
  el.langSelect.addEventListener('change', () => chooseLanguage(el.langSelect.value));
  window.addEventListener('hashchange', () => onRoute());
  document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
    ev.preventDefault(); // keep the route in the URL
    el.main.focus();
  });
  window.addEventListener('online', () => { renderConn(); reconnectNow(); });
  window.addEventListener('offline', renderConn);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') reconnectNow();
  });
  onSessionChange((reason) => {
    renderNav();
    if (reason === 'expired') {
      notify(t('auth.session_expired'), 'error');
      if (route.current?.page?.access) { route.next = location.hash; location.hash = '#/signin'; }
    }
    if (reason === 'signout' && route.current?.page?.access) location.hash = `#/${state.city?.slug ?? ''}`;
  });
  onLanguageChange(() => {
    renderNav();
    const r = route.current;
    if (r && r.page !== TODAY && r.data) paint(r);
    else if (r && r.page !== TODAY && el.view.dataset.error) load(r);
  });
  onCityChange(() => renderNav());
}

// registerServiceWorker installs the offline app shell (static/sw.js).
function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err) => console.warn('piazza: service worker', err));
}

async function boot() {
  wire();
  // Signing in or out changes who the live feed says hello as (after the
  // device's follows have moved to the account).
  initFollows(() => resubscribe());
  registerServiceWorker();
  try {
    const [langs, en] = await Promise.all([fetchStatic('/languages.json'), loadCatalog(FALLBACK_LANG)]);
    state.languages = Array.isArray(langs?.languages) ? langs.languages : [FALLBACK_LANG];
    state.fallback = en;
    useMessages(FALLBACK_LANG, en);
  } catch (err) {
    showError(err, 'boot', () => location.reload());
    return;
  }
  applyStaticText();
  renderConn();
  renderNav();
  connect();

  const [cities] = await Promise.all([
    api('GET', 'cities', { auth: false }).then((b) => (Array.isArray(b?.items) ? b.items : []), (err) => err),
    restore(),
  ]);
  if (cities instanceof Error) {
    el.todayLoading.hidden = true;
    showError(cities, 'cities', () => location.reload());
    return;
  }
  if (!signedIn()) loadFollows(); // a signed-in resident's are loaded on signing in
  state.cities = cities.filter((c) => c && typeof c.slug === 'string');
  if (!state.cities.length) {
    el.todayLoading.hidden = true;
    el.today.setAttribute('aria-busy', 'false');
    el.todayEmpty.textContent = t('cities.empty');
    el.todayEmpty.hidden = false;
    return;
  }
  renderCitySelect();
  const parsed = parseRoute(location.hash);
  // The chosen city: the residents' route names it; other pages use the stored one.
  await Promise.all([
    selectCity(initialCity(parsed?.page === TODAY ? parsed.params.city : parsed?.params?.city), { syncHash: parsed?.page === TODAY }),
    onRoute(),
  ]);
}

boot();
