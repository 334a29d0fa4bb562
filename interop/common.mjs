// Shared by the Node interop scripts: start `candor dev` and play a browser with a cookie jar.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const candorBin = process.env.CANDOR_BIN ?? path.join(root, 'target', 'debug', 'candor');

/**
 * Starts `candor dev --port 0`, on a throwaway store (`--ephemeral`) or, with `dataDir`, on the
 * SQLite file `<dataDir>/dev.db`, which the admin commands can reach while it runs; resolves with
 * its issuer, demo password, client secret and a stop(). `args` are more `candor dev` options.
 */
export function startCandor({ dataDir, args = [] } = {}) {
  return new Promise((resolve, reject) => {
    const store = dataDir ? ['--data-dir', dataDir] : ['--ephemeral'];
    const child = spawn(candorBin, ['dev', '--port', '0', ...store, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => { child.kill(); reject(new Error('candor dev did not print its banner in 30 s')); }, 30_000);
    const found = {};
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${candorBin}: ${e.message} (run cargo build -p candor first)`)); });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const t = line.trim();
      for (const key of ['issuer', 'password', 'secret']) {
        if (t.startsWith(`${key}:`) && !found[key]) found[key] = t.slice(key.length + 1).trim();
      }
      const admin = /Authorization: Bearer ([^']+)'/.exec(t);
      if (admin) found.adminToken = admin[1];
      if (t.endsWith('/admin/rejections')) {
        clearTimeout(timer);
        resolve({ ...found, stop: () => child.kill() });
      }
    });
  });
}

/** Runs a `candor` admin command against the dev store in `dataDir`; returns its output, throws on failure. */
export function admin(dataDir, args) {
  const r = spawnSync(candorBin, [...args, '--store', `sqlite://${dataDir}/dev.db`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`candor ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A browser without JavaScript: follows Candor's forms (the device code page, login, consent), keeps
 * cookies, and stops at a redirect that starts with `redirectUri` (the client's callback, or the
 * device page's result), answering with its Location. `decision` is what the consent form gets;
 * `jar` keeps the cookies across calls (one browser signing in, then out).
 */
export async function browse(authorizeUrl, redirectUri, username, password, decision = 'allow', jar = new Map()) {
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      if (/;\s*max-age=0/i.test(c)) jar.delete(pair.slice(0, i));
      else jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  const origin = new URL(authorizeUrl).origin;
  let res = await fetch(authorizeUrl, { redirect: 'manual', headers: { cookie: cookieHeader() } });
  for (let step = 0; step < 8; step++) {
    remember(res);
    if (res.status === 302 || res.status === 303) {
      const location = res.headers.get('location');
      if (location.startsWith(redirectUri)) return location;
      res = await fetch(new URL(location, origin), { redirect: 'manual', headers: { cookie: cookieHeader() } });
      continue;
    }
    const page = await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status} during login: ${page.slice(0, 300)}`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
    const action = /action="([^"]+)"/.exec(page)?.[1];
    if (!csrf || !action) throw new Error('no login or consent form on the page');
    const userCode = /name="user_code" value="([^"]*)"/.exec(page)?.[1];
    const form = action.endsWith('/login')
      ? { csrf, username, password }
      : action === '/device' ? { csrf, user_code: userCode } : { csrf, decision };
    res = await fetch(new URL(action, origin), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
  }
  throw new Error('too many steps');
}

/** Runs named checks in order; exits non-zero on the first failure. */
export async function checks(name, list) {
  let passed = 0;
  for (const [label, fn] of list) {
    try {
      await fn();
      passed++;
      console.log(`ok   ${label}`);
    } catch (e) {
      console.log(`FAIL ${label}: ${e?.stack ?? e}`);
      console.log(`${name}: ${passed} passed, 1 failed`);
      return 1;
    }
  }
  console.log(`${name}: ${passed} passed, 0 failed`);
  return 0;
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}
