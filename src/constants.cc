// Constants exported with the platform's and the linked libcurl's own values.
// A constant this platform lacks, or the running libcurl is too old for, is
// simply absent (undefined in JS).
#include "constants.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace cs {

// Whether the running libcurl (its version_num) has a constant introduced in
// `since` (0: in every supported version).
static bool RunningHas(unsigned int running, unsigned int since) {
  return since == 0 || running >= since;
}

Napi::Object MakeConstants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define SET(name) c.Set(#name, Napi::Number::New(env, static_cast<double>(static_cast<long>(name))))
  // Socket callbacks.
  SET(CURL_SOCKET_BAD);
  SET(CURL_SOCKET_TIMEOUT);
  SET(CURL_SOCKOPT_OK);
  SET(CURL_SOCKOPT_ERROR);
  SET(CURL_SOCKOPT_ALREADY_CONNECTED);
  SET(CURLSOCKTYPE_IPCXN);
  SET(CURLSOCKTYPE_ACCEPT);
  SET(CURL_POLL_NONE);
  SET(CURL_POLL_IN);
  SET(CURL_POLL_OUT);
  SET(CURL_POLL_INOUT);
  SET(CURL_POLL_REMOVE);
  SET(CURL_CSELECT_IN);
  SET(CURL_CSELECT_OUT);
  SET(CURL_CSELECT_ERR);
  SET(CURL_PREREQFUNC_OK);
  SET(CURL_PREREQFUNC_ABORT);
  // Sockets.
  SET(AF_INET);
  SET(AF_INET6);
  SET(AF_UNIX);
  SET(AF_UNSPEC);
  SET(SOCK_STREAM);
  SET(SOCK_DGRAM);
  SET(SOL_SOCKET);
  SET(IPPROTO_TCP);
  SET(IPPROTO_UDP);
  SET(IPPROTO_IP);
  SET(IPPROTO_IPV6);
  SET(SO_KEEPALIVE);
  SET(SO_RCVBUF);
  SET(SO_SNDBUF);
  SET(SO_REUSEADDR);
  SET(SO_LINGER);
  SET(SO_ERROR);
  SET(SO_TYPE);
  SET(TCP_NODELAY);
  SET(IP_TOS);
#ifdef SO_MARK
  SET(SO_MARK);
#endif
#ifdef SO_BINDTODEVICE
  SET(SO_BINDTODEVICE);
#endif
#ifdef SO_PRIORITY
  SET(SO_PRIORITY);
#endif
#ifdef TCP_KEEPIDLE
  SET(TCP_KEEPIDLE);
#endif
#ifdef TCP_KEEPINTVL
  SET(TCP_KEEPINTVL);
#endif
#ifdef TCP_KEEPCNT
  SET(TCP_KEEPCNT);
#endif
#ifdef TCP_USER_TIMEOUT
  SET(TCP_USER_TIMEOUT);
#endif
#ifdef TCP_DEFER_ACCEPT
  SET(TCP_DEFER_ACCEPT);
#endif
#ifdef TCP_CONGESTION
  SET(TCP_CONGESTION);
#endif
#ifdef IPV6_TCLASS
  SET(IPV6_TCLASS);
#endif
#ifdef IPV6_V6ONLY
  SET(IPV6_V6ONLY);
#endif
  // Option values (generated from curl.h; each guarded for older headers).
  // Stringized here, not through SET: the argument would be macro-expanded first.
  // One newer than the running libcurl is left out: that libcurl would take
  // its value for something else (CURLFOLLOW_OBEYCODE is "follow" to 7.88).
  const unsigned int running = curl_version_info(CURLVERSION_NOW)->version_num;
#define CURL_CONSTANT(name, since) \
  if (RunningHas(running, since)) c.Set(#name, Napi::Number::New(env, static_cast<double>(static_cast<long>(name))));
#include "generated/constants.inc"
#undef CURL_CONSTANT
#undef SET
  return c;
}

}  // namespace cs
