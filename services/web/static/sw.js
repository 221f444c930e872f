// Piazza's service worker: the app shell works offline.
//
// - Install: precache the whole client (SHELL). The server fills in SHELL and
//   VERSION when it serves this file (services/web/web.go): VERSION is a hash
//   of every file, so any change to the client installs a new worker with a
//   new cache, and the old cache is deleted on activation.
// - Static files (same origin, not /api): cache first, falling back to the
//   network; page navigations get the cached shell (/), so the app opens
//   offline.
// - /api: network first. Public reads (listings and calendar GETs without a
//   token) are kept as a fallback for when the network is gone; everything
//   else (tokens, device ids, writes) only ever goes to the network.
// - The websocket is not a fetch: the worker never sees it.

const VERSION = 'dev';
const SHELL = [];
const CACHE = `piazza-shell-${VERSION}`;
const API_CACHE = 'piazza-api';
const CACHEABLE_API = ['/api/v1/listings/', '/api/v1/calendar/'];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('piazza-shell-') && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/')) {
    event.respondWith(networkFirst(req, url));
    return;
  }
  if (['/healthz', '/readyz', '/metrics'].includes(url.pathname)) return;
  event.respondWith(cacheFirst(req));
});

async function cacheFirst(req) {
  const cache = await caches.open(CACHE);
  const key = req.mode === 'navigate' ? '/' : req;
  const hit = await cache.match(key, { ignoreSearch: req.mode === 'navigate' });
  if (hit) return hit;
  try {
    return await fetch(req);
  } catch (err) {
    if (req.mode === 'navigate') {
      const shell = await cache.match('/');
      if (shell) return shell;
    }
    throw err;
  }
}

function cacheable(req, url) {
  return !req.headers.has('Authorization') && !req.headers.has('X-Piazza-Device')
    && !url.searchParams.has('token')
    && CACHEABLE_API.some((p) => url.pathname.startsWith(p));
}

async function networkFirst(req, url) {
  const keep = cacheable(req, url);
  try {
    const res = await fetch(req);
    // An answer marked no-store (a submitter's status, which its URL's token
    // unlocks) is never kept, whatever its path.
    if (keep && res.ok && !/no-store/i.test(res.headers.get('Cache-Control') || '')) {
      const copy = res.clone();
      caches.open(API_CACHE).then((c) => c.put(req, copy)).catch(() => {});
    }
    return res;
  } catch (err) {
    if (keep) {
      const hit = await caches.match(req, { cacheName: API_CACHE });
      if (hit) return hit;
    }
    return Response.error(); // the page reports a network failure
  }
}
