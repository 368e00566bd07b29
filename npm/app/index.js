// The app side of Kevlar (https://github.com/… docs/logins.md): what an Express or plain `http`
// app tells Kevlar in its answers (`Kevlar-Event`, read and removed by Kevlar before the client
// sees it) or through the admin API, and what Kevlar tells the app in the request
// (`Kevlar-Breached-Password`, `X-Request-Id`). No dependencies.
'use strict';

const ACTION = /^[a-z0-9_:]{1,64}$/;

/** Adds one `Kevlar-Event` header to the answer; several reports in one answer are kept. */
function report(res, action, details = {}) {
  if (!ACTION.test(action)) throw new TypeError(`kevlar: \`${action}\` is not an event action ([a-z0-9_:]{1,64})`);
  const parts = [action];
  for (const key of ['user', 'outcome', 'message']) {
    const value = details[key];
    if (value === undefined || value === null || value === '') continue;
    if (key === 'outcome' && value !== 'success' && value !== 'failure') {
      throw new TypeError("kevlar: outcome is 'success' or 'failure'");
    }
    parts.push(`${key}=${encodeURIComponent(String(value))}`);
  }
  const line = parts.join('; ');
  const before = res.getHeader('Kevlar-Event');
  const all = before === undefined ? [line] : [].concat(before, line);
  res.setHeader('Kevlar-Event', all.length === 1 ? all[0] : all);
  if (details.email) res.setHeader('Kevlar-User-Email', String(details.email));
  return res;
}

/** The user signed in (`authn_login_success`); `email` is where Kevlar's notices to them go. */
function loginSucceeded(res, user, options = {}) {
  return report(res, 'authn_login_success', { user, email: options.email });
}

/** A sign-in failed (`authn_login_fail`): counts toward lockouts and stuffing like any failure. */
function loginFailed(res, user) {
  return report(res, 'authn_login_fail', { user });
}

function header(req, name) {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** What Kevlar said about this request. A client cannot forge these: Kevlar removes copies it sends. */
function read(req) {
  const count = header(req, 'kevlar-breached-count');
  return {
    breached: header(req, 'kevlar-breached-password') === '1',
    breachedCount: count === '1+' || count === '100+' ? count : null,
    requestId: header(req, 'x-request-id') || null,
  };
}

/** Express/Connect middleware: `req.kevlar` is `read(req)`. */
function middleware() {
  return function kevlar(req, _res, next) {
    req.kevlar = read(req);
    next();
  };
}

/**
 * Sends an event that belongs to no answer to the admin API (`POST /v1/events`), resolved once
 * Kevlar has stored it. `url` defaults to KEVLAR_ADMIN_URL, else http://127.0.0.1:9090; `token` to
 * KEVLAR_TOKEN (the contents of <data-dir>/admin.token; keep it out of the client).
 */
async function send(event, options = {}) {
  const url = (options.url || process.env.KEVLAR_ADMIN_URL || 'http://127.0.0.1:9090').replace(/\/+$/, '');
  const token = options.token || process.env.KEVLAR_TOKEN;
  if (!token) throw new Error('kevlar: no admin token (options.token or KEVLAR_TOKEN)');
  if (!event || !ACTION.test(event.action || '')) throw new TypeError('kevlar: event.action is required');
  const body = { event: { action: event.action } };
  if (event.category) body.event.category = [event.category];
  if (event.outcome) body.event.outcome = event.outcome;
  if (event.severity) body.event.severity = event.severity;
  if (event.message) body.message = event.message;
  if (event.user) body.user = { name: event.user };
  if (event.ip) body.source = { ip: event.ip };
  if (event.details) body.kevlar = event.details;
  const answer = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`kevlar: the admin API answered ${answer.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : {};
}

module.exports = { report, loginSucceeded, loginFailed, read, middleware, send };
