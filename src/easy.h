// Easy: one libcurl easy handle and the native side of its callbacks.
#pragma once

#include <curl/curl.h>
#include <napi.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "body.h"
#include "caller_memory.h"
#include "state.h"

namespace cs {

// The callbacks the binding lets JS set. The order is shared with
// lib/native.ts (CallbackKind).
enum CallbackKind : int {
  kOpenSocket = 0,
  kSockopt,
  kCloseSocket,
  kPrereq,
  kWrite,
  kHeader,
  kXferinfo,
  kDebug,
  kCallbackKinds
};

// Kinds whose libcurl option is always the binding's own and whose JS
// function is looked for only during a transfer: TS sends their bits with
// each transfer (Multi's add) instead of a setCallback call per option.
// Mirrors TRANSFER_TIME_CALLBACKS in lib/native.ts.
constexpr unsigned kTransferTimeCallbacks = (1u << kOpenSocket) | (1u << kSockopt) | (1u << kWrite) | (1u << kHeader);

// Why a transfer ended without libcurl finishing it; shared with lib/native.ts.
enum EndReason : int {
  kEndedByLibcurl = 0,
  kEndedByAbort = 1,        // AbortSignal
  kEndedByEasyClose = 2,
  kEndedByMultiClose = 3,
  kEndedByMultiAbort = 4,   // a SOCKETFUNCTION/TIMERFUNCTION fault
};

// The user's CLOSESOCKETFUNCTION with its data, shared by every connection
// that was opened while it was set: libcurl copies the callback into the
// connection, so it must outlive the Easy. `slots` is weak while no socket
// claims the hook (the user's Easy holds the array then), strong otherwise.
struct CloseHook {
  StatePtr state;
  Napi::ObjectReference slots;  // [fn, data]
  Easy* owner;                  // cleared when the Easy goes away
  int claims = 0;               // open sockets made while it was set
};

class Easy : public Napi::ObjectWrap<Easy> {
 public:
  static Napi::Function Init(Napi::Env env);
  // The JS calls on an Easy (setopt, close, ...): functions whose first
  // argument is the wrapper's `id` (see wrapper_ids.h), not methods.
  static Napi::Object Calls(Napi::Env env);
  // The wrapper JS names by `id`, or null when there is none (closed TS side).
  static Easy* FromId(Napi::Env env, Napi::Value id);
  static constexpr const char* kGoneMessage = "the Easy is closed";
  explicit Easy(const Napi::CallbackInfo& info);
  ~Easy() override;

  CURL* handle() const { return handle_; }
  AddonState* state() const { return state_.get(); }
  Multi* multi() const { return multi_; }

  // Multi's view of a transfer's life.
  void Started(Multi* multi);
  void Finished();
  // The async context of the perform() that started the transfer, made only
  // when the handle has JS callbacks: they run in it (AsyncLocalStorage sees
  // the caller's store), not in the context the Multi was created in.
  void EnterTransferContext();
  void LeaveTransferContext();
  bool cancelRequested() const { return cancelReason_ != kEndedByLibcurl; }
  int cancelReason() const { return cancelReason_; }
  void RequestCancel(int reason);
  bool closeRequested() const { return closeRequested_; }
  // Hands the finished transfer to JS (onTransferDone).
  void Deliver(Napi::Env env, CURLcode code, int reason, Napi::Value multiCause);
  // Frees the libcurl handle; no JS.
  void Destroy();
  // The user's Easy object (for SOCKETFUNCTION's `easy`), or undefined.
  Napi::Value Owner(Napi::Env env);
  void RecordFault(Napi::Value error);
  // A socket given with useConnectedSocket was closed by libcurl.
  void HandedSocketClosed();

  // libcurl callbacks (easy_callbacks.cc).
  static curl_socket_t OnOpenSocket(void* clientp, curlsocktype purpose, struct curl_sockaddr* address);
  static int OnSockopt(void* clientp, curl_socket_t fd, curlsocktype purpose);
  static int OnCloseSocket(void* clientp, curl_socket_t fd);
  static int OnPrereq(void* clientp, char* primaryIp, char* localIp, int primaryPort, int localPort);
  static size_t OnWrite(char* data, size_t size, size_t count, void* clientp);
  static size_t OnHeader(char* data, size_t size, size_t count, void* clientp);
  static int OnXferinfo(void* clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
  static int OnDebug(CURL* handle, curl_infotype type, char* data, size_t size, void* clientp);

 private:
  // JS calls; their own arguments start at info[1].
  Napi::Value Setopt(const Napi::CallbackInfo& info);
  Napi::Value AttachSlots(const Napi::CallbackInfo& info);
  Napi::Value SetCallback(const Napi::CallbackInfo& info);
  Napi::Value Getinfo(const Napi::CallbackInfo& info);
  Napi::Value Reset(const Napi::CallbackInfo& info);
  Napi::Value Duphandle(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Reopen(const Napi::CallbackInfo& info);
  Napi::Value UseConnectedSocket(const Napi::CallbackInfo& info);
  Napi::Value DropConnectedSocket(const Napi::CallbackInfo& info);

  void Open(Napi::Env env);
  void InstallOwnedOptions();
  void ApplyDefaults();
  void ApplyCallbackOption(int kind, bool on);
  Napi::Object Slots();
  Napi::Value Slot(int index);
  // Calls fn in the transfer's async context; a throw becomes the transfer's
  // fault and an empty value.
  Napi::Value CallJs(napi_value fn, size_t argc, const napi_value* argv);
  // Calls the user's callback of `kind` with `args` and its data, through
  // lib/slot-calls.ts (defined in easy_callbacks.cc, its only user).
  template <size_t N>
  Napi::Value CallSlot(int kind, const napi_value (&args)[N]);
  // WRITEFUNCTION and HEADERFUNCTION: the chunk as a Buffer; returns what
  // libcurl is to be told was taken.
  size_t CallDataCallback(int kind, char* data, size_t length, const char* name);
  bool AppendBody(const char* data, size_t length);
  void CopyStateFrom(const Easy& other);
  void SetCloseHook(Napi::Object pair);
  void ApplyUserUnixPath();
  void ClearHandedSocket();
  // Ends the pooled connection of the handed socket in use, if any.
  void ReleaseHandedConnection();

  // Open() sets every field below to its initial value, or Destroy() leaves
  // it so: a closed wrapper is reopened for the next Easy. A field added here
  // must be handled in one of them.
  StatePtr state_;
  uint32_t id_ = 0;  // for the wrapper's life
  CURL* handle_ = nullptr;
  Multi* multi_ = nullptr;
  // [fn0, data0, fn1, data1, ..., fault], attached by TS once per wrapper:
  // kept by Destroy() and Open(), like id_.
  Napi::ObjectReference slots_;
  unsigned callbacksSet_ = 0;     // bit per CallbackKind with a JS function
  // Whether the libcurl handle may go to the HandlePool when this Easy goes:
  // no option that leaves state in the handle was ever set on it.
  bool poolableHandle_ = true;
  std::shared_ptr<CloseHook> closeHook_;
  std::map<int, curl_slist*> slists_;
  char errorBuffer_[CURL_ERROR_SIZE];

  // Per transfer.
  Body body_;
  CallerMemory into_;  // the caller's memory for the body (perform's `into`), if any
  std::string headers_;
  double maxBodyBytes_ = -1;
  double streamedBytes_ = 0;  // given to a JS WRITEFUNCTION so far (for maxBodyBytes)
  bool bodyTooLarge_ = false;
  bool outOfMemory_ = false;  // a body or header write could not allocate
  bool hasFault_ = false;
  bool failTransfer_ = false;  // a callback with no failure value threw (DEBUGFUNCTION)
  int cancelReason_ = kEndedByLibcurl;
  napi_async_context transferContext_ = nullptr;
  bool closeRequested_ = false;

  // useConnectedSocket: the fd waiting for the next connection, and the
  // connection-pool key that keeps that connection private to this handle.
  curl_socket_t handedFd_ = CURL_SOCKET_BAD;
  curl_socket_t handedInUse_ = CURL_SOCKET_BAD;
  std::string userUnixPath_;
  std::string privatePath_;
  bool userUnixPathSet_ = false;
  bool privatePathActive_ = false;
  bool restoreUnixPath_ = false;

  // CONNECT_ONLY: nothing may be sent after connect, so the handshake's ACK
  // is not held back (handshake_ack.h).
  bool connectOnly_ = false;
  // The TCP socket just opened for a connection, until SOCKOPTFUNCTION time.
  curl_socket_t tcpConnectFd_ = CURL_SOCKET_BAD;

  friend class Multi;
};

constexpr int kFaultSlot = 2 * kCallbackKinds;

}  // namespace cs
