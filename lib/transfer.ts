// Settles the promise of a finished transfer from what the native side
// reports: the Transfer it resolves to, or the error it rejects with.
import { internals, type Easy } from './easy';
import { CurlError, abortError } from './errors';
import { noteLargeBody, POOLED_BODY_BYTES } from './large-body-pacing';
import { EndReason, InfoIndex, type TransferDoneHandler } from './native';
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
    if (body.length >= POOLED_BODY_BYTES) noteLargeBody(body.length);
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

/**
 * The native side calls this once per finished transfer, after libcurl has
 * returned (so settling never re-enters libcurl). A successful transfer
 * resolves to its Transfer, built here from the scratch memory.
 *
 * One function on purpose, with the info snapshot written out in it: V8
 * optimizes a helper that gets hot before its caller on its own, and then
 * again inlined into the caller (the header parser, when it ran here, was
 * compiled three times). In the bench's s2 that compilation competes with the
 * transfers for the client's core.
 */
export const onTransferDone: TransferDoneHandler = (nativeEasy, code, reason, message, body, headers, primaryIp, localIp, fault, multiCause) => {
  const easy = nativeEasy?.owner as Easy | undefined;
  if (!easy) return;
  const pending = internals.takePending(easy);
  if (!pending) return;
  if (pending.onAbort) pending.signal?.removeEventListener('abort', pending.onAbort);
  if (code !== 0 || reason !== EndReason.Libcurl) {
    pending.reject(transferError(code, reason, message, fault, multiCause, pending.signal));
    return;
  }
  try {
    const n = infoScratch;
    const info: TransferInfo = {
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
    pending.resolve(new FinishedTransfer(n[InfoIndex.Status] as number, headers, takeBody(body), info));
  } catch (error) {
    pending.reject(error);  // never leave the promise pending
  }
};

/**
 * A successful transfer. Its header fields are parsed from the raw block
 * when first read: a client that only needs the status and the body (most
 * requests) pays nothing for them, and the completion, which runs once per
 * transfer, stays small enough for V8 to compile quickly.
 */
class FinishedTransfer implements Transfer {
  status: number;
  body: Buffer;
  info: TransferInfo;
  #rawHeaders: string;
  #headers: Array<[string, string]> | undefined;

  constructor(status: number, rawHeaders: string, body: Buffer, info: TransferInfo) {
    this.status = status;
    this.body = body;
    this.info = info;
    this.#rawHeaders = rawHeaders;
  }

  get headers(): Array<[string, string]> {
    return (this.#headers ??= parseHeaderFields(this.#rawHeaders));
  }

  set headers(fields: Array<[string, string]>) {
    this.#headers = fields;
  }

  /** The same fields as the plain object a Transfer describes. */
  toJSON(): Transfer {
    return { status: this.status, headers: this.headers, body: this.body, info: this.info };
  }
}

/**
 * The final response's fields as [name, value] pairs. The status line is no
 * field, whatever its reason phrase holds (a colon too), nor is the blank
 * line that ends the block.
 */
function parseHeaderFields(headers: string): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  let start = 0;
  if (headers.startsWith('HTTP/')) {
    const end = headers.indexOf('\n');
    start = end < 0 ? headers.length : end + 1;
  }
  while (start < headers.length) {
    let end = headers.indexOf('\n', start);
    if (end < 0) end = headers.length;
    const lineEnd = end > start && headers.charCodeAt(end - 1) === 13 ? end - 1 : end;
    if (lineEnd > start) {
      const first = headers.charCodeAt(start);
      if (first === 32 || first === 9) {
        // obsolete line folding: continues the previous field's value
        const last = fields[fields.length - 1];
        if (last) last[1] = `${last[1]} ${headers.slice(start, lineEnd).trim()}`;
      } else {
        const colon = headers.indexOf(':', start);
        if (colon > start && colon < lineEnd) fields.push([headers.slice(start, colon), headers.slice(colon + 1, lineEnd).trim()]);
      }
    }
    start = end + 1;
  }
  return fields;
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
