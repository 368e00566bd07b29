// Kevlar's demo app: plain Node `http`, no dependencies. Login (form or JSON), account pages,
// health, a header echo and a WebSocket echo. Users come from users.json (scrypt hashes).
//
//   PORT=3000 node server.js            serve
//   node server.js --hash 'a password'  print a users.json entry's salt and hash
'use strict';

const http = require('http');
const zlib = require('zlib');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const USERS_FILE = process.env.DEMO_USERS || path.join(__dirname, 'users.json');

function hashPassword(password, salt) {
  return crypto.scryptSync(password, Buffer.from(salt, 'hex'), 32).toString('hex');
}

if (process.argv[2] === '--hash') {
  const salt = crypto.randomBytes(16).toString('hex');
  console.log(JSON.stringify({ salt, hash: hashPassword(process.argv[3] || '', salt) }));
  process.exit(0);
}

const users = JSON.parse(fs.readFileSync(USERS_FILE, 'utf8'));
const sessions = new Map(); // token -> username

function findUser(name) {
  return users.find((u) => u.username === name);
}

function checkPassword(user, password) {
  if (!user || typeof password !== 'string') return false;
  const want = Buffer.from(user.hash, 'hex');
  const got = Buffer.from(hashPassword(password, user.salt), 'hex');
  return want.length === got.length && crypto.timingSafeEqual(want, got);
}

// Bodies are read as Express's body-parser reads them: gzip, deflate and br inflated.
function readBody(req, limit, cb) {
  const chunks = [];
  let size = 0;
  let done = false;
  const enc = (req.headers['content-encoding'] || 'identity').trim().toLowerCase();
  const stream = enc === 'gzip' ? req.pipe(zlib.createGunzip())
    : enc === 'deflate' ? req.pipe(zlib.createInflate())
    : enc === 'br' ? req.pipe(zlib.createBrotliDecompress())
    : enc === 'identity' ? req : null;
  if (!stream) return cb(new Error('unsupported encoding'));
  stream.on('data', (c) => {
    size += c.length;
    if (size > limit) {
      if (!done) { done = true; cb(new Error('too large')); }
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  stream.on('end', () => { if (!done) { done = true; cb(null, Buffer.concat(chunks).toString('utf8')); } });
  stream.on('error', (e) => { if (!done) { done = true; cb(e); } });
  if (stream !== req) req.on('error', (e) => { if (!done) { done = true; cb(e); } });
}

function parseFields(req, body) {
  const type = (req.headers['content-type'] || '').split(';')[0].trim();
  if (type === 'application/json') {
    try { const v = JSON.parse(body); return v && typeof v === 'object' ? v : {}; } catch { return null; }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

function sessionUser(req) {
  return sessions.get(cookies(req).sid || '');
}

function send(res, status, type, body, extra) {
  res.writeHead(status, Object.assign({ 'Content-Type': type, 'X-Powered-By': 'demo-app', 'Server': 'demo-app/1.0' }, extra || {}));
  res.end(body);
}

const json = (res, status, v, extra) => send(res, status, 'application/json', JSON.stringify(v) + '\n', extra);

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo app</title></head>
<body><h1>Demo app</h1>
<form method="post" action="/login">
<label>Email <input name="email" type="email" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Log in</button>
</form></body></html>
`;

function route(req, res) {
  const url = new URL(req.url, 'http://demo.invalid');
  const p = url.pathname;
  if (req.method === 'GET' && p === '/') return send(res, 200, 'text/html; charset=utf-8', PAGE);
  if (req.method === 'GET' && p === '/health') return send(res, 200, 'text/plain', 'ok\n');
  if (p === '/echo-headers') return json(res, 200, { method: req.method, url: req.url, headers: req.headers });
  if (req.method === 'GET' && p === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms')) || 0, 60000);
    return setTimeout(() => send(res, 200, 'text/plain', 'slow\n'), ms);
  }
  if (req.method === 'GET' && p === '/app-headers') {
    return send(res, 200, 'text/plain', 'the app set its own headers\n', { 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'same-origin', 'Permissions-Policy': 'camera=(self)' });
  }
  if (req.method === 'POST' && p === '/upload') {
    let n = 0;
    const h = crypto.createHash('sha256');
    req.on('data', (c) => { n += c.length; h.update(c); });
    req.on('end', () => json(res, 200, { bytes: n, sha256: h.digest('hex') }));
    return;
  }
  if (req.method === 'POST' && p === '/login') {
    return readBody(req, 64 * 1024, (err, body) => {
      if (err) return json(res, 400, { error: 'bad body' });
      const f = parseFields(req, body);
      if (!f) return json(res, 400, { error: 'bad JSON' });
      const name = f.email || f.username;
      const user = findUser(name);
      if (!checkPassword(user, f.password)) return json(res, 401, { error: 'invalid credentials' });
      const token = crypto.randomBytes(24).toString('hex');
      sessions.set(token, user.username);
      const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
      return send(res, 302, 'text/plain', 'logged in\n', {
        Location: '/account',
        'Set-Cookie': `sid=${token}; Path=/; HttpOnly; SameSite=Lax${secure}`,
      });
    });
  }
  // An API login Kevlar cannot infer (200 either way): the app reports the outcome itself in a
  // `Kevlar-Event` header, which Kevlar records and removes (docs/logins.md).
  if (req.method === 'POST' && p === '/api/token') {
    return readBody(req, 64 * 1024, (err, body) => {
      if (err) return json(res, 400, { error: 'bad body' });
      const f = parseFields(req, body);
      if (!f) return json(res, 400, { error: 'bad JSON' });
      const user = findUser(f.user);
      const who = encodeURIComponent(String(f.user || ''));
      // ?quiet=1: no report; Kevlar tells the outcome from the body (`failure_body`).
      const quiet = url.searchParams.get('quiet') === '1';
      if (!checkPassword(user, f.secret)) {
        return json(res, 200, { ok: false }, quiet ? {} : { 'Kevlar-Event': `authn_login_fail; user=${who}` });
      }
      return json(res, 200, { ok: true, token: crypto.randomBytes(16).toString('hex') }, quiet ? {} : {
        'Kevlar-Event': `authn_login_success; user=${who}`,
        'Kevlar-User-Email': user.username.includes('@') ? user.username : `${user.username}@example.com`,
      });
    });
  }
  if (p === '/account' && req.method === 'GET') {
    const u = sessionUser(req);
    if (!u) return send(res, 302, 'text/plain', 'log in first\n', { Location: '/' });
    return send(res, 200, 'text/html; charset=utf-8', `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Account</title></head><body><h1>Account</h1><p>Signed in as ${escape(u)}</p></body></html>\n`);
  }
  if (req.method === 'POST' && (p === '/account/email' || p === '/account/password')) {
    const u = sessionUser(req);
    if (!u) return json(res, 401, { error: 'not signed in' });
    return readBody(req, 64 * 1024, (err, body) => {
      if (err) return json(res, 400, { error: 'bad body' });
      const f = parseFields(req, body);
      if (!f) return json(res, 400, { error: 'bad JSON' });
      const user = findUser(u);
      if (p === '/account/email') {
        if (typeof f.email !== 'string' || !f.email.includes('@')) return json(res, 400, { error: 'email required' });
        return json(res, 200, { ok: true, old_email: user.username, new_email: f.email });
      }
      if (!checkPassword(user, f.current_password)) return json(res, 403, { error: 'current password is wrong' });
      if (typeof f.new_password !== 'string' || f.new_password.length < 8) return json(res, 400, { error: 'new password too short' });
      user.salt = crypto.randomBytes(16).toString('hex');
      user.hash = hashPassword(f.new_password, user.salt);
      return json(res, 200, { ok: true });
    });
  }
  return json(res, 404, { error: 'not found' });
}

const server = http.createServer(route);

// WebSocket echo on /ws (RFC 6455, text and binary frames up to 64 KiB).
server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/ws' || !key || (req.headers.upgrade || '').toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const op = buf[0] & 0x0f;
      const masked = buf[1] & 0x80;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { socket.destroy(); return; }
      const need = off + (masked ? 4 : 0) + len;
      if (buf.length < need) return;
      let payload = buf.subarray(off + (masked ? 4 : 0), need);
      if (masked) {
        const mask = buf.subarray(off, off + 4);
        payload = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
      }
      buf = buf.subarray(need);
      if (op === 0x8) { socket.end(Buffer.from([0x88, 0x00])); return; }
      if (op === 0x9) { socket.write(Buffer.concat([Buffer.from([0x8a, payload.length]), payload])); continue; }
      if (op === 0x1 || op === 0x2) {
        const head = payload.length < 126 ? Buffer.from([0x80 | op, payload.length]) : Buffer.from([0x80 | op, 126, payload.length >> 8, payload.length & 0xff]);
        socket.write(Buffer.concat([head, payload]));
      }
    }
  });
  socket.on('error', () => {});
});

const port = process.env.PORT !== undefined && process.env.PORT !== '' ? Number(process.env.PORT) : 3000;
server.listen(port, '127.0.0.1', () => console.log(`demo app listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
