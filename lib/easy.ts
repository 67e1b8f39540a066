import * as net from 'node:net';

import { CurlError } from './errors';
import type { EasyOptionName, EasyOptionValueTypes, InfoName, InfoValueTypes } from './generated/options';
import { defaultMulti } from './multi';
import { CallbackKind, NativeOptionKind, TRANSFER_TIME_CALLBACKS, native, type NativeEasy } from './native';
import {
  checkCallbackFunction,
  checkValue,
  describe,
  infoEntry,
  optionById,
  optionInfo,
  type OptionInfo,
} from './options';
import { adoptSocket } from './sockets';
import type { PerformOptions, Transfer } from './types';

/** A transfer's promise while it is in flight. */
export interface Pending {
  resolve(transfer: Transfer): void;
  reject(error: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** perform's `into`: a number for the body means its length in there. */
  into?: Uint8Array;
}

const CALLBACK_KINDS = 8;
// Callback slots: [fn0, data0, fn1, data1, ..., fn7, data7, fault].
const SLOT_COUNT = 2 * CALLBACK_KINDS + 1;
const FAULT_SLOT = SLOT_COUNT - 1;
const NOPROGRESS = optionInfo('NOPROGRESS')?.id ?? 43;
const OWNED_REASON =
  'curl-sockets owns it (the write path, the error buffer, the handle pointer, the share handle and signal handling are the binding\'s)';

/** Binding-internal access to an Easy (not exported from the package). */
export interface EasyInternals {
  native(easy: Easy): NativeEasy;
  setPending(easy: Easy, pending: Pending | undefined): void;
  takePending(easy: Easy): Pending | undefined;
  busy(easy: Easy): boolean;
  /** The Easy's TRANSFER_TIME_CALLBACKS kinds with a JS function, as bits (for Multi's add). */
  transferCallbacks(easy: Easy): number;
  /** Options that may no longer be changed on this handle (IpPolicy), and why. */
  lock(easy: Easy, names: Iterable<string>, reason: string): void;
  /** Called again after reset() and on duphandle() copies. */
  setHardening(easy: Easy, harden: ((easy: Easy) => void) | undefined): void;
  /** setopt past the locks (for IpPolicy itself). */
  setoptUnlocked(easy: Easy, name: string, value: unknown): void;
}
export let internals: EasyInternals;

// Wrappers of closed Easy objects, reopened for new ones: a new Easy per
// request then costs no napi_wrap and leaves the GC no finalizer to run.
// Bounded like the native pool of libcurl handles behind them.
const MAX_SPARE_WRAPPERS = 64;
const spareWrappers: NativeEasy[] = [];

/** Spare wrappers kept for new Easy objects (for tests). */
export function spareWrapperCount(): number {
  return spareWrappers.length;
}

const calls = native.easy;
// Takes the place of a closed Easy's wrapper, which may belong to a newer
// Easy by now: nothing reached through the old Easy can touch that one (no
// wrapper has this id, so every call throws 'the Easy is closed').
const CLOSED_WRAPPER: NativeEasy = { id: -1 };

/** One libcurl easy handle: options, info, and one transfer at a time. */
export class Easy {
  #native: NativeEasy;
  #closed = false;
  #pending: Pending | undefined;
  // Plain option values in the order set, kept so that `null` can restore a
  // default (libcurl cannot unset one option): reset, then set the rest again.
  #values: Map<number, unknown> | undefined;  // option id -> checked value, made on first set
  // Callback functions and data, shared with the native side (which reads them
  // when libcurl calls back, and keeps a transfer's fault in the last slot).
  // The wrapper's array (NativeEasy.slots), taken with the first callback option.
  #slots: unknown[] | undefined;
  // The [fn, data] of the current CLOSESOCKETFUNCTION, which connections opened
  // with it keep natively. Held here: the native side only refers to it weakly
  // (strongly while such a connection is open), so a callback that uses this
  // Easy forms no cycle through a GC root.
  #closeHook: unknown[] | undefined;
  // Bits of the TRANSFER_TIME_CALLBACKS kinds set: sent with each transfer
  // instead of a native call per option (a new Easy per request sets them each time).
  #transferCallbacks = 0;
  #locks: Map<number, string> | undefined;
  #lockUseConnectedSocket: string | undefined;
  #harden: ((easy: Easy) => void) | undefined;

  constructor() {
    const spare = spareWrappers.pop();
    if (spare !== undefined) calls.reopen(spare.id);
    const wrapper = spare ?? new native.NativeEasy();
    wrapper.owner = this;
    this.#native = wrapper;
  }

  static {
    internals = {
      native: (easy) => easy.#native,
      setPending: (easy, pending) => {
        easy.#pending = pending;
      },
      takePending: (easy) => {
        const pending = easy.#pending;
        easy.#pending = undefined;
        return pending;
      },
      busy: (easy) => easy.#pending !== undefined,
      transferCallbacks: (easy) => easy.#transferCallbacks,
      lock: (easy, names, reason) => {
        easy.#locks ??= new Map();
        for (const name of names) {
          if (name === 'useConnectedSocket') easy.#lockUseConnectedSocket = reason;
          const info = optionInfo(name);
          if (info) easy.#locks.set(info.id, reason);
        }
      },
      setHardening: (easy, harden) => {
        easy.#harden = harden;
      },
      setoptUnlocked: (easy, name, value) => easy.#setopt(name, value, false),
    };
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sets an option (name without CURLOPT_). `null` restores the default.
   * Throws TypeError for unknown names, wrong types and options the binding
   * owns, RangeError for values out of range, CurlError when libcurl refuses.
   */
  setopt<K extends EasyOptionName>(name: K, value: EasyOptionValueTypes[K]): this {
    this.#setopt(name, value, true);
    return this;
  }

  #setopt(name: string, value: unknown, checkLocks: boolean): void {
    this.#assertIdle('setopt');
    const info = typeof name === 'string' ? optionInfo(name) : undefined;
    if (!info) throw new TypeError(`Unknown option '${String(name)}' (use the name without CURLOPT_)`);
    if (info.owned) throw new TypeError(`${name} cannot be set: ${OWNED_REASON}`);
    const locked = checkLocks ? this.#locks?.get(info.id) : undefined;
    if (locked !== undefined) throw new TypeError(`${name} cannot be changed on this handle: ${locked}`);
    if (value === undefined) throw new TypeError(`${name}: undefined is not a value (use null to restore the default)`);

    const callback = info.callback;
    if (callback) {
      this.#setCallbackOption(info, name, value, callback[0], callback[1]);
      return;
    }
    const kind = info.nativeKind;
    if (kind === undefined) {
      if (info.kind === 'function' || info.kind === 'cbpoint') {
        throw new TypeError(`${name} is not supported by curl-sockets yet (no JavaScript callback for it)`);
      }
      throw new TypeError(`${name} takes a raw C pointer, which JavaScript cannot provide`);
    }
    if (!info.available) throw unknownOption(name);
    const checked = checkValue(info, value);
    if (checked === null) {
      // libcurl's NULL is not always the default (CAINFO, CAPATH): start over from reset.
      this.#values?.delete(info.id);
      this.#replay();
      return;
    }
    const rc = calls.setopt(this.#native.id, info.id, kind, checked);
    if (rc !== 0) throw CurlError.easy(rc, `${name}: ${native.strerror(rc)}`);
    const values = (this.#values ??= new Map());
    values.delete(info.id);  // keep the order of the latest set
    // A replay must send the bytes of this call (libcurl copied them), not
    // what the caller's Buffer holds by then.
    values.set(info.id, checked instanceof Uint8Array && typeof value !== 'string' ? Buffer.from(checked) : checked);
  }

  // Its own function, so that where callback options are rarely set V8
  // optimizes the plain-value path of #setopt without this branch (where they
  // are set for every request, V8 inlines it anyway).
  #setCallbackOption(info: OptionInfo, name: string, value: unknown, kind: CallbackKind, part: 'function' | 'data'): void {
    if (!info.available) throw unknownOption(name);
    const fnIndex = 2 * kind;
    const checked = part === 'function' ? (checkCallbackFunction(name, value) ?? undefined) : value === null ? undefined : value;
    const slots = this.#callbackSlots();
    slots[part === 'function' ? fnIndex : fnIndex + 1] = checked;
    const on = slots[fnIndex] !== undefined;
    // CLOSESOCKETFUNCTION: the pair stays with the connections opened while it is set.
    const bit = 1 << kind;
    if (TRANSFER_TIME_CALLBACKS & bit) {
      this.#transferCallbacks = on ? this.#transferCallbacks | bit : this.#transferCallbacks & ~bit;
      return;
    }
    if (kind === CallbackKind.CloseSocket) this.#closeHook = on ? [slots[fnIndex], slots[fnIndex + 1]] : undefined;
    calls.setCallback(this.#native.id, kind, on, kind === CallbackKind.CloseSocket ? this.#closeHook : undefined);
    if (kind === CallbackKind.Xferinfo && !on) {
      // Setting the callback turned the progress meter's switch on; put back the user's value or the default.
      calls.setopt(this.#native.id, NOPROGRESS, NativeOptionKind.Long, this.#values?.get(NOPROGRESS) ?? 1);
    }
  }

  #callbackSlots(): unknown[] {
    let slots = this.#slots;
    if (slots === undefined) {
      // A reopened wrapper comes with its array (emptied by close()), already
      // attached: a new Easy per request then costs no array and no call.
      const wrapper = this.#native;
      slots = wrapper.slots;
      if (slots === undefined) {
        slots = new Array<unknown>(SLOT_COUNT).fill(undefined);
        wrapper.slots = slots;
        calls.attachSlots(wrapper.id, slots);
      }
      this.#slots = slots;
    }
    return slots;
  }

  #replay(): void {
    calls.reset(this.#native.id, false);
    for (const [id, value] of this.#values ?? []) {
      const info = optionById(id);
      const kind = info?.nativeKind;
      if (kind !== undefined) calls.setopt(this.#native.id, id, kind, value);
    }
  }

  /** Reads an info (name without CURLINFO_). */
  getinfo<K extends InfoName>(name: K): InfoValueTypes[K] {
    this.#assertOpen('getinfo');
    const entry = typeof name === 'string' ? infoEntry(name) : undefined;
    if (!entry) throw new TypeError(`Unknown info '${String(name)}' (use the name without CURLINFO_)`);
    if (entry.kind === 'ptr') throw new TypeError(`${name} returns a C pointer, which curl-sockets does not expose`);
    const value = calls.getinfo(this.#native.id, entry.id);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) throw CurlError.easy(value.curlCode);
    return value as InfoValueTypes[K];
  }

  /** Restores every option's default; what the binding owns and an applied IpPolicy stay. */
  reset(): void {
    this.#assertIdle('reset');
    const slots = this.#slots;
    if (slots) {
      // Off before the native reset, which would otherwise install them again.
      for (let kind = 0; kind < CALLBACK_KINDS; kind++) {
        if (slots[2 * kind] !== undefined && !(TRANSFER_TIME_CALLBACKS & (1 << kind))) calls.setCallback(this.#native.id, kind as CallbackKind, false);
      }
      slots.fill(undefined);
    }
    this.#closeHook = undefined;
    this.#transferCallbacks = 0;
    calls.reset(this.#native.id, true);
    this.#values = undefined;
    this.#harden?.(this);
  }

  /** A new handle with this one's options (and IpPolicy), without a pending connected socket. */
  duphandle(): Easy {
    this.#assertIdle('duphandle');
    const copy = new Easy();
    if (this.#slots) {
      // Before duphandle: the native copy takes its callbacks from these.
      const slots = copy.#callbackSlots();
      for (let i = 0; i < FAULT_SLOT; i++) slots[i] = this.#slots[i];
    }
    calls.duphandle(this.#native.id, copy.#native.id);
    if (this.#closeHook) {
      // The copy's connections get a close hook of the copy's own.
      copy.#closeHook = [...this.#closeHook];
      calls.setCallback(copy.#native.id, CallbackKind.CloseSocket, true, copy.#closeHook);
    }
    copy.#transferCallbacks = this.#transferCallbacks;
    copy.#values = this.#values && new Map(this.#values);
    copy.#locks = this.#locks && new Map(this.#locks);
    copy.#lockUseConnectedSocket = this.#lockUseConnectedSocket;
    copy.#harden = this.#harden;
    return copy;
  }

  /** Runs one transfer on this thread's default Multi. */
  perform(options?: PerformOptions): Promise<Transfer> {
    return defaultMulti().perform(this, options);
  }

  /**
   * The next connection this handle makes uses this already-connected socket
   * (TCP or Unix-domain). A net.Socket is adopted (see adoptSocket); a number
   * is taken over as it is. That connection is never given to another handle
   * and is closed when this Easy is closed or reset.
   */
  useConnectedSocket(socket: net.Socket | number): this {
    this.#assertIdle('useConnectedSocket');
    if (this.#lockUseConnectedSocket !== undefined) {
      throw new TypeError(`useConnectedSocket cannot be used on this handle: ${this.#lockUseConnectedSocket}`);
    }
    const version = native.versionInfo.version;
    if (version.startsWith('7.88.')) {
      throw new Error(
        `useConnectedSocket does not work with libcurl ${version}: libcurl 7.88.0-7.88.1 ignore CURL_SOCKOPT_ALREADY_CONNECTED, ` +
          'call connect() on the socket anyway and fail with EISCONN. Use libcurl 7.87 or older, or 8.0 or newer.',
      );
    }
    let fd: number;
    if (typeof socket === 'number') {
      if (!Number.isInteger(socket) || socket < 0) throw new RangeError(`useConnectedSocket takes an fd (integer >= 0), not ${socket}`);
      fd = socket;
    } else if (socket instanceof net.Socket) {
      fd = adoptSocket(socket);
    } else {
      throw new TypeError(`useConnectedSocket takes a net.Socket or an fd, not ${describe(socket)}`);
    }
    calls.useConnectedSocket(this.#native.id, fd);
    return this;
  }

  /** Frees the handle. A transfer in flight is removed and its promise rejects. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const wrapper = this.#native;
    // false: closed from inside a libcurl callback, freed once libcurl returns.
    if (!calls.close(wrapper.id)) return;
    this.#native = CLOSED_WRAPPER;
    if (spareWrappers.length < MAX_SPARE_WRAPPERS) {
      wrapper.owner = undefined;
      // The next Easy starts with no callbacks, and the spare holds none of this one's values.
      const slots = this.#slots;
      if (slots !== undefined) for (let i = 0; i < SLOT_COUNT; i++) slots[i] = undefined;
      this.#slots = undefined;
      spareWrappers.push(wrapper);
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #assertOpen(what: string): void {
    if (this.#closed) throw new Error(`Easy.${what}: the handle is closed`);
  }

  #assertIdle(what: string): void {
    this.#assertOpen(what);
    if (this.#pending) throw new Error(`Easy.${what}: the handle is in a transfer (wait for it, or close the handle)`);
  }
}

function unknownOption(name: string): CurlError {
  return CurlError.easy(48, `${name} is not known to the linked libcurl ${native.versionInfo.version}`);
}
