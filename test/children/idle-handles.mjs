// Child for lifecycle.test.ts: creates an Easy and a Multi, uses neither,
// and returns. The process must exit by itself.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Easy, Multi } = require('../../dist/index.js');

const easy = new Easy().setopt('URL', 'http://127.0.0.1:9/');
const multi = new Multi();
globalThis.keep = { easy, multi };
process.stdout.write(`READY ${easy.closed} ${multi.running}\n`);
