// Child process for test/multi-callbacks.test.ts: aborts Multis through
// SOCKETFUNCTION and TIMERFUNCTION (returning -1 and throwing, on the first
// and on a later call), closes nothing explicitly, and must then exit on its
// own: nothing the binding leaves behind may hold the event loop open.
// Usage: node multi-abort-exit.mjs <base-url>
// Prints one JSON line { cases, failures } and sets exitCode 1 on failures.
import { CurlError, CURL_POLL_IN, Easy, Multi } from '../../dist/index.mjs';

const base = process.argv[2];
if (!base) {
  process.stderr.write('usage: multi-abort-exit.mjs <base-url>\n');
  process.exit(2);
}

const failures = [];
let cases = 0;

async function abortCase(kind, failure, when) {
  cases++;
  const label = `${kind} ${failure} ${when}`;
  const multi = new Multi({ driver: 'uv' });
  const thrown = new Error(label);
  let failing = when === 'first';
  const fail = () => {
    if (failure === 'throw') throw thrown;
    return -1;
  };
  multi.setopt('SOCKETFUNCTION', (_easy, _fd, what) => {
    if (kind !== 'SOCKETFUNCTION') return 0;
    if (what === CURL_POLL_IN) failing = true;
    return failing ? fail() : 0;
  });
  multi.setopt('TIMERFUNCTION', () => {
    if (kind !== 'TIMERFUNCTION') return 0;
    return failing ? fail() : 0;
  });
  const promises = [0, 1].map(() => multi.perform(new Easy().setopt('URL', `${base}/slow?ms=5000`)));
  if (kind === 'TIMERFUNCTION') failing = true;
  const results = await Promise.allSettled(promises);
  for (const r of results) {
    if (r.status !== 'rejected') {
      failures.push(`${label}: transfer resolved`);
      continue;
    }
    const e = r.reason;
    if (!(e instanceof CurlError) || e.code !== 'CURLM_ABORTED_BY_CALLBACK') {
      failures.push(`${label}: rejected with ${e && e.code} ${String(e)}`);
    } else if (failure === 'throw' ? e.cause !== thrown : e.cause !== undefined) {
      failures.push(`${label}: wrong cause ${String(e.cause)}`);
    }
  }
  // Neither the Multi nor its Easy handles are closed.
}

for (const kind of ['SOCKETFUNCTION', 'TIMERFUNCTION']) {
  for (const failure of ['-1', 'throw']) {
    for (const when of ['first', 'later']) await abortCase(kind, failure, when);
  }
}

// A working Multi left open with an idle pooled connection, and an Easy left open.
const idle = new Multi();
const transfer = await idle.perform(new Easy().setopt('URL', `${base}/hello`));
if (transfer.body.toString() !== 'hello world\n') failures.push('the last transfer got a wrong body');

process.stdout.write(`${JSON.stringify({ cases, failures })}\n`);
if (failures.length > 0) process.exitCode = 1;
