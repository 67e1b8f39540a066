// What each option name means at run time: its id, the kind of value it
// takes, and whether the running libcurl has it. Built once from the
// generated tables (curl.h + annotations) and libcurl's own option list.
import { CallbackKind, NativeOptionKind, native } from './native';
import {
  BINDING_OWNED_OPTIONS,
  INFO_TABLE,
  MULTI_OPTION_TABLE,
  OPTION_TABLE,
  type InfoKind,
  type OptionKind,
} from './generated/options';

export interface OptionInfo {
  readonly name: string;
  readonly id: number;
  readonly kind: OptionKind;
  /** The running libcurl knows this option. */
  readonly available: boolean;
  /** The binding owns this option (setopt refuses it). */
  readonly owned: boolean;
  /** The native setopt kind of a plain value option; undefined for pointer and callback kinds. */
  readonly nativeKind: NativeOptionKind | undefined;
  /** For a callback option the binding supports: its kind and which part it sets. */
  readonly callback: readonly [CallbackKind, 'function' | 'data'] | undefined;
}

/** An OptionInfo whose last fields are filled in once the owned and callback ids are known. */
type OptionInfoDraft = { -readonly [K in keyof OptionInfo]: OptionInfo[K] };

// curl_easyoption types (CURLOT_*) -> kinds, for options newer than the generated table.
const CURLOT_KINDS: readonly OptionKind[] = ['long', 'long', 'off_t', 'object', 'string', 'slist', 'cbpoint', 'blob', 'function'];

const runtime = new Map<string, number>();
const runtimeTypes = new Map<number, number>();
for (const [name, id, type] of native.listOptions()) {
  runtime.set(name, id);
  runtimeTypes.set(id, type);
}

const options = new Map<string, OptionInfoDraft>();
for (const [name, id, kind] of OPTION_TABLE) {
  options.set(name, { name, id, kind, available: runtimeTypes.has(id), owned: false, nativeKind: undefined, callback: undefined });
}
for (const [name, id] of runtime) {
  if (!options.has(name)) {
    options.set(name, { name, id, kind: CURLOT_KINDS[runtimeTypes.get(id) ?? 3] ?? 'object', available: true, owned: false, nativeKind: undefined, callback: undefined });
  }
}

const byId = new Map<number, OptionInfo>();
for (const info of options.values()) if (!byId.has(info.id)) byId.set(info.id, info);

/** Option info by id (aliases share an id and a kind). */
export function optionById(id: number): OptionInfo | undefined {
  return byId.get(id);
}

/** Option info by name (without CURLOPT_), or undefined for a name neither curl.h nor libcurl knows. */
export function optionInfo(name: string): OptionInfo | undefined {
  return options.get(name);
}

function idOf(name: string): number {
  const info = options.get(name);
  if (!info) throw new Error(`internal: option ${name} missing from the generated table`);
  return info.id;
}

export const OPT = {
  URL: idOf('URL'),
  POSTFIELDS: idOf('POSTFIELDS'),
  COPYPOSTFIELDS: idOf('COPYPOSTFIELDS'),
  UNIX_SOCKET_PATH: idOf('UNIX_SOCKET_PATH'),
  PROTOCOLS: idOf('PROTOCOLS'),
  REDIR_PROTOCOLS: idOf('REDIR_PROTOCOLS'),
  PROXY: idOf('PROXY'),
  NOPROXY: idOf('NOPROXY'),
  PRE_PROXY: idOf('PRE_PROXY'),
  ABSTRACT_UNIX_SOCKET: idOf('ABSTRACT_UNIX_SOCKET'),
  DOH_URL: idOf('DOH_URL'),
  OPENSOCKETFUNCTION: idOf('OPENSOCKETFUNCTION'),
  PREREQFUNCTION: idOf('PREREQFUNCTION'),
  PROTOCOLS_STR: options.get('PROTOCOLS_STR')?.id ?? -1,
  REDIR_PROTOCOLS_STR: options.get('REDIR_PROTOCOLS_STR')?.id ?? -1,
} as const;

/** Ids of options the binding owns (aliases included, since they share ids). */
export const OWNED_IDS: ReadonlySet<number> = new Set(BINDING_OWNED_OPTIONS.map(idOf));

/** Callback options the binding supports: id -> [kind, 'function' | 'data']. */
export const CALLBACK_IDS: ReadonlyMap<number, readonly [CallbackKind, 'function' | 'data']> = new Map([
  [idOf('OPENSOCKETFUNCTION'), [CallbackKind.OpenSocket, 'function']],
  [idOf('OPENSOCKETDATA'), [CallbackKind.OpenSocket, 'data']],
  [idOf('SOCKOPTFUNCTION'), [CallbackKind.Sockopt, 'function']],
  [idOf('SOCKOPTDATA'), [CallbackKind.Sockopt, 'data']],
  [idOf('CLOSESOCKETFUNCTION'), [CallbackKind.CloseSocket, 'function']],
  [idOf('CLOSESOCKETDATA'), [CallbackKind.CloseSocket, 'data']],
  [idOf('PREREQFUNCTION'), [CallbackKind.Prereq, 'function']],
  [idOf('PREREQDATA'), [CallbackKind.Prereq, 'data']],
  [idOf('WRITEFUNCTION'), [CallbackKind.Write, 'function']],
  [idOf('HEADERFUNCTION'), [CallbackKind.Header, 'function']],
  [idOf('HEADERDATA'), [CallbackKind.Header, 'data']],
  [idOf('XFERINFOFUNCTION'), [CallbackKind.Xferinfo, 'function']],
  [idOf('XFERINFODATA'), [CallbackKind.Xferinfo, 'data']],
  [idOf('DEBUGFUNCTION'), [CallbackKind.Debug, 'function']],
  [idOf('DEBUGDATA'), [CallbackKind.Debug, 'data']],
]);

for (const info of options.values()) {
  info.owned = OWNED_IDS.has(info.id);
  info.callback = CALLBACK_IDS.get(info.id);
  info.nativeKind = nativeKind(info);
}

/** Native setopt kind for a value option, or undefined for pointer/callback kinds. */
export function nativeKind(info: OptionInfo): NativeOptionKind | undefined {
  if (info.id === OPT.POSTFIELDS || info.id === OPT.COPYPOSTFIELDS) return NativeOptionKind.PostFields;
  switch (info.kind) {
    case 'long':
    case 'boolean':
      return NativeOptionKind.Long;
    case 'off_t':
      return NativeOptionKind.OffT;
    case 'string':
      return NativeOptionKind.String;
    case 'slist':
      return NativeOptionKind.Slist;
    case 'blob':
      return NativeOptionKind.Blob;
    default:
      return undefined;
  }
}

/** A callback option's JS function and its *DATA value, as handed to the native side. */
export interface CallbackSlot {
  fn: ((...args: never[]) => unknown) | null;
  data: unknown;
}

/** The function a callback's FUNCTION option was given, or null; throws TypeError for anything else. */
export function checkCallbackFunction(name: string, value: unknown): CallbackSlot['fn'] {
  if (value !== null && typeof value !== 'function') throw new TypeError(`${name} takes a function or null, not ${describe(value)}`);
  return value as CallbackSlot['fn'];
}

/** Applies setopt of a callback's FUNCTION or DATA option to its slot. */
export function updateCallbackSlot(slot: CallbackSlot, part: 'function' | 'data', name: string, value: unknown): void {
  if (part === 'function') slot.fn = checkCallbackFunction(name, value);
  else slot.data = value === null ? undefined : value;
}

const LONG_MAX = 2 ** 63;
const OFF_T_MIN = -(2n ** 63n);
const OFF_T_MAX = 2n ** 63n - 1n;

function noNul(name: string, text: string): void {
  if (text.includes('\0')) throw new TypeError(`${name}: the string contains a NUL byte, which libcurl would cut it at`);
}

/**
 * Checks a value against its option's kind and returns what goes to the
 * native side. Throws TypeError (wrong type) or RangeError (out of range).
 */
export function checkValue(info: OptionInfo, value: unknown): unknown {
  const { name } = info;
  if (value === null) return null;
  if (info.id === OPT.POSTFIELDS || info.id === OPT.COPYPOSTFIELDS) {
    if (typeof value === 'string') return Buffer.from(value);
    if (Buffer.isBuffer(value)) return value;
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    throw new TypeError(`${name} takes a string or a Buffer, not ${describe(value)}`);
  }
  switch (info.kind) {
    case 'boolean':
    case 'long':
      if (info.kind === 'boolean' && typeof value === 'boolean') return value;
      if (typeof value !== 'number') {
        throw new TypeError(`${name} takes a number${info.kind === 'boolean' ? ' or a boolean' : ''}, not ${describe(value)}`);
      }
      if (!Number.isInteger(value) || Math.abs(value) >= LONG_MAX) {
        throw new RangeError(`${name} takes an integer within libcurl's long range, not ${value}`);
      }
      return value;
    case 'off_t':
      if (typeof value === 'bigint') {
        if (value < OFF_T_MIN || value > OFF_T_MAX) throw new RangeError(`${name} is out of the 64-bit range: ${value}`);
        return value;
      }
      if (typeof value !== 'number') throw new TypeError(`${name} takes a number or a bigint, not ${describe(value)}`);
      if (!Number.isSafeInteger(value)) throw new RangeError(`${name} takes a safe integer (or a bigint), not ${value}`);
      return value;
    case 'string':
      if (typeof value !== 'string') throw new TypeError(`${name} takes a string, not ${describe(value)}`);
      noNul(name, value);
      return value;
    case 'slist':
    {
      if (!Array.isArray(value)) throw new TypeError(`${name} takes an array of strings, not ${describe(value)}`);
      // A copy: a later replay (null on another option) must not see the caller's later changes.
      const list: unknown[] = [...value];
      for (const item of list) {
        if (typeof item !== 'string') throw new TypeError(`${name} takes an array of strings; it holds ${describe(item)}`);
        noNul(name, item);
      }
      return list;
    }
    case 'blob':
      if (Buffer.isBuffer(value)) return value;
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      throw new TypeError(`${name} takes a Buffer, not ${describe(value)}`);
    default:
      throw new TypeError(`internal: ${name} has no plain value kind`);
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (Buffer.isBuffer(value)) return 'a Buffer';
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof value} ${String(value)}`;
    case 'string':
      return 'a string';
    case 'function':
      return 'a function';
    case 'undefined':
      return 'undefined';
    default:
      return `an ${typeof value}`;
  }
}

export interface InfoEntry {
  readonly id: number;
  readonly kind: InfoKind;
}
const infos = new Map<string, InfoEntry>(INFO_TABLE.map(([name, id, kind]) => [name, { id, kind }]));
export function infoEntry(name: string): InfoEntry | undefined {
  return infos.get(name);
}

const multiOptions = new Map<string, { id: number; kind: OptionKind }>(MULTI_OPTION_TABLE.map(([name, id, kind]) => [name, { id, kind }]));
export function multiOptionInfo(name: string): { id: number; kind: OptionKind } | undefined {
  return multiOptions.get(name);
}
