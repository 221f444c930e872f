// The live feed: one websocket to the notifier (docs/websocket.md).
//
// On every (re)connection the client says one hello — with the access token
// when signed in, else the device id — that subscribes, in one step, to the
// chosen city's topic and to what the resident follows, with `since`, the
// highest seq seen. A reconnection thus resumes everything at once: the
// server replays exactly what was missed on all those topics, each once (or
// answers `reset`, and the page reloads its snapshot), then confirms with one
// `subscribed`. Notifications are still deduplicated by seq (a set, not a
// high-water mark, so that none is lost), a cheap guard, and handed on with
// their seq for ordered display.
//
// The highest seq is committed (and kept in sessionStorage, so that a reload
// resumes too) only once the city subscription is confirmed: if the
// connection drops in the middle of a replay, the next one starts again from
// the last safe point.
//
// Reconnection: exponential backoff with jitter, 1 s doubling to 30 s; at
// once when the browser comes back online or the page becomes visible.

import { sessionGet, sessionSet } from './core.js';
import { session, signedIn, refresh } from './api.js';
import { deviceId } from './follows.js';

const WS_PATH = '/api/v1/notifier/ws';
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const STORE_LIVE = 'piazza.live';
const SEEN_MAX = 2000;
const EARLY_REFRESH_MS = 30_000;

const live = {
  ws: null,
  attempt: 0,
  timer: 0,
  held: false, // test hook: stay disconnected until restored
  topic: null, // the city topic wanted
  confirmed: null, // the city topic the server confirmed on this socket
  resuming: false, // between sending hello and its confirmation
  lastSeq: null, // committed: everything up to here has been handled
  pendingMax: null, // highest seq seen during the current resume
  seen: new Set(),
  floor: -1, // seqs at or below it were trimmed from seen: ignore them
  everLive: false,
  tokenRetry: 0,
  handlers: {},
  stats: { connects: 0, resumes: 0, missed: 0, resets: 0, duplicates: 0, resident: null },
};

// startLive starts the connection. handlers: onNotification(seq, n, {replayed}),
// onSubscribed({seq, missed, resumed}), onReset(seq), onState(state), onError(msg).
export function startLive(handlers) {
  live.handlers = handlers;
  if (navigator.webdriver) exposeTestHooks();
  connect();
}

export const liveState = () => (live.confirmed ? 'live' : live.ws ? 'connecting' : 'offline');
export const wasEverLive = () => live.everLive;
export const isSubscribed = (topic) => live.confirmed === topic;

// setTopic makes topic (city:<slug>) the subscribed one. A new city starts
// its own feed: the socket is renewed without resuming.
export function setTopic(topic) {
  if (live.topic === topic) return;
  const stored = readStored();
  live.topic = topic;
  live.seen.clear();
  live.floor = -1;
  live.pendingMax = null;
  live.lastSeq = stored?.topic === topic && Number.isSafeInteger(stored.seq) ? stored.seq : null;
  restart();
}

// restart renews the connection now (a new city, or the resident signed in
// or out), resuming from the committed seq.
export function restart() {
  const ws = live.ws;
  if (ws) {
    live.ws = null;
    live.confirmed = null;
    try { ws.close(1000); } catch { /* already closing */ }
  }
  live.attempt = 0;
  clearTimeout(live.timer);
  live.timer = 0;
  if (!live.held) connect();
}

export function reconnectNow() {
  if (live.ws || live.held) return;
  live.attempt = 0;
  connect();
}

function readStored() {
  try { return JSON.parse(sessionGet(STORE_LIVE) ?? 'null'); } catch { return null; }
}

function commit(seq) {
  if (!Number.isSafeInteger(seq)) return;
  if (live.lastSeq !== null && seq <= live.lastSeq) return;
  live.lastSeq = seq;
  if (live.topic) sessionSet(STORE_LIVE, JSON.stringify({ topic: live.topic, seq }));
}

function wsURL() {
  const url = new URL(WS_PATH, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

function state(s) {
  live.handlers.onState?.(s);
}

async function connect() {
  clearTimeout(live.timer);
  live.timer = 0;
  if (live.ws || live.held || !live.topic) return;
  let ws;
  try {
    ws = new WebSocket(wsURL());
  } catch (err) {
    console.warn('piazza: websocket', err);
    scheduleReconnect();
    return;
  }
  live.ws = ws;
  live.confirmed = null;
  live.stats.connects += 1;
  state('connecting');
  ws.addEventListener('open', async () => {
    if (live.ws !== ws) return;
    // A token about to expire is refreshed first (hello checks it).
    if (signedIn() && session.expiresAt - Date.now() < EARLY_REFRESH_MS) await refresh().catch(() => {});
    if (live.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
    hello(ws);
  });
  ws.addEventListener('message', (ev) => {
    if (live.ws === ws) onMessage(ws, ev.data);
  });
  ws.addEventListener('close', (ev) => {
    if (live.ws !== ws) return;
    live.ws = null;
    live.confirmed = null;
    live.resuming = false;
    live.pendingMax = null;
    if (ev.code === 4001) live.attempt = 0; // fell behind: resume at once
    scheduleReconnect();
  });
  // 'error' is always followed by 'close'.
}

function send(ws, msg) {
  if (ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(msg));
  return true;
}

// hello identifies the resident and subscribes to the city's topic and the
// resident's follows, resuming them all from the committed seq. asDevice
// speaks for the device even when signed in (the token was refused).
function hello(ws, { asDevice = false } = {}) {
  const msg = { type: 'hello', follows: true, topics: [live.topic] };
  if (!asDevice && signedIn() && session.access) msg.token = session.access;
  else msg.device = deviceId();
  if (live.lastSeq !== null) msg.since = live.lastSeq;
  live.resuming = true;
  live.pendingMax = null;
  send(ws, msg);
}

function scheduleReconnect() {
  state('offline');
  clearTimeout(live.timer);
  live.timer = 0;
  if (live.held) return;
  // Exponential backoff with jitter: the wait is drawn from [base/2, base],
  // base doubling from 1 s to 30 s; never below 1 s.
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** live.attempt);
  const delay = Math.max(BACKOFF_MIN_MS, base / 2 + Math.random() * (base / 2));
  live.attempt += 1;
  live.timer = setTimeout(connect, delay);
}

function onMessage(ws, raw) {
  let msg;
  try { msg = JSON.parse(raw); } catch { return; }
  switch (msg?.type) {
    case 'notification': onNotification(msg); break;
    case 'subscribed': onSubscribed(msg); break;
    case 'reset': onReset(msg); break;
    case 'welcome':
      live.stats.resident = typeof msg.resident === 'string' ? msg.resident : null;
      break;
    case 'error': onError(ws, msg); break;
    default: break; // the protocol may grow: unknown frames are ignored
  }
}

function onNotification(msg) {
  const seq = msg.seq;
  const n = msg.notification;
  if (!Number.isSafeInteger(seq) || !n || typeof n !== 'object') return;
  if (seq <= live.floor || live.seen.has(seq)) {
    live.stats.duplicates += 1;
    return;
  }
  live.seen.add(seq);
  if (live.seen.size > SEEN_MAX) {
    const sorted = [...live.seen].sort((a, b) => a - b);
    for (const s of sorted.slice(0, SEEN_MAX / 2)) live.seen.delete(s);
    live.floor = sorted[SEEN_MAX / 2 - 1];
  }
  const replayed = live.resuming;
  if (replayed) live.pendingMax = Math.max(live.pendingMax ?? seq, seq);
  else commit(seq);
  live.handlers.onNotification?.(seq, n, { replayed });
}

function onSubscribed(msg) {
  const topics = Array.isArray(msg.topics) ? msg.topics : [];
  if (!topics.includes(live.topic)) return; // the follows' confirmation
  const resumed = live.lastSeq !== null;
  live.resuming = false;
  if (live.pendingMax !== null) commit(live.pendingMax);
  live.pendingMax = null;
  commit(msg.seq);
  live.confirmed = live.topic;
  live.attempt = 0;
  live.everLive = true;
  const missed = Number.isSafeInteger(msg.missed) ? msg.missed : 0;
  if (resumed) { live.stats.resumes += 1; live.stats.missed += missed; }
  state('live');
  live.handlers.onSubscribed?.({ seq: msg.seq, missed, resumed });
}

function onReset(msg) {
  live.stats.resets += 1;
  if (Number.isSafeInteger(msg.seq)) {
    // Carry on from the server's position once the subscription confirms.
    live.pendingMax = Math.max(live.pendingMax ?? msg.seq, msg.seq);
  }
  live.handlers.onReset?.(msg.seq);
}

// onError handles a refused frame. A refused hello subscribed nothing, so
// each case ends in another hello (or a reconnection), never in silence.
function onError(ws, msg) {
  switch (msg.code) {
    case 'bad_token':
      if (Date.now() - live.tokenRetry > 60_000) {
        // The token expired between our check and the server's: refresh and
        // start again.
        live.tokenRetry = Date.now();
        refresh().catch(() => {}).finally(() => { if (live.ws === ws) restart(); });
        return;
      }
      // Refused again so soon: follow the city as the device meanwhile.
      hello(ws, { asDevice: true });
      break;
    case 'bad_since':
      // Our position is not in this stream (it was reset, say): start
      // afresh; the page reloads its snapshot on the subscription.
      forgetPosition();
      restart();
      return;
    case 'unavailable':
      // The follows could not be loaded: reconnect with backoff.
      try { ws.close(1000); } catch { /* already closing */ }
      return;
    default:
      break;
  }
  live.handlers.onError?.(msg);
}

function forgetPosition() {
  live.lastSeq = null;
  live.pendingMax = null;
  if (live.topic) sessionSet(STORE_LIVE, JSON.stringify({ topic: live.topic, seq: null }));
}

// Hooks for browser tests (only under automation): drop the socket and keep
// it down, then let it reconnect the normal way.
function exposeTestHooks() {
  window.__piazzaTest = {
    dropSocket() {
      live.held = true;
      const ws = live.ws;
      if (ws) ws.close(4000, 'test');
      return true;
    },
    restoreSocket() {
      live.held = false;
      reconnectNow();
      return true;
    },
    get stats() { return { ...live.stats, lastSeq: live.lastSeq, state: liveState() }; },
  };
}
