#include "handshake_ack.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>

#include <cstring>

namespace cs {

bool ClientSpeaksFirst(CURL* handle) {
  char* url = nullptr;
  if (curl_easy_getinfo(handle, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == nullptr) return false;
  static constexpr const char* kSchemes[] = {"http://", "https://", "ws://", "wss://"};
  for (const char* scheme : kSchemes) {
    size_t length = std::strlen(scheme);
    if (strncasecmp(url, scheme, length) == 0) return true;
  }
  return false;
}

bool IsTcpAddress(const curl_sockaddr* address) {
  if (address->family != AF_INET && address->family != AF_INET6) return false;
  int type = address->socktype & ~(SOCK_CLOEXEC | SOCK_NONBLOCK);
  return type == SOCK_STREAM && (address->protocol == 0 || address->protocol == IPPROTO_TCP);
}

void DeferHandshakeAck(curl_socket_t fd) {
#ifdef TCP_DEFER_ACCEPT
  int seconds = 1;  // any value > 0: on a connecting socket only "set" matters
  setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds);
#else
  (void)fd;
#endif
}

}  // namespace cs
