// The native module, typed once and loaded once (through node-gyp-build, so
// prebuilds work). Nothing else touches the .node file.
import * as path from 'node:path';

import type { callOpenSocket } from './open-socket-call';
import type { callSlot1, callSlot2, callSlot4, callSocketSlot } from './slot-calls';

/** Value kinds of NativeEasy.setopt; mirrors OptionKind in src/easy.cc. */
export const enum NativeOptionKind {
  Long = 0,
  OffT = 1,
  String = 2,
  Slist = 3,
  Blob = 4,
  PostFields = 5,
}

/** Callback slots of NativeEasy.setCallback; mirrors CallbackKind in src/easy.h. */
export const enum CallbackKind {
  OpenSocket = 0,
  Sockopt = 1,
  CloseSocket = 2,
  Prereq = 3,
  Write = 4,
  Header = 5,
  Xferinfo = 6,
  Debug = 7,
}

/**
 * Callback kinds whose JS function the native side looks for only during a
 * transfer (libcurl's option for them is the binding's own, always set).
 * Their bits go to the native side with each `add`, not with `setCallback`;
 * mirrors kTransferTimeCallbacks in src/easy.h.
 */
export const TRANSFER_TIME_CALLBACKS =
  (1 << CallbackKind.OpenSocket) | (1 << CallbackKind.Sockopt) | (1 << CallbackKind.Write) | (1 << CallbackKind.Header);

/** Why a transfer ended without libcurl finishing it; mirrors EndReason in src/easy.h. */
export const enum EndReason {
  Libcurl = 0,
  Abort = 1,
  EasyClosed = 2,
  MultiClosed = 3,
  MultiAborted = 4,
}

/** Layout of the info scratch array; mirrors InfoIndex in src/easy.cc. */
export const enum InfoIndex {
  Status = 0,
  PrimaryPort,
  LocalPort,
  NumConnects,
  RedirectCount,
  OsErrno,
  NameLookup,
  Connect,
  AppConnect,
  PreTransfer,
  StartTransfer,
  Total,
  Redirect,
  HttpVersion,
  SizeDownload,
  SizeUpload,
  Count,
}

export const enum MultiCallbackKind {
  Socket = 0,
  Timer = 1,
}

/**
 * A native easy handle's wrapper. It holds the native side alive; the calls
 * on it (NativeEasyCalls) name it by `id`.
 */
export interface NativeEasy {
  /** Constant for the wrapper's life; given to the next wrapper once this one is collected. */
  readonly id: number;
  /**
   * The user's Easy, set by its constructor. A plain property of the wrapper,
   * so a transfer in flight (which holds the wrapper) keeps it alive too; the
   * native side reads it for SOCKETFUNCTION's `easy` argument.
   */
  owner?: object;
  /** The callback slots (see Easy), made with the first callback set through this wrapper and kept with it. */
  slots?: unknown[];
}

/**
 * The calls on a NativeEasy, each with the wrapper's id first: finding a
 * wrapper by id costs a bounds check, where a method call's napi_unwrap of
 * `this` costs about 800 instructions. An id of no wrapper throws
 * 'the Easy is closed'.
 */
export interface NativeEasyCalls {
  /** Returns the CURLcode. */
  setopt(easy: number, id: number, kind: NativeOptionKind, value: unknown): number;
  /** Lends the native side the array of callback functions and data (see Easy). */
  attachSlots(easy: number, slots: unknown[]): void;
  /**
   * The kind's slots are written already; `closeHook` is a new [fn, data] for
   * CLOSESOCKETFUNCTION. Not for TRANSFER_TIME_CALLBACKS kinds (see `add`).
   */
  setCallback(easy: number, kind: CallbackKind, on: boolean, closeHook?: readonly unknown[]): void;
  /** The value, or { curlCode } when libcurl refused. */
  getinfo(easy: number, id: number): string | number | string[] | null | { curlCode: number };
  reset(easy: number, hard: boolean): void;
  duphandle(easy: number, target: number): void;
  /** True when the handle was freed now; false when already closed or deferred until libcurl returns. */
  close(easy: number): boolean;
  /** Makes a wrapper whose close() returned true new again, for the next Easy. */
  reopen(easy: number): void;
  useConnectedSocket(easy: number, fd: number): void;
  dropConnectedSocket(easy: number): void;
}

/** A native multi handle's wrapper; the calls on it (NativeMultiCalls) name it by `id`. */
export interface NativeMulti {
  readonly id: number;
}

/** The calls on a NativeMulti, each with the wrapper's id first (see NativeEasyCalls). */
export interface NativeMultiCalls {
  /** Returns the CURLMcode (CURLM_BAD_EASY_HANDLE for an Easy id of no open handle). */
  /** `callbackBits`: the Easy's TRANSFER_TIME_CALLBACKS kinds with a JS function, as bits. */
  /** A CURLMcode, or -1 when `into` shares bytes with the `into` of a transfer in flight. */
  add(multi: number, easy: number, maxBodyBytes: number, callbackBits: number, into?: Uint8Array): number;
  cancel(multi: number, easy: number, reason: EndReason): void;
  close(multi: number): void;
  setopt(multi: number, id: number, value: number | boolean): number;
  setCallback(multi: number, kind: MultiCallbackKind, fn: ((...args: never[]) => unknown) | null, data: unknown): void;
  assign(multi: number, fd: number, value: unknown): number;
  /** Running transfers, or -CURLMcode. */
  socketAction(multi: number, fd: number, events: number): number;
  running(multi: number): number;
}

/** A poller's wrapper; the calls on it (NativePollerCalls) name it by `id`. */
export interface NativePoller {
  readonly id: number;
}

/** The calls on a NativePoller, each with the wrapper's id first (see NativeEasyCalls). */
export interface NativePollerCalls {
  start(poller: number, events: number, callback: (status: number, events: number) => void): void;
  stop(poller: number): void;
  close(poller: number): void;
}

export interface NativeAddress {
  family: number;
  address: string;
  port: number;
}

export interface NativeVersionInfo {
  version: string;
  versionNum: number;
  host: string;
  sslVersion: string | null;
  libzVersion: string | null;
  aresVersion: string | null;
  nghttp2Version: string | null;
  protocols: string[];
  featureNames: string[];
  featureBits: number;
}

export type TransferDoneHandler = (
  nativeEasy: NativeEasy | undefined,
  code: number,
  reason: EndReason,
  message: string | undefined,
  // A body of up to bodyScratch.length bytes arrives as its length, its bytes in
  // bodyScratch; a failed transfer's body as undefined.
  body: Buffer | number | undefined,
  headers: string,
  primaryIp: string | null,
  localIp: string | null,
  fault: unknown,
  multiCause: unknown,
) => void;

export interface NativeModule {
  NativeEasy: new () => NativeEasy;
  easy: NativeEasyCalls;
  NativeMulti: new (manual: boolean) => NativeMulti;
  multi: NativeMultiCalls;
  NativePoller: new (fd: number) => NativePoller;
  poller: NativePollerCalls;
  /** Hands over the TS hooks; returns the scratch memory finished transfers are read from. */
  initialize(hooks: {
    onTransferDone: TransferDoneHandler;
    emitWarning: (error: unknown) => void;
    callOpenSocket: typeof callOpenSocket;
    openSocketRewrite: unknown[];
    callSlot1: typeof callSlot1;
    callSlot2: typeof callSlot2;
    callSlot4: typeof callSlot4;
    callSocketSlot: typeof callSocketSlot;
    infoScratchLength: number;
    bodyScratchLength: number;
  }): { infoScratch: Float64Array; bodyScratch: Buffer };
  /** [name, id, CURLOT type, isAlias] of every option of the running libcurl. */
  listOptions(): Array<[string, number, number, boolean]>;
  strerror(code: number, multi?: boolean): string;
  /** libcurl handles of closed Easy objects kept for new ones (src/handle_pool.h). */
  idleHandleCount(): number;
  /** Sockets any Multi of this thread registered with libuv so far (src/multi.cc CheckFirstWaits). */
  registeredSocketCount(): number;
  /** Memory for large response bodies (src/body_pool.h): blocks mapped and handed out again so far, free bytes kept now, bytes held by Buffers now. */
  bodyPoolStats(): { mapped: number; reused: number; cachedBytes: number; liveBytes: number };
  versionInfo: NativeVersionInfo;
  constants: Record<string, number | undefined>;
  createSocket(family: number, socktype: number, protocol: number): number;
  closeSocket(fd: number): void;
  setSocketOption(fd: number, level: number, name: number, value: number | boolean | Buffer): void;
  getSocketOption(fd: number, level: number, name: number): number;
  dupSocket(fd: number): number;
  pendingBytes(fd: number): number;
  peerAddress(fd: number): NativeAddress | null;
  findSocket(localIp: string, localPort: number, peerIp: string, peerPort: number): number;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = require('node-gyp-build') as (dir: string) => unknown;

/** The addon for this thread (each worker thread loads its own instance). */
export const native = load(path.resolve(__dirname, '..')) as NativeModule;
