// The SSE server teams write first: Node's http module, the npm `redis` client, PSUBSCRIBE sse:*
// and one res.write per connection. Used by bench/compare as a baseline.
//   node server.js PORT REDIS_URL
'use strict';
const http = require('http');
const { createClient } = require('redis');

const port = Number(process.argv[2] || 8081);
const redisUrl = process.argv[3] || 'redis://127.0.0.1:6379';
const channels = new Map(); // "sse:user:<u>" / "sse:topic:<t>" -> Set of res

function join(name, res) {
  let set = channels.get(name);
  if (!set) { set = new Set(); channels.set(name, set); }
  set.add(res);
}
function leave(name, res) {
  const set = channels.get(name);
  if (set) { set.delete(res); if (set.size === 0) channels.delete(name); }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/events') { res.writeHead(404); res.end('not found\n'); return; }
  const names = [];
  const user = url.searchParams.get('user');
  if (user) names.push('sse:user:' + user);
  for (const t of url.searchParams.getAll('topic')) names.push('sse:topic:' + t);
  names.push('sse:broadcast');
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
  res.write('retry: 2000\n: connected\n\n');
  for (const n of names) join(n, res);
  req.on('close', () => { for (const n of names) leave(n, res); });
});
server.keepAliveTimeout = 0;
server.requestTimeout = 0;
server.headersTimeout = 0;
server.maxConnections = 100000;

(async () => {
  const sub = createClient({ url: redisUrl });
  sub.on('error', (e) => console.error('redis', e.message));
  await sub.connect();
  await sub.pSubscribe('sse:*', (message, channel) => {
    const set = channels.get(channel);
    if (!set) return;
    const frame = 'data: ' + message + '\n\n';
    for (const res of set) res.write(frame);
  });
  server.listen(port, '127.0.0.1', 4096, () => console.error(`node-sse listening on 127.0.0.1:${port}`));
})();
