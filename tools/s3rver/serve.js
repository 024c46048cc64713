'use strict';
// Starts s3rver (the local stack's S3 endpoint) for scripts/services.sh. s3rver's own command
// line knows one fixed key pair (S3RVER/S3RVER); this launcher adds the pair that the
// aws_default connection of scripts/env.sh signs with. s3rver refuses an unknown access key
// (InvalidAccessKeyId) but does not verify SigV4 signatures themselves: it listens on
// 127.0.0.1 only.
//
// Usage: node --openssl-legacy-provider serve.js DATA_DIR PORT
// Key pair: MF_S3_LOCAL_KEY / MF_S3_LOCAL_SECRET (default meterflow-local / meterflow-local).
// --openssl-legacy-provider: s3rver 3.7.1 makes ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 (Node >= 17) offers only through its legacy provider.
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const [directory, port] = process.argv.slice(2);
if (!directory || !port) {
  console.error('usage: serve.js DATA_DIR PORT');
  process.exit(2);
}
DUMMY_ACCOUNT.createKeyPair(
  process.env.MF_S3_LOCAL_KEY || 'meterflow-local',
  process.env.MF_S3_LOCAL_SECRET || 'meterflow-local',
);

const server = new S3rver({
  directory,
  address: '127.0.0.1',
  port: Number(port),
  vhostBuckets: false,
  silent: false,
});
server.run((err, { address, port: bound } = {}) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`s3rver listening on http://${address}:${bound}, objects in ${directory}`);
});
// On stop: take no new requests, finish the ones in flight and let pending file writes drain;
// node exits when nothing is left to do (at most 4 s: scripts/services.sh kills after 5 s).
function stop() {
  if (!server.httpServer) process.exit(0);
  server.httpServer.close();
  server.httpServer.closeIdleConnections();
  setTimeout(() => process.exit(0), 4000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
