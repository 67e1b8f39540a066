// Child for body-pool.test.ts, run with --expose-gc. argv[2]: a server whose
// /random?n=N sends N random bytes with their SHA-256 in X-Sha256. Reports the
// body pool's counters after each phase as one RESULT line of JSON, and ends
// by itself (with bodies still alive).
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import './gc.mjs';

const require = createRequire(import.meta.url);
const { Easy, Multi } = require('../../dist/index.js');
const { native } = require('../../dist/native.js');

const url = process.argv[2];
const MiB = 1024 * 1024;
const multi = new Multi();
const easies = Array.from({ length: 5 }, () => new Easy());
const sha256 = (body) => createHash('sha256').update(body).digest('hex');
let bad = 0;

async function fetchBody(easy, size) {
  easy.setopt('URL', `${url}/random?n=${size}`);
  const t = await multi.perform(easy);
  const sum = t.headers.find(([name]) => name.toLowerCase() === 'x-sha256')?.[1];
  if (t.status !== 200 || t.body.length !== size || sha256(t.body) !== sum) bad += 1;
  return { body: t.body, sum };
}

// `count` bodies of `sizeOf(i)` bytes, five at a time; `keep` says which to return.
async function run(count, sizeOf, keep = () => false) {
  const kept = [];
  let next = 0;
  await Promise.all(easies.map(async (easy) => {
    while (next < count) {
      const i = next++;
      const got = await fetchBody(easy, sizeOf(i));
      if (keep(i)) kept.push(got);
    }
  }));
  return kept;
}

async function collect() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const result = {};
// A: 1 MiB bodies, dropped at once, collected at V8's own pace.
await run(200, () => MiB);
result.natural = native.bodyPoolStats();

// B: 20 bodies of mixed sizes held while 100 more come and go, with full GCs
// in between so that every free block is handed out again.
const sizeOf = (i) => 64 * 1024 + ((i * 7919) % 23) * 128 * 1024 + (i % 5);
const held = await run(20, sizeOf, () => true);
const reusedBefore = native.bodyPoolStats().reused;
for (let round = 0; round < 5; round++) {
  await run(20, (i) => sizeOf(i + round * 20));
  await collect();
}
result.reusedWhileHeld = native.bodyPoolStats().reused - reusedBefore;
result.heldIntact = held.filter(({ body, sum }) => sha256(body) === sum).length;
result.heldCount = held.length;

// C: nothing held: every block comes back, and unused ones are unmapped.
held.length = 0;
await collect();
result.collected = native.bodyPoolStats();
await new Promise((resolve) => setTimeout(resolve, 2500));
result.idle = native.bodyPoolStats();

// D: a cache filled with free 1 MiB blocks still takes back a 3 MiB one, at
// the expense of the oldest 1 MiB blocks, so the next 3 MiB body reuses it.
const filling = await run(70, () => MiB, () => true);
filling.length = 0;
await collect();
result.fullCache = native.bodyPoolStats();
const reusedBeforeLarge = result.fullCache.reused;
for (let i = 0; i < 5; i++) {
  await run(1, () => 3 * MiB);
  await collect();
}
result.largeReused = native.bodyPoolStats().reused - reusedBeforeLarge;
result.afterLarge = native.bodyPoolStats();
result.bad = bad;

// The process then ends by itself with three bodies still alive in JS and free
// blocks in the pool: environment teardown must free both cleanly.
globalThis.keptAtExit = await run(3, () => MiB, () => true);
for (const easy of easies) easy.close();
multi.close();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
