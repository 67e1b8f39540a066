// Child for lifecycle.test.ts: one transfer of argv[2] on the default Multi,
// print the result line, then return from the main script. The process
// must then exit by itself (the pooled keep-alive connection and the
// binding's uv handles must not keep the loop alive).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Easy } = require('../../dist/index.js');

const easy = new Easy().setopt('URL', process.argv[2]);
const t = await easy.perform();
process.stdout.write(`RESULT ${t.status} ${t.body.length} ${t.info.numConnects}\n`);
// The Easy is deliberately left open: exit must not depend on close().
