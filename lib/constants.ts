// Constants with the platform's and the linked libcurl's values (never
// hard-coded here); one the platform lacks is undefined.
import { native } from './native';

const c = native.constants;
const must = (name: string): number => {
  const value = c[name];
  if (value === undefined) throw new Error(`internal: constant ${name} missing from the native module`);
  return value;
};

export const CURL_SOCKET_BAD = must('CURL_SOCKET_BAD');
export const CURL_SOCKET_TIMEOUT = must('CURL_SOCKET_TIMEOUT');
export const CURL_SOCKOPT_OK = must('CURL_SOCKOPT_OK');
export const CURL_SOCKOPT_ERROR = must('CURL_SOCKOPT_ERROR');
export const CURL_SOCKOPT_ALREADY_CONNECTED = must('CURL_SOCKOPT_ALREADY_CONNECTED');
export const CURLSOCKTYPE_IPCXN = must('CURLSOCKTYPE_IPCXN');
export const CURLSOCKTYPE_ACCEPT = must('CURLSOCKTYPE_ACCEPT');
export const CURL_POLL_NONE = must('CURL_POLL_NONE');
export const CURL_POLL_IN = must('CURL_POLL_IN');
export const CURL_POLL_OUT = must('CURL_POLL_OUT');
export const CURL_POLL_INOUT = must('CURL_POLL_INOUT');
export const CURL_POLL_REMOVE = must('CURL_POLL_REMOVE');
export const CURL_CSELECT_IN = must('CURL_CSELECT_IN');
export const CURL_CSELECT_OUT = must('CURL_CSELECT_OUT');
export const CURL_CSELECT_ERR = must('CURL_CSELECT_ERR');
export const CURL_PREREQFUNC_OK = must('CURL_PREREQFUNC_OK');
export const CURL_PREREQFUNC_ABORT = must('CURL_PREREQFUNC_ABORT');
export const AF_INET = must('AF_INET');
export const AF_INET6 = must('AF_INET6');
export const AF_UNIX = must('AF_UNIX');
export const SOCK_STREAM = must('SOCK_STREAM');
export const SOCK_DGRAM = must('SOCK_DGRAM');
export const SOL_SOCKET = must('SOL_SOCKET');
export const IPPROTO_TCP = must('IPPROTO_TCP');
export const IPPROTO_IP = must('IPPROTO_IP');
export const IPPROTO_IPV6 = must('IPPROTO_IPV6');
export const SO_KEEPALIVE = must('SO_KEEPALIVE');
export const SO_RCVBUF = must('SO_RCVBUF');
export const SO_SNDBUF = must('SO_SNDBUF');
export const TCP_NODELAY = must('TCP_NODELAY');
export const IP_TOS = must('IP_TOS');
export const SO_MARK: number | undefined = c.SO_MARK;
export const SO_BINDTODEVICE: number | undefined = c.SO_BINDTODEVICE;
export const TCP_KEEPIDLE: number | undefined = c.TCP_KEEPIDLE;
export const TCP_KEEPINTVL: number | undefined = c.TCP_KEEPINTVL;
export const TCP_KEEPCNT: number | undefined = c.TCP_KEEPCNT;
export const TCP_USER_TIMEOUT: number | undefined = c.TCP_USER_TIMEOUT;
/** Set by the binding on new HTTP(S)/WebSocket TCP connections (see README); 0 in a SOCKOPTFUNCTION turns it off. */
export const TCP_DEFER_ACCEPT: number | undefined = c.TCP_DEFER_ACCEPT;
export const IPV6_TCLASS: number | undefined = c.IPV6_TCLASS;
