// Child for easy-callbacks.test.ts: sets an XFERINFOFUNCTION, removes it
// again with null, performs one transfer of argv[2] and prints the result.
// Anything libcurl writes to stderr shows up in the parent.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Easy } = require('../../dist/index.js');

const easy = new Easy().setopt('URL', process.argv[2]);
easy.setopt('XFERINFOFUNCTION', () => 0);
easy.setopt('XFERINFOFUNCTION', null);
const t = await easy.perform();
easy.close();
process.stdout.write(`RESULT ${t.status} ${t.body.length}\n`);
