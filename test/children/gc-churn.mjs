// Child for lifecycle.test.ts, run with --expose-gc: creates Easy handles in
// rounds of 1,000 (every 20th performs a transfer of argv[2]), drops them
// all, collects garbage and reports RSS after each round as JSON.
import { createRequire } from 'node:module';
import './gc.mjs';

const require = createRequire(import.meta.url);
const { Easy } = require('../../dist/index.js');

const url = process.argv[2];
const rounds = Number(process.argv[3] ?? '5');

async function collect() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const rss = [];
let performed = 0;
for (let round = 0; round < rounds; round++) {
  let handles = [];
  const transfers = [];
  for (let i = 0; i < 1000; i++) {
    const easy = new Easy().setopt('URL', `${url}/bytes?n=${1000 + i}`).setopt('HTTPHEADER', [`X-Round: ${round}`]);
    if (i % 20 === 0) {
      transfers.push(
        easy.perform().then((t) => {
          if (t.status !== 200 || t.body.length !== 1000 + i) throw new Error(`bad transfer ${i}: ${t.status} ${t.body.length}`);
          performed += 1;
        }),
      );
    }
    handles.push(easy);
  }
  await Promise.all(transfers);
  handles = null;
  transfers.length = 0;
  await collect();
  rss.push(process.memoryUsage().rss);
}
process.stdout.write(`RESULT ${JSON.stringify({ performed, rss })}\n`);
