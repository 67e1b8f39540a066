// Child for test/ip-policy.test.ts: run inside a fresh network namespace
// (`unshare -rn`, loopback brought up), so no packet can leave the machine.
// Shows that apply() clears a DOH_URL set before it: a policy-less handle
// sends its name lookup to the (loopback) DoH server, a hardened one does not.
// Prints one JSON line with what it saw.
import * as http from 'node:http';
import * as net from 'node:net';
import { CurlError, Easy, IpPolicy } from '../../dist/index.mjs';

function listenOn(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function outcome(promise) {
  try {
    const t = await promise;
    return { ok: true, status: t.status };
  } catch (err) {
    return {
      ok: false,
      isCurlError: err instanceof CurlError,
      code: err?.code,
      causeName: err?.cause?.name ?? null,
    };
  }
}

// A stand-in DoH endpoint: it only counts who connects (and hangs up).
let dohConnections = 0;
const doh = net.createServer((sock) => {
  dohConnections += 1;
  sock.on('error', () => {});
  sock.destroy();
});
const dohPort = await listenOn(doh);

let targetConnections = 0;
const target = http.createServer((_req, res) => res.end('target\n'));
target.on('connection', () => {
  targetConnections += 1;
});
const targetPort = await listenOn(target);

const dohUrl = `https://127.0.0.1:${dohPort}/dns-query`;
const url = `http://doh.test:${targetPort}/hello`;

const plainEasy = new Easy().setopt('DOH_URL', dohUrl).setopt('URL', url);
const plain = await outcome(plainEasy.perform());
const plainDoh = dohConnections;
plainEasy.close();

const hardenedEasy = new Easy().setopt('DOH_URL', dohUrl).setopt('URL', url);
new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(hardenedEasy);
let relock = null;
try {
  hardenedEasy.setopt('DOH_URL', dohUrl);
} catch (err) {
  relock = err?.name ?? 'Error';
}
const hardened = await outcome(hardenedEasy.perform());
const hardenedDoh = dohConnections - plainDoh;
hardenedEasy.close();

process.stdout.write(
  `${JSON.stringify({ plain, plainDoh, hardened, hardenedDoh, relock, targetConnections })}\n`,
);
doh.close();
target.close();
