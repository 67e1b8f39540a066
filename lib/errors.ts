import { CURLE_NAMES, CURLM_NAMES } from './generated/codes';
import { native } from './native';

/** A libcurl failure. Compare `code`, never the message (libcurl rewords it between versions). */
export class CurlError extends Error {
  /** libcurl's name for the code: 'CURLE_COULDNT_CONNECT', 'CURLM_ABORTED_BY_CALLBACK', ... */
  readonly code: string;
  /** The numeric CURLcode or CURLMcode (they overlap: `code` tells which). */
  readonly curlCode: number;
  /** CURLINFO_OS_ERRNO of the failed transfer, when libcurl saw one. */
  readonly osErrno?: number;

  constructor(message: string, code: string, curlCode: number, options?: { cause?: unknown; osErrno?: number }) {
    super(message, options && 'cause' in options && options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.curlCode = curlCode;
    if (options?.osErrno) this.osErrno = options.osErrno;
  }

  override get name(): string {
    return 'CurlError';
  }

  /** From a CURLcode; the message defaults to libcurl's text for it. */
  static easy(curlCode: number, message?: string, options?: { cause?: unknown; osErrno?: number }): CurlError {
    const code = CURLE_NAMES.get(curlCode) ?? `CURLE_${curlCode}`;
    return new CurlError(message || native.strerror(curlCode), code, curlCode, options);
  }

  /** From a CURLMcode. */
  static multi(curlCode: number, message?: string, options?: { cause?: unknown }): CurlError {
    const code = CURLM_NAMES.get(curlCode) ?? `CURLM_${curlCode}`;
    return new CurlError(message || native.strerror(curlCode, true), code, curlCode, options);
  }
}

/** Why IpPolicy refused to connect. Found as the `cause` of the transfer's CurlError. */
export class BlockedAddressError extends Error {
  readonly code = 'ERR_BLOCKED_ADDRESS' as const;
  readonly address: string;
  readonly port: number;
  readonly family: number;
  readonly reason: string;

  constructor(address: string, port: number, family: number, reason: string) {
    super(`Connection to ${address}${port ? ` port ${port}` : ''} blocked: ${reason}`);
    this.address = address;
    this.port = port;
    this.family = family;
    this.reason = reason;
  }

  override get name(): string {
    return 'BlockedAddressError';
  }
}

/** The rejection of a transfer that was aborted or abandoned. */
export function abortError(message: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = 'AbortError';
  return error;
}
