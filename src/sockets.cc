#include "sockets.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "state.h"

namespace cs {

namespace {

bool IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int* out) {
  double d;
  // napi_get_value_double refuses a non-number itself (no separate typeof):
  // these helpers run in every socket callback.
  if (napi_get_value_double(info.Env(), info[i], &d) == napi_ok && std::isfinite(d) && d == std::trunc(d) &&
      d >= INT_MIN && d <= INT_MAX) {
    *out = static_cast<int>(d);
    return true;
  }
  Napi::TypeError::New(info.Env(), std::string(name) + " must be an integer").ThrowAsJavaScriptException();
  return false;
}

// createSocket(family, socktype, protocol) -> fd, close-on-exec
Napi::Value CreateSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family, socktype, protocol;
  if (!IntArg(info, 0, "family", &family) || !IntArg(info, 1, "socktype", &socktype) ||
      !IntArg(info, 2, "protocol", &protocol)) {
    return env.Undefined();
  }
  int fd = socket(family, socktype | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    SystemError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// closeSocket(fd). Inside a CLOSESOCKETFUNCTION it also tells the binding
// that the callback closed the fd it was given.
Napi::Value CloseSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  StatePtr state = GetState(env);
  // The fd a running CLOSESOCKETFUNCTION was given is a socket libcurl has
  // just let go of: no need to look at it first.
  bool closingOwnFd = fd == state->closingFd && fd > STDERR_FILENO;
  if (closingOwnFd) {
    if (state->closingFdClosed) {
      SystemError(env, EBADF, "close").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    state->closingFdClosed = true;
  } else {
    // Only sockets: closing stdio or another kind of fd through this helper
    // is always a mistake (and libuv aborts later when stdio disappears).
    if (int err = NotOwnSocketError(fd)) {
      SystemError(env, err, "close").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (OwnedByLibcurl(state.get(), fd)) {
      Napi::Error error = Napi::Error::New(env, "fd " + std::to_string(fd) +
          " belongs to libcurl until it is handed to CLOSESOCKETFUNCTION; closing it now would close it twice");
      error.Set("code", Napi::String::New(env, "ERR_SOCKET_OWNED_BY_LIBCURL"));
      error.ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  if (close(fd) != 0 && errno != EINTR) {
    SystemError(env, errno, "close").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// setSocketOption(fd, level, name, value: number | boolean | Buffer)
Napi::Value SetSocketOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, level, name;
  if (!IntArg(info, 0, "fd", &fd) || !IntArg(info, 1, "level", &level) || !IntArg(info, 2, "name", &name)) {
    return env.Undefined();
  }
  Napi::Value value = info[3];
  int rc;
  if (value.IsBuffer()) {
    Napi::Buffer<char> buffer = value.As<Napi::Buffer<char>>();
    rc = setsockopt(fd, level, name, buffer.Data(), static_cast<socklen_t>(buffer.Length()));
  } else if (value.IsBoolean()) {
    int v = value.As<Napi::Boolean>().Value() ? 1 : 0;
    rc = setsockopt(fd, level, name, &v, sizeof v);
  } else {
    int v;
    if (!IntArg(info, 3, "value", &v)) return env.Undefined();
    rc = setsockopt(fd, level, name, &v, sizeof v);
  }
  if (rc != 0) SystemError(env, errno, "setsockopt").ThrowAsJavaScriptException();
  return env.Undefined();
}

// getSocketOption(fd, level, name) -> number
Napi::Value GetSocketOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, level, name;
  if (!IntArg(info, 0, "fd", &fd) || !IntArg(info, 1, "level", &level) || !IntArg(info, 2, "name", &name)) {
    return env.Undefined();
  }
  int v = 0;
  socklen_t length = sizeof v;
  if (getsockopt(fd, level, name, &v, &length) != 0) {
    SystemError(env, errno, "getsockopt").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (length == 1) v = static_cast<unsigned char>(v);  // a few options are one byte
  return Napi::Number::New(env, v);
}

// dupSocket(fd) -> a close-on-exec duplicate
Napi::Value DupSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    SystemError(env, errno, "fcntl").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, copy);
}

// Bytes waiting in the kernel receive queue.
Napi::Value PendingBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  int pending = 0;
  if (ioctl(fd, FIONREAD, &pending) != 0) {
    SystemError(env, errno, "ioctl").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, pending);
}

Napi::Value AddressObject(Napi::Env env, const sockaddr_storage& ss, socklen_t length) {
  Napi::Object o = Napi::Object::New(env);
  char text[INET6_ADDRSTRLEN] = "";
  o.Set("family", Napi::Number::New(env, ss.ss_family));
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    o.Set("address", Napi::String::New(env, text));
    o.Set("port", Napi::Number::New(env, ntohs(in->sin_port)));
  } else if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    o.Set("address", Napi::String::New(env, text));
    o.Set("port", Napi::Number::New(env, ntohs(in6->sin6_port)));
  } else if (ss.ss_family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t max = length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
    o.Set("address", Napi::String::New(env, un->sun_path, strnlen(un->sun_path, max)));
    o.Set("port", Napi::Number::New(env, 0));
  } else {
    o.Set("address", Napi::String::New(env, ""));
    o.Set("port", Napi::Number::New(env, 0));
  }
  return o;
}

// peerAddress(fd) -> { family, address, port } or null when not connected
Napi::Value PeerAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!IntArg(info, 0, "fd", &fd)) return env.Undefined();
  sockaddr_storage ss{};
  socklen_t length = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &length) != 0) {
    if (errno == ENOTCONN) return env.Null();
    SystemError(env, errno, "getpeername").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return AddressObject(env, ss, length);
}

// Whether a socket address is `ip` (any text form inet_pton reads: libcurl
// and inet_ntop spell IPv4-mapped IPv6 addresses differently) and `port`.
bool SameEndpoint(const sockaddr_storage& ss, const std::string& ip, int port) {
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    in_addr want{};
    return ntohs(in->sin_port) == port && inet_pton(AF_INET, ip.c_str(), &want) == 1 &&
           want.s_addr == in->sin_addr.s_addr;
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    in6_addr want{};
    return ntohs(in6->sin6_port) == port && inet_pton(AF_INET6, ip.c_str(), &want) == 1 &&
           memcmp(&want, &in6->sin6_addr, sizeof want) == 0;
  }
  return false;
}

// Whether fd is a socket connected from exactly (localIp, localPort) to (peerIp, peerPort).
bool HasEndpoints(int fd, const std::string& localIp, int localPort, const std::string& peerIp, int peerPort) {
  sockaddr_storage ss{};
  socklen_t length = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &length) != 0 || !SameEndpoint(ss, localIp, localPort)) return false;
  length = sizeof ss;
  return getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &length) == 0 && SameEndpoint(ss, peerIp, peerPort);
}

// A connection libcurl opened without OPENSOCKETFUNCTION (only its internal
// DoH transfers do) and pooled, so a later transfer may reuse it. Found among
// all the process's fds: a connected TCP socket's 4-tuple is unique, so an
// exact match is that connection. Slow, but only reached for such a reuse.
int FindUntrackedSocket(const std::string& localIp, int localPort, const std::string& peerIp, int peerPort) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long fd = strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;  // ".", "..", the listing itself
    if (HasEndpoints(static_cast<int>(fd), localIp, localPort, peerIp, peerPort)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// The socket the binding tracks with exactly this 4-tuple, or -1.
int FindTrackedSocket(AddonState* state, const std::string& localIp, int localPort, const std::string& peerIp,
                      int peerPort) {
  for (auto& entry : state->openSockets) {
    if (entry.second.localPort >= 0 && entry.second.localPort != localPort) continue;
    sockaddr_storage ss{};
    socklen_t length = sizeof ss;
    if (getsockname(entry.first, reinterpret_cast<sockaddr*>(&ss), &length) != 0) continue;
    int local = ss.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port)
              : ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port) : -1;
    if (local > 0) entry.second.localPort = local;  // 0: not connected yet, may still change
    if (!SameEndpoint(ss, localIp, localPort)) continue;
    length = sizeof ss;
    if (getpeername(entry.first, reinterpret_cast<sockaddr*>(&ss), &length) == 0 && SameEndpoint(ss, peerIp, peerPort)) {
      return entry.first;
    }
  }
  return -1;
}

// The socket with exactly this 4-tuple: a tracked one, else any of the process's.
int FindExactSocket(AddonState* state, const std::string& localIp, int localPort, const std::string& peerIp,
                    int peerPort) {
  int fd = FindTrackedSocket(state, localIp, localPort, peerIp, peerPort);
  return fd >= 0 ? fd : FindUntrackedSocket(localIp, localPort, peerIp, peerPort);
}

// Whether ip is 0.0.0.0, :: or ::ffff:0.0.0.0.
bool IsUnspecified(const std::string& ip) {
  in_addr v4{};
  if (inet_pton(AF_INET, ip.c_str(), &v4) == 1) return v4.s_addr == 0;
  in6_addr v6{};
  if (inet_pton(AF_INET6, ip.c_str(), &v6) != 1) return false;
  return IN6_IS_ADDR_UNSPECIFIED(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr32[3] == 0);
}

// The loopback address in the spelling family of ip: 127.0.0.1, ::ffff:127.0.0.1 or ::1.
std::string LoopbackLike(const std::string& ip) {
  if (ip.find(':') == std::string::npos) return "127.0.0.1";
  in6_addr v6{};
  return inet_pton(AF_INET6, ip.c_str(), &v6) == 1 && IN6_IS_ADDR_V4MAPPED(&v6) ? "::ffff:127.0.0.1" : "::1";
}

// findSocket(localIp, localPort, peerIp, peerPort) -> the fd with exactly
// that 4-tuple, or -1. PREREQFUNCTION knows the connection only by its
// addresses; IpPolicy needs the socket to read the real peer. Only an exact
// match will do: Linux gives the same local port to connections towards
// different peers, so a near match may be another connection.
Napi::Value FindSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string localIp = info[0].As<Napi::String>().Utf8Value();
  int localPort = info[1].As<Napi::Number>().Int32Value();
  std::string peerIp = info[2].As<Napi::String>().Utf8Value();
  int peerPort = info[3].As<Napi::Number>().Int32Value();
  AddonState* state = StateOf(env);
  if (!IsUnspecified(peerIp)) return Napi::Number::New(env, FindExactSocket(state, localIp, localPort, peerIp, peerPort));
  // libcurl reports the address it connected to, and no socket has 0.0.0.0
  // or :: as its peer: Linux connects 0.0.0.0 to the socket's own source
  // address (127.0.0.1 when unbound) and :: to ::1.
  int fd = FindExactSocket(state, localIp, localPort, localIp, peerPort);
  if (fd < 0) fd = FindExactSocket(state, localIp, localPort, LoopbackLike(peerIp), peerPort);
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("createSocket", Napi::Function::New<CreateSocket>(env, "createSocket"));
  exports.Set("closeSocket", Napi::Function::New<CloseSocket>(env, "closeSocket"));
  exports.Set("setSocketOption", Napi::Function::New<SetSocketOption>(env, "setSocketOption"));
  exports.Set("getSocketOption", Napi::Function::New<GetSocketOption>(env, "getSocketOption"));
  exports.Set("dupSocket", Napi::Function::New<DupSocket>(env, "dupSocket"));
  exports.Set("pendingBytes", Napi::Function::New<PendingBytes>(env, "pendingBytes"));
  exports.Set("peerAddress", Napi::Function::New<PeerAddress>(env, "peerAddress"));
  exports.Set("findSocket", Napi::Function::New<FindSocket>(env, "findSocket"));
}

}  // namespace cs
