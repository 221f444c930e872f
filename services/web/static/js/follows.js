// Follows: what the resident wants to hear about (a city, a square, a
// market, a vendor), kept by the notifier. An anonymous resident is a device
// id — a random UUID made once and kept in localStorage, sent as
// X-Piazza-Device — and a signed-in one is the account; on signing in, the
// device's follows move to the account (POST /follows/claim, once).
//
// Follow buttons are real toggle buttons (aria-pressed) built by
// followButton(); one delegated click listener handles them all, so pages
// that re-render by morphing keep working.
//
// Hooks for browser tests:
//   button[data-follow-topic]            aria-pressed="true" when followed,
//                                        aria-busy="true" while saving
//   localStorage['piazza.device']        the device id

import { h, t, storageGet, storageSet, notify, errorText, API } from './core.js';
import { api, session, signedIn, newKey, onSessionChange } from './api.js';

const NOTIFIER = `${API}/notifier`;
const STORE_DEVICE = 'piazza.device';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// deviceId returns this browser's device id, making it on first use.
export function deviceId() {
  let id = storageGet(STORE_DEVICE);
  if (!id || !UUID_RE.test(id)) {
    id = newKey(); // crypto.randomUUID where there is one
    storageSet(STORE_DEVICE, id);
  }
  return id;
}

// residentHeaders says who is asking: the account (api() adds its token) or
// the device.
export function residentHeaders() {
  return signedIn() ? {} : { 'X-Piazza-Device': deviceId() };
}

export function notifierApi(method, path, opts = {}) {
  return api(method, `${NOTIFIER}/${path}`, { ...opts, headers: { ...residentHeaders(), ...opts.headers } });
}

const follows = {
  topics: new Set(),
  loadedFor: null, // who the set belongs to ('device:…' or 'account:…')
  loading: null,
  pending: new Set(), // topics being saved
};

const listeners = new Set();
export function onFollowsChange(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(); }

const who = () => (signedIn() ? `account:${session.account.id}` : `device:${deviceId()}`);

export const isFollowing = (topic) => follows.topics.has(topic);
export const followedTopics = () => [...follows.topics];

// loadFollows fetches the resident's follows (once per resident).
export function loadFollows({ force = false } = {}) {
  const w = who();
  if (!force && follows.loadedFor === w) return Promise.resolve();
  if (!force && follows.loading?.who === w) return follows.loading.p;
  const p = notifierApi('GET', 'follows').then((body) => {
    if (who() !== w) return;
    follows.topics = new Set((Array.isArray(body?.items) ? body.items : []).map((i) => i?.topic).filter((x) => typeof x === 'string'));
    follows.loadedFor = w;
    changed();
  }, (err) => {
    console.warn('piazza: follows', err);
  }).finally(() => { if (follows.loading?.p === p) follows.loading = null; });
  follows.loading = { who: w, p };
  return p;
}

async function toggle(topic) {
  if (follows.pending.has(topic)) return;
  const on = !follows.topics.has(topic);
  follows.pending.add(topic);
  if (on) follows.topics.add(topic); else follows.topics.delete(topic);
  changed();
  try {
    await notifierApi(on ? 'PUT' : 'DELETE', `follows/${encodeURIComponent(topic)}`);
    notify(on ? t('follow.done') : t('follow.undone'));
  } catch (err) {
    if (on) follows.topics.delete(topic); else follows.topics.add(topic);
    notify(t('follow.failed', { reason: errorText(err) }), 'error');
  } finally {
    follows.pending.delete(topic);
    changed();
  }
}

// followButton builds a toggle button for topic. label is the button's
// accessible name (already translated; it contains the visible word, so that
// speech users can say what they see).
export function followButton(topic, label) {
  const pressed = follows.topics.has(topic);
  return h('button', {
    type: 'button',
    class: 'follow',
    'aria-pressed': pressed ? 'true' : 'false',
    'aria-busy': follows.pending.has(topic) ? 'true' : null,
    'aria-label': label,
    dataset: { followTopic: topic, focusKey: `follow-${topic}` },
  },
  h('span', { class: 'follow-icon', 'aria-hidden': 'true' }),
  // The visible word stays the same (the state is aria-pressed, shown by a
  // filled star and button); the accessible name starts with it.
  h('span', { class: 'follow-text' }, t('follow.follow')));
}

// syncButtons updates every follow button in the document in place.
export function syncButtons(root = document) {
  for (const b of root.querySelectorAll('button[data-follow-topic]')) {
    const topic = b.dataset.followTopic;
    const pressed = follows.topics.has(topic);
    b.setAttribute('aria-pressed', pressed ? 'true' : 'false');
    if (follows.pending.has(topic)) b.setAttribute('aria-busy', 'true'); else b.removeAttribute('aria-busy');
  }
}

// claim moves the device's follows to the account that just signed in.
async function claim() {
  try {
    await api('POST', `${NOTIFIER}/follows/claim`, { headers: { 'X-Piazza-Device': deviceId() } });
  } catch (err) {
    console.warn('piazza: claiming follows', err);
  }
}

let lastAccount = null;

// initFollows wires the follow buttons and the claim; onResident runs when
// the resident changes (signed in or out), once the follows are settled.
export function initFollows(onResident) {
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest?.('button[data-follow-topic]');
    if (b) toggle(b.dataset.followTopic);
  });
  onFollowsChange(() => syncButtons());
  onSessionChange(async () => {
    const id = signedIn() ? session.account.id : null;
    if (id === lastAccount) return; // a token refresh: same resident
    const signingIn = id !== null;
    lastAccount = id;
    follows.topics = new Set();
    follows.loadedFor = null;
    changed();
    if (signingIn) await claim();
    await loadFollows();
    onResident?.();
  });
}
