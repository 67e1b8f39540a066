// Preloaded into the bench's server with --server-cc NAME: sets the TCP congestion
// control of each TCP socket the server listens on. The connections it accepts
// inherit it, so a run can use another congestion control for the server's sends
// than the machine's default without changing the machine.
//
// A listening socket that cannot get it makes listen() fail, so the server does
// not start with the wrong one.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*listen_fn)(int, int);

static int is_tcp(int fd) {
  int protocol = 0;
  socklen_t length = sizeof protocol;
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) == 0 && protocol == IPPROTO_TCP;
}

int listen(int fd, int backlog) {
  static listen_fn real_listen;
  if (real_listen == NULL) real_listen = (listen_fn)dlsym(RTLD_NEXT, "listen");
  if (real_listen == NULL) {
    errno = ENOSYS;
    return -1;
  }
  const char *name = getenv("CURL_SOCKETS_BENCH_SERVER_CC");
  if (name != NULL && *name != '\0' && is_tcp(fd) &&
      setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) != 0) {
    int error = errno;
    fprintf(stderr, "server-cc: setting TCP_CONGESTION to %s failed: %s\n", name, strerror(error));
    errno = error;
    return -1;
  }
  return real_listen(fd, backlog);
}
