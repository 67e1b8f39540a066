/**
 * A DNS-over-HTTPS endpoint on loopback for tests (RFC 8484, POST with an
 * application/dns-message body): every A query gets 127.0.0.1, every other
 * type an empty answer. Any other request gets a plain 200, so a transfer can
 * also reuse a connection libcurl's DoH lookup left in the pool. Uses the
 * test certificate (trust it with CAINFO = TEST_CA_FILE).
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import type * as net from 'node:net';
import { TEST_CERT_FILE, TEST_KEY_FILE, listen } from './servers';

export interface DohServer {
  /** https://127.0.0.1:PORT/dns-query */
  readonly url: string;
  readonly port: number;
  /** TCP connections accepted. */
  readonly connections: number;
  /** DNS questions answered. */
  readonly queries: number;
  /** Requests that were not DNS queries. */
  readonly otherRequests: number;
  close(): Promise<void>;
}

const TYPE_A = 1;

/** The reply to one DNS query message: the question echoed, one A record for A queries. */
function answer(query: Buffer): Buffer {
  let end = 12; // header
  while (end < query.length && query[end] !== 0) end += query[end] + 1; // the name's labels
  end += 1 + 4; // root label, QTYPE, QCLASS
  const question = query.subarray(12, end);
  const isA = query.readUInt16BE(end - 4) === TYPE_A;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // same id
  header.writeUInt16BE(0x8180, 2); // a response, recursion desired and available, no error
  header.writeUInt16BE(1, 4); // one question
  header.writeUInt16BE(isA ? 1 : 0, 6);
  if (!isA) return Buffer.concat([header, question]);
  const record = Buffer.from([0xc0, 0x0c, 0, TYPE_A, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]); // name -> offset 12, IN, TTL 60
  return Buffer.concat([header, question, record]);
}

export async function startDohServer(): Promise<DohServer> {
  let connections = 0;
  let queries = 0;
  let otherRequests = 0;
  const server = https.createServer(
    { key: fs.readFileSync(TEST_KEY_FILE), cert: fs.readFileSync(TEST_CERT_FILE), ALPNProtocols: ['http/1.1'] },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.headers['content-type'] === 'application/dns-message') {
          queries += 1;
          res.writeHead(200, { 'content-type': 'application/dns-message' });
          res.end(answer(Buffer.concat(chunks)));
        } else {
          otherRequests += 1;
          res.end('not a query\n');
        }
      });
    },
  );
  server.on('connection', (sock: net.Socket) => {
    connections += 1;
    sock.on('error', () => {});
  });
  server.on('tlsClientError', () => {});
  await listen(server, { port: 0, host: '127.0.0.1' });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}/dns-query`,
    port,
    get connections() {
      return connections;
    },
    get queries() {
      return queries;
    },
    get otherRequests() {
      return otherRequests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
