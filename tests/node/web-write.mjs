// Writing in Satchel's webmail, in Debian's chromium: a reply with a file
// from the picker, a forward as attachment, a draft saved twice then sent,
// a draft saved as it is typed with a file dropped on the form, and a wrong
// address. Prints what it saw as one JSON line for
// tests/test_web_writing.py, which makes the assertions.
//
// Usage: node web-write.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   EXPECT_JSON  {"original": subject to answer, "other": Bob's address,
//                 "file": path of a file to attach, "autosaved": a subject}
import path from 'node:path';
import {
    LOGIN_SUBMIT, fillLogin, finish, args, launch, listFacts, recorder, submit, follow,
} from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-write.mjs');
const { out, step } = recorder();

const browser = await launch();
try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const boxes = {};
    const form = () => page.evaluate(() => Object.fromEntries(
        [...document.querySelectorAll('form#compose input:not([type=file]), form#compose textarea')]
            .map(e => [e.name, e.value])));
    const send = async action => submit(page, `form#compose button[value=${action}]`);

    await step('login', async () => {
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        await submit(page, LOGIN_SUBMIT);
        for (const m of (await listFacts(page)).mailboxes) boxes[m.name] = m.href;
        return { path: rel(page.url()) };
    });

    await step('reply', async () => {
        await page.goto(base + boxes.INBOX);
        const link = page.locator('table#messages tr.message', { hasText: want.original }).locator('td.subject a');
        await follow(page, () => link.click());
        await follow(page, () => page.click('#write-actions a:text-is("Reply")'));
        const prefilled = await form();
        await page.screenshot({ path: path.join(shots, 'compose.png'), fullPage: true });
        await page.fill('form#compose textarea[name=body]', 'Noon suits me.\n' + prefilled.body);
        await page.setInputFiles('form#compose input[type=file]', want.file);
        const resp = await send('send');
        return { prefilled, status: resp.status(), path: rel(page.url()), list: (await listFacts(page)).rows.map(r => r.subject) };
    });

    await step('forward', async () => {
        await page.goto(base + boxes.INBOX);
        const link = page.locator('table#messages tr.message', { hasText: want.original }).locator('td.subject a');
        await follow(page, () => link.click());
        await follow(page, () => page.click('#write-actions a:text-is("Forward as attachment")'));
        const prefilled = await form();
        const note = await page.$eval('main.compose p.note', e => e.innerText).catch(() => null);
        await page.fill('form#compose input[name=to]', want.other);
        const resp = await send('send');
        return { prefilled, note, status: resp.status(), path: rel(page.url()) };
    });

    await step('draft', async () => {
        await page.goto(base + '/compose');
        const people = await page.$$eval('datalist#people option', os => os.map(o => o.value));
        await page.fill('form#compose input[name=to]', want.other);
        await page.fill('form#compose input[name=subject]', 'Draft in progress');
        await page.fill('form#compose textarea[name=body]', 'First words.');
        await send('draft');
        const first = { path: rel(page.url()), saved: await page.isVisible('p.saved'), form: await form() };
        await page.fill('form#compose textarea[name=body]', 'First words. Second thoughts.');
        await send('draft');
        const second = { path: rel(page.url()), form: await form() };
        return { first, second, people };
    });

    await step('draftSent', async () => {
        const resp = await send('send');
        return { status: resp.status(), path: rel(page.url()) };
    });

    await step('autosave', async () => {
        // Typed, never saved by hand; a file dropped on the form.
        await page.goto(base + '/compose');
        await page.fill('form#compose input[name=to]', want.other);
        await page.fill('form#compose input[name=subject]', want.autosaved);
        await page.evaluate(() => {
            const dt = new DataTransfer();
            dt.items.add(new File(['dropped bytes\n'], 'dropped.txt', { type: 'text/plain' }));
            const form = document.querySelector('form#compose');
            for (const type of ['dragover', 'drop']) {
                form.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
            }
        });
        const picked = await page.$eval('form#compose input[type=file]', i => [...i.files].map(f => f.name));
        await page.fill('form#compose textarea[name=body]', 'Saved as I typed.');
        await page.waitForSelector('#draft-saved');
        await page.waitForFunction(() => document.querySelector('input[name=draft_uid]').value !== '0');
        // More words: saved again over the same draft, the file kept.
        await page.waitForFunction(() => !document.querySelector('form#compose input[type=file]').files.length);
        const firstUid = await page.$eval('input[name=draft_uid]', i => i.value);
        await page.fill('form#compose textarea[name=body]', 'Saved as I typed, twice.');
        await page.waitForFunction(u => document.querySelector('input[name=draft_uid]').value !== u, firstUid);
        const facts = {
            picked, firstUid, stayed: rel(page.url()) === '/compose',
            attached: await page.$eval('#attached', e => e.innerText.trim()),
            banner: await page.$eval('#draft-saved', e => e.innerText),
        };
        await page.screenshot({ path: path.join(shots, 'compose-autosaved.png'), fullPage: true });
        const resp = await send('send');
        facts.sent = { status: resp.status(), path: rel(page.url()) };
        return facts;
    });

    await step('badAddress', async () => {
        await page.goto(base + '/compose');
        await page.fill('form#compose input[name=to]', 'bob at example');
        await page.fill('form#compose input[name=subject]', 'Kept subject');
        const resp = await send('send');
        return {
            status: resp.status(),
            error: await page.$eval('p.error', e => e.innerText).catch(() => null),
            form: await form(),
        };
    });
} finally {
    await browser.close();
}
finish(out);
