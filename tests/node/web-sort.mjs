// Sorting in Satchel's webmail, in Debian's chromium: Junk and back, a
// release from Possible Junk, an attachment opened, flags, the spam score,
// delete and empty Trash, two messages dragged onto Trash. List actions
// happen in place (posted by the script, no reload). Prints what it saw as one JSON line for
// tests/test_web_sorting.py, which makes the assertions.
//
// Usage: node web-sort.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   EXPECT_JSON  {"junky", "possible", "attached", "scored", "deletable",
//                "dragged": [two subjects]}:
//                the subjects of the messages each step works on
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
    LOGIN_SUBMIT, fillLogin, finish, args, inPlace, launch, listFacts, pressInPlace, recorder, submit, follow,
} from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-sort.mjs');
const { out, step } = recorder();

const browser = await launch();
try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);

    const boxes = {};
    const subjects = async name => {
        await page.goto(base + boxes[name]);
        return (await listFacts(page)).rows.map(r => r.subject);
    };
    const open = async text => {
        const link = page.locator('table#messages tr.message', { hasText: text }).locator('td.subject a');
        await follow(page, () => link.click());
    };
    const press = async (form, action) => submit(page, `form#${form} button[value=${action}]`);

    await step('login', async () => {
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        const resp = await submit(page, LOGIN_SUBMIT);
        for (const m of (await listFacts(page)).mailboxes) boxes[m.name] = m.href;
        return { status: resp.status(), path: rel(page.url()), boxes };
    });

    await step('toJunk', async () => {
        await page.goto(base + boxes.INBOX);
        await open(want.junky);
        const resp = await press('message-actions', 'junk');
        return { status: resp.status(), path: rel(page.url()), junk: await subjects('Junk'), inbox: await subjects('INBOX') };
    });

    await step('notJunk', async () => {
        await page.goto(base + boxes.Junk);
        await open(want.junky);
        const resp = await press('message-actions', 'notjunk');
        return { status: resp.status(), path: rel(page.url()), junk: await subjects('Junk'), inbox: await subjects('INBOX') };
    });

    await step('release', async () => {
        await page.goto(base + boxes['Possible Junk']);
        const review = await page.$eval('p.review', e => e.innerText).catch(() => null);
        await page.screenshot({ path: path.join(shots, 'junk-review.png'), fullPage: true });
        await page.locator('table#messages tr.message', { hasText: want.possible }).locator('input[name=uid]').check();
        const resp = await pressInPlace(page, 'form#actions button[value=notjunk]');
        return {
            status: resp.status, stayed: resp.stayed, review,
            possible: (await listFacts(page)).rows.map(r => r.subject),
            inbox: await subjects('INBOX'),
        };
    });

    await step('attachment', async () => {
        await page.goto(base + boxes.INBOX);
        await open(want.attached);
        const links = await page.$$eval('ul.attachments a', as => as.map(a => ({ text: a.innerText, href: a.getAttribute('href') })));
        const preview = await page.$eval('img.preview', i => ({ loaded: i.complete, width: i.naturalWidth })).catch(() => null);
        await page.screenshot({ path: path.join(shots, 'attachment.png'), fullPage: true });
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('ul.attachments a >> nth=0')]);
        const file = await download.path();
        return {
            links, preview,
            name: download.suggestedFilename(),
            base64: readFileSync(file).toString('base64'),
        };
    });

    await step('flags', async () => {
        // Still on the attached message's page.
        const flagged = await press('message-actions', 'flag');
        const after = {
            status: flagged.status(), path: rel(page.url()),
            unflagOffered: await page.isVisible('form#message-actions button[value=unflag]'),
        };
        const unread = await press('message-actions', 'unread');
        after.unreadPath = rel(page.url());
        after.unreadStatus = unread.status();
        const row = (await listFacts(page)).rows.find(r => r.subject.includes(want.attached));
        after.classes = row ? row.classes : null;
        return after;
    });

    await step('scored', async () => {
        await page.goto(base + boxes.INBOX);
        await open(want.scored);
        return { spam: await page.$eval('dd.spam', e => e.innerText).catch(() => null) };
    });

    await step('delete', async () => {
        await page.goto(base + boxes.INBOX);
        await page.locator('table#messages tr.message', { hasText: want.deletable }).locator('input[name=uid]').check();
        const resp = await pressInPlace(page, 'form#actions button[value=delete]');
        const facts = { stayed: resp.stayed, inbox: (await listFacts(page)).rows.map(r => r.subject), trash: await subjects('Trash') };
        await submit(page, 'form#empty button');
        facts.trashAfterEmpty = (await listFacts(page)).rows.map(r => r.subject);
        facts.emptyText = await page.$eval('p.empty', e => e.innerText).catch(() => null);
        return facts;
    });

    await step('drag', async () => {
        await page.goto(base + boxes.INBOX);
        const row = text => page.locator('table#messages tr.message', { hasText: text });
        // The second one picked, the first dragged while picked: both go.
        await row(want.dragged[0]).locator('input[name=uid]').check();
        await row(want.dragged[1]).locator('input[name=uid]').check();
        const resp = await inPlace(page, () =>
            row(want.dragged[0]).locator('td.from').dragTo(page.locator('nav#mailboxes li', { hasText: 'Trash' })));
        return {
            status: resp.status, stayed: resp.stayed,
            inbox: (await listFacts(page)).rows.map(r => r.subject),
            trash: await subjects('Trash'),
        };
    });

    await step('csrf', async () => {
        return { value: await page.$eval('form#logout input[name=csrf]', i => i.value) };
    });
    const c = (await ctx.cookies()).find(c => c.name === 'satchel_session');
    out.cookie = c ? c.value : null;
} finally {
    await browser.close();
}
finish(out);
