// The libcurl callbacks of an Easy. Each one runs on the JS thread inside an
// entry into libcurl that already holds a HandleScope (and a callback scope
// for uv events). A JS exception is caught here, recorded as the transfer's
// fault, and turned into the callback's failure value: it never unwinds
// through libcurl frames.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "easy.h"
#include "handshake_ack.h"
#include "multi.h"

namespace cs {

namespace {

std::string Describe(Napi::Value v) {
  if (v.IsEmpty()) return "nothing";
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      double d = v.As<Napi::Number>().DoubleValue();
      if (std::isnan(d)) return "NaN";
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", d);
      return buf;
    }
    case napi_string: return "a string";
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    default: return "an object";
  }
}

// The integer a callback returned, if it is one within [lo, hi].
bool IntegerIn(Napi::Value v, double lo, double hi, double* out) {
  if (v.IsEmpty() || !v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::trunc(d) || d < lo || d > hi) return false;
  *out = d;
  return true;
}

Napi::Value BadReturn(Napi::Env env, const char* callback, Napi::Value got, const char* expected) {
  std::string message = std::string(callback) + " returned " + Describe(got) + "; expected " + expected;
  return Napi::TypeError::New(env, message).Value();
}

// The address (text form; the path for AF_UNIX) and port of a struct
// curl_sockaddr, as OPENSOCKETFUNCTION is given them.
struct SockaddrText {
  char address[sizeof(sockaddr_un::sun_path) + 1] = "";
  size_t addressLength = 0;
  uint32_t port = 0;
};

// Dotted-quad text of an IPv4 address. glibc's inet_ntop formats it through
// a printf-style call, about 1,700 instructions; this runs once per connection.
void FormatIPv4(const in_addr& address, char* out) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&address.s_addr);
  for (int i = 0; i < 4; ++i) {
    unsigned v = bytes[i];
    if (v >= 100) *out++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *out++ = static_cast<char>('0' + v / 10 % 10);
    *out++ = static_cast<char>('0' + v % 10);
    if (i < 3) *out++ = '.';
  }
  *out = '\0';
}

SockaddrText DescribeSockaddr(const curl_sockaddr* a) {
  SockaddrText t;
  if (a->family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&a->addr);
    FormatIPv4(in->sin_addr, t.address);
    t.port = ntohs(in->sin_port);
  } else if (a->family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a->addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, t.address, sizeof t.address);
    t.port = ntohs(in6->sin6_port);
  } else if (a->family == AF_UNIX) {
    auto* un = reinterpret_cast<const sockaddr_un*>(&a->addr);
    size_t max = a->addrlen > offsetof(sockaddr_un, sun_path) ? a->addrlen - offsetof(sockaddr_un, sun_path) : 0;
    if (max > sizeof un->sun_path) max = sizeof un->sun_path;
    size_t length = 0;
    if (max > 0 && un->sun_path[0] == '\0') {
      length = max;  // abstract: the name is every byte of addrlen, leading NUL included
      while (length > 1 && un->sun_path[length - 1] == '\0') --length;
    } else {
      length = strnlen(un->sun_path, max);
    }
    memcpy(t.address, un->sun_path, length);
    t.addressLength = length;
    return t;
  }
  t.addressLength = strlen(t.address);
  return t;
}

// Writes back an address/port the callback assigned. Returns an error message
// or an empty string.
std::string EncodeSockaddr(Napi::Value addressValue, Napi::Value portValue, curl_sockaddr* a, const SockaddrText& old) {
  if (!addressValue.IsString()) return "address must be a string";
  std::string address = addressValue.As<Napi::String>().Utf8Value();
  double port = old.port;
  if (a->family != AF_UNIX && !IntegerIn(portValue, 0, 65535, &port)) return "port must be an integer 0-65535";
  if (address == std::string(old.address, old.addressLength) && port == old.port) return "";
  if (a->family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a->addr);
    if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) != 1) return "address '" + address + "' is not an IPv4 address";
    in->sin_port = htons(static_cast<uint16_t>(port));
  } else if (a->family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a->addr);
    if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) != 1) return "address '" + address + "' is not an IPv6 address";
    in6->sin6_port = htons(static_cast<uint16_t>(port));
  } else if (a->family == AF_UNIX) {
    auto* un = reinterpret_cast<sockaddr_un*>(&a->addr);
    if (address.empty() || address.size() >= sizeof un->sun_path) return "a Unix socket path must be 1-107 bytes";
    memset(un->sun_path, 0, sizeof un->sun_path);
    memcpy(un->sun_path, address.data(), address.size());
    a->addrlen = static_cast<unsigned int>(offsetof(sockaddr_un, sun_path) + address.size() + (address[0] == '\0' ? 0 : 1));
  } else {
    return "cannot rewrite an address of this family";
  }
  return "";
}

}  // namespace

Napi::Value Easy::CallJs(napi_value fn, size_t argc, const napi_value* argv) {
  napi_env env = Env();
  // In the transfer's own async context (inside a uv event entry; within
  // perform() the caller's context is the transfer's anyway).
  napi_value result = nullptr;
  if (CallInEntry(Env(), state_.get(), transferContext_, fn, argc, argv, &result) == napi_ok) return Napi::Value(env, result);
  Napi::Value error = TakeException(env);
  if (!error.IsEmpty()) RecordFault(error);
  return Napi::Value();
}

template <size_t N>
Napi::Value Easy::CallSlot(int kind, const napi_value (&args)[N]) {
  static_assert(N == 1 || N == 2 || N == 4, "lib/slot-calls.ts calls with 1, 2 or 4 arguments");
  AddonState* s = state();
  const Napi::FunctionReference& caller = N == 1 ? s->callSlot1 : N == 2 ? s->callSlot2 : s->callSlot4;
  Napi::Object slots = Slots();
  if (slots.IsEmpty()) return Napi::Value();  // collected with the user's Easy: nothing to call
  napi_value argv[N + 2] = {slots, Napi::Number::New(Env(), 2 * kind)};
  std::copy(args, args + N, argv + 2);
  return CallJs(caller.Value(), N + 2, argv);
}

// libcurl's callbacks below are function-try-blocks: libcurl is C, and a C++
// exception (std::bad_alloc from the binding's own containers: the body, the
// header block, its maps) unwinding through its frames would end the process.
// Each returns its failure value instead; the body and header ones mark the
// transfer, which then fails with CURLE_OUT_OF_MEMORY.
curl_socket_t Easy::OnOpenSocket(void* clientp, curlsocktype purpose, curl_sockaddr* address) try {
  Easy* self = static_cast<Easy*>(clientp);
  AddonState* s = self->state();
  self->tcpConnectFd_ = CURL_SOCKET_BAD;
  if (self->handedFd_ != CURL_SOCKET_BAD && purpose == CURLSOCKTYPE_IPCXN) {
    curl_socket_t fd = self->handedFd_;
    // Tracked first: if that fails (out of memory), the Easy still holds the fd and closes it.
    TrackSocket(s, fd, OpenSocket{CloseHookClaim(), self, true});
    self->handedFd_ = CURL_SOCKET_BAD;
    self->handedInUse_ = fd;
    return fd;
  }
  curl_socket_t fd = CURL_SOCKET_BAD;
  if ((self->callbacksSet_ & (1u << kOpenSocket)) && s->CanCallJs()) {
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    SockaddrText text = DescribeSockaddr(address);
    Napi::Value scopeId = env.Undefined();
    if (address->family == AF_INET6) {
      scopeId = Napi::Number::New(env, reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_scope_id);
    }
    Napi::Object slots = self->Slots();
    if (slots.IsEmpty()) return CURL_SOCKET_BAD;  // collected with the user's Easy
    napi_value args[] = {slots, Napi::Number::New(env, purpose), Napi::Number::New(env, address->family),
                         Napi::Number::New(env, address->socktype & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)),
                         Napi::Number::New(env, address->protocol), Napi::String::New(env, text.address, text.addressLength),
                         Napi::Number::New(env, text.port), scopeId};
    Napi::Value result = self->CallJs(s->callOpenSocket.Value(), std::size(args), args);
    if (result.IsEmpty()) return CURL_SOCKET_BAD;
    // The callback assigned a new address or port: [result, address, port].
    Napi::Value newAddress, newPort;
    if (!result.IsNumber() && result.StrictEquals(s->openSocketRewrite.Value())) {
      Napi::Object rewrite = result.As<Napi::Object>();
      result = rewrite.Get(0u);
      newAddress = rewrite.Get(1u);
      newPort = rewrite.Get(2u);
      for (uint32_t i = 0; i < 3; ++i) rewrite.Set(i, env.Undefined());  // keep nothing alive
    }
    double value = 0;
    if (!IntegerIn(result, -1, INT_MAX, &value)) {
      self->RecordFault(BadReturn(env, "OPENSOCKETFUNCTION", result, "a socket fd (integer >= 0) or CURL_SOCKET_BAD (-1)"));
      return CURL_SOCKET_BAD;
    }
    fd = static_cast<curl_socket_t>(value);
    if (fd == CURL_SOCKET_BAD) return fd;
    std::string problem = newAddress.IsEmpty() ? std::string() : EncodeSockaddr(newAddress, newPort, address, text);
    if (!problem.empty()) {
      self->RecordFault(Napi::TypeError::New(env, "OPENSOCKETFUNCTION assigned an invalid address: " + problem).Value());
      close(fd);  // it was handed to us, so it is ours to close
      return CURL_SOCKET_BAD;
    }
  } else {
    // libcurl's own default, plus close-on-exec (libcurl < 8.17 does not set
    // it). Non-blocking from the start, as libcurl makes its own sockets when
    // no OPENSOCKETFUNCTION is set: it then skips an fcntl per connection.
    fd = socket(address->family, address->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, address->protocol);
  }
  if (fd == CURL_SOCKET_BAD) return fd;
  // For OnSockopt (handshake_ack.h): which socket is a TCP one libcurl will connect.
  self->tcpConnectFd_ = purpose == CURLSOCKTYPE_IPCXN && IsTcpAddress(address) ? fd : CURL_SOCKET_BAD;
  try {
    TrackSocket(s, fd, OpenSocket{CloseHookClaim(self->closeHook_), nullptr, false});
  } catch (...) {
    close(fd);  // libcurl never sees it, so nobody else would close it
    self->tcpConnectFd_ = CURL_SOCKET_BAD;
    return CURL_SOCKET_BAD;
  }
  return fd;
} catch (...) {
  return CURL_SOCKET_BAD;
}

int Easy::OnSockopt(void* clientp, curl_socket_t fd, curlsocktype purpose) try {
  Easy* self = static_cast<Easy*>(clientp);
  if (fd == self->handedInUse_) return CURL_SOCKOPT_ALREADY_CONNECTED;
  // Before the user's SOCKOPTFUNCTION, which may set the option back to 0.
  // tcpConnectFd_ is only ever a connection's (CURLSOCKTYPE_IPCXN) TCP socket.
  if (fd == self->tcpConnectFd_ && !self->connectOnly_ && ClientSpeaksFirst(self->handle_)) {
    DeferHandshakeAck(fd);
  }
  self->tcpConnectFd_ = CURL_SOCKET_BAD;
  if (!(self->callbacksSet_ & (1u << kSockopt)) || !self->state()->CanCallJs()) return CURL_SOCKOPT_OK;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  Napi::Value result = self->CallSlot(kSockopt, {Napi::Number::New(env, fd), Napi::Number::New(env, purpose)});
  if (result.IsEmpty()) return CURL_SOCKOPT_ERROR;
  double value = 0;
  if (!IntegerIn(result, 0, 2, &value)) {
    self->RecordFault(BadReturn(env, "SOCKOPTFUNCTION", result,
                                "CURL_SOCKOPT_OK (0), CURL_SOCKOPT_ERROR (1) or CURL_SOCKOPT_ALREADY_CONNECTED (2)"));
    return CURL_SOCKOPT_ERROR;
  }
  return static_cast<int>(value);
} catch (...) {
  return CURL_SOCKOPT_ERROR;
}

// clientp is the AddonState: the connection may outlive the Easy that made it.
int Easy::OnCloseSocket(void* clientp, curl_socket_t fd) try {
  AddonState* s = static_cast<AddonState*>(clientp);
  for (Multi* multi : s->multis) multi->SocketClosing(fd);  // while fd is still this socket
  CloseHookClaim hook;  // held until the callback has returned
  bool handed = false;
  auto it = s->openSockets.find(fd);
  if (it != s->openSockets.end()) {
    hook = std::move(it->second.hook);
    handed = it->second.handed;
    if (it->second.handedBy != nullptr) it->second.handedBy->HandedSocketClosed();
    s->openSockets.erase(it);
  }
  if (handed || !hook || !s->CanCallJs()) {
    close(fd);
    return 0;
  }
  Napi::Env env(s->env);
  Napi::HandleScope scope(env);
  curl_socket_t outerFd = s->closingFd;
  bool outerClosed = s->closingFdClosed;
  s->closingFd = fd;
  s->closingFdClosed = false;
  // The hook's [fn, data] pair (held strongly while this socket claims it):
  // callSlot1(pair, 0, fd) calls fn(fd, data).
  Napi::Object pair = hook.get()->slots.Value();
  napi_value args[] = {pair, Napi::Number::New(env, 0), Napi::Number::New(env, fd)};
  napi_value result;
  napi_status status = pair.IsEmpty() ? napi_invalid_arg : CallInEntry(env, s, nullptr, s->callSlot1.Value(), 3, args, &result);
  bool closed = s->closingFdClosed;
  s->closingFd = outerFd;
  s->closingFdClosed = outerClosed;
  if (status != napi_ok) {
    if (!closed) close(fd);  // it threw before closing: the binding closes it
    Napi::Value error = TakeException(env);
    if (error.IsEmpty()) return 0;
    // libcurl ignores this callback's result, so the transfer may well
    // succeed: always surface the error as a warning, and also make it the
    // cause if the transfer fails.
    Easy* owner = hook.get()->owner;
    if (owner != nullptr && owner->multi() != nullptr) owner->RecordFault(error);
    if (!s->emitWarning.IsEmpty()) {
      napi_value warning = error;
      napi_value ignored;
      if (napi_call_function(env, env.Undefined(), s->emitWarning.Value(), 1, &warning, &ignored) != napi_ok) {
        TakeException(env);  // a throwing warning handler has nowhere to go
      }
    }
  }
  return 0;
} catch (...) {
  return 0;
}

int Easy::OnPrereq(void* clientp, char* primaryIp, char* localIp, int primaryPort, int localPort) try {
  Easy* self = static_cast<Easy*>(clientp);
  if (!(self->callbacksSet_ & (1u << kPrereq)) || !self->state()->CanCallJs()) return CURL_PREREQFUNC_OK;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  Napi::Value result = self->CallSlot(kPrereq, {Napi::String::New(env, primaryIp ? primaryIp : ""),
                                                Napi::String::New(env, localIp ? localIp : ""),
                                                Napi::Number::New(env, primaryPort), Napi::Number::New(env, localPort)});
  if (result.IsEmpty()) return CURL_PREREQFUNC_ABORT;
  double value = 0;
  if (!IntegerIn(result, 0, 1, &value)) {
    self->RecordFault(BadReturn(env, "PREREQFUNCTION", result, "CURL_PREREQFUNC_OK (0) or CURL_PREREQFUNC_ABORT (1)"));
    return CURL_PREREQFUNC_ABORT;
  }
  return static_cast<int>(value);
} catch (...) {
  return CURL_PREREQFUNC_ABORT;
}

bool Easy::AppendBody(const char* data, size_t length) {
  if (maxBodyBytes_ >= 0 && static_cast<double>(body_.Size() + length) > maxBodyBytes_) {
    bodyTooLarge_ = true;
    return false;
  }
  char* memory = nullptr;
  size_t capacity = 0;
  if (into_.Active() && (!body_.Prepared() || body_.InCallerMemory())) {
    // Looked up again for every write: JS may have detached or shrunk it.
    if (!into_.CurrentBytes(Env(), &memory, &capacity)) return false;
    if (!body_.Retarget(memory, capacity)) {
      Napi::HandleScope scope(Env());
      RecordFault(Napi::Error::New(Env(), "into was detached or shrunk while the body was being written into it").Value());
      return false;
    }
  }
  if (!body_.Prepared()) {
    // One allocation for a body of known size instead of doubling copies.
    curl_off_t expected = -1;
    curl_easy_getinfo(handle_, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
    bool fits = expected > 0 && (maxBodyBytes_ < 0 || static_cast<double>(expected) <= maxBodyBytes_);
    double announced = fits ? static_cast<double>(expected) : -1;
    if (into_.Active()) body_.PrepareInto(memory, capacity, announced, state_->bodyPool.get());
    else body_.Prepare(announced, state_->bodyPool.get());
  }
  body_.Append(data, length);
  return true;
}

// WRITEFUNCTION and HEADERFUNCTION: a JS callback returns nothing or
// chunk.length to go on; any other number aborts.
size_t Easy::CallDataCallback(int kind, char* data, size_t length, const char* name) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Value chunk = Napi::Buffer<char>::Copy(env, data, length);
  Napi::Value result = CallSlot(kind, {chunk});
  if (result.IsEmpty()) return 0;
  if (result.IsUndefined()) return length;
  if (result.IsNumber()) {
    double d = result.As<Napi::Number>().DoubleValue();
    return d == static_cast<double>(length) ? length : 0;
  }
  RecordFault(BadReturn(env, name, result, "chunk.length, another number to abort, or nothing"));
  return 0;
}

size_t Easy::OnWrite(char* data, size_t size, size_t count, void* clientp) try {
  Easy* self = static_cast<Easy*>(clientp);
  size_t length = size * count;
  if (self->failTransfer_) return 0;
  if (!(self->callbacksSet_ & (1u << kWrite))) return self->AppendBody(data, length) ? length : 0;
  if (!self->state()->CanCallJs()) return 0;
  // maxBodyBytes holds for a streamed body too: the callback never sees more.
  if (self->maxBodyBytes_ >= 0 && self->streamedBytes_ + static_cast<double>(length) > self->maxBodyBytes_) {
    self->bodyTooLarge_ = true;
    return 0;
  }
  self->streamedBytes_ += static_cast<double>(length);
  return self->CallDataCallback(kWrite, data, length, "WRITEFUNCTION");
} catch (...) {
  static_cast<Easy*>(clientp)->outOfMemory_ = true;
  return 0;
}

size_t Easy::OnHeader(char* data, size_t size, size_t count, void* clientp) try {
  Easy* self = static_cast<Easy*>(clientp);
  size_t length = size * count;
  if (self->failTransfer_) return 0;
  // A status line starts a new response (redirect, 100 Continue, proxy
  // CONNECT): Transfer.headers keeps only the final response's fields.
  if (length >= 5 && memcmp(data, "HTTP/", 5) == 0) self->headers_.clear();
  self->headers_.append(data, length);
  if (!(self->callbacksSet_ & (1u << kHeader))) return length;
  if (!self->state()->CanCallJs()) return 0;
  return self->CallDataCallback(kHeader, data, length, "HEADERFUNCTION");
} catch (...) {
  static_cast<Easy*>(clientp)->outOfMemory_ = true;
  return 0;
}

int Easy::OnXferinfo(void* clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) try {
  Easy* self = static_cast<Easy*>(clientp);
  if (!(self->callbacksSet_ & (1u << kXferinfo)) || !self->state()->CanCallJs()) return 0;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  Napi::Value result = self->CallSlot(kXferinfo, {Napi::Number::New(env, static_cast<double>(dltotal)),
                                                  Napi::Number::New(env, static_cast<double>(dlnow)),
                                                  Napi::Number::New(env, static_cast<double>(ultotal)),
                                                  Napi::Number::New(env, static_cast<double>(ulnow))});
  if (result.IsEmpty()) return 1;
  if (result.IsUndefined()) return 0;
  if (result.IsNumber()) return result.As<Napi::Number>().DoubleValue() == 0 ? 0 : 1;
  self->RecordFault(BadReturn(env, "XFERINFOFUNCTION", result, "0 to go on, another number to abort, or nothing"));
  return 1;
} catch (...) {
  return 1;
}

int Easy::OnDebug(CURL*, curl_infotype type, char* data, size_t size, void* clientp) try {
  Easy* self = static_cast<Easy*>(clientp);
  if (!(self->callbacksSet_ & (1u << kDebug)) || !self->state()->CanCallJs()) return 0;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  Napi::Value result = self->CallSlot(kDebug, {Napi::Number::New(env, type), Napi::Buffer<char>::Copy(env, data, size)});
  // libcurl ignores this callback's return: fail the transfer at the next
  // callback that can, or when it ends.
  if (result.IsEmpty()) self->failTransfer_ = true;
  return 0;
} catch (...) {
  static_cast<Easy*>(clientp)->failTransfer_ = true;
  return 0;
}

}  // namespace cs
