// What the webmail's browser scripts share: steps that record facts or
// errors, URLs relative to Satchel's origin, form helpers and the facts of a
// mailbox page. Nothing here downloads a browser: chromium is
// /usr/bin/chromium.
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

// The command line every script takes: BASE USER PASSWORD SHOTDIR
// EXPECT_JSON; the screenshot folder made, and a URL shortener for BASE.
export function args(script) {
    const [base, user, password, shots, expectJson] = process.argv.slice(2);
    if (!expectJson) {
        console.error(`usage: node ${script} BASE USER PASSWORD SHOTDIR EXPECT_JSON`);
        process.exit(2);
    }
    mkdirSync(shots, { recursive: true });
    return { base, user, password, shots, want: JSON.parse(expectJson), rel: relativeTo(base) };
}

export function launch() {
    return chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
}

// A run's record: each step's facts under its name, or its error under
// errors[name]; the run goes on after a failed step.
export function recorder() {
    const out = { errors: {} };
    async function step(name, fn) {
        try {
            out[name] = await fn();
        } catch (e) {
            // Playwright's messages carry a call log after the first lines.
            out.errors[name] = String((e && e.message) || e).split('\n').slice(0, 6).join('\n');
        }
    }
    return { out, step };
}

// Prints the record as one JSON line and exits 1 when a step failed.
export function finish(out) {
    console.log(JSON.stringify(out));
    const failed = Object.entries(out.errors);
    for (const [name, message] of failed) console.error(`step ${name} failed: ${message}`);
    process.exit(failed.length ? 1 : 0);
}

// A URL as the tests compare it: the path (and query) on Satchel's origin,
// the whole URL anywhere else.
export function relativeTo(base) {
    const origin = new URL(base).origin;
    return u => {
        const x = new URL(u, base);
        return x.origin === origin ? x.pathname + x.search : x.href;
    };
}


// The redirects that led to a response, oldest first: [{method, path, status}].
export async function chain(resp, rel) {
    const reqs = [];
    for (let r = resp.request(); r; r = r.redirectedFrom()) reqs.unshift(r);
    const hops = [];
    for (const r of reqs) {
        const res = await r.response();
        hops.push({ method: r.method(), path: rel(r.url()), status: res ? res.status() : null });
    }
    return hops;
}

// Clicks a submit control and waits for the page it leads to: a real
// navigation for logging in and out, else the page the script swaps in.
export async function submit(page, selector) {
    if (selector === LOGIN_SUBMIT || selector === LOGOUT_SUBMIT) {
        const [resp] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
        return resp;
    }
    return follow(page, () => page.click(selector));
}

// Does `act` (a click, a key) that leads to another page of the webmail
// and waits for it. The script fetches the page and swaps it in without a
// reload, counting them in data-visits on <html> (data-status: the
// answer's status). Returns what the tests ask of a response, and whether
// the document stayed the same (nothing reloaded).
export async function follow(page, act) {
    const before = await page.evaluate(() => {
        window.satchelStayed = true;
        return Number(document.documentElement.dataset.visits || 0);
    });
    await act();
    await page.waitForFunction(b => Number(document.documentElement.dataset.visits || 0) > b, before);
    const [status, stayed] = await page.evaluate(() =>
        [Number(document.documentElement.dataset.status), window.satchelStayed === true]);
    return { status: () => status, url: () => page.url(), stayed };
}

// Presses a button of a form the page's script posts by fetch (a list's
// actions): waits for the POST and for the list to be swapped in, and says
// whether the page stayed the same document (nothing reloaded).
export async function pressInPlace(page, selector) {
    return inPlace(page, () => page.click(selector));
}

// Does `act` and waits the same way (a drag and drop, a key).
export async function inPlace(page, act) {
    const before = await page.evaluate(() => {
        window.satchelStayed = true;
        return Number(document.documentElement.dataset.posts || 0);
    });
    const [resp] = await Promise.all([
        page.waitForResponse(r => r.request().method() === 'POST'),
        act(),
    ]);
    // The script marks which of its posts the page shows (data-posts,
    // data-shown on <html>): wait for the list that shows this one.
    await page.waitForFunction(b => {
        const d = document.documentElement.dataset;
        return Number(d.posts || 0) > b && d.shown === d.posts;
    }, before);
    return { status: resp.status(), stayed: await page.evaluate(() => window.satchelStayed === true) };
}

export async function fillLogin(page, address, pass) {
    await page.fill('form#login input[name=address]', address);
    await page.fill('form#login input[name=password]', pass);
}

export const LOGIN_SUBMIT = 'form#login button, form#login input[type=submit]';
export const LOGOUT_SUBMIT = 'form#logout button, form#logout input[type=submit]';

// The facts of a mailbox page.
export function listFacts(page) {
    return page.evaluate(() => {
        const text = e => (e ? e.innerText.trim() : null);
        return {
            title: document.title,
            // The unread count may sit inside the link or beside it (in its
            // list item); `name` is the link's text without it.
            mailboxes: [...document.querySelectorAll('nav#mailboxes a')].map(a => {
                const count = a.querySelector('span.unread') || a.parentElement.querySelector(':scope > span.unread');
                const own = a.cloneNode(true);
                own.querySelectorAll('span.unread').forEach(s => s.remove());
                return { href: a.getAttribute('href'), name: own.textContent.trim(), unread: text(count) };
            }),
            rows: [...document.querySelectorAll('table#messages tr.message')].map(tr => ({
                classes: [...tr.classList],
                from: text(tr.querySelector('td.from')),
                subject: text(tr.querySelector('td.subject')),
                href: tr.querySelector('td.subject a')?.getAttribute('href') ?? null,
                date: text(tr.querySelector('td.date')),
                visible: tr.querySelector('td.subject a')?.checkVisibility() ?? false,
            })),
            // Elements that a subject or sender put there unescaped would make.
            injected: document.querySelectorAll('table#messages img, table#messages script').length,
            logoutCsrf: !!document.querySelector('form#logout input[type=hidden][name=csrf]'),
            scrollWidth: document.documentElement.scrollWidth,
        };
    });
}
