// The HTTP client: JSON in and out, problem+json errors, the session (access
// token in memory, refresh token in localStorage), a transparent refresh and
// one retry on 401, and an Idempotency-Key on every POST.

import { API, AppError, storageGet, storageSet, storageRemove } from './core.js';

const ACCOUNTS = `${API}/accounts`;
export const LISTINGS = `${API}/listings`;
const STORE_REFRESH = 'piazza.refresh';
const REFRESH_LOCK = 'piazza.refresh';
const EARLY_REFRESH_MS = 30_000;

// session is who is signed in. The access token never touches storage.
export const session = { access: null, expiresAt: 0, account: null };

const listeners = new Set();
export function onSessionChange(fn) { listeners.add(fn); }
function emit(reason) { for (const fn of listeners) fn(reason); }

export const signedIn = () => Boolean(session.access && session.account);
export const hasRole = (role) => Boolean(session.account?.roles?.includes(role));
export const isManager = () => hasRole('manager') || hasRole('admin');
export const managesCity = (slug) => hasRole('admin') || Boolean(session.account?.cities?.includes(slug));

function useTokens(tok) {
  if (!tok?.access_token || !tok?.refresh_token) throw new AppError({ key: 'error.bad_response' });
  session.access = tok.access_token;
  session.expiresAt = Date.now() + lifetime(tok.access_token);
  session.account = tok.account ?? null;
  storageSet(STORE_REFRESH, tok.refresh_token);
  emit('signin');
}

// lifetime is how long an access token lives (exp − iat), measured on our
// own clock from now: the server's clock and the browser's may disagree.
function lifetime(jwt) {
  const fallback = 14 * 60_000;
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    const ms = (claims.exp - claims.iat) * 1000;
    return Number.isFinite(ms) && ms > 0 ? ms : fallback;
  } catch {
    return fallback;
  }
}

function forget(reason) {
  const had = signedIn();
  session.access = null;
  session.expiresAt = 0;
  session.account = null;
  storageRemove(STORE_REFRESH);
  if (had || reason === 'expired') emit(reason);
}

// newKey returns a fresh idempotency key: one per user action.
export function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// actionKeys keeps the key of an action that has not had a definite answer
// yet (network failure, 5xx): submitting the same action with the same body
// again reuses it, so that the server replays instead of acting twice.
const pendingKeys = new Map(); // scope -> {body, key}

export function keyFor(scope, body) {
  const json = JSON.stringify(body ?? null);
  const prev = pendingKeys.get(scope);
  if (prev && prev.body === json) return prev.key;
  const key = newKey();
  pendingKeys.set(scope, { body: json, key });
  return key;
}

export function settleKey(scope, err) {
  // Keep the key only when the outcome is unknown.
  const unknown = err && (!(err instanceof AppError) || err.key === 'error.network' || err.status >= 500
    || (err.status === 409 && /in flight|being processed|still/i.test(err.detail ?? '')));
  if (unknown) return;
  pendingKeys.delete(scope);
}

async function send(method, url, { body, key, auth, signal, extra }) {
  const headers = { Accept: 'application/json, application/problem+json', ...extra };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (key) headers['Idempotency-Key'] = key;
  if (auth && session.access) headers.Authorization = `Bearer ${session.access}`;
  try {
    return await fetch(url, {
      method, headers, signal, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new AppError({ key: 'error.network' });
  }
}

async function problem(res) {
  let p = null;
  if (/json/i.test(res.headers.get('content-type') ?? '')) {
    try { p = await res.json(); } catch { /* nothing worth showing */ }
  }
  return new AppError({
    key: 'error.http',
    status: res.status,
    title: typeof p?.title === 'string' ? p.title : undefined,
    detail: typeof p?.detail === 'string' ? p.detail : undefined,
    code: typeof p?.code === 'string' ? p.code : undefined,
    errors: p?.errors,
    requestId: typeof p?.request_id === 'string' ? p.request_id : res.headers.get('X-Request-ID') ?? undefined,
  });
}

async function decode(res) {
  if (res.status === 204) return null;
  try {
    return await res.json();
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new AppError({ key: 'error.bad_response' });
  }
}

// refresh trades the stored refresh token for new tokens. Concurrent callers
// share one request; tabs take turns through a Web Lock, and each reads the
// token from storage inside the lock, so a rotated token is never presented
// twice (that would sign out every session of the sign-in).
let refreshing = null;

export function refresh() {
  if (!refreshing) {
    const run = () => doRefresh();
    const p = navigator.locks?.request ? navigator.locks.request(REFRESH_LOCK, run) : run();
    refreshing = p.finally(() => { refreshing = null; });
  }
  return refreshing;
}

async function doRefresh() {
  const token = storageGet(STORE_REFRESH);
  if (!token) { forget('expired'); return false; }
  const res = await send('POST', `${ACCOUNTS}/refresh`, { body: { refresh_token: token }, auth: false });
  if (res.ok) {
    useTokens(await decode(res));
    return true;
  }
  if (res.status >= 500 || res.status === 429) throw await problem(res);
  forget('expired');
  return false;
}

// api sends one request to the API. POSTs always carry an Idempotency-Key
// (the caller's, for a user action, else a fresh one), and the retry after a
// refresh reuses it.
export async function api(method, path, { body, key, signal, auth = true, query, headers } = {}) {
  let url = path.startsWith('/') ? path : `${LISTINGS}/${path}`;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') q.set(k, String(v));
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  if (method === 'POST' && !key) key = newKey();
  if (auth && session.access && session.expiresAt - Date.now() < EARLY_REFRESH_MS) {
    await refresh().catch(() => {});
  }
  let res = await send(method, url, { body, key, auth, signal, extra: headers });
  if (res.status === 401 && auth && storageGet(STORE_REFRESH)) {
    if (await refresh()) res = await send(method, url, { body, key, auth, signal, extra: headers });
  }
  if (!res.ok) {
    const err = await problem(res);
    if (res.status === 401 && auth && session.access) forget('expired');
    throw err;
  }
  return decode(res);
}

// allPages follows next_cursor up to max pages and returns every item.
export async function allPages(path, query = {}, { max = 10, signal } = {}) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < max; i += 1) {
    const page = await api('GET', path, { query: { ...query, limit: 100, cursor }, signal });
    items.push(...(Array.isArray(page?.items) ? page.items : []));
    cursor = page?.next_cursor;
    if (!cursor) break;
  }
  return items;
}

// ---------- accounts ----------

export async function signIn(email, password, key) {
  useTokens(await api('POST', `${ACCOUNTS}/signin`, { body: { email, password }, key, auth: false }));
}

export async function signUp(name, email, password, key) {
  useTokens(await api('POST', `${ACCOUNTS}/signup`, { body: { name, email, password }, key, auth: false }));
}

export async function signOut() {
  const token = storageGet(STORE_REFRESH);
  forget('signout');
  if (token) {
    try { await api('POST', `${ACCOUNTS}/signout`, { body: { refresh_token: token }, auth: false }); } catch { /* signed out here anyway */ }
  }
}

// restore signs in again from a stored refresh token, at boot.
export async function restore() {
  if (!storageGet(STORE_REFRESH)) return false;
  try { return await refresh(); } catch { return false; }
}

// Another tab signed out: follow.
window.addEventListener('storage', (ev) => {
  if (ev.key === STORE_REFRESH && ev.newValue === null && signedIn()) {
    session.access = null; session.account = null; session.expiresAt = 0;
    emit('signout');
  }
});
