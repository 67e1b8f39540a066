/** The address libcurl is about to connect to, as OPENSOCKETFUNCTION sees it. */
export interface CurlSockaddr {
  family: number;
  /** Without flag bits (libcurl >= 8.19 ORs SOCK_CLOEXEC into it). */
  socktype: number;
  protocol: number;
  /** The IP in canonical text form without brackets, or the path for AF_UNIX. Assign to redirect. */
  address: string;
  /** 0 for AF_UNIX. Assign to redirect. */
  port: number;
  scopeId?: number;
}

/** Timings of a transfer in seconds, as libcurl measures them (the *_TIME_T infos). */
export interface TransferTimings {
  nameLookup: number;
  connect: number;
  appConnect: number;
  preTransfer: number;
  startTransfer: number;
  total: number;
  redirect: number;
}

/** A snapshot of a finished transfer's connection facts. */
export interface TransferInfo {
  primaryIp: string | null;
  primaryPort: number;
  localIp: string | null;
  localPort: number;
  /** New connections this transfer made (0 when it reused one). */
  numConnects: number;
  redirectCount: number;
  /** CURL_HTTP_VERSION_* of the final response, 0 if none. */
  httpVersion: number;
  sizeDownload: number;
  sizeUpload: number;
  timings: TransferTimings;
}

export interface Transfer {
  /** The final response's status code (0 when the protocol has none). */
  status: number;
  /** The final response's header fields, in order, repeated names kept. */
  headers: Array<[name: string, value: string]>;
  body: Buffer;
  info: TransferInfo;
}

export interface PerformOptions {
  signal?: AbortSignal;
  /** Fail with CURLE_FILESIZE_EXCEEDED once the body would exceed this many bytes. */
  maxBodyBytes?: number;
  /**
   * Memory to write the body into: `transfer.body` is then a Buffer over its
   * first bytes, so reusing `into` for the next transfer costs no new body
   * memory. A body that does not fit gets a Buffer of its own instead. Two
   * transfers in flight may not share bytes of it.
   */
  into?: Uint8Array;
}

export interface MultiOptions {
  /** 'uv' (default): the binding drives libcurl from Node's event loop. 'manual': you do, with socketAction and Poller. */
  driver?: 'uv' | 'manual';
}

export interface IpPolicyOptions {
  allow?: Iterable<string>;
  deny?: Iterable<string>;
  allowUnixSockets?: boolean;
}
