// curl-sockets: libcurl with every socket callback, typed.
export { Easy } from './easy';
export { Multi } from './multi';
export { Poller } from './poller';
export { CurlError, BlockedAddressError } from './errors';
export { IpPolicy } from './ip-policy';
export { createSocket, closeSocket, setSocketOption, getSocketOption, adoptSocket } from './sockets';
export { libcurlVersion, libcurlFeatures } from './version';
export * from './constants';
export * from './generated/constants';
export type { CurlSockaddr, Transfer, TransferInfo, TransferTimings, PerformOptions, MultiOptions, IpPolicyOptions } from './types';
export type {
  EasyOptionName,
  EasyOptionValueTypes,
  InfoName,
  InfoValueTypes,
  MultiOptionName,
  MultiOptionValueTypes,
  OpenSocketFunction,
  SockOptFunction,
  CloseSocketFunction,
  PrereqFunction,
  WriteFunction,
  XferInfoFunction,
  DebugFunction,
  MultiSocketFunction,
  MultiTimerFunction,
} from './generated/options';
