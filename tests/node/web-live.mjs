// The webmail live and by keyboard, in Debian's chromium: a message another
// client APPENDs over IMAP (imapflow) appears in the open list with no
// navigation; then j/k, Enter, u, ?, c and g i drive the pages. Prints what
// it saw as one JSON line for tests/test_web_live.py.
//
// Usage: node web-live.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   EXPECT_JSON  {"imap": port, "subjects": [newest first, as listed]}
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import {
    LOGIN_SUBMIT, fillLogin, finish, args, launch, listFacts, recorder, submit, follow, inPlace,
} from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-live.mjs');
const { out, step } = recorder();

const browser = await launch();
try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    let navigations = 0;
    page.on('framenavigated', f => { if (f === page.mainFrame()) navigations++; });
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));

    await step('login', async () => {
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        await submit(page, LOGIN_SUBMIT);
        return { path: rel(page.url()) };
    });

    await step('live', async () => {
        const before = (await listFacts(page)).rows.map(r => r.subject);
        const navBefore = navigations;
        // Give the page's event stream a moment to open.
        await page.waitForTimeout(500);
        const client = new ImapFlow({
            host: '127.0.0.1', port: Number(want.imap), secure: false,
            auth: { user, pass: password }, tls: { rejectUnauthorized: false }, logger: false,
        });
        await client.connect();
        await client.append('INBOX', 'From: Eve <eve@remote.test>\r\nTo: ' + user +
            '\r\nSubject: Appended elsewhere\r\nDate: Wed, 03 Jan 2024 09:00:00 +0000\r\n\r\nHi.\r\n');
        await client.logout();
        await page.waitForSelector('table#messages tr.message:has-text("Appended elsewhere")', { timeout: 10000 });
        const after = await listFacts(page);
        return {
            before, after: after.rows.map(r => r.subject),
            unread: after.mailboxes.find(m => m.name === 'INBOX')?.unread ?? null,
            navigations: navigations - navBefore,
        };
    });

    await step('keys', async () => {
        const facts = {};
        await page.keyboard.press('j');
        await page.keyboard.press('j');
        facts.cursor = await page.$$eval('table#messages tr.message', rs => rs.findIndex(r => r.classList.contains('cursor')));
        await page.keyboard.press('k');
        facts.cursorAfterK = await page.$$eval('table#messages tr.message', rs => rs.findIndex(r => r.classList.contains('cursor')));
        await follow(page, () => page.keyboard.press('Enter'));
        facts.opened = await page.$eval('h1.subject', e => e.innerText.trim());
        await follow(page, () => page.keyboard.press('u'));
        facts.back = rel(page.url());
        await page.keyboard.press('?');
        facts.help = await page.$eval('#keys', e => e.innerText).catch(() => null);
        await page.screenshot({ path: path.join(shots, 'keys.png') });
        await page.keyboard.press('Escape');
        facts.helpGone = (await page.$('#keys')) === null;
        await follow(page, () => page.keyboard.press('c'));
        facts.compose = rel(page.url());
        // Typing in a field is typing, not a shortcut.
        await page.focus('form#compose input[name=subject]');
        await page.keyboard.type('jk?');
        facts.typed = await page.inputValue('form#compose input[name=subject]');
        facts.stillCompose = rel(page.url());
        await page.click('main h1');
        await page.keyboard.press('g');
        await follow(page, () => page.keyboard.press('i'));
        facts.inbox = rel(page.url());

        // e archives the cursor's message (Archive is made the first time);
        // v puts the focus on the Move menu, Enter there moves.
        const subjects = async () => (await listFacts(page)).rows.map(r => r.subject);
        const atCursor = () => page.$eval('table#messages tr.message.cursor td.subject', e => e.innerText.trim());
        await page.keyboard.press('j');
        facts.archived = await atCursor();
        const archived = await inPlace(page, () => page.keyboard.press('e'));
        facts.archive = {
            stayed: archived.stayed,
            inbox: await subjects(),
            boxes: (await listFacts(page)).mailboxes.map(m => m.name),
        };
        await page.keyboard.press('j');
        facts.moved = await atCursor();
        await page.keyboard.press('v');
        facts.moveFocus = await page.evaluate(() => document.activeElement?.getAttribute('name'));
        await page.selectOption('select[name=to]', { label: 'Trash' });
        const moved = await inPlace(page, () => page.keyboard.press('Enter'));
        facts.move = { stayed: moved.stayed, inbox: await subjects() };
        await follow(page, () => page.click('nav#mailboxes a:text-is("Archive")'));
        facts.archiveList = await subjects();
        await follow(page, () => page.click('nav#mailboxes a:text-is("Trash")'));
        facts.trashList = await subjects();
        return facts;
    });
    out.pageErrors = errors;
} finally {
    await browser.close();
}
finish(out);
