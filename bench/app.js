// The benchmark's trivial app: GET / answers "ok"; GET /crash answers, then exits with code 1.
'use strict';
require('http').createServer((req, res) => {
  if (req.url === '/crash') { res.end('bye\n'); setImmediate(() => process.exit(1)); return; }
  res.end(`ok ${process.pid}\n`);
}).listen(Number(process.env.PORT), '127.0.0.1');
