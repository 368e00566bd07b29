// Visits pages in Debian's Chromium (headless, through playwright-core) and prints, per page, what
// its scripts set on `window.ran`, the console's CSP errors and the page's CSP header:
//   node visit.mjs URL [URL …]
// One JSON object per line: { url, ran: {...}, cspErrors: [...], csp }.
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  for (const url of process.argv.slice(2)) {
    const page = await browser.newPage();
    const cspErrors = [];
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    const resp = await page.goto(url, { waitUntil: "load" });
    // Scripts loaded by scripts ('strict-dynamic') and reports get a moment to finish.
    await page.waitForFunction(() => window.settled === true, null, { timeout: 3000 }).catch(() => {});
    const ran = await page.evaluate(() => ({ ...(window.ran || {}) }));
    const csp = resp ? resp.headers()["content-security-policy"] || null : null;
    console.log(JSON.stringify({ url, status: resp ? resp.status() : 0, ran, cspErrors, csp }));
    await page.close();
  }
} finally {
  await browser.close();
}
