// Worker for lifecycle.test.ts. workerData:
//   { mode: 'transfers', url, count, id }: performs `count` transfers of
//     /bytes?n=<distinct>, checks each body, posts { done: true, results }.
//   { mode: 'slow', url }: starts one transfer of /slow, posts { started: true },
//     and is expected to be terminated while it is in flight.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { Easy } = require('../../dist/index.js');

function expected(n) {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

async function transfers() {
  const { url, count, id } = workerData;
  const results = [];
  const easy = new Easy();
  for (let i = 0; i < count; i++) {
    const n = 1000 + id * 100 + i;
    easy.setopt('URL', `${url}/bytes?n=${n}`);
    const t = await easy.perform();
    results.push({ n, status: t.status, length: t.body.length, intact: t.body.equals(expected(n)), numConnects: t.info.numConnects });
  }
  easy.close();
  parentPort.postMessage({ done: true, id, results });
}

function slow() {
  const easy = new Easy().setopt('URL', `${workerData.url}/slow?ms=10000`);
  easy.perform().then(
    () => parentPort.postMessage({ finished: true }),
    (err) => parentPort.postMessage({ failed: String(err) }),
  );
  parentPort.postMessage({ started: true });
}

if (workerData.mode === 'transfers') {
  transfers().catch((err) => parentPort.postMessage({ done: false, error: String(err && err.stack ? err.stack : err) }));
} else if (workerData.mode === 'slow') {
  slow();
} else {
  throw new Error(`unknown mode ${workerData.mode}`);
}
