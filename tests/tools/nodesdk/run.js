// Runs the real @pyroscope/nodejs SDK against a hotpath distributor with a
// CPU and allocation workload for a few seconds, then stops it (which
// flushes the last profiles).
//   node run.js http://127.0.0.1:PORT APPNAME SECONDS
'use strict';
const Pyroscope = require('@pyroscope/nodejs');

const [url, appName, seconds] = [process.argv[2], process.argv[3], Number(process.argv[4] || 8)];
Pyroscope.init({ serverAddress: url, appName, flushIntervalMs: 2000, tags: { team: 'hotpath', suite: 'integration' } });
Pyroscope.start();

const held = [];
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
function churn() {
  const xs = [];
  for (let i = 0; i < 2000; i++) xs.push({ i, s: 'v' + i });
  held.push(xs);
  if (held.length > 40) held.shift();
}
const end = Date.now() + seconds * 1000;
(function loop() {
  if (Date.now() > end) {
    Pyroscope.stop().then(() => process.exit(0), (e) => { console.error('stop failed', e); process.exit(1); });
    return;
  }
  fib(22);
  churn();
  setImmediate(loop);
})();
