// Offline reading in Debian's chromium: the list page has the service
// worker keep its recent messages (without marking them read); with the
// network cut (context.setOffline) a kept message opens; a reply written
// and a message deleted offline wait on the device and go out when the
// network is back; a logout clears what was kept. Prints what it saw as one JSON line for
// tests/test_web_offline.py.
//
// Usage: node web-offline.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
import path from 'node:path';
import {
    LOGIN_SUBMIT, LOGOUT_SUBMIT, fillLogin, finish, args, launch, listFacts, recorder, submit, follow,
} from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-offline.mjs');
const { out, step } = recorder();

const browser = await launch();
try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const kept = () => page.evaluate(async () => {
        const names = await caches.keys();
        if (!names.includes('satchel-pages-v1')) return [];
        return (await (await caches.open('satchel-pages-v1')).keys()).map(r => new URL(r.url).pathname);
    });

    let rows = [];
    await step('kept', async () => {
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        await submit(page, LOGIN_SUBMIT);
        rows = (await listFacts(page)).rows;
        const wanted = rows.map(r => r.href);
        const deadline = Date.now() + 10000;
        let have = [];
        while (Date.now() < deadline) {
            have = await kept();
            if (wanted.every(h => have.includes(h))) break;
            await page.waitForTimeout(200);
        }
        await page.reload();
        const after = (await listFacts(page)).rows;
        return { wanted, have, unreadAfter: after.filter(r => r.classes.includes('unread')).length };
    });

    await step('offline', async () => {
        await ctx.setOffline(true);
        const target = rows[1].href;
        const resp = await page.goto(base + target);
        const facts = {
            status: resp ? resp.status() : null,
            fromServiceWorker: resp ? resp.fromServiceWorker() : null,
            subject: await page.$eval('h1.subject', e => e.innerText.trim()).catch(() => null),
            body: await page.$eval('pre.body-text', e => e.innerText).catch(() => null),
        };
        await page.screenshot({ path: path.join(shots, 'offline.png') });
        const missing = await page.goto(base + '/mail/999999/1');
        facts.missing = { status: missing.status(), text: (await page.innerText('body')).slice(0, 100) };
        await ctx.setOffline(false);
        return facts;
    });

    await step('offlineChanges', async () => {
        // The reply form of a kept message is kept too.
        const [mb, uid] = rows[1].href.split('/').slice(2);
        const replyPath = `/compose?reply=${mb}:${uid}`;
        const deadline = Date.now() + 10000;
        const keptNow = async () => (await page.evaluate(async () => {
            const c = await caches.open('satchel-pages-v1');
            return (await c.keys()).map(r => { const u = new URL(r.url); return u.pathname + u.search; });
        }));
        while (Date.now() < deadline && !(await keptNow()).includes(replyPath)) await page.waitForTimeout(200);
        const replyKept = (await keptNow()).includes(replyPath);

        await ctx.setOffline(true);
        await page.goto(base + rows[1].href);
        await follow(page, () => page.click('#write-actions a:text-is("Reply")'));
        const replyTo = await page.$eval('form#compose input[name=to]', i => i.value);
        await page.fill('form#compose textarea[name=body]', 'Written offline.');
        await page.click('form#compose button[value=send]');
        await page.waitForSelector('main p.saved');
        const replyNote = await page.$eval('main p.saved', e => e.innerText);

        await page.goto(base + rows[0].href.split('/').slice(0, 3).join('/'));
        await page.locator('table#messages tr.message', { hasText: want.deleted }).locator('input[name=uid]').check();
        await page.click('form#actions button[value=delete]');
        await page.waitForSelector('#outbox');
        await page.waitForFunction(() => /2 changes/.test(document.querySelector('#outbox').innerText));
        const facts = {
            replyKept, replyTo, replyNote,
            banner: await page.$eval('#outbox', e => e.innerText),
            listOffline: (await listFacts(page)).rows.map(r => r.subject),
        };
        await page.screenshot({ path: path.join(shots, 'offline-waiting.png') });

        // Back online: both go out, in order, and the banner goes.
        await ctx.setOffline(false);
        await page.waitForFunction(() => !document.querySelector('#outbox'), null, { timeout: 20000 });
        facts.waitingAfter = await page.evaluate(() => new Promise(ok => {
            const r = indexedDB.open('satchel-outbox', 1);
            r.onsuccess = () => {
                const q = r.result.transaction('requests').objectStore('requests').count();
                q.onsuccess = () => ok(q.result);
            };
        }));
        return facts;
    });

    await step('logout', async () => {
        await page.goto(base + rows[0].href.split('/').slice(0, 3).join('/'));
        await submit(page, LOGOUT_SUBMIT);
        await page.waitForTimeout(300);
        return { path: rel(page.url()), kept: await kept() };
    });
} finally {
    await browser.close();
}
finish(out);
