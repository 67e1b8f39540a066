// Worker for body-pool.test.ts. workerData: { url, count, stay }.
// Fetches `count` 1 MiB bodies of url/random, keeps every tenth (so the
// thread ends with bodies alive in JS and free blocks in its pool), posts
// { held, intact }, then either stays alive to be terminated (`stay`) or
// lets the thread end by itself.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { Easy } = require('../../dist/index.js');

const held = [];

async function main() {
  const easy = new Easy();
  for (let i = 0; i < workerData.count; i++) {
    easy.setopt('URL', `${workerData.url}/random?n=${1024 * 1024}`);
    const t = await easy.perform();
    if (i % 10 === 0) held.push(t.body);
  }
  easy.close();
  parentPort.postMessage({ held: held.length, intact: held.every((b) => b.length === 1024 * 1024) });
  if (workerData.stay) setInterval(() => {}, 1000);
}

main().catch((err) => parentPort.postMessage({ error: String(err && err.stack ? err.stack : err) }));
