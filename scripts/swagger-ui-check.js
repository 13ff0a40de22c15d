// Drives Swagger UI in Chromium as a person would: logs in with "Try it out", authorizes
// with the token it got, and calls an admin route; once as an admin, once as a customer
// in a fresh browser session. Prints one line per call. Run by swagger-ui-check.sh.
const { chromium } = require('playwright-core');
const base = process.env.SHOP_URL;

// Expands the operation, runs it with `body`, and answers the status and body shown.
async function tryOperation(page, method, path, body) {
  const exact = new RegExp(`^${path.replace(/\//g, '\\/')}$`);
  const block = page
    .locator(`.opblock-${method}`)
    .filter({ has: page.locator('.opblock-summary-path', { hasText: exact }) })
    .first();
  await block.locator('.opblock-summary').click();
  const tryOut = block.locator('button.try-out__btn', { hasText: 'Try it out' });
  if ((await tryOut.count()) > 0) await tryOut.click();
  if (body !== undefined) await block.locator('textarea.body-param__text').fill(body);
  await block.locator('button.execute').click();
  const status = block.locator('.live-responses-table tbody .response-col_status').first();
  await status.waitFor();
  const code = (await status.innerText()).trim();
  const text = await block
    .locator('.live-responses-table tbody .response-col_description pre')
    .first()
    .innerText();
  await block.locator('.opblock-summary').click();
  return { code, text };
}

// Fills every scheme of the Authorize dialog with `token`.
async function authorize(page, token) {
  await page.locator('button.authorize').first().click();
  const dialog = page.locator('.modal-ux');
  const inputs = dialog.locator('input[type=text], input[type=password]');
  for (let i = 0; i < (await inputs.count()); i++) await inputs.nth(i).fill(token);
  const buttons = dialog.locator('button.modal-btn.auth.authorize');
  while ((await buttons.count()) > 0) await buttons.first().click();
  await dialog.locator('button.btn-done').first().click();
}

async function session(browser) {
  const page = await (await browser.newContext()).newPage();
  // Which user each admin call went as, by its Bearer token and its cookie.
  page.on('request', async (req) => {
    if (!req.url().includes('/api/account/users')) return;
    const h = await req.allHeaders();
    const who = (t) => (t ? JSON.parse(Buffer.from(t.split('.')[1], 'base64url')).sub : '-');
    const cookie = ((h.cookie || '').match(/access_token=([^;]+)/) || [])[1];
    console.log(`  sent as: bearer user ${who((h.authorization || '').replace('Bearer ', ''))}, cookie user ${who(cookie)}`);
  });
  await page.goto(`${base}/docs/`);
  await page.locator('.opblock').first().waitFor();
  return page;
}

async function asUser(browser, label, email, password) {
  const page = await session(browser);
  const login = await tryOperation(page, 'post', '/api/account/login', JSON.stringify({ email, password }));
  if (login.code !== '200') throw new Error(`login ${email}: ${login.code} ${login.text}`);
  await authorize(page, JSON.parse(login.text).access_token);
  const r = await tryOperation(page, 'get', '/api/account/users');
  console.log(`${label} GET /api/account/users -> ${r.code} ${r.text.replace(/\s+/g, ' ').slice(0, 80)}`);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  await asUser(browser, 'admin', 'admin@example.com', 'admin password 1');
  await asUser(browser, 'customer', 'customer@example.com', 'customer password 1');
  await browser.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
