// A plain Express app as many are written: body-parser for JSON, forms (qs, extended) and text,
// multer for multipart, qs for the query string. body-parser inflates gzip, deflate and br
// itself. JSON is also read from a body with no Content-Type, as apps that set
// `type: () => true` do. Each answer tells what the app received: the raw bytes' SHA-256 and
// what the parsers made of them.
//
//   node app.js      prints "express app listening on http://127.0.0.1:PORT"
'use strict';

const crypto = require('crypto');
const express = require('express');
const bodyParser = require('body-parser');
const multer = require('multer');

const app = express();
app.set('query parser', 'extended');

// The raw bytes as they arrived, hashed beside the parsers (both listen from the first chunk).
app.use((req, res, next) => {
  const hash = crypto.createHash('sha256');
  let size = 0;
  req.on('data', (c) => { hash.update(c); size += c.length; });
  req.on('end', () => { req.raw = { sha256: hash.digest('hex'), size }; });
  next();
});

const untypedOrJson = (req) => !req.headers['content-type'] || /json/i.test(req.headers['content-type']);
app.use(bodyParser.json({ type: untypedOrJson, strict: false, limit: '20mb' }));
app.use(bodyParser.urlencoded({ extended: true, limit: '20mb', parameterLimit: 100000, depth: 64 }));
app.use(bodyParser.text({ type: 'text/plain', limit: '20mb' }));
const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: 20 << 20 } });

const USERS = { 'alice@example.com': 'correct horse battery staple' };

app.post('/login', upload.none(), (req, res) => {
  const { email, password } = req.body || {};
  if (typeof email === 'string' && USERS[email] !== undefined && USERS[email] === password) {
    res.json({ ok: true, user: email });
  } else {
    res.status(401).json({ ok: false });
  }
});

function received(req) {
  const files = (req.files || []).map((f) => ({ field: f.fieldname, name: f.originalname, size: f.size }));
  return { raw: req.raw || { sha256: crypto.createHash('sha256').digest('hex'), size: 0 }, body: req.body, files, query: req.query };
}

app.post('/echo', upload.any(), (req, res) => {
  // The raw digest is set on 'end', which fires before the parsers hand over.
  res.json(received(req));
});

app.get('/echo', (req, res) => res.json({ query: req.query, headers: req.headers }));

app.use((err, req, res, next) => {
  res.status(err.status || 400).json({ error: err.message, type: err.type || null });
});

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`express app listening on http://127.0.0.1:${server.address().port}`);
});
