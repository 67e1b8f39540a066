import { CURL_SOCKET_TIMEOUT } from './constants';
import { CurlError } from './errors';
import type { MultiOptionName, MultiOptionValueTypes } from './generated/options';
import { internals, type Easy, type Pending } from './easy';
import { EndReason, InfoIndex, MultiCallbackKind, native, type NativeMulti } from './native';
import { callOpenSocket, openSocketRewrite } from './open-socket-call';
import { callSlot1, callSlot2, callSlot4, callSocketSlot } from './slot-calls';
import { describe, multiOptionInfo, updateCallbackSlot, type CallbackSlot } from './options';
import { SMALL_BODY_BYTES, onTransferDone, transferError, useScratch } from './transfer';
import type { MultiOptions, PerformOptions, Transfer } from './types';

const INT32_MAX = 2 ** 31 - 1;

// The TS hooks the native side calls (onTransferDone: once per finished transfer).
const scratch = native.initialize({
  infoScratchLength: InfoIndex.Count,
  bodyScratchLength: SMALL_BODY_BYTES,
  emitWarning: (error) => process.emitWarning(error instanceof Error ? error : String(error)),
  callOpenSocket,
  openSocketRewrite,
  callSlot1,
  callSlot2,
  callSlot4,
  callSocketSlot,
  onTransferDone,
});
useScratch(scratch.infoScratch, scratch.bodyScratch);

const calls = native.multi;

const MULTI_CALLBACKS: ReadonlyMap<string, readonly [MultiCallbackKind, 'function' | 'data']> = new Map([
  ['SOCKETFUNCTION', [MultiCallbackKind.Socket, 'function']],
  ['SOCKETDATA', [MultiCallbackKind.Socket, 'data']],
  ['TIMERFUNCTION', [MultiCallbackKind.Timer, 'function']],
  ['TIMERDATA', [MultiCallbackKind.Timer, 'data']],
]);

/** A libcurl multi handle on Node's event loop: many transfers, one connection pool. */
export class Multi {
  readonly #native: NativeMulti;
  readonly #manual: boolean;
  #closed = false;
  #callbacks: CallbackSlot[] = [
    { fn: null, data: undefined },
    { fn: null, data: undefined },
  ];

  constructor(options: MultiOptions = {}) {
    const driver = options.driver ?? 'uv';
    if (driver !== 'uv' && driver !== 'manual') throw new TypeError(`driver must be 'uv' or 'manual', not ${describe(driver)}`);
    this.#manual = driver === 'manual';
    this.#native = new native.NativeMulti(this.#manual);
  }

  /** Transfers in flight. */
  get running(): number {
    return this.#closed ? 0 : calls.running(this.#native.id);
  }

  /** Sets a multi option (name without CURLMOPT_). */
  setopt<K extends MultiOptionName>(name: K, value: MultiOptionValueTypes[K]): this {
    this.#assertOpen('setopt');
    const callback = MULTI_CALLBACKS.get(name);
    if (callback) {
      const [kind, part] = callback;
      const slot = this.#callbacks[kind] as CallbackSlot;
      updateCallbackSlot(slot, part, name, value);
      calls.setCallback(this.#native.id, kind, slot.fn, slot.data);
      return this;
    }
    const info = typeof name === 'string' ? multiOptionInfo(name) : undefined;
    if (!info) throw new TypeError(`Unknown multi option '${String(name)}' (use the name without CURLMOPT_)`);
    if (info.kind !== 'long' && info.kind !== 'boolean') {
      throw new TypeError(`${name} is not supported by curl-sockets (it takes a C pointer or callback)`);
    }
    if (typeof value === 'boolean' && info.kind !== 'boolean') throw new TypeError(`${name} takes a number, not a boolean`);
    if (typeof value !== 'number' && typeof value !== 'boolean') throw new TypeError(`${name} takes a number, not ${describe(value)}`);
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`${name} takes an integer, not ${value}`);
    const rc = calls.setopt(this.#native.id, info.id, value);
    if (rc !== 0) throw CurlError.multi(rc, `${name}: ${native.strerror(rc, true)}`);
    return this;
  }

  /** Runs one transfer of `easy` on this Multi. */
  perform(easy: Easy, options?: PerformOptions): Promise<Transfer> {
    this.#assertOpen('perform');
    if (easy.closed) throw new Error('Multi.perform: the Easy is closed');
    if (this.#manual) this.#assertManualReady();
    const signal = options?.signal;
    const maxBodyBytes = options?.maxBodyBytes;
    const into = options?.into;
    if (options !== undefined) checkPerformOptions(signal, maxBodyBytes, into);
    if (internals.busy(easy)) throw new Error('Multi.perform: the Easy is already in a transfer');
    if (signal?.aborted) return Promise.reject(transferError(0, EndReason.Abort, undefined, undefined, undefined, signal));

    const nativeEasy = internals.native(easy);
    let pending!: Pending;
    const promise = new Promise<Transfer>((resolve, reject) => {
      pending = { resolve, reject, signal, into };
    });
    internals.setPending(easy, pending);
    if (signal) {
      pending.onAbort = () => calls.cancel(this.#native.id, nativeEasy.id, EndReason.Abort);
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
    const rc = calls.add(this.#native.id, nativeEasy.id, maxBodyBytes ?? -1, internals.transferCallbacks(easy), into);
    if (rc !== 0) {
      internals.setPending(easy, undefined);
      if (pending.onAbort) signal?.removeEventListener('abort', pending.onAbort);
      if (rc === -1) throw new TypeError('Multi.perform: into shares bytes with the into of a transfer still in flight');
      throw CurlError.multi(rc);
    }
    return promise;
  }

  #assertManualReady(): void {
    if (!this.#callbacks[0]?.fn || !this.#callbacks[1]?.fn) {
      throw new Error("Multi.perform: a 'manual' Multi needs SOCKETFUNCTION and TIMERFUNCTION set first");
    }
  }

  /** Stores a value for fd; SOCKETFUNCTION gets it as `socketp` until REMOVE (included). */
  assign(fd: number, socketp: unknown): void {
    this.#assertOpen('assign');
    const rc = calls.assign(this.#native.id, fd, socketp);
    if (rc !== 0) throw CurlError.multi(rc, `assign: fd ${fd} is not a socket this Multi is watching`);
  }

  /** For 'manual' mode: tells libcurl about activity (CURL_CSELECT_* bits) on fd, or a timeout (CURL_SOCKET_TIMEOUT). */
  socketAction(fd: number, events: number): number {
    this.#assertOpen('socketAction');
    if (!Number.isInteger(fd) || !Number.isInteger(events)) throw new TypeError('socketAction takes an fd and CURL_CSELECT_* bits');
    // libcurl looks a socket up by its number: any other negative one reads outside its table.
    if (fd !== CURL_SOCKET_TIMEOUT && (fd < 0 || fd > INT32_MAX)) {
      throw new RangeError(`socketAction takes an fd (0 to 2^31-1) or CURL_SOCKET_TIMEOUT (-1), not ${fd}`);
    }
    const result = calls.socketAction(this.#native.id, fd, events);
    if (result < 0) throw CurlError.multi(-result);
    return result;
  }

  /** Removes every transfer (their promises reject), closes pooled connections and frees the handle. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    calls.close(this.#native.id);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #assertOpen(what: string): void {
    if (this.#closed) throw new Error(`Multi.${what}: the Multi is closed`);
  }
}

function checkPerformOptions(signal: unknown, maxBodyBytes: unknown, into: unknown): void {
  if (into !== undefined && !(into instanceof Uint8Array)) {
    throw new TypeError(`into must be a Uint8Array (a Buffer is one), not ${describe(into)}`);
  }
  // Shrunk and grown again between two writes, a resizable buffer keeps its
  // address and length while V8 zeroes what was cut off: no check could see it.
  if (into !== undefined && (into.buffer as { resizable?: boolean }).resizable === true) {
    throw new TypeError('into cannot be over a resizable ArrayBuffer (shrinking and growing it would lose body bytes unseen)');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal, not ${describe(signal)}`);
  }
  if (maxBodyBytes !== undefined && (typeof maxBodyBytes !== 'number' || !(maxBodyBytes >= 0))) {
    throw new RangeError(`maxBodyBytes must be a number >= 0, not ${describe(maxBodyBytes)}`);
  }
}

let threadDefault: Multi | undefined;

/** This thread's Multi behind Easy#perform(). */
export function defaultMulti(): Multi {
  threadDefault ??= new Multi();
  return threadDefault;
}
