// Satchel webmail: live lists (server-sent events from the change feed) and
// Gmail-like keyboard shortcuts. Every page works without this file.
(() => {
    'use strict';
    const main = document.querySelector('main');
    if (!main || !main.dataset.page) return;
    const page = main.dataset.page;
    const mailbox = main.dataset.mailbox;

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
        worker.postMessage({ keep: paths });
    }
    if ('serviceWorker' in navigator) {
        navigator.serviceWorker.register('/sw.js').then(() => navigator.serviceWorker.ready).then(() => {
            if (navigator.serviceWorker.controller) keepRecent();
            else navigator.serviceWorker.addEventListener('controllerchange', keepRecent, { once: true });
        }).catch(() => {});
    }
    const days = document.querySelector('#offline-days');
    if (days) {
        days.value = String(DAYS);
        days.addEventListener('change', () => localStorage.setItem('satchel.offlineDays', String(Number(days.value) || 0)));
    }

    // --- Live: what changed elsewhere shows here without a reload. -------
    let pending = null;
    function refresh(listToo) {
        if (pending) return;
        pending = setTimeout(async () => {
            pending = null;
            try {
                const r = await fetch(location.href, { credentials: 'same-origin' });
                if (!r.ok || r.redirected) return;
                const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
                swap(doc, 'nav#mailboxes');
                if (listToo) {
                    const picked = checked();
                    swap(doc, 'main');
                    for (const box of document.querySelectorAll('table#messages input[name=uid]')) {
                        box.checked = picked.has(box.value);
                    }
                    mark(cursor);
                }
            } catch (e) {
                // Offline or restarting: the next event tries again.
            }
        }, 100);
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
    const go = href => { if (href) location.href = href; };
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
    function archive() {
        const option = [...document.querySelectorAll('select[name=to] option')].find(o => o.textContent === 'Archive');
        if (option) act('move', option.value);
    }

    const KEYS = [
        ['j / k', 'next / previous message in the list'],
        ['o or Enter', 'open the message'],
        ['u', 'back to the list'],
        ['r / a / f', 'reply / reply all / forward'],
        ['e', 'archive (to the mailbox named Archive)'],
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
            case 'e': archive(); break;
            case 'c': go('/compose'); break;
            case '/': document.querySelector('#search input[name=q]')?.focus(); break;
            case 'g': g = true; break;
            case '?': help(); break;
            case 'Escape': document.getElementById('keys')?.remove(); break;
            default: return;
        }
        e.preventDefault();
    });
})();
