// The settings page in Debian's chromium: two sessions, one ended from the
// other; the POP3 mode; a vacation reply on, then off; a password change
// (refused twice, then made). Prints what it saw as one JSON line for
// tests/test_web_settings.py.
//
// Usage: node web-settings.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   EXPECT_JSON  {"newPassword": the password to change to}
import path from 'node:path';
import { LOGIN_SUBMIT, fillLogin, finish, args, launch, recorder, submit, follow } from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-settings.mjs');
const { out, step } = recorder();

const browser = await launch();
try {
    const login = async ctx => {
        const page = await ctx.newPage();
        page.setDefaultTimeout(15000);
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        await submit(page, LOGIN_SUBMIT);
        return page;
    };
    const a = await login(await browser.newContext({ viewport: { width: 1280, height: 900 }, userAgent: 'Browser A' }));
    const b = await login(await browser.newContext({ userAgent: 'Browser B' }));
    const notice = page => page.$eval('p.saved', e => e.innerText).catch(() => null);
    const error = page => page.$eval('p.error', e => e.innerText).catch(() => null);

    await step('sessions', async () => {
        await a.goto(base + '/settings');
        const rows = await a.$$eval('table#sessions tbody tr', rs => rs.map(r => r.innerText));
        await a.screenshot({ path: path.join(shots, 'settings.png'), fullPage: true });
        const other = a.locator('table#sessions tbody tr', { hasText: 'Browser B' }).locator('button');
        await follow(a, () => other.click());
        const after = await a.$$eval('table#sessions tbody tr', rs => rs.map(r => r.innerText));
        const bNext = await b.goto(base + '/mail');
        return { rows, after, notice: await notice(a), bPath: rel(b.url()), bStatus: bNext.status() };
    });

    await step('pop3', async () => {
        await a.check('form#pop3 input[value=hide]');
        await submit(a, 'form#pop3 button');
        return { notice: await notice(a), checked: await a.$eval('form#pop3 input:checked', i => i.value) };
    });

    await step('vacationOn', async () => {
        await a.check('form#vacation input[name=on][value="1"]');
        await a.fill('form#vacation input[name=subject]', 'Away until Monday');
        await a.fill('form#vacation textarea[name=text]', 'I am away.\n.Back on Monday.');
        await submit(a, 'form#vacation button');
        return {
            notice: await notice(a),
            on: await a.isChecked('form#vacation input[name=on][value="1"]'),
            subject: await a.inputValue('form#vacation input[name=subject]'),
            text: await a.inputValue('form#vacation textarea[name=text]'),
        };
    });

    await step('vacationOff', async () => {
        await a.check('form#vacation input[name=on][value="0"]');
        await submit(a, 'form#vacation button');
        return { notice: await notice(a), off: await a.isChecked('form#vacation input[name=on][value="0"]') };
    });

    await step('password', async () => {
        const fill = async (current, n, again) => {
            await a.fill('form#password input[name=current]', current);
            await a.fill('form#password input[name=new]', n);
            await a.fill('form#password input[name=again]', again);
            const resp = await submit(a, 'form#password button');
            return { status: resp.status(), error: await error(a), notice: await notice(a) };
        };
        const wrong = await fill('not-' + password, want.newPassword, want.newPassword);
        const differ = await fill(password, want.newPassword, want.newPassword + 'x');
        const b2 = await login(await browser.newContext({ userAgent: 'Browser C' }));
        const done = await fill(password, want.newPassword, want.newPassword);
        const cNext = await b2.goto(base + '/mail');
        return { wrong, differ, done, cPath: rel(b2.url()), stillIn: rel((await a.goto(base + '/mail')).url()) };
    });
} finally {
    await browser.close();
}
finish(out);
