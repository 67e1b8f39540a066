// Child for easy-callbacks.test.ts: sets an XFERINFOFUNCTION, removes it
// again (argv[3]: 'null' sets it to null, 'reset' calls reset()), performs
// one transfer of argv[2] and prints the result. Anything libcurl writes to
// stderr shows up in the parent.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Easy } = require('../../dist/index.js');

const how = process.argv[3] ?? 'null';
const easy = new Easy().setopt('URL', process.argv[2]);
easy.setopt('XFERINFOFUNCTION', () => 0);
if (how === 'reset') {
  easy.reset();
  easy.setopt('URL', process.argv[2]);
} else {
  easy.setopt('XFERINFOFUNCTION', null);
}
const t = await easy.perform();
easy.close();
process.stdout.write(`RESULT ${t.status} ${t.body.length}\n`);
