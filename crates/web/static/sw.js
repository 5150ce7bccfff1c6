// Satchel webmail's service worker: reading with no network. Pages of mail
// are fetched from the network first and a copy kept; with no network the
// copy is shown. The list page asks for its recent messages to be kept
// ahead of time (fetched with X-Satchel-Prefetch, so the server does not
// mark them read). A logout clears it all (Clear-Site-Data).
'use strict';
const PAGES = 'satchel-pages-v1';
const STATIC = 'satchel-static-v1';
const MAX_PAGES = 500;

self.addEventListener('install', e => {
    e.waitUntil(caches.open(STATIC).then(c => c.addAll(['/static/app.css', '/static/app.js'])));
    self.skipWaiting();
});
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));

// Lists, messages, their frames, and their reply forms; a page is kept
// under its path and query.
const keep = url => (/^\/mail\/\d+(\/\d+(\/html)?)?$/.test(url.pathname) && !url.search)
    || (url.pathname === '/compose' && /^\?reply=\d+:\d+$/.test(url.search));

async function remember(request, response) {
    if (!response.ok || response.redirected) return;
    const cache = await caches.open(PAGES);
    await cache.put(request, response);
    const keys = await cache.keys();
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_PAGES))) await cache.delete(old);
}

self.addEventListener('fetch', e => {
    const url = new URL(e.request.url);
    if (e.request.method !== 'GET' || url.origin !== location.origin) return;
    if (url.pathname.startsWith('/static/')) {
        e.respondWith(fetch(e.request).then(r => {
            const copy = r.clone();
            caches.open(STATIC).then(c => c.put(e.request, copy));
            return r;
        }).catch(() => caches.match(e.request)));
        return;
    }
    if (!keep(url)) return;
    e.respondWith((async () => {
        try {
            const r = await fetch(e.request);
            e.waitUntil(remember(url.pathname + url.search, r.clone()));
            return r;
        } catch (err) {
            const kept = await caches.match(url.pathname + url.search, { cacheName: PAGES });
            if (kept) return kept;
            return new Response('You are offline, and this page was not kept on this device.',
                { status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
        }
    })());
});

// From a list page: {keep: [paths]} to fetch and keep now.
self.addEventListener('message', e => {
    const paths = (e.data && e.data.keep) || [];
    e.waitUntil((async () => {
        const cache = await caches.open(PAGES);
        for (const path of paths.slice(0, 400)) {
            if (await cache.match(path)) continue;
            try {
                const r = await fetch(path, { headers: { 'X-Satchel-Prefetch': '1' }, credentials: 'same-origin' });
                await remember(path, r);
            } catch (err) {
                return; // offline again
            }
        }
        if (e.source) e.source.postMessage({ kept: paths.length });
    })());
});
