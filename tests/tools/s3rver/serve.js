// Runs s3rver with a bucket called "hotpath" on 127.0.0.1.
//   node --openssl-legacy-provider serve.js <s3rver module dir> <data dir> [port]
// Port 0 (the default) lets the OS choose. Prints "PORT <n>" once
// listening, and exits when its stdin closes, so a test that dies leaves
// no server behind. (s3rver 3.7 encrypts continuation tokens with DES,
// which OpenSSL 3 only offers through its legacy provider.)
const S3rver = require(process.argv[2]);
const srv = new S3rver({
  port: Number(process.argv[4] || 0), address: '127.0.0.1', directory: process.argv[3], silent: true,
  configureBuckets: [{name: 'hotpath'}],
});
srv.run().then(a => process.stdout.write('PORT ' + a.port + '\n'),
  e => { console.error('s3rver: ' + e); process.exit(1); });
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
