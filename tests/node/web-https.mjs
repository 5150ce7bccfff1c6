// The webmail over the https door in chromium: the login works, the session
// cookie the browser keeps is Secure, HttpOnly and SameSite=Strict, and the
// inbox opens. The certificate is the server's self-signed one.
import { LOGIN_SUBMIT, args, fillLogin, finish, launch, recorder, submit } from './web-lib.mjs';

const { base, user, password, shots, rel } = args('web-https.mjs');
const { out, step } = recorder();
const browser = await launch();
try {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    await step('login', async () => {
        await page.goto(base + '/login');
        await fillLogin(page, user, password);
        const resp = await submit(page, LOGIN_SUBMIT);
        await page.screenshot({ path: `${shots}/https-inbox.png` });
        return { status: resp.status(), path: rel(page.url()), protocol: new URL(page.url()).protocol };
    });
    await step('cookies', async () =>
        (await ctx.cookies()).map(c => ({ name: c.name, secure: c.secure, httpOnly: c.httpOnly, sameSite: c.sameSite })));
} finally {
    await browser.close();
}
finish(out);
