// The filters page in Debian's chromium: a script with a syntax error shows
// the error at its line (and keeps the text), a fixed one saves, and the
// simple rule form writes Sieve the editor then shows. Prints what it saw
// as one JSON line for tests/test_web_filters.py.
//
// Usage: node web-filters.mjs BASE USER PASSWORD SHOTDIR EXPECT_JSON
//   EXPECT_JSON  {"broken": script text, "fixed": script text}
import path from 'node:path';
import { LOGIN_SUBMIT, fillLogin, finish, args, launch, recorder, submit } from './web-lib.mjs';

const { base, user, password, shots, want, rel } = args('web-filters.mjs');
const { out, step } = recorder();

const browser = await launch();
try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.setDefaultTimeout(15000);
    await step('login', async () => {
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        await submit(page, LOGIN_SUBMIT);
        return { path: rel(page.url()) };
    });
    await step('broken', async () => {
        await page.click('header.top a[href="/filters"]');
        await page.waitForSelector('form#script');
        await page.fill('form#script textarea', want.broken);
        const resp = await submit(page, 'form#script button');
        const facts = await page.evaluate(() => {
            const e = document.querySelector('div.error');
            return e && { line: e.dataset.line, column: e.dataset.column, text: e.innerText };
        });
        await page.screenshot({ path: path.join(shots, 'filters.png'), fullPage: true });
        return { status: resp.status(), error: facts, kept: await page.inputValue('form#script textarea') };
    });
    await step('fixed', async () => {
        await page.fill('form#script textarea', want.fixed);
        const resp = await submit(page, 'form#script button');
        return { status: resp.status(), path: rel(page.url()), saved: await page.isVisible('p.saved') };
    });
    await step('rule', async () => {
        await page.selectOption('form#rule select[name=phase]', 'outgoing');
        await page.selectOption('form#rule select[name=field]', 'to');
        await page.fill('form#rule input[name=value]', 'acme.test');
        await page.selectOption('form#rule select[name=action]', 'fileinto');
        await page.fill('form#rule input[name=target]', 'Clients/ACME');
        const resp = await submit(page, 'form#rule button');
        return { status: resp.status(), path: rel(page.url()), script: await page.inputValue('form#script textarea') };
    });
} finally {
    await browser.close();
}
finish(out);
