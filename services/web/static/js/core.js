// Shared building blocks of the web client: DOM helpers, message catalogs
// and formatting, storage, errors. Every visible word comes from the
// catalogs in /i18n/<lang>.json; modules only name keys (always as literal
// strings in t() and tn() calls, so that web_test.go can check them).

export const API = '/api/v1';
export const FALLBACK_LANG = 'en';
const SVG_NS = 'http://www.w3.org/2000/svg';

// state is the shell's shared state: languages, cities, the chosen city and
// the active catalog.
export const state = {
  languages: [],
  cities: [],
  city: null,
  lang: FALLBACK_LANG,
  locale: FALLBACK_LANG,
  messages: {},
  fallback: {},
};

export const $ = (id) => document.getElementById(id);

export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

function build(node, props, children) {
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) { if (dv != null) node.dataset[dk] = dv; }
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in node && !(node instanceof SVGElement)) node.value = v;
    else if (k === 'checked' || k === 'selected') { node[k] = Boolean(v); if (v) node.setAttribute(k, ''); }
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  // Strings become text nodes: API data can never become markup.
  node.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return node;
}

export function storageGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

export function storageSet(key, value) {
  try { localStorage.setItem(key, value); } catch { /* private mode, quota: not fatal */ }
}

export function storageRemove(key) {
  try { localStorage.removeItem(key); } catch { /* not fatal */ }
}

export function sessionGet(key) {
  try { return sessionStorage.getItem(key); } catch { return null; }
}

export function sessionSet(key, value) {
  try { sessionStorage.setItem(key, value); } catch { /* not fatal */ }
}

// ---------- morph: patch a live DOM tree to match a freshly built one ----------
//
// Pages re-render from data with h() and morph the result into the document:
// nodes that stay keep their identity (and so the keyboard focus, the
// selection and running animations), and only changed attributes and text
// are written, so there is no flicker. Children with a data-key are matched
// by key, the others by position and tag. Event listeners are not copied:
// morphed regions use event delegation (data-* attributes on the controls).

export function morph(from, to) {
  if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName) {
    from.replaceWith(to);
    return to;
  }
  if (from.nodeType !== Node.ELEMENT_NODE) {
    if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
    return from;
  }
  for (const a of [...from.attributes]) if (!to.hasAttribute(a.name)) from.removeAttribute(a.name);
  for (const a of to.attributes) if (from.getAttribute(a.name) !== a.value) from.setAttribute(a.name, a.value);
  morphChildren(from, [...to.childNodes]);
  return from;
}

const keyOf = (n) => (n.nodeType === Node.ELEMENT_NODE ? n.getAttribute('data-key') : null);

// morphChildren makes parent's children match next (a list of new nodes).
export function morphChildren(parent, next) {
  const byKey = new Map();
  for (const c of parent.childNodes) { const k = keyOf(c); if (k !== null) byKey.set(k, c); }
  let cursor = parent.firstChild;
  for (const n of next) {
    const k = keyOf(n);
    let match = null;
    if (k !== null) {
      match = byKey.get(k) ?? null;
      if (match && match.nodeName !== n.nodeName) match = null;
      byKey.delete(k);
    } else if (cursor && keyOf(cursor) === null && cursor.nodeName === n.nodeName) {
      match = cursor;
    }
    if (!match) {
      parent.insertBefore(n, cursor);
      continue;
    }
    if (match === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(match, cursor);
    morph(match, n);
  }
  while (cursor) {
    const nx = cursor.nextSibling;
    cursor.remove();
    cursor = nx;
  }
}

export const collator = () => new Intl.Collator(state.locale, { numeric: true, sensitivity: 'base' });

// AppError carries what the UI shows of a failure: a catalog key for our own
// errors, or the server's problem+json (detail, code, field errors).
export class AppError extends Error {
  constructor({ key = 'error.generic', status, title, detail, code, errors, requestId } = {}) {
    super(detail || title || key);
    this.key = key;
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.code = code;
    this.errors = Array.isArray(errors) ? errors.filter((e) => e && typeof e.field === 'string') : [];
    this.requestId = requestId;
  }
}

export function errorText(err) {
  if (err instanceof AppError) {
    if (err.status === 401) return t('error.unauthorized');
    if (err.status === 429) return t('error.rate_limited');
    if (err.status >= 500) return t('error.server', { id: err.requestId ?? '' });
    return err.detail || err.title || t(err.key, { status: err.status ?? '' });
  }
  return t('error.generic');
}

// ---------- i18n ----------

const catalogs = new Map(); // lang -> Promise<messages>
let pluralRules = new Intl.PluralRules(FALLBACK_LANG);

export async function fetchStatic(url) {
  let res;
  try {
    res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch {
    throw new AppError({ key: 'error.network' });
  }
  if (!res.ok) throw new AppError({ key: 'error.http', status: res.status });
  try { return await res.json(); } catch { throw new AppError({ key: 'error.bad_response' }); }
}

export function loadCatalog(lang) {
  if (!catalogs.has(lang)) {
    const p = fetchStatic(`/i18n/${encodeURIComponent(lang)}.json`);
    p.catch(() => catalogs.delete(lang));
    catalogs.set(lang, p);
  }
  return catalogs.get(lang);
}

export function useMessages(lang, messages) {
  state.lang = lang;
  state.messages = messages;
  state.locale = localeFor(lang, messages);
  pluralRules = new Intl.PluralRules(state.locale);
  document.documentElement.lang = lang;
}

export function has(key) {
  return key in state.messages || key in state.fallback;
}

export function t(key, vars) {
  const msg = state.messages[key] ?? state.fallback[key];
  if (typeof msg !== 'string') {
    console.warn('piazza: missing message', key);
    return key;
  }
  if (!vars) return msg;
  return msg.replace(/\{(\w+)\}/g, (m, name) => (vars[name] != null ? String(vars[name]) : m));
}

// tn picks the plural form of key for count (key.one, key.other, ...).
export function tn(key, count, vars) {
  const form = `${key}.${pluralRules.select(count)}`;
  return t(has(form) ? form : `${key}.other`, { ...vars, count: formatNumber(count) });
}

// tEnum shows a catalogued enum value, or the raw value when the catalog does
// not know it yet (a new status from a newer server).
export function tEnum(prefix, value) {
  const key = `${prefix}.${value}`;
  return has(key) ? t(key) : String(value ?? '');
}

export function formatNumber(n) {
  return new Intl.NumberFormat(state.locale).format(n);
}

function timeFormat(timeZone, opts) {
  try {
    return new Intl.DateTimeFormat(state.locale, { ...opts, timeZone });
  } catch {
    return new Intl.DateTimeFormat(state.locale, opts); // unknown zone: the browser's own
  }
}

export function formatTime(iso, timeZone) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : timeFormat(timeZone, { hour: 'numeric', minute: '2-digit' }).format(d);
}

export function formatDateTime(iso, timeZone) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : timeFormat(timeZone, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

// formatDate formats a local calendar date ("2026-11-26") without shifting it
// through the browser's timezone.
export function formatDate(ymd, style = 'full') {
  const d = new Date(`${ymd}T12:00:00Z`);
  if (Number.isNaN(d.getTime())) return '';
  return new Intl.DateTimeFormat(state.locale, { dateStyle: style, timeZone: 'UTC' }).format(d);
}

// addDays adds n days to a local date string.
export function addDays(ymd, n) {
  const d = new Date(`${ymd}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function localeFor(lang, messages) {
  for (const tag of navigator.languages ?? [navigator.language]) {
    if (tag && tag.toLowerCase().split('-')[0] === lang) {
      try { return Intl.getCanonicalLocales(tag)[0]; } catch { /* malformed tag */ }
    }
  }
  return messages.locale || lang;
}

// ---------- notices: one polite live region for results of actions ----------

let noticeTimer = 0;

export function notify(text, kind = 'ok') {
  const box = $('notice');
  clearTimeout(noticeTimer);
  box.dataset.kind = kind;
  // Replace the text node so that screen readers announce a repeated message.
  box.replaceChildren(h('span', {}, text));
  if (kind === 'ok') noticeTimer = setTimeout(() => { box.replaceChildren(); delete box.dataset.kind; }, 8000);
}

export function clearNotice() {
  clearTimeout(noticeTimer);
  $('notice').replaceChildren();
  delete $('notice').dataset.kind;
}
