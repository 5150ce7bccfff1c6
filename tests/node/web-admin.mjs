// The admin pages in Debian's chromium: the admin adds an account (and the
// new user logs in), resets nothing by mistake, removes an account after
// its confirmation, and retries a queued message; a non-admin is refused
// every admin page. Prints what it saw as one JSON line for
// tests/test_web_admin.py, which makes the assertions.
//
// Usage: node web-admin.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   EXPECT_JSON  {"newUser", "newPassword", "removable", "user": a non-admin,
//                 "userPassword", "adminUrls": [paths], "queued": the
//                 queue ID held for a sink that is down}
import path from 'node:path';
import {
    LOGIN_SUBMIT, args, fillLogin, finish, follow, launch, recorder, submit,
} from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-admin.mjs');
const { out, step } = recorder();
const browser = await launch();
try {
    const login = async (who, pass) => {
        const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
        const page = await ctx.newPage();
        page.setDefaultTimeout(15000);
        await page.goto(base + '/login');
        await fillLogin(page, who, pass);
        await submit(page, LOGIN_SUBMIT);
        return page;
    };
    const page = await login(user, password);
    const accounts = () => page.$$eval('table#accounts tbody tr', rs => rs.map(r => ({
        address: r.dataset.address,
        usage: r.querySelector('td.usage').innerText,
        login: r.querySelector('td.last-login').innerText,
    })));

    await step('accounts', async () => {
        const linked = await page.isVisible('header.top a[href="/admin"]');
        await follow(page, () => page.click('header.top a[href="/admin"]'));
        const before = await accounts();
        await page.fill('form#add-account input[name=address]', want.newUser);
        await page.fill('form#add-account input[name=password]', want.newPassword);
        const resp = await follow(page, () => page.click('form#add-account button'));
        const facts = {
            linked, before, status: resp.status(), path: rel(page.url()),
            notice: await page.$eval('p.saved', e => e.innerText).catch(() => null),
            after: await accounts(),
        };
        // The new account gets a quota.
        const row = `table#accounts tr[data-address="${want.newUser}"]`;
        await page.fill(`${row} form.quota input[name=storage]`, '10M');
        await page.fill(`${row} form.quota input[name=messages]`, '500');
        const set = await follow(page, () => page.click(`${row} form.quota button`));
        facts.quota = {
            status: set.status(),
            storage: await page.inputValue(`${row} form.quota input[name=storage]`),
            messages: await page.inputValue(`${row} form.quota input[name=messages]`),
        };
        await page.screenshot({ path: path.join(shots, 'admin-accounts.png'), fullPage: true });
        return facts;
    });

    await step('newUserLogsIn', async () => {
        const p = await login(want.newUser, want.newPassword);
        return { path: rel(p.url()), account: await p.$eval('header.top .who', e => e.innerText) };
    });

    await step('remove', async () => {
        await follow(page, () => page.click(`table#accounts tr[data-address="${want.removable}"] a.remove`));
        const question = await page.$eval('main h1', e => e.innerText);
        await page.screenshot({ path: path.join(shots, 'admin-remove.png'), fullPage: true });
        await page.fill('form#remove-account input[name=confirm]', 'not-the-address@example.test');
        const wrong = await follow(page, () => page.click('form#remove-account button'));
        const refused = {
            status: wrong.status(),
            error: await page.$eval('p.error', e => e.innerText).catch(() => null),
        };
        await page.fill('form#remove-account input[name=confirm]', want.removable);
        const right = await follow(page, () => page.click('form#remove-account button'));
        return {
            question, refused, status: right.status(), path: rel(page.url()),
            after: (await accounts()).map(a => a.address),
        };
    });

    await step('queue', async () => {
        await follow(page, () => page.click('nav.admin-nav a[href="/admin/queue"]'));
        const row = page.locator(`tbody.queued[data-id="${want.queued}"]`);
        const before = {
            rows: await page.$$eval('tbody.queued', bs => bs.map(b => b.dataset.id)),
            state: await row.locator('td.state').first().innerText(),
            answer: await row.locator('td.answer').first().innerText(),
        };
        await page.screenshot({ path: path.join(shots, 'admin-queue.png'), fullPage: true });
        const resp = await follow(page, () => row.locator('button[value=retry]').click());
        const notice = await page.$eval('p.saved', e => e.innerText).catch(() => null);
        // The server tries within a second; the page shows the queue as it is.
        let empty = false;
        for (let i = 0; i < 50 && !empty; i++) {
            await page.waitForTimeout(200);
            await follow(page, () => page.click('nav.admin-nav a[href="/admin/queue"]'));
            empty = await page.isVisible('p.empty');
        }
        return { before, status: resp.status(), notice, empty };
    });

    await step('trace', async () => {
        const facts = async () => page.$$eval('article.trace', as => as.map(a => ({
            direction: a.classList.contains('in') ? 'in' : 'out',
            mid: a.dataset.messageId,
            from: a.querySelector('dd.from').innerText,
            door: a.querySelector('dl.headers').innerText,
            rcpts: [...a.querySelectorAll('table.rcpts tr.rcpt')].map(r => ({
                who: r.cells[0].innerText, outcome: r.cells[1].innerText,
                mailbox: r.cells[2].innerText, score: r.cells[3].innerText,
            })),
            answers: [...a.querySelectorAll('table.answers td.answer')].map(td => td.innerText),
        })));
        await follow(page, () => page.click('nav.admin-nav a[href="/admin/trace"]'));
        await page.fill('form#trace-search input[name=q]', '<hello-1@remote.test>');
        await follow(page, () => page.click('form#trace-search button'));
        const byId = await facts();
        await page.screenshot({ path: path.join(shots, 'admin-trace.png'), fullPage: true });
        await page.fill('form#trace-search input[name=q]', 'dave@remote.test');
        await follow(page, () => page.click('form#trace-search button'));
        return { byId, byRcpt: await facts() };
    });

    await step('domains', async () => {
        await follow(page, () => page.click('nav.admin-nav a[href="/admin/domains"]'));
        const section = 'section.domain[data-domain="example.test"]';
        const records = await page.$$eval(`${section} tr.record`, rs => rs.map(r => ({
            name: r.cells[0].innerText, kind: r.cells[1].innerText, value: r.cells[2].innerText, live: r.cells[3].innerText,
        })));
        for (const alias of ['sales@example.test', '@example.test']) {
            await page.fill(`${section} form.add-alias input[name=alias]`, alias);
            await page.selectOption(`${section} form.add-alias select[name=account]`, want.user2);
            await follow(page, () => page.click(`${section} form.add-alias button`));
        }
        const added = await page.$eval('p.saved', e => e.innerText).catch(() => null);
        const aliases = await page.$$eval(`${section} ul.aliases li`, ls => ls.map(l => l.innerText));
        await page.screenshot({ path: path.join(shots, 'admin-domains.png'), fullPage: true });
        return { records, added, aliases };
    });

    await step('server', async () => {
        const resp = await follow(page, () => page.click('nav.admin-nav a[href="/admin/server"]'));
        const rows = sel => page.$$eval(`${sel} tr`, rs => rs.map(r => r.innerText.trim()));
        const facts = {
            status: resp.status(),
            doors: await rows('table#doors'),
            delivered: await rows('table#delivered'),
            model: (await rows('table#store')).find(r => r.startsWith('Spam model')) || null,
            chart: await page.$$eval('svg#deliveries g', gs => gs.length),
        };
        await page.screenshot({ path: path.join(shots, 'admin-server.png'), fullPage: true });
        return facts;
    });

    await step('nonAdmin', async () => {
        const p = await login(want.user2, want.user2Password);
        const linked = await p.isVisible('header.top a[href="/admin"]');
        const seen = {};
        for (const u of want.adminUrls) {
            const r = await p.goto(base + u);
            seen[u] = { status: r.status(), text: (await p.innerText('body')).slice(0, 120) };
        }
        return { linked, seen };
    });
} finally {
    await browser.close();
}
finish(out);
