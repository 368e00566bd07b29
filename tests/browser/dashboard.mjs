// Drives Kevlar's dashboard in Debian's Chromium (headless, through playwright-core), as a person
// would, and prints one JSON object of what happened for the Rust test to judge:
//   node dashboard.mjs ADMIN_URL PROXY_URL TOKEN SCREENSHOT_DIR
// Steps: a wrong token, then the right one; the live feed gets an SQL injection sent through the
// proxy without a reload; the event is marked a false positive; every page is reached with the
// keyboard alone and screenshotted; console errors and CSP violations are collected; a framed
// dashboard and a cross-site POST are tried; finally the attacking address is banned from its
// black-book page.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import http from "node:http";

const [admin, proxy, token, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
const out = { consoleErrors: [], cspViolations: [], pages: {}, keyboard: {} };
const ATTACK = "/search?q=1'%20UNION%20SELECT%20password%20FROM%20users--";

try {
  const context = await browser.newContext();
  // Violations the page itself sees (a CSP report would be the same thing, sent later).
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp = window.__csp || [];
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") out.consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => out.consoleErrors.push(`${page.url()}: ${e.message}`));
  const collect = async () => {
    const v = await page.evaluate(() => window.__csp || []);
    out.cspViolations.push(...v.map((x) => `${page.url()}: ${x}`));
  };

  // Sign in: a wrong token first.
  await page.goto(admin + "/");
  out.loginUrl = new URL(page.url()).pathname;
  await page.fill('input[name="token"]', "not-the-token");
  await page.click('button:has-text("Sign in")');
  out.wrongTokenAlert = await page.locator('[role="alert"]').textContent().catch(() => null);
  await page.fill('input[name="token"]', token);
  await page.click('button:has-text("Sign in")');
  await page.waitForURL(admin + "/");
  out.afterLogin = await page.locator("h1").textContent();
  const cookies = await context.cookies(admin);
  out.cookie = cookies.find((c) => c.name === "kevlar_session") || null;

  // The live feed: an attack sent through the proxy appears without a reload.
  await page.goto(admin + "/events");
  await page.waitForFunction(() => document.getElementById("live-state")?.textContent.startsWith("Live"));
  // The feed's connection is open once the first poll answered; give it a beat of real work.
  await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  const navigations = [];
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  const sent = Date.now();
  out.attackStatus = (await fetch(proxy + ATTACK)).status;
  const row = page.locator('table.events tbody tr.fresh:has(td:text-is("malicious_attack"))').first();
  await row.waitFor({ timeout: 10000 });
  out.liveMs = Date.now() - sent;
  out.reloadedForLive = navigations.length > 0;
  await collect();
  await page.screenshot({ path: `${shots}/events-live.png`, fullPage: true });

  // False positive, one click.
  await row.locator("a").first().click();
  await page.waitForURL(/\/events\/\d+$/);
  out.eventPage = new URL(page.url()).pathname;
  out.proposedToml = await page.locator("pre.toml").textContent();
  await page.screenshot({ path: `${shots}/event.png`, fullPage: true });
  await page.click('button:has-text("This was legitimate")');
  await page.waitForURL(/\/exclusions/);
  out.exclusionToml = await page.locator("section.exclusion pre.toml").first().textContent();
  out.afterExclusionStatus = (await fetch(proxy + ATTACK)).status;

  // Every page with the keyboard alone: Tab to the section's link, Enter.
  const sections = ["Overview", "Events", "Black book", "Logins", "Routes", "App", "Alerts", "Dependencies", "Exclusions"];
  await page.goto(admin + "/");
  for (const name of sections) {
    let found = false;
    for (let i = 0; i < 60 && !found; i++) {
      await page.keyboard.press("Tab");
      found = await page.evaluate((n) => document.activeElement?.tagName === "A" && document.activeElement.textContent === n, name);
    }
    if (!found) { out.keyboard[name] = "not reached"; continue; }
    await Promise.all([page.waitForLoadState("load"), page.keyboard.press("Enter")]);
    await page.waitForFunction((n) => document.querySelector('nav a[aria-current="page"]')?.textContent === n, name);
    out.keyboard[name] = new URL(page.url()).pathname;
    await collect();
    const slug = name.toLowerCase().replace(/ /g, "-");
    await page.screenshot({ path: `${shots}/${slug}.png`, fullPage: true });
    out.pages[name] = { h1: await page.locator("h1").textContent() };
  }

  // Another origin (a port of its own on loopback, no policy of its own) frames the dashboard
  // and posts a ban to it with the browser's cookie: both refused.
  const evil = http.createServer((req, res) => {
    res.setHeader("Content-Type", "text/html");
    if (req.url === "/frame") return res.end(`<iframe id="f" src="${admin}/login"></iframe>`);
    res.end(`<form id="x" method="post" action="${admin}/blackbook/198.51.100.77/ban">
      <input name="for" value="1h"><input name="reason" value="csrf"></form>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}`;
  const framer = await context.newPage();
  const frameErrors = [];
  framer.on("console", (m) => frameErrors.push(m.text()));
  await framer.goto(evilUrl + "/frame");
  await framer.waitForTimeout(1000);
  out.frameMessages = frameErrors;
  const inner = framer.frames().find((f) => f !== framer.mainFrame());
  out.framedUrl = inner ? inner.url() : null;
  out.framedRefused = frameErrors.some((t) => /frame-ancestors|X-Frame-Options/i.test(t))
    || (inner !== undefined && inner.url().startsWith("chrome-error:"));
  out.framedLoginVisible = inner ? await inner.locator('input[name="token"]').count().catch(() => 0) : 0;
  await framer.goto(evilUrl + "/post");
  const [resp] = await Promise.all([
    framer.waitForNavigation(),
    framer.evaluate(() => document.getElementById("x").submit()),
  ]);
  out.crossSitePost = resp ? resp.status() : null;
  await framer.close();
  evil.close();

  // Ban the attacking address from its black-book page (keyboard: fill the reason, press Ban).
  await page.goto(admin + "/blackbook/127.0.0.1");
  await page.fill('input[name="reason"]', "seen in the dashboard test");
  await page.fill('input[name="for"]', "1h");
  await page.click('button:has-text("Ban")');
  await page.waitForURL(/\/blackbook\/127\.0\.0\.1$/);
  out.bannedShown = await page.locator("p.bad").textContent().catch(() => null);
  out.unbanButton = await page.locator('button:has-text("Unban")').count();
  await page.screenshot({ path: `${shots}/blackbook-record.png`, fullPage: true });
  out.afterBanStatus = (await fetch(proxy + "/")).status;
  await collect();
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
