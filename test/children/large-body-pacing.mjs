// Child for body-pool.test.ts, run without --expose-gc. argv[2]: a server
// whose /random?n=N sends N random bytes. Drops 200 bodies of 1 MiB, then
// reports the body pool's counters and whether a gc() function is visible
// anywhere, as one RESULT line of JSON.
import { createRequire } from 'node:module';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const { Easy, Multi } = require('../../dist/index.js');
const { native } = require('../../dist/native.js');

const url = `${process.argv[2]}/random?n=${1024 * 1024}`;
const multi = new Multi();
const easies = Array.from({ length: 5 }, () => new Easy().setopt('URL', url));
let left = 200;
let bad = 0;
await Promise.all(easies.map(async (easy) => {
  while (left > 0) {
    left -= 1;
    const t = await multi.perform(easy);
    if (t.status !== 200 || t.body.length !== 1024 * 1024) bad += 1;
  }
}));
const result = {
  bad,
  pool: native.bodyPoolStats(),
  globalGc: typeof globalThis.gc,
  newContextGc: vm.runInNewContext('typeof gc'),
};
for (const easy of easies) easy.close();
multi.close();
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
