#!/usr/bin/env node
// curl-sockets [options] <url>: a small curl(1) on top of the package.
// The exit status is libcurl's CURLcode, as with curl(1).
import * as fs from 'node:fs';

import { CURL_POLL_IN, CURL_POLL_INOUT, CURL_POLL_OUT, CURL_POLL_REMOVE, closeSocket, createSocket } from './index';
import { Easy, internals } from './easy';
import { BlockedAddressError, CurlError } from './errors';
import { IpPolicy } from './ip-policy';
import { Multi } from './multi';
import type { CurlSockaddr } from './types';

const USAGE = `Usage: curl-sockets [options] <url>
  -o, --output FILE     write the body to FILE instead of stdout
  -H, --header LINE     add a request header (repeatable)
  -X, --request METHOD  request method
  -d, --data DATA       request body (repeatable, joined with &; @FILE reads a file)
  -L, --location        follow redirects
      --max-time S      give up after S seconds
      --deny-private    refuse loopback, private and other non-public addresses (IpPolicy)
      --allow CIDR      allow an address or range (repeatable; implies an IpPolicy)
      --deny CIDR       deny an address or range (repeatable; implies an IpPolicy)
      --trace-sockets   print every opensocket/sockopt/closesocket/socket/timer event to stderr
  -v, --verbose         print libcurl's verbose output to stderr
  -h, --help            this text`;

interface Args {
  url?: string;
  output?: string;
  headers: string[];
  method?: string;
  data: string[];
  location: boolean;
  maxTime?: number;
  denyPrivate: boolean;
  allow: string[];
  deny: string[];
  traceSockets: boolean;
  verbose: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  const args: Args = { headers: [], data: [], location: false, denyPrivate: false, allow: [], deny: [], traceSockets: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '-o': case '--output': args.output = value(); break;
      case '-H': case '--header': args.headers.push(value()); break;
      case '-X': case '--request': args.method = value(); break;
      case '-d': case '--data': args.data.push(value()); break;
      case '-L': case '--location': args.location = true; break;
      case '--max-time': {
        const seconds = Number(value());
        // TIMEOUT_MS is a C long of milliseconds; 0 would mean no limit at all.
        if (!(seconds > 0) || seconds * 1000 > 2 ** 31 - 1) {
          throw new UsageError('--max-time takes a number of seconds > 0 and below 2147483');
        }
        args.maxTime = seconds;
        break;
      }
      case '--deny-private': args.denyPrivate = true; break;
      case '--allow': args.allow.push(value()); break;
      case '--deny': args.deny.push(value()); break;
      case '--trace-sockets': args.traceSockets = true; break;
      case '-v': case '--verbose': args.verbose = true; break;
      case '-h': case '--help': throw new UsageError('');
      default:
        if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
        if (args.url !== undefined) throw new UsageError('only one URL, please');
        args.url = arg;
    }
  }
  if (args.url === undefined) throw new UsageError('no URL given');
  return args;
}

const trace = (text: string): void => {
  process.stderr.write(`[sockets] ${text}\n`);
};

const POLL_NAMES: Record<number, string> = {
  [CURL_POLL_IN]: 'IN',
  [CURL_POLL_OUT]: 'OUT',
  [CURL_POLL_INOUT]: 'INOUT',
  [CURL_POLL_REMOVE]: 'REMOVE',
};

function describeAddress(a: CurlSockaddr): string {
  return a.port ? `${a.family === 10 ? `[${a.address}]` : a.address}:${a.port}` : a.address;
}

async function run(args: Args): Promise<number> {
  const easy = new Easy().setopt('URL', args.url as string);
  if (args.headers.length) easy.setopt('HTTPHEADER', args.headers);
  if (args.method) easy.setopt('CUSTOMREQUEST', args.method);
  if (args.data.length) {
    const parts = args.data.map((d) => (d.startsWith('@') ? fs.readFileSync(d.slice(1)) : Buffer.from(d)));
    easy.setopt('POSTFIELDS', Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from('&'), p] : [p]))));
  }
  if (args.location) easy.setopt('FOLLOWLOCATION', true);
  if (args.maxTime !== undefined) easy.setopt('TIMEOUT_MS', Math.max(1, Math.round(args.maxTime * 1000)));
  if (args.verbose) {
    const prefixes = ['* ', '< ', '> ', '', '', '', ''];
    easy.setopt('VERBOSE', true).setopt('DEBUGFUNCTION', (type, data) => {
      const prefix = prefixes[type];
      if (prefix) process.stderr.write(prefix + data.toString('latin1').replace(/\r?\n(?!$)/g, `\n${prefix}`));
    });
  }
  const policy = args.denyPrivate || args.allow.length || args.deny.length ? new IpPolicy({ allow: args.allow, deny: args.deny }) : undefined;
  if (policy) policy.apply(easy);

  const multi = new Multi();
  if (args.traceSockets) {
    const open = policy ? policy.opensocket : (_purpose: number, address: CurlSockaddr) => createSocket(address);
    const tracedOpen = (purpose: number, address: CurlSockaddr): number => {
      try {
        const fd = open(purpose, address);
        trace(`opensocket ${describeAddress(address)} -> fd ${fd}`);
        return fd;
      } catch (error) {
        trace(`opensocket ${describeAddress(address)} -> refused (${error instanceof Error ? error.message : String(error)})`);
        throw error;
      }
    };
    if (policy) internals.setoptUnlocked(easy, 'OPENSOCKETFUNCTION', tracedOpen);
    else easy.setopt('OPENSOCKETFUNCTION', tracedOpen);
    easy.setopt('SOCKOPTFUNCTION', (fd, purpose) => {
      trace(`sockopt fd ${fd} purpose ${purpose}`);
      return 0;
    });
    easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
      trace(`closesocket fd ${fd}`);
      closeSocket(fd);
      return 0;
    });
    multi.setopt('SOCKETFUNCTION', (_easy, fd, what) => trace(`socket fd ${fd} ${POLL_NAMES[what] ?? what}`));
    multi.setopt('TIMERFUNCTION', (timeoutMs) => trace(`timer ${timeoutMs} ms`));
  }

  let out: number | undefined;
  let ok = false;
  try {
    out = args.output ? fs.openSync(args.output, 'w') : undefined;
    const target = out ?? 1;
    easy.setopt('WRITEFUNCTION', (chunk) => {
      fs.writeSync(target, chunk);
    });
    await multi.perform(easy);
    ok = true;
    return 0;
  } catch (error) {
    if (error instanceof CurlError) {
      const cause = error.cause instanceof BlockedAddressError ? ` (${error.cause.message})` : '';
      process.stderr.write(`curl-sockets: (${error.curlCode}) ${error.message}${cause}\n`);
      return error.curlCode;
    }
    throw error;
  } finally {
    if (out !== undefined) fs.closeSync(out);
    easy.close();
    multi.close();
    if (!ok && args.output && fs.existsSync(args.output) && fs.statSync(args.output).size === 0) fs.unlinkSync(args.output);
  }
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) process.stderr.write(`curl-sockets: ${error.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = error.message ? 2 : 0;
    return;
  }
  process.exitCode = await run(args);
}

void main();
