// Drives Satchel's webmail (the `http` door) with Debian's chromium through
// playwright-core, as a person would, and prints what it saw as one JSON line
// for tests/test_web.py, which makes the assertions.
//
// Usage: node web-check.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   BASE         http://127.0.0.1:PORT of the http door
//   USER         the mailbox owner the run logs in as (Alice)
//   SHOTDIR      where the screenshots go (created)
//   EXPECT_JSON  {"other": {"user", "password"},  a second user (Bob)
//                 "read": subject, "plain": subject, "hostile": text in its subject}
//
// Each step records its facts under its own name; a step that throws records
// its error under errors[name] and the run goes on (a later step may then fail
// too). The exit code is 1 when any step failed, with the failures on stderr.
// Nothing here downloads a browser: chromium is /usr/bin/chromium.
import {
    LOGIN_SUBMIT, LOGOUT_SUBMIT, chain as chainOf, fillLogin, finish, args, launch, listFacts, recorder,
    submit, follow,
} from './web-lib.mjs';
import path from 'node:path';

const { base, user, password, shots, want, rel } = args('web-check.mjs');
const chain = resp => chainOf(resp, rel);
const { out, step } = recorder();

const browser = await launch();
try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    page.setDefaultNavigationTimeout(15000);
    const requests = [];
    const dialogs = [];
    const failed = []; // requests the browser started and did not complete (a CSP block among them)
    page.on('request', r => requests.push(r.url()));
    page.on('requestfailed', r => failed.push(`${rel(r.url())} ${r.failure()?.errorText ?? ''}`));
    page.on('dialog', d => {
        dialogs.push({ type: d.type(), message: d.message(), url: rel(page.url()) });
        d.dismiss().catch(() => {});
    });

    await step('loginPage', async () => {
        const resp = await page.goto(base + '/login');
        const form = await page.$eval('form#login', f => ({
            method: f.getAttribute('method'),
            action: f.getAttribute('action'),
            inputs: [...f.querySelectorAll('input')].map(i => ({ name: i.name, type: i.type, filled: i.value !== '' })),
            submit: !!f.querySelector('button, input[type=submit]'),
        }));
        await page.screenshot({ path: path.join(shots, 'login.png'), fullPage: true });
        return { status: resp.status(), path: rel(page.url()), form };
    });

    await step('wrongPassword', async () => {
        await fillLogin(page, user, 'not-' + password);
        const t0 = Date.now();
        const resp = await submit(page, LOGIN_SUBMIT);
        return {
            status: resp.status(),
            method: resp.request().method(),
            path: rel(page.url()),
            seconds: (Date.now() - t0) / 1000,
            error: await page.$eval('p.error', e => e.innerText.trim()).catch(() => null),
            errorVisible: await page.isVisible('p.error'),
            formAgain: await page.isVisible('form#login'),
        };
    });

    // A person retries on the page the refusal showed.
    await step('login', async () => {
        await fillLogin(page, user, password);
        const resp = await submit(page, LOGIN_SUBMIT);
        return { status: resp.status(), path: rel(page.url()), chain: await chain(resp) };
    });

    let inboxPath = null;
    await step('list', async () => {
        const facts = await listFacts(page);
        inboxPath = facts.mailboxes.find(m => m.name === 'INBOX')?.href ?? null;
        await page.screenshot({ path: path.join(shots, 'list.png'), fullPage: true });
        return { path: rel(page.url()), ...facts };
    });

    await step('cookie', async () => {
        const c = (await ctx.cookies()).find(c => c.name === 'satchel_session');
        if (!c) throw new Error('no satchel_session cookie after login: ' + JSON.stringify(await ctx.cookies()));
        return {
            httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path, secure: c.secure, value: c.value,
            inDocumentCookie: (await page.evaluate(() => document.cookie)).includes('satchel_session'),
        };
    });

    // Opens the message whose row holds `text`, from the list page.
    async function open(text) {
        const link = page.locator('table#messages tr.message', { hasText: text }).locator('td.subject a');
        return follow(page, () => link.click());
    }

    await step('plain', async () => {
        const resp = await open(want.plain);
        const facts = await page.evaluate(() => ({
            subject: document.querySelector('article#message h1.subject')?.innerText.trim() ?? null,
            headers: document.querySelector('article#message dl.headers')?.innerText ?? null,
            body: document.querySelector('article#message pre.body-text')?.innerText ?? null,
            bodyElements: document.querySelectorAll('pre.body-text *').length,
            iframe: !!document.querySelector('iframe#html-body'),
        }));
        facts.bodyVisible = await page.isVisible('article#message pre.body-text');
        await page.screenshot({ path: path.join(shots, 'plain.png'), fullPage: true });
        return { status: resp.status(), stayed: resp.stayed, path: rel(page.url()), ...facts };
    });

    await step('listAfter', async () => {
        const resp = await page.goto(base + inboxPath);
        return { status: resp.status(), ...(await listFacts(page)) };
    });

    await step('hostile', async () => {
        const firstRequest = requests.length;
        const firstDialog = dialogs.length;
        const resp = await open(want.hostile);
        const iframe = await page.waitForSelector('iframe#html-body', { state: 'attached' });
        const frame = await iframe.contentFrame();
        if (!frame) throw new Error('iframe#html-body has no frame');
        await frame.waitForLoadState('load');
        await page.waitForTimeout(1000); // time for anything remote, a refresh, a script
        const inside = await frame.evaluate(() => {
            const on = [], badUrls = [];
            for (const el of document.querySelectorAll('*')) {
                for (const a of el.attributes) {
                    if (a.name.toLowerCase().startsWith('on')) on.push(`${el.localName} ${a.name}`);
                    // What a browser ignores at the start of a URL, then the scheme.
                    const v = a.value.replace(/[\u0000-\u0020]/g, '').toLowerCase();
                    if (/^(javascript|data|vbscript):/.test(v)) badUrls.push(`${el.localName} ${a.name}=${a.value.slice(0, 40)}`);
                }
            }
            return {
                title: document.title,
                scripts: document.querySelectorAll('script').length,
                on, badUrls,
                forms: document.querySelectorAll('form').length,
                metaRefresh: [...document.querySelectorAll('meta')]
                    .filter(m => (m.getAttribute('http-equiv') || '').trim().toLowerCase() === 'refresh').length,
                bases: document.querySelectorAll('base').length,
                text: document.body ? document.body.innerText : '',
            };
        });
        const box = await iframe.boundingBox();
        const facts = {
            status: resp.status(),
            path: rel(page.url()),
            topTitle: await page.title(),
            subject: await page.$eval('article#message h1.subject', e => e.innerText.trim()).catch(() => null),
            subjectInjected: await page.evaluate(() => document.querySelectorAll('h1.subject *').length),
            sandbox: await iframe.getAttribute('sandbox'),
            src: await iframe.getAttribute('src'),
            frameUrl: rel(frame.url()),
            box,
            textVisible: await frame.locator('text=Hello hostile').first().isVisible().catch(() => false),
            inside,
            requests: requests.slice(firstRequest).map(rel),
            dialogs: dialogs.slice(firstDialog),
        };
        // The viewport only: a full-page capture resizes the page and then
        // shows the sandboxed frame (its own renderer) blank.
        await page.screenshot({ path: path.join(shots, 'hostile.png') });
        return facts;
    });

    await step('phone', async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        try {
            const resp = await page.goto(base + inboxPath);
            const facts = await listFacts(page);
            await page.screenshot({ path: path.join(shots, 'list-phone.png'), fullPage: true });
            return { status: resp.status(), rows: facts.rows.length, scrollWidth: facts.scrollWidth };
        } finally {
            await page.setViewportSize({ width: 1280, height: 800 });
        }
    });

    // Bob, in his own browser profile, asks for Alice's pages by URL.
    await step('other', async () => {
        const ctxB = await browser.newContext();
        const pageB = await ctxB.newPage();
        pageB.setDefaultTimeout(15000);
        await pageB.goto(base + '/login');
        await fillLogin(pageB, want.other.user, want.other.password);
        const resp = await submit(pageB, LOGIN_SUBMIT);
        const own = { status: resp.status(), path: rel(pageB.url()), ...(await listFacts(pageB)) };
        const plainHref = out.list.rows.find(r => r.subject && r.subject.includes(want.plain)).href;
        const foreign = {};
        for (const p of [inboxPath, plainHref, out.hostile && out.hostile.src].filter(Boolean)) {
            const r = await pageB.goto(base + p);
            foreign[p] = { status: r.status(), path: rel(pageB.url()), text: (await pageB.innerText('body')).slice(0, 200) };
        }
        const c = (await ctxB.cookies()).find(c => c.name === 'satchel_session');
        // Bob stays logged in: the test posts to /logout with his cookie.
        return { own, foreign, cookie: c ? c.value : null };
    });

    await step('logout', async () => {
        await page.goto(base + inboxPath);
        const resp = await submit(page, LOGOUT_SUBMIT);
        const after = { status: resp.status(), path: rel(page.url()), chain: await chain(resp) };
        after.cookieAfter = (await ctx.cookies()).find(c => c.name === 'satchel_session')?.value ?? null;
        const again = await page.goto(base + '/mail');
        after.mailAgain = { status: again.status(), path: rel(page.url()) };
        return after;
    });

    out.requests = requests.map(rel);
    out.failedRequests = failed;
    out.dialogs = dialogs;
} finally {
    await browser.close();
}

finish(out);
