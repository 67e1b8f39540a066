// Turns what the native side reports for a finished transfer into the
// Transfer a promise resolves to, or the error it rejects with.
import { CurlError, abortError } from './errors';
import { EndReason, InfoIndex } from './native';
import type { Transfer, TransferInfo } from './types';

/** The largest body handed over through bodyScratch. */
export const SMALL_BODY_BYTES = 16 * 1024;

// Scratch memory owned natively (see initialize() in lib/multi.ts): the
// numbers of the last finished transfer (InfoIndex), and its body when it is
// small, because copying it out here is cheaper than a Buffer made natively
// (napi_create_buffer_copy).
let infoScratch: Float64Array = new Float64Array(InfoIndex.Count);
let bodyScratch: Buffer = Buffer.alloc(0);

export function useScratch(info: Float64Array, body: Buffer): void {
  infoScratch = info;
  bodyScratch = body;
}

const copyBytes = Uint8Array.prototype.slice;

function takeBody(body: Buffer | number | undefined): Buffer {
  if (typeof body !== 'number') {
    if (body === undefined) throw new Error('curl-sockets: a finished transfer came without its body');
    return body;
  }
  // Never hand out unwritten bytes, whatever happened to the scratch buffer.
  if (body > bodyScratch.length) throw new Error('curl-sockets: the body scratch buffer is unusable');
  // A copy in a Buffer of its own (never a slice of a pool), made by V8's
  // built-in slice: Buffer#copy and Buffer.allocUnsafeSlow are JS functions
  // that TurboFan compiles into every caller, many milliseconds of work that
  // a short-lived process pays in its first thousands of transfers.
  return copyBytes.call(bodyScratch, 0, body) as Buffer;
}

/** Splits a raw header block into [name, value] pairs; the status line and the blank line are not fields. */
export function parseHeaders(block: string): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  // The status line is no field, whatever its reason phrase holds (a colon too).
  let start = 0;
  if (block.startsWith('HTTP/')) {
    const end = block.indexOf('\n');
    start = end < 0 ? block.length : end + 1;
  }
  while (start < block.length) {
    let end = block.indexOf('\n', start);
    if (end < 0) end = block.length;
    const lineEnd = end > start && block.charCodeAt(end - 1) === 13 ? end - 1 : end;
    if (lineEnd > start) {
      const first = block.charCodeAt(start);
      if (first === 32 || first === 9) {
        // obsolete line folding: continues the previous field's value
        const last = fields[fields.length - 1];
        if (last) last[1] = `${last[1]} ${block.slice(start, lineEnd).trim()}`;
      } else {
        const colon = block.indexOf(':', start);
        if (colon > start && colon < lineEnd) fields.push([block.slice(start, colon), block.slice(colon + 1, lineEnd).trim()]);
      }
    }
    start = end + 1;
  }
  return fields;
}

export function makeInfo(primaryIp: string | null, localIp: string | null): TransferInfo {
  const n = infoScratch;
  return {
    primaryIp,
    primaryPort: n[InfoIndex.PrimaryPort] as number,
    localIp,
    localPort: n[InfoIndex.LocalPort] as number,
    numConnects: n[InfoIndex.NumConnects] as number,
    redirectCount: n[InfoIndex.RedirectCount] as number,
    httpVersion: n[InfoIndex.HttpVersion] as number,
    sizeDownload: n[InfoIndex.SizeDownload] as number,
    sizeUpload: n[InfoIndex.SizeUpload] as number,
    timings: {
      nameLookup: n[InfoIndex.NameLookup] as number,
      connect: n[InfoIndex.Connect] as number,
      appConnect: n[InfoIndex.AppConnect] as number,
      preTransfer: n[InfoIndex.PreTransfer] as number,
      startTransfer: n[InfoIndex.StartTransfer] as number,
      total: n[InfoIndex.Total] as number,
      redirect: n[InfoIndex.Redirect] as number,
    },
  };
}

export function makeTransfer(body: Buffer | number | undefined, headers: string, primaryIp: string | null, localIp: string | null): Transfer {
  return {
    status: infoScratch[InfoIndex.Status] as number,
    headers: parseHeaders(headers),
    body: takeBody(body),
    info: makeInfo(primaryIp, localIp),
  };
}

/** The rejection for a transfer that did not succeed. */
export function transferError(
  code: number,
  reason: EndReason,
  message: string | undefined,
  fault: unknown,
  multiCause: unknown,
  signal: AbortSignal | undefined,
): unknown {
  switch (reason) {
    case EndReason.Abort:
      return abortError('The transfer was aborted', signal?.reason);
    case EndReason.EasyClosed:
      return abortError('The Easy was closed while its transfer was in flight');
    case EndReason.MultiClosed:
      return abortError('The Multi was closed while the transfer was in flight');
    case EndReason.MultiAborted:
      return CurlError.multi(11, 'A SOCKETFUNCTION or TIMERFUNCTION callback aborted the Multi', { cause: multiCause });
    default: {
      const osErrno = infoScratch[InfoIndex.OsErrno] as number;
      return CurlError.easy(code, message, { cause: fault, osErrno });
    }
  }
}
