// Satchel webmail: pages swapped in without a reload, live lists
// (server-sent events from the change feed), actions in place and offline,
// drag and drop, drafts saved as you type, Gmail-like keyboard shortcuts.
// Every page works without this file.
(() => {
    'use strict';
    if (!document.querySelector('main')?.dataset.page) return;
    // What the page shown is (data-page on <main>), set by setup().
    let page;
    let mailbox;

    // --- Offline: keep the recent messages of the list on this device. ----
    const DAYS = Number(localStorage.getItem('satchel.offlineDays') || '14');
    function keepRecent() {
        const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
        if (!worker || page !== 'list' || DAYS <= 0) return;
        const since = Date.now() / 1000 - DAYS * 86400;
        const paths = [...document.querySelectorAll('table#messages tr.message')]
            .filter(r => Number(r.dataset.unix || 0) >= since)
            .map(r => r.querySelector('td.subject a')?.getAttribute('href'))
            .filter(Boolean);
        // And each one's reply form, so a reply can be written offline.
        const replies = paths.map(p => `/compose?reply=${p.split('/').slice(2).join(':')}`);
        worker.postMessage({ keep: [...paths, ...replies] });
    }
    if ('serviceWorker' in navigator) {
        navigator.serviceWorker.register('/sw.js').then(() => navigator.serviceWorker.ready).then(() => {
            if (navigator.serviceWorker.controller) keepRecent();
            else navigator.serviceWorker.addEventListener('controllerchange', keepRecent, { once: true });
        }).catch(() => {});
    }
    function setupOfflineDays() {
        const days = document.querySelector('#offline-days');
        if (!days) return;
        days.value = String(DAYS);
        days.addEventListener('change', () => localStorage.setItem('satchel.offlineDays', String(Number(days.value) || 0)));
    }

    // --- Live: what changed elsewhere shows here without a reload. -------
    // One fetch for a burst of changes; the list is swapped in when any of
    // them asked for it.
    let pending = null;
    let listWanted = false;
    let posts = 0;
    // Bumped by every action and page change, before and after.
    let epoch = 0;
    function refresh(listToo, delay = 100) {
        listWanted = listWanted || listToo;
        if (pending) return;
        pending = setTimeout(async () => {
            pending = null;
            // Not under a drag: the row held would be swapped away.
            if (dragging) { refresh(listWanted, 300); return; }
            const listToo = listWanted;
            listWanted = false;
            const asked = posts;
            const at = epoch;
            try {
                const r = await fetch(location.href, { credentials: 'same-origin' });
                // A page asked for before the user's last action or page
                // change may not show it: the refresh after it swaps instead.
                if (!r.ok || r.redirected || at !== epoch || r.url !== location.href) return;
                const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
                swap(doc, 'nav#mailboxes');
                if (listToo && page === 'list') {
                    const picked = checked();
                    swap(doc, 'main');
                    for (const box of document.querySelectorAll('table#messages input[name=uid]')) {
                        box.checked = picked.has(box.value);
                    }
                    mark(cursor);
                }
                // Which of the user's actions the page shows now.
                document.documentElement.dataset.shown = asked;
            } catch (e) {
                // Offline or restarting: the next event tries again.
            }
        }, delay);
    }
    function swap(doc, selector) {
        const here = document.querySelector(selector);
        const there = doc.querySelector(selector);
        if (here && there) here.replaceWith(there);
    }
    function checked() {
        return new Set([...document.querySelectorAll('table#messages input[name=uid]:checked')].map(b => b.value));
    }
    if (window.EventSource) {
        const events = new EventSource('/events');
        events.addEventListener('change', e => {
            refresh(page === 'list' && (e.data === mailbox || e.data === '*'));
        });
    }

    // --- Actions without a reload; made offline, kept and sent later. ----
    // A list's actions (and a drag onto a mailbox) are posted by fetch and
    // the list swapped in place. With no network they wait in IndexedDB,
    // as do messages sent and changes made on a message page offline, and
    // go out in order when the network is back.
    const KEEP = 'requests';
    function db() {
        return new Promise((ok, fail) => {
            const r = indexedDB.open('satchel-outbox', 1);
            r.onupgradeneeded = () => r.result.createObjectStore(KEEP, { autoIncrement: true });
            r.onsuccess = () => ok(r.result);
            r.onerror = () => fail(r.error);
        });
    }
    async function store(mode, fn) {
        const d = await db();
        return new Promise((ok, fail) => {
            const t = d.transaction(KEEP, mode);
            const out = [];
            fn(t.objectStore(KEEP), out);
            t.oncomplete = () => { d.close(); ok(out); };
            t.onerror = () => { d.close(); fail(t.error); };
        });
    }
    const keepForLater = (url, entries) => store('readwrite', s => s.add({ url, entries }));
    const waiting = () => store('readonly', (s, out) => {
        s.openCursor().onsuccess = e => {
            const c = e.target.result;
            if (c) { out.push([c.key, c.value]); c.continue(); }
        };
    });
    function bodyOf(entries) {
        if (entries.some(([, v]) => v instanceof Blob)) {
            const f = new FormData();
            for (const [k, v] of entries) f.append(k, v);
            return f;
        }
        return new URLSearchParams(entries.map(([k, v]) => [k, String(v)]));
    }
    const token = () => document.querySelector('input[name=csrf]')?.value;
    function say(text, id = 'outbox') {
        let box = document.getElementById(id);
        if (!text) { box?.remove(); return; }
        if (!box) {
            box = document.createElement('p');
            box.id = id;
            box.className = 'banner';
            box.setAttribute('role', 'status');
            document.body.append(box);
        }
        box.textContent = text;
    }
    async function showWaiting() {
        const n = window.indexedDB ? (await waiting()).length : 0;
        say(n ? `${n} change${n > 1 ? 's' : ''} made offline will be sent when the network is back.` : '');
    }
    const refused = async r => {
        const text = await r.text();
        const doc = new DOMParser().parseFromString(text, 'text/html');
        return (doc.querySelector('.error')?.textContent || doc.body.textContent || text).trim().slice(0, 300);
    };
    let sending = false;
    async function sendWaiting() {
        if (sending || !navigator.onLine || !window.indexedDB || !token()) return;
        sending = true;
        let done = 0;
        try {
            for (const [key, item] of await waiting()) {
                // The token of this session: a login since may have changed it.
                const entries = item.entries.map(([k, v]) => [k, k === 'csrf' ? token() : v]);
                let r;
                try {
                    r = await fetch(item.url, { method: 'POST', body: bodyOf(entries), credentials: 'same-origin' });
                } catch (e) {
                    break; // offline again
                }
                if (r.redirected && new URL(r.url).pathname === '/login') break;
                await store('readwrite', s => s.delete(key));
                done++;
                if (!r.ok) say(`A change made offline was refused: ${await refused(r)}`, 'refused');
            }
        } finally {
            sending = false;
        }
        await showWaiting();
        if (done) refresh(page === 'list');
    }
    window.addEventListener('online', sendWaiting);
    if (window.indexedDB) sendWaiting().catch(() => {});

    async function post(url, entries) {
        posts++;
        epoch++;
        let r;
        try {
            r = await fetch(url, { method: 'POST', body: bodyOf(entries), credentials: 'same-origin' });
        } catch (e) {
            await keepForLater(url, entries);
            const gone = new Set(entries.filter(([k]) => k === 'uid').map(([, v]) => v));
            const moved = entries.some(([k, v]) => k === 'action' && !['read', 'unread', 'flag', 'unflag'].includes(v));
            for (const row of rows()) {
                if (moved && gone.has(row.querySelector('input[name=uid]').value)) row.remove();
            }
            await showWaiting();
            return;
        }
        // A page fetched while the action was on its way may not show it.
        document.documentElement.dataset.posts = ++posts;
        epoch++;
        if (r.redirected && new URL(r.url).pathname === '/login') { location.href = '/login'; return; }
        if (!r.ok) { say(await refused(r), 'refused'); return; }
        say('', 'refused');
        refresh(page === 'list', 0);
    }
    let resubmit = false;
    document.addEventListener('submit', async e => {
        // Attributes, never form.id or form.action: a control named "id",
        // "action" or "target" would answer instead.
        const form = e.target;
        const offline = !navigator.onLine;
        if (form.getAttribute('id') === 'compose') clearTimeout(draftTimer);
        if (form.getAttribute('id') === 'compose' && !resubmit && (offline || saving)) {
            e.preventDefault();
            if (!offline) {
                // Sent while a draft is being saved: after it, with its uid.
                await saving;
                resubmit = true;
                form.requestSubmit(e.submitter);
                resubmit = false;
                return;
            }
            await keepForLater(form.getAttribute('action'), [...new FormData(form, e.submitter)]);
            const main = document.querySelector('main');
            main.textContent = '';
            const p = document.createElement('p');
            p.className = 'saved';
            p.setAttribute('role', 'status');
            p.textContent = 'Kept on this device: it will be sent when the network is back.';
            main.append(p);
            await showWaiting();
            return;
        }
        const list = form.getAttribute('id') === 'actions';
        if (list || (form.getAttribute('id') === 'message-actions' && offline)) {
            e.preventDefault();
            await post(form.getAttribute('action'), [...new FormData(form, e.submitter)]);
            if (!list) go(document.querySelector('p.back a')?.href);
            return;
        }
        // Every other form but logging in and out: fetched, and the page it
        // answers with swapped in.
        if (form.getAttribute('id') === 'login' || form.getAttribute('id') === 'logout' || form.getAttribute('target')) return;
        e.preventDefault();
        const url = form.getAttribute('action') || location.pathname;
        const data = new FormData(form, e.submitter);
        if ((form.getAttribute('method') || 'get').toLowerCase() === 'get') {
            visit(`${url}?${new URLSearchParams(data)}`);
            return;
        }
        const body = form.getAttribute('enctype') === 'multipart/form-data' ? data : new URLSearchParams(data);
        let r;
        epoch++;
        try {
            r = await fetch(url, { method: 'POST', body, credentials: 'same-origin' });
        } catch (err) {
            say('The network is gone: nothing was done. Try again when it is back.', 'refused');
            return;
        }
        await show(r);
    });

    // --- Pages without a reload: a link of the webmail is fetched and the
    // page's parts (top bar, mailboxes, main) swapped in; the address bar
    // and Back work as usual. Anything else loads as a page would.
    let visits = 0;
    async function show(r) {
        epoch++;
        const d = document.documentElement.dataset;
        const type = r.headers.get('content-type') || '';
        const doc = type.startsWith('text/html') && r.url && new URL(r.url).pathname !== '/login'
            ? new DOMParser().parseFromString(await r.text(), 'text/html') : null;
        if (!doc?.querySelector('main')?.dataset.page) {
            if (r.ok || r.redirected) location.href = r.url;
            else say(await refused(r), 'refused');
            d.status = r.status;
            d.visits = ++visits;
            return;
        }
        say('', 'refused');
        say('', 'draft-saved');
        document.title = doc.title;
        for (const part of ['header.top', 'nav#mailboxes', 'main']) swap(doc, part);
        if (r.url !== location.href) history.pushState(null, '', r.url);
        epoch++;
        window.scrollTo(0, 0);
        setup();
        d.status = r.status;
        d.visits = ++visits;
    }
    async function visit(url) {
        let r;
        epoch++;
        try {
            r = await fetch(url, { credentials: 'same-origin' });
        } catch (e) {
            location.href = url;
            return;
        }
        await show(r);
    }
    window.addEventListener('popstate', () => visit(location.href));
    const inApp = a => a && !a.target && !a.hasAttribute('download') && a.origin === location.origin
        && /^\/(mail|compose|settings|filters|mailboxes|admin)(\/|$)/.test(a.pathname)
        && !/\/(raw|html)$|\/attachment\//.test(a.pathname);
    document.addEventListener('click', e => {
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        const a = e.target.closest?.('a[href]');
        if (!inApp(a) || (a.hash && a.pathname === location.pathname)) return;
        e.preventDefault();
        visit(a.href);
    });

    // Drag messages onto a mailbox to move them (the picked ones, when the
    // dragged row is among them).
    const UIDS = 'application/x-satchel-uids';
    const dropTarget = e => e.target.closest?.('nav#mailboxes li:not(.current)');
    let dragging = false;
    // dragend never comes when the dragged row is gone: a drop or a new
    // page ends the drag too.
    document.addEventListener('dragend', () => { dragging = false; });
    document.addEventListener('drop', () => { dragging = false; }, true);
    document.addEventListener('dragstart', e => {
        const row = e.target.closest?.('table#messages tr.message');
        if (!row) return;
        dragging = true;
        const box = row.querySelector('input[name=uid]');
        const picked = checked();
        e.dataTransfer.setData(UIDS, (box.checked && picked.size ? [...picked] : [box.value]).join(','));
        e.dataTransfer.effectAllowed = 'move';
    });
    document.addEventListener('dragover', e => {
        const li = dropTarget(e);
        if (li && e.dataTransfer.types.includes(UIDS)) { e.preventDefault(); li.classList.add('drop'); }
    });
    document.addEventListener('dragleave', e => dropTarget(e)?.classList.remove('drop'));
    document.addEventListener('drop', e => {
        const li = dropTarget(e);
        const uids = li && e.dataTransfer.getData(UIDS);
        const form = document.querySelector('form#actions');
        if (!uids || !form) return;
        e.preventDefault();
        li.classList.remove('drop');
        const to = li.querySelector('a').getAttribute('href').split('/').pop();
        post(form.getAttribute('action'), [['csrf', token()], ['action', 'move'], ['to', to], ...uids.split(',').map(u => ['uid', u])]);
    });

    // Compose: files dropped on the form are attached; the draft is saved
    // to Drafts a moment after each change.
    let saving = null;
    let draftTimer = null;
    function setupCompose() {
        const compose = document.querySelector('form#compose');
        if (!compose) return;
        const files = compose.querySelector('input[type=file]');
        compose.addEventListener('dragover', e => {
            if (e.dataTransfer.types.includes('Files')) { e.preventDefault(); compose.classList.add('drop'); }
        });
        compose.addEventListener('dragleave', () => compose.classList.remove('drop'));
        compose.addEventListener('drop', e => {
            if (!e.dataTransfer.files.length) return;
            e.preventDefault();
            compose.classList.remove('drop');
            const all = new DataTransfer();
            for (const f of [...files.files, ...e.dataTransfer.files]) all.items.add(f);
            files.files = all.files;
            files.dispatchEvent(new Event('change', { bubbles: true }));
        });
        const later = () => { clearTimeout(draftTimer); draftTimer = setTimeout(saveDraft, 1500); };
        compose.addEventListener('input', e => { if (e.target !== files) later(); });
        files.addEventListener('change', later);
        async function saveDraft() {
            if (!navigator.onLine || saving) { if (saving) later(); return; }
            const entries = [...new FormData(compose)].filter(([k]) => k !== 'action');
            entries.push(['action', 'draft']);
            const picked = files.files;
            saving = (async () => {
                const r = await fetch(compose.getAttribute('action'), { method: 'POST', body: bodyOf(entries), credentials: 'same-origin' });
                const uid = r.ok && new URL(r.url).searchParams.get('draft');
                if (!uid) return;
                const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
                compose.querySelector('input[name=draft_uid]').value = uid;
                // The files are in the draft now, listed with their Remove boxes.
                if (files.files === picked) files.value = '';
                swap(doc, '#attached');
                say(`Draft saved in Drafts at ${new Date().toLocaleTimeString()}.`, 'draft-saved');
            })().catch(() => {});
            await saving;
            saving = null;
        }
    }

    // --- Keyboard. --------------------------------------------------------
    const rows = () => [...document.querySelectorAll('table#messages tr.message')];
    let cursor = -1;
    function mark(i) {
        const all = rows();
        if (!all.length || i < 0) return;
        cursor = Math.min(i, all.length - 1);
        all.forEach((r, j) => r.classList.toggle('cursor', j === cursor));
        all[cursor].scrollIntoView({ block: 'nearest' });
    }
    const current = () => rows()[cursor];
    const go = href => {
        if (!href) return;
        const a = Object.assign(document.createElement('a'), { href });
        if (inApp(a)) visit(a.href);
        else location.href = href;
    };
    const linkTo = text => [...document.querySelectorAll('#write-actions a')].find(a => a.textContent.trim() === text)?.href;

    // Presses an action button for the message shown, or the list's
    // cursor row alone.
    function act(action, to) {
        let form;
        if (page === 'message') {
            form = document.querySelector('form#message-actions');
        } else {
            const row = current();
            if (!row) return;
            for (const box of document.querySelectorAll('table#messages input[name=uid]')) box.checked = false;
            row.querySelector('input[name=uid]').checked = true;
            form = document.querySelector('form#actions');
        }
        if (!form) return;
        if (to !== undefined) form.querySelector('select[name=to]').value = to;
        form.querySelector(`button[value=${action}]`)?.click();
    }
    // Move: the Move menu gets the focus; Enter there moves.
    function chooseMove() {
        if (page === 'list' && current()) {
            for (const box of document.querySelectorAll('table#messages input[name=uid]')) box.checked = false;
            current().querySelector('input[name=uid]').checked = true;
        }
        document.querySelector('select[name=to]')?.focus();
    }

    const KEYS = [
        ['j / k', 'next / previous message in the list'],
        ['o or Enter', 'open the message'],
        ['u', 'back to the list'],
        ['r / a / f', 'reply / reply all / forward'],
        ['e', 'archive (from INBOX to Archive)'],
        ['v', 'move: choose the mailbox, then Enter'],
        ['#', 'delete'],
        ['!', 'junk'],
        ['c', 'write a new message'],
        ['/', 'search'],
        ['g then i', 'go to INBOX'],
        ['?', 'show or hide this list'],
    ];
    function help() {
        const shown = document.getElementById('keys');
        if (shown) { shown.remove(); return; }
        const box = document.createElement('div');
        box.id = 'keys';
        box.setAttribute('role', 'dialog');
        box.setAttribute('aria-label', 'Keyboard shortcuts');
        const h = document.createElement('h2');
        h.textContent = 'Keyboard shortcuts';
        const dl = document.createElement('dl');
        for (const [k, what] of KEYS) {
            const dt = document.createElement('dt');
            dt.textContent = k;
            const dd = document.createElement('dd');
            dd.textContent = what;
            dl.append(dt, dd);
        }
        box.append(h, dl);
        document.body.append(box);
    }

    let g = false;
    document.addEventListener('keydown', e => {
        if (e.ctrlKey || e.metaKey || e.altKey) return;
        const t = e.target;
        if (e.key === 'Enter' && t.matches?.('select[name=to]')) {
            e.preventDefault();
            if (page === 'list' && !checked().size && current()) current().querySelector('input[name=uid]').checked = true;
            t.form?.querySelector('button[value=move]')?.click();
            return;
        }
        if (t.closest && t.closest('input, textarea, select, [contenteditable]')) return;
        if (e.key === 'Enter' && t.closest && t.closest('button, a')) return;
        const k = e.key;
        if (g) {
            g = false;
            if (k === 'i') go(document.querySelector('nav#mailboxes a')?.href);
            e.preventDefault();
            return;
        }
        switch (k) {
            case 'j': if (page === 'list') mark(cursor + 1); break;
            case 'k': if (page === 'list') mark(Math.max(cursor - 1, 0)); break;
            case 'o': case 'Enter': if (page === 'list' && current()) go(current().querySelector('td.subject a').href); break;
            case 'u': if (page === 'message') go(document.querySelector('p.back a')?.href); break;
            case 'r': go(linkTo('Reply')); break;
            case 'a': go(linkTo('Reply all')); break;
            case 'f': go(linkTo('Forward')); break;
            case '#': act('delete'); break;
            case '!': act('junk'); break;
            case 'e': act('archive'); break;
            case 'v': chooseMove(); break;
            case 'c': go('/compose'); break;
            case '/': document.querySelector('#search input[name=q]')?.focus(); break;
            case 'g': g = true; break;
            case '?': help(); break;
            case 'Escape': document.getElementById('keys')?.remove(); break;
            default: return;
        }
        e.preventDefault();
    });

    // What each page needs, at the start and after each page swapped in.
    function setup() {
        const main = document.querySelector('main');
        page = main.dataset.page;
        mailbox = main.dataset.mailbox;
        cursor = -1;
        dragging = false;
        clearTimeout(draftTimer);
        keepRecent();
        setupOfflineDays();
        setupCompose();
    }
    setup();
})();
