// Settles the promise of a finished transfer from what the native side
// reports: the Transfer it resolves to, or the error it rejects with.
import { internals, type Easy } from './easy';
import { CurlError, abortError } from './errors';
import { noteLargeBody, POOLED_BODY_BYTES } from './large-body-pacing';
import { EndReason, InfoIndex, type TransferDoneHandler } from './native';
import type { Transfer, TransferInfo } from './types';

const CURLE_WRITE_ERROR = 23;

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

function takeBody(body: Buffer | number | undefined, into: Uint8Array | undefined): Buffer {
  if (into !== undefined && typeof body === 'number') {
    // Written into the caller's memory: a Buffer over it, unless JS has
    // detached or shrunk it since the last write (then the bytes are gone,
    // and the transfer fails as one detached midway does natively).
    if (into.byteLength < body) {
      throw CurlError.easy(CURLE_WRITE_ERROR, undefined, { cause: new Error('into was detached or shrunk after the body was written into it') });
    }
    return Buffer.from(into.buffer, into.byteOffset, body);
  }
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
 * Kept small: V8 compiles it during the first thousands of transfers, on the
 * same core (the header parser and the info snapshot, when they ran here,
 * were compiled into it and made that about twice the work).
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
    pending.resolve(new FinishedTransfer(infoScratch[InfoIndex.Status] as number, headers, takeBody(body, pending.into), new Float64Array(infoScratch), primaryIp, localIp));
  } catch (error) {
    pending.reject(error);  // never leave the promise pending
  }
};

/**
 * A successful transfer. Its header fields and its info are made from the
 * raw block and a copy of the numbers when first read: a client that only
 * needs the status and the body (most requests) pays nothing for them, and
 * the completion, which runs once per transfer, stays small enough for V8 to
 * compile quickly.
 */
class FinishedTransfer implements Transfer {
  status: number;
  body: Buffer;
  #rawHeaders: string;
  #headers: Array<[string, string]> | undefined;
  #numbers: Float64Array;  // a copy of the info scratch (InfoIndex)
  #primaryIp: string | null;
  #localIp: string | null;
  #info: TransferInfo | undefined;

  constructor(status: number, rawHeaders: string, body: Buffer, numbers: Float64Array, primaryIp: string | null, localIp: string | null) {
    this.status = status;
    this.body = body;
    this.#rawHeaders = rawHeaders;
    this.#numbers = numbers;
    this.#primaryIp = primaryIp;
    this.#localIp = localIp;
  }

  get headers(): Array<[string, string]> {
    return (this.#headers ??= parseHeaderFields(this.#rawHeaders));
  }

  set headers(fields: Array<[string, string]>) {
    this.#headers = fields;
  }

  get info(): TransferInfo {
    return (this.#info ??= infoSnapshot(this.#numbers, this.#primaryIp, this.#localIp));
  }

  set info(info: TransferInfo) {
    this.#info = info;
  }

  /** The same fields as the plain object a Transfer describes. */
  toJSON(): Transfer {
    return { status: this.status, headers: this.headers, body: this.body, info: this.info };
  }
}

function infoSnapshot(n: Float64Array, primaryIp: string | null, localIp: string | null): TransferInfo {
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
