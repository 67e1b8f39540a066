// Worker for lifecycle.test.ts. workerData:
//   { mode: 'transfers', url, count, id }: performs `count` transfers of
//     /bytes?n=<distinct>, checks each body, posts { done: true, results }.
//   { mode: 'slow', url }: starts one transfer of /slow, posts { started: true },
//     and is expected to be terminated while it is in flight.
//   { mode: 'spin', url, callback }: a transfer whose WRITEFUNCTION (or the
//     Multi's TIMERFUNCTION) posts { inCallback: true } and never returns, so
//     the worker is terminated while JS runs inside a libcurl callback.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { Easy, Multi } = require('../../dist/index.js');

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

function spin() {
  const stall = () => {
    parentPort.postMessage({ inCallback: true });
    for (;;);
  };
  const easy = new Easy().setopt('URL', `${workerData.url}/hello`);
  if (workerData.callback === 'WRITEFUNCTION') {
    easy.setopt('WRITEFUNCTION', stall);
    easy.perform().catch(() => {});
    return;
  }
  const multi = new Multi();
  multi.setopt('TIMERFUNCTION', stall);
  multi.perform(easy).catch(() => {});
}

if (workerData.mode === 'transfers') {
  transfers().catch((err) => parentPort.postMessage({ done: false, error: String(err && err.stack ? err.stack : err) }));
} else if (workerData.mode === 'slow') {
  slow();
} else if (workerData.mode === 'spin') {
  spin();
} else {
  throw new Error(`unknown mode ${workerData.mode}`);
}
