// A real browser through Candor's login and consent pages, by clicking; screenshots of the pages.
// Run: cargo build -p candor && cd interop/browser && npm ci && node run.mjs
// Needs Debian's chromium (apt-get install chromium); CHROMIUM overrides its path.
// Screenshots go to interop/artifacts/ (kept by CI as artefacts).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { startCandor, checks, assert } from '../common.mjs';

const artifacts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });
const REDIRECT = 'http://localhost:3000/callback';
const b64url = (buf) => buf.toString('base64url');

const candor = await startCandor();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let code = 1;
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, httpCredentials: { username: 'admin', password: candor.adminToken ?? '' } });
  const page = await context.newPage();
  // Nothing listens on the client's redirect URI: answer it in the browser and keep the URL.
  let landed = null;
  await page.route(`${REDIRECT}**`, (route) => { landed = route.request().url(); route.fulfill({ status: 200, contentType: 'text/html', body: '<p>callback received</p>' }); });
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(12));
  const authorize = `${candor.issuer}/authorize?` + new URLSearchParams({
    response_type: 'code', client_id: 'demo-app', redirect_uri: REDIRECT, scope: 'openid profile email',
    state, nonce: b64url(randomBytes(12)), code_challenge: challenge, code_challenge_method: 'S256',
  });
  const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  code = await checks('browser', [
    ['the login page renders', async () => {
      await page.goto(authorize);
      await page.getByLabel('Username').waitFor();
      await shot('login');
    }],
    ['a wrong password is refused on the page', async () => {
      await page.getByLabel('Username').fill('demo');
      await page.getByLabel('Password').fill('not-the-password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      assert((await page.getByRole('alert').textContent()).includes('wrong'), 'error message');
      await shot('login-error');
    }],
    ['signing in by clicking leads to the consent page', async () => {
      await page.getByLabel('Password').fill(candor.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      await shot('consent');
    }],
    ['allowing lands on the redirect URI with a code, state and iss', async () => {
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL(`${REDIRECT}**`);
      const url = new URL(landed);
      assert(url.searchParams.get('code') && url.searchParams.get('state') === state, landed);
      assert(url.searchParams.get('iss') === candor.issuer, 'iss');
      const res = await fetch(`${candor.issuer}/token`, {
        method: 'POST',
        headers: { authorization: 'Basic ' + Buffer.from(`demo-app:${candor.secret}`).toString('base64'), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: url.searchParams.get('code'), redirect_uri: REDIRECT, code_verifier: verifier }),
      });
      assert(res.status === 200, `token exchange: ${res.status} ${await res.text()}`);
    }],
    ['an unknown client gets an error page, not a redirect', async () => {
      const res = await page.goto(`${candor.issuer}/authorize?response_type=code&client_id=nobody&redirect_uri=${encodeURIComponent(REDIRECT)}`);
      assert(res.status() === 400 && page.url().startsWith(candor.issuer), page.url());
      await page.getByRole('alert').waitFor();
      await shot('error');
    }],
    ['the reason page explains and says how to fix', async () => {
      await page.goto(`${candor.issuer}/errors/code_already_redeemed`);
      await page.getByRole('heading', { name: 'How to fix' }).waitFor();
      await shot('reason');
    }],
    ['the admin page lists refusals by client and reason', async () => {
      await page.goto(`${candor.issuer}/admin/rejections`);
      await page.getByText('client_unknown').first().waitFor();
      await shot('admin-rejections');
    }],
  ]);
} finally {
  await browser.close();
  candor.stop();
}
console.log(`screenshots: ${artifacts}`);
process.exit(code);
