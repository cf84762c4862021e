// Browser tests of the web pages: each page's main story in headless Chromium (Debian's
// `chromium`, driven by playwright-core), against a running stack whose base URL and fixtures
// the calling test passes in the environment. A screenshot of each page is kept in SHOTS_DIR.
//
//   BASE_URL, ADMIN_PASSWORD, BANNED_TOKEN (a permanently banned user's session token),
//   BANNED_NAME, PENDING_NAME and PENDING_TOKEN (a user awaiting review), REPORTER_TOKEN and
//   REPORT_TARGET (a user and the one the report widget is for), CALL_PATH (a spoken scam call, phone
//   band), DANGEROUS_NUMBER (a number listed dangerous), SHOTS_DIR, CHROMIUM_BIN
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => { const v = process.env[k]; assert.ok(v, `${k} is required`); return v; };
const BASE = env('BASE_URL');
const SHOTS = env('SHOTS_DIR');
mkdirSync(SHOTS, { recursive: true });

let browser;
test.before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      // The host page of the embed tests is served at http://localhost:9 (routed here) and the api
      // on 127.0.0.1: both loopback, which Local Network Access would still gate.
      '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights'],
  });
});
test.after(async () => { await browser?.close(); });

async function open(path) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems = [];
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(BASE + path);
  return { page, problems };
}

test('call check: upload a spoken scam call, follow the queue, read the verdict and hear its evidence', async () => {
  const { page, problems } = await open('/check');
  await page.getByTestId('audio-file').setInputFiles(env('CALL_PATH'));
  await page.getByTestId('caller-number').fill('+1 415 555 0100');
  await page.getByTestId('check-submit').click();
  await page.getByTestId('status-view').waitFor({ state: 'visible' });
  assert.match(page.url(), /\/check\/[0-9a-f-]{36}$/, 'the page URL names the task');
  const verdict = page.getByTestId('verdict');
  await verdict.waitFor({ state: 'visible', timeout: 90_000 });
  assert.equal((await verdict.textContent()).toLowerCase(), 'scam');
  assert.match(await page.getByTestId('explanation').textContent(), /^Likely a scam/);
  // The transcript shows the evidence highlighted; each phrase plays its moment of the call.
  const marks = page.getByTestId('evidence-mark');
  assert.ok(await marks.count() >= 2, 'evidence is highlighted in the transcript');
  const player = page.getByTestId('player');
  await player.waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.getElementById('player').readyState >= 1, null, { timeout: 30_000 });
  const mark = marks.nth(1);
  const start = Number(await mark.getAttribute('data-start'));
  assert.ok(start > 0, 'the mark knows when it was said');
  await mark.click();
  await page.waitForFunction((s) => Math.abs(document.getElementById('player').currentTime - s) < 1.5, start, { timeout: 10_000 });
  // The time buttons of an indicator do the same.
  const time = page.getByTestId('span-time').first();
  await time.click();
  await page.screenshot({ path: `${SHOTS}/check.png`, fullPage: true });
  assert.deepEqual(problems, []);
});

test('numbers: a bad number is explained next to the field; a report and a look-up work', async () => {
  const { page, problems } = await open('/numbers');
  await page.getByTestId('report-number').fill('call me maybe');
  await page.getByTestId('report-category').selectOption('scam');
  await page.getByTestId('report-submit').click();
  await page.getByTestId('report-number-error').waitFor({ state: 'visible' });
  assert.ok((await page.getByTestId('report-number-error').textContent()).length > 0);
  await page.getByTestId('report-number').fill('+1 (415) 555-0199');
  await page.getByTestId('report-submit').click();
  await page.getByTestId('report-success').waitFor({ state: 'visible' });
  await page.getByTestId('lookup-number').fill('+14155550199');
  await page.getByTestId('lookup-submit').click();
  const status = page.getByTestId('lookup-status');
  await status.waitFor({ state: 'visible' });
  assert.match((await status.textContent()).toLowerCase(), /reported|unknown|dangerous/);
  // The number of the call judged a scam in the call check: its page counts the flagged call.
  await page.getByTestId('lookup-number').fill('+14155550100');
  for (let i = 0; i < 20; i++) {
    await page.getByTestId('lookup-submit').click();
    await page.waitForTimeout(500);
    if ((await page.getByTestId('lookup-flagged').textContent()).includes('1 call')) break;
  }
  assert.match(await page.getByTestId('lookup-flagged').textContent(), /^1 call judged a scam/);
  await page.screenshot({ path: `${SHOTS}/numbers.png`, fullPage: true });
  assert.deepEqual(problems, []);
});

test('public blacklist: search, see the card, and nothing a user wrote runs', async () => {
  const name = env('BANNED_NAME');
  const { page, problems } = await open('/blacklist?q=' + encodeURIComponent('alert'));
  const card = page.getByTestId('blacklist-card').first();
  await card.waitFor({ state: 'visible' });
  assert.ok((await card.textContent()).includes(name), 'the name is shown as written');
  assert.equal(await page.evaluate(() => window.__xss === undefined), true);
  await page.screenshot({ path: `${SHOTS}/blacklist.png`, fullPage: true });
  assert.deepEqual(problems, [], 'no script from a user ran (no dialog, no error)');
});

/** A host platform's page at http://localhost:9/ with `html` in its body. */
async function hostWith(html) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.route('http://localhost:9/', (route) => route.fulfill({
    contentType: 'text/html', body: `<!doctype html><html><body><h1>Video chat</h1>${html}</body></html>`,
  }));
  await page.goto('http://localhost:9/');
  return { page, problems };
}

// Before any banned user's token is used from this browser: that would ban its address (127.0.0.1)
// too, and a banned address may not report.
test('report widget: a report from the host page, by keyboard, then "Reported"', async () => {
  const html = `<div id="report-slot" style="--bl-accent:#6a1b9a"></div>
    <script src="${BASE}/static/report-embed.js" data-token="${env('REPORTER_TOKEN')}"
      data-reported-user="${env('REPORT_TARGET')}" data-target="#report-slot"></script>`;
  const { page, problems } = await hostWith(html);
  const button = page.getByTestId('report-button');
  await button.waitFor({ state: 'visible' });
  assert.equal(await button.textContent(), 'Report');
  // Keyboard: Enter opens the dialog with focus on the category, Escape closes it.
  await button.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByTestId('report-dialog');
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'report-category');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  await button.click();
  await page.getByTestId('report-category').selectOption('harassment');
  await page.getByTestId('report-reason').fill('insults on camera');
  await page.getByTestId('report-email').fill('rita@example.org');
  const accent = await page.getByTestId('report-submit').evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(accent, 'rgb(106, 27, 154)', "the host's --bl-accent styles the dialog too");
  await page.screenshot({ path: `${SHOTS}/report-widget.png` });
  await page.getByTestId('report-submit').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=report-button]').textContent === 'Reported');
  assert.equal(await button.isDisabled(), true);
  // Another visit knows the pair is reported.
  const again = await hostWith(html);
  const known = again.page.getByTestId('report-button');
  await again.page.waitForFunction(() => document.querySelector('[data-testid=report-button]')?.textContent === 'Reported');
  assert.equal(await known.isDisabled(), true);
  assert.deepEqual(problems, []);
  assert.deepEqual(again.problems, []);
});

test('numbers: the owner of a listed number disputes it from the number\'s page', async () => {
  const number = env('DANGEROUS_NUMBER');
  const { page, problems } = await open('/numbers?number=' + encodeURIComponent(number));
  const status = page.getByTestId('lookup-status');
  await status.waitFor({ state: 'visible' });
  assert.equal(await status.getAttribute('data-status'), 'dangerous');
  await page.getByTestId('dispute-open').click();
  await page.getByTestId('dispute-submit').click();
  assert.match(await page.getByTestId('dispute-text-error').textContent(), /Say why/);
  await page.getByTestId('dispute-text').fill('This is the number of my bakery.');
  await page.getByTestId('dispute-email').fill('baker@example.org');
  await page.getByTestId('dispute-submit').click();
  const done = page.getByTestId('dispute-success');
  await done.waitFor({ state: 'visible' });
  assert.match(await done.textContent(), /moderator will review/);
  await page.screenshot({ path: `${SHOTS}/numbers-dispute.png`, fullPage: true });
  assert.deepEqual(problems, []);
});

test('ban notice: a banned user sees why', async () => {
  const { page, problems } = await open('/ban-notice#token=' + env('BANNED_TOKEN'));
  const notice = page.getByTestId('ban-status');
  await notice.waitFor({ state: 'visible' });
  assert.match((await page.getByTestId('ban-notice').textContent()).toLowerCase(), /permanent/);
  assert.ok(!page.url().includes('token='), 'the token leaves the address bar');
  await page.screenshot({ path: `${SHOTS}/ban-notice.png`, fullPage: true });
  // The right of access: everything held about them, as a file.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('my-data').click()]);
  const held = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(held.profile.banStatus, 'permanent');
  assert.equal(held.reportsAgainst.length, 4);
  assert.deepEqual(problems, []);
});

/** A host platform's page at http://localhost:9/ embedding the ban notice for `token`. */
async function hostPage(token, mode) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.route('http://localhost:9/', (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><html><body><h1>Video chat</h1><div id="slot"></div>
      <script>window.banned = []; window.onBan = function (d) { window.banned.push(d); };
        document.addEventListener('blacklist:banned', function (e) { window.eventDetail = e.detail; });</script>
      <script src="${BASE}/static/ban-embed.js" data-token="${token}" data-target="#slot"
        data-mode="${mode}" data-on-ban="onBan"></script></body></html>`,
  }));
  await page.goto('http://localhost:9/');
  return { page, problems };
}

test('ban embed: a permanent ban takes over the host page and tells the host', async () => {
  const { page, problems } = await hostPage(env('BANNED_TOKEN'), 'overlay');
  const layer = page.getByTestId('ban-overlay');
  await layer.waitFor({ state: 'visible', timeout: 10000 }).catch((e) => { throw new Error(`${e.message}; ${problems.join(' | ')}`); });
  const box = await layer.boundingBox();
  assert.ok(box.width >= 1200 && box.height >= 900, 'the overlay covers the viewport');
  assert.equal(await page.getByTestId('ban-embed').getAttribute('data-status'), 'permanent');
  assert.equal(await page.getByTestId('ban-embed-blacklist').count(), 1, 'a permanent ban links the blacklist');
  const told = await page.evaluate(() => ({ callback: window.banned, event: window.eventDetail }));
  assert.equal(told.callback.length, 1);
  assert.equal(told.callback[0].status, 'permanent');
  assert.equal(told.event.type, 'blacklist:banned');
  await page.screenshot({ path: `${SHOTS}/ban-overlay.png` });
  assert.deepEqual(problems, []);
});

test('ban embed: a pending ban shows inline, without the blacklist link', async () => {
  const { page, problems } = await hostPage(env('PENDING_TOKEN'), 'inline');
  const notice = page.getByTestId('ban-embed');
  await notice.waitFor({ state: 'visible' });
  assert.equal(await notice.getAttribute('data-status'), 'temporary');
  assert.equal(await page.getByTestId('ban-overlay').count(), 0);
  assert.equal(await page.getByTestId('ban-embed-blacklist').count(), 0, 'no blacklist link for a pending ban');
  assert.equal(await page.evaluate(() => window.banned.length), 1, 'the host is told of a temporary ban too');
  assert.deepEqual(problems, []);
});

test('ban embed: a banned user appeals from the notice, once, and sees it pending', async () => {
  const { page, problems } = await hostPage(env('PENDING_TOKEN'), 'overlay');
  await page.getByTestId('ban-overlay').waitFor({ state: 'visible' });
  await page.getByTestId('ban-embed-appeal-open').click();
  const text = page.getByTestId('ban-embed-appeal-text');
  await text.waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'ban-embed-appeal-text',
    'the form takes the focus');
  // An empty appeal is refused in the page, before any request.
  await page.getByTestId('ban-embed-appeal-send').click();
  assert.match(await page.getByTestId('ban-embed-appeal-message').textContent(), /say why/);
  await text.fill('Someone else used my camera that night.');
  await page.getByTestId('ban-embed-appeal-email').fill('pat@example.org');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  const state = page.getByTestId('ban-embed-appeal-status');
  await state.waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await state.getAttribute('data-status'), 'pending');
  await page.screenshot({ path: `${SHOTS}/ban-appeal.png` });
  // Seen again later (once the read side has it): pending, and no second form is offered.
  const again = await hostPage(env('PENDING_TOKEN'), 'inline');
  const shown = again.page.getByTestId('ban-embed-appeal-status');
  for (let i = 0; i < 20 && !(await shown.count()); i++) {
    await again.page.waitForTimeout(250);
    await again.page.reload();
    await again.page.getByTestId('ban-embed').waitFor({ state: 'visible' });
  }
  await shown.waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await shown.getAttribute('data-status'), 'pending');
  assert.equal(await again.page.getByTestId('ban-embed-appeal-open').count(), 0);
  assert.deepEqual(problems, []);
  assert.deepEqual(again.problems, []);
});

test('admin: sign in, review a pending ban, register a worker', async () => {
  const { page, problems } = await open('/admin');
  await page.getByTestId('login-username').fill('admin');
  await page.getByTestId('login-password').fill(env('ADMIN_PASSWORD'));
  await page.getByTestId('login-submit').click();
  await page.getByTestId('admin-view').waitFor({ state: 'visible' });
  await page.getByTestId('stat-totalReports').waitFor({ state: 'visible' });
  await page.screenshot({ path: `${SHOTS}/admin-stats.png`, fullPage: true });

  await page.getByTestId('tab-pending').click();
  const pending = page.getByTestId('pending-user').filter({ hasText: env('PENDING_NAME') });
  await pending.waitFor({ state: 'visible' });
  await page.screenshot({ path: `${SHOTS}/admin-pending.png`, fullPage: true });
  await pending.getByTestId('review-permanent').click();
  await pending.waitFor({ state: 'detached', timeout: 15_000 });

  // Pat appealed from the ban notice (above): the appeal is on the queue; overturning it lifts
  // the (now permanent) ban.
  await page.getByTestId('tab-appeals').click();
  const appeal = page.getByTestId('appeal').filter({ hasText: env('PENDING_NAME') });
  await appeal.waitFor({ state: 'visible', timeout: 15_000 });
  assert.match(await appeal.getByTestId('appeal-text').textContent(), /Someone else used my camera/);
  await appeal.getByTestId('appeal-note').fill('The reports were about another account.');
  await page.screenshot({ path: `${SHOTS}/admin-appeals.png`, fullPage: true });
  await appeal.getByTestId('appeal-overturn').click();
  await appeal.waitFor({ state: 'detached', timeout: 15_000 });
  assert.match(await page.getByTestId('admin-flash').textContent(), /Overturned/);

  await page.getByTestId('tab-workers').click();
  await page.getByTestId('worker-name').fill('browser-made');
  await page.getByTestId('worker-submit').click();
  const token = page.getByTestId('worker-token');
  await token.waitFor({ state: 'visible' });
  const value = (await token.inputValue().catch(() => null)) ?? (await token.textContent());
  assert.match(value, /^blw_[0-9a-f]{32}_/);
  await page.screenshot({ path: `${SHOTS}/admin-workers.png`, fullPage: true });

  // Re-analysis of the call checked above, with its progress.
  await page.getByTestId('tab-queue').click();
  await page.getByTestId('reanalyse-version').fill('9999');
  await page.getByTestId('reanalyse-submit').click();
  const row = page.getByTestId('reanalysis-row').first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await page.waitForFunction(() => {
    const p = document.querySelector('[data-testid=reanalysis-progress]');
    return p && Number(p.value) >= 1 && Number(p.value) === Number(p.max);
  }, null, { timeout: 90_000 });
  await page.screenshot({ path: `${SHOTS}/admin-queue.png`, fullPage: true });
  assert.deepEqual(problems, []);
});
