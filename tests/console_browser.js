// The console in a real headless Chromium (puppeteer-core over the DevTools
// protocol), as integration/console_browser.sh sets it up: profile "bad"
// has a rejected file (its cause already fixed), profile "good" loaded one.
//
//   viewer: logs in, sees the overview with "bad" highlighted, the rejects
//           page without a replay button; a forged POST (no token, and the
//           viewer's own token) is refused
//   operator: logs in, opens the reject from the overview, replays it,
//           sees the new intake loaded
// Every step has its own timeout; screenshots of each page go to $SHOTS.
'use strict';
const puppeteer = require('puppeteer-core');
const { BASE, CHROMIUM, SHOTS, REJECT } = process.env;
const STEP_MS = 20000;

let failed = 0;
const ok = (m) => console.log(`ok   - ${m}`);
const bad = (m) => { failed++; console.log(`FAIL - ${m}`); };
const expect = (c, m) => (c ? ok(m) : bad(m));

async function step(name, fn) {
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('step timed out')), STEP_MS); }),
    ]);
  } catch (e) {
    bad(`${name}: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
}

async function login(page, user, pass) {
  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  expect(page.url().endsWith('/login'), `${user}: an anonymous visit lands on /login`);
  await page.type('input[name=user]', user);
  await page.type('input[name=password]', pass);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('form button')]);
  expect(page.url() === `${BASE}/`, `${user}: logged in, on the overview (at ${page.url()}: ${(await page.content()).slice(100, 400)})`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    protocolTimeout: STEP_MS,
  });
  try {
    // ---- viewer
    const vctx = await browser.createBrowserContext();
    const v = await vctx.newPage();
    await v.setViewport({ width: 1100, height: 700 });
    await step('viewer login', () => login(v, 'aud', 'viewer-pass'));
    await step('overview highlights the rejecting profile', async () => {
      const cls = await v.$eval('section.card[data-profile="bad"]', (e) => e.className);
      expect(/\bbad\b/.test(cls), `overview: profile "bad" is highlighted (class "${cls}")`);
      const state = await v.$eval('section.card[data-profile="bad"] .state', (e) => e.textContent);
      expect(state === 'rejecting', `overview: its state is "rejecting" (got "${state}")`);
      const g = await v.$eval('section.card[data-profile="good"]', (e) => e.className);
      expect(!/\bbad\b/.test(g), 'overview: profile "good" is not highlighted');
      expect((await v.$$('svg.chart')).length >= 2, 'overview: a chart per profile');
      await shot(v, 'overview');
    });
    await step('viewer: rejects without replay', async () => {
      await v.goto(`${BASE}/rejects`, { waitUntil: 'load' });
      expect((await v.$$('tr.reject')).length === 1, 'rejects: one reject listed');
      expect((await v.$$('button.replay')).length === 0, 'viewer: no replay button');
      await shot(v, 'rejects-viewer');
    });
    await step('viewer: forged POSTs refused', async () => {
      const codes = await v.evaluate(async (id) => {
        const csrf = document.querySelector('input[name=csrf]').value;
        const a = await fetch(`/intakes/${id}/replay`, { method: 'POST', body: 'x=1',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
        const b = await fetch(`/api/v1/intakes/${id}/replay`, { method: 'POST',
          headers: { 'X-CSRF-Token': csrf } });
        return [a.status, b.status];
      }, REJECT);
      expect(codes[0] === 403, `forged POST without a CSRF token refused (${codes[0]})`);
      expect(codes[1] === 403, `the viewer's own token does not make it an operator (${codes[1]})`);
    });
    for (const p of ['intakes', 'sources', 'audit']) {
      await step(`page ${p}`, async () => {
        const r = await v.goto(`${BASE}/${p}`, { waitUntil: 'load' });
        expect(r.status() === 200, `page /${p} renders (${r.status()})`);
        await shot(v, p);
      });
    }
    await vctx.close();

    // ---- operator
    const octx = await browser.createBrowserContext();
    const o = await octx.newPage();
    await o.setViewport({ width: 1100, height: 700 });
    o.on('dialog', (d) => d.accept());
    await step('operator login', () => login(o, 'ops', 'operator-pass'));
    await step('operator opens the reject from the overview', async () => {
      await Promise.all([o.waitForNavigation({ waitUntil: 'load' }),
        o.click('section.card[data-profile="bad"] a')]);
      await Promise.all([o.waitForNavigation({ waitUntil: 'load' }), o.click('tr.reject td a')]);
      expect(o.url().endsWith(`/intakes/${REJECT}`), 'the reject\'s page is open');
      const body = await o.$eval('main', (e) => e.textContent);
      expect(body.includes('line 2'), 'the reject report names the line');
      expect((await o.$$('button.replay')).length === 1, 'operator: a replay button');
      await shot(o, 'intake-reject');
    });
    let newUrl = '';
    await step('operator replays', async () => {
      await Promise.all([o.waitForNavigation({ waitUntil: 'load' }), o.click('button.replay')]);
      newUrl = o.url();
      expect(/\/intakes\/[0-9A-Z]{26}$/.test(newUrl) && !newUrl.endsWith(REJECT),
        `replay leads to the new intake (${newUrl})`);
    });
    await step('the replay is loaded', async () => {
      let text = '';
      for (let i = 0; i < 60; i++) {
        await o.goto(newUrl, { waitUntil: 'load' });
        text = await o.$eval('table', (e) => e.textContent);
        if (text.includes('loaded') && text.includes('done')) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(text.includes('loaded') && text.includes('done'), 'the new intake is done and loaded');
      await shot(o, 'intake-replayed');
    });
    await octx.close();
  } finally {
    await browser.close();
  }
  console.log(failed ? `${failed} browser checks failed` : 'browser checks passed');
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log(`FAIL - ${e.stack}`); process.exit(1); });
