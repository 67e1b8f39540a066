// Per-environment (per JS thread) state. Nothing here is static: each worker
// thread that loads the addon gets its own AddonState through instance data.
#pragma once

#include <curl/curl.h>
#include <napi.h>
#include <uv.h>

#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "body_pool.h"
#include "handle_pool.h"
#include "wrapper_ids.h"

namespace cs {

class Easy;
class Multi;
class Poller;
struct CloseHook;

// An open socket's claim on the close hook it was made with. The hook's JS
// values are held strongly only while a claim exists: a CLOSESOCKETFUNCTION
// that refers to its own Easy then keeps it alive while a connection may still
// call it, not for ever.
class CloseHookClaim {
 public:
  CloseHookClaim() = default;
  explicit CloseHookClaim(std::shared_ptr<CloseHook> hook);
  CloseHookClaim(CloseHookClaim&& other) noexcept = default;
  CloseHookClaim& operator=(CloseHookClaim&& other) noexcept;
  CloseHookClaim(const CloseHookClaim&) = delete;
  CloseHookClaim& operator=(const CloseHookClaim&) = delete;
  ~CloseHookClaim() { Release(); }

  CloseHook* get() const { return hook_.get(); }
  explicit operator bool() const { return hook_ != nullptr; }

 private:
  void Release();
  std::shared_ptr<CloseHook> hook_;
};

// Every socket a transfer opened through the binding's opensocket, until
// libcurl hands it to the close callback. `hook` is the user's
// CLOSESOCKETFUNCTION that was current when the socket was opened (libcurl
// keeps that one with the connection); `handedBy` marks a socket given with
// Easy#useConnectedSocket, which the binding itself closes.
struct OpenSocket {
  CloseHookClaim hook;
  Easy* handedBy = nullptr;
  bool handed = false;
  // The socket's inode, recorded where AddonState::verifySocketInodes: libcurl
  // 7.88 sometimes closes a socket itself without calling the close callback,
  // so an entry can go stale while its fd number is reused by someone else.
  unsigned long inode = 0;
  // The local port, read once by findSocket (IpPolicy's reuse check), so a
  // lookup among many pooled connections costs no syscall per connection.
  int localPort = -1;
};


class CallerMemory;
struct AddonState {
  // Set once by initialize(): the TS function that settles a transfer's
  // promise, and the scratch array it reads numeric results from.
  Napi::FunctionReference onTransferDone;
  Napi::FunctionReference emitWarning;
  // lib/open-socket-call.ts: calls an OPENSOCKETFUNCTION with the address as
  // plain values, and returns `openSocketRewrite` when the address changed.
  Napi::FunctionReference callOpenSocket;
  Napi::ObjectReference openSocketRewrite;
  // lib/slot-calls.ts: callSlotN(slots, index, ...N arguments) calls
  // slots[index] with the arguments and slots[index + 1] (its data);
  // callSocketSlot passes the data where SOCKETFUNCTION takes it.
  Napi::FunctionReference callSlot1;
  Napi::FunctionReference callSlot2;
  Napi::FunctionReference callSlot4;
  Napi::FunctionReference callSocketSlot;
  // Scratch memory TS reads a finished transfer's numbers and small body
  // from (lib/transfer.ts). Owned here and lent to JS as external buffers
  // without a finalizer, so nothing JS does to them (detaching, say) can free
  // memory this side writes to. Made once by initialize().
  std::vector<double> infoScratch;
  std::vector<char> bodyScratch;

  // The resource object for every callback scope the binding opens (Node
  // ignores it beyond checking it is an object), made once by initialize().
  Napi::ObjectReference scopeResource;
  // > 0 while a uv event entry's callback scope is open (Multi, Poller):
  // scopes opened inside it never drain microtasks themselves.
  int entryScopeDepth = 0;
  // The async context of the innermost open entry (its Multi's or Poller's).
  napi_async_context entryContext = nullptr;

  uv_loop_t* loop = nullptr;
  napi_env env = nullptr;
  // Sockets a Multi has registered with uv (uv_poll_init), for tests.
  double socketsRegistered = 0;
  bool tearingDown = false;
  int noJsDepth = 0;      // > 0 while JS must not run (finalizers)
  int libcurlDepth = 0;   // > 0 while a libcurl call is on the stack
  bool settling = false;

  std::unordered_set<Multi*> multis;
  std::unordered_set<Easy*> easies;
  // Every NativeEasy, NativeMulti and NativePoller wrapper alive, by the id JS names it with.
  WrapperIds<Easy> easyIds;
  WrapperIds<Multi> multiIds;
  WrapperIds<Poller> pollerIds;
  std::unordered_set<Poller*> pollers;
  std::vector<Easy*> deferredEasyCloses;
  // The `into` memory of every transfer in flight (CallerMemory::Claim).
  std::vector<CallerMemory*> claimedMemory;
  std::vector<Multi*> settleScratch;  // reused by Settle: no allocation per event
  std::unordered_map<curl_socket_t, OpenSocket> openSockets;
  HandlePool handlePool;  // libcurl handles of closed Easy objects
  std::shared_ptr<BodyPool> bodyPool;  // memory for large bodies; made with the state
  // Whether an openSockets entry must be checked against the fd's inode
  // (libcurl before 8.0, which can close a socket without the close
  // callback). libcurl 8.x hands every socket it opened through the
  // opensocket callback to the close callback, so there an entry is current
  // and tracking a socket costs no fstat.
  bool verifySocketInodes = true;
  // The receive buffer size every new or reset handle starts with (0: keep
  // libcurl's 16 KiB). From libcurl 8.7 on, one such buffer serves all the
  // transfers of a multi handle, so a larger one costs next to nothing, and
  // a large body takes four times fewer recv calls (and window-update ACKs).
  long defaultBufferSize = 0;

  // While a user CLOSESOCKETFUNCTION runs: the fd it was given, and whether
  // it closed it with closeSocket().
  curl_socket_t closingFd = CURL_SOCKET_BAD;
  bool closingFdClosed = false;

  napi_async_cleanup_hook_handle cleanupHook = nullptr;
  int pendingUvCloses = 0;

  bool CanCallJs() const { return !tearingDown && noJsDepth == 0; }
  bool InLibcurl() const { return libcurlDepth > 0; }

  // Runs what was deferred while libcurl was on the stack (closes, aborts),
  // and delivers finished transfers to JS. Call at the end of every entry.
  void Settle(Napi::Env env);

  // uv handles are freed in their close callbacks; teardown waits for them.
  void UvCloseStarted() { ++pendingUvCloses; }
  void UvCloseFinished();

  void TearDown();
};

using StatePtr = std::shared_ptr<AddonState>;
// The inode of an open fd, or 0.
unsigned long FdInode(int fd);
// Records a socket libcurl now owns.
void TrackSocket(AddonState* state, curl_socket_t fd, OpenSocket entry);
// Whether `fd` is (still) a socket libcurl owns.
bool OwnedByLibcurl(AddonState* state, curl_socket_t fd);
// 0 when `fd` is an open socket other than stdio, which the binding may take
// on and close; else EBADF (negative or not open) or ENOTSOCK.
int NotOwnSocketError(int fd);
StatePtr GetState(Napi::Env env);
// The state without a reference of its own: for calls that only read it.
AddonState* StateOf(Napi::Env env);

// Raises one of the state's depth counters for the length of a C++ scope.
template <int AddonState::*Counter>
class ScopedDepth {
 public:
  explicit ScopedDepth(AddonState* state) : state_(state) { ++(state_->*Counter); }
  ~ScopedDepth() { --(state_->*Counter); }
  ScopedDepth(const ScopedDepth&) = delete;
  ScopedDepth& operator=(const ScopedDepth&) = delete;

 private:
  AddonState* state_;
};

// One entry into libcurl, for the re-entrancy guard.
using LibcurlCall = ScopedDepth<&AddonState::libcurlDepth>;
// A stretch where JS must not run (GC finalizers, teardown).
using NoJsScope = ScopedDepth<&AddonState::noJsDepth>;
// Marks a uv event entry whose callback scope is open in `context` (see
// AddonState::entryScopeDepth), for CallInEntry.
class EntryScopeCount {
 public:
  EntryScopeCount(AddonState* state, napi_async_context context)
      : state_(state), outerContext_(state->entryContext) {
    ++state_->entryScopeDepth;
    state_->entryContext = context;
  }
  ~EntryScopeCount() {
    --state_->entryScopeDepth;
    state_->entryContext = outerContext_;
  }
  EntryScopeCount(const EntryScopeCount&) = delete;
  EntryScopeCount& operator=(const EntryScopeCount&) = delete;

 private:
  AddonState* state_;
  napi_async_context outerContext_;
};

// Calls a JS function. Inside a uv event entry it runs in `context`, or in
// the entry's own context when that is null; outside one, in the caller's.
// napi_make_callback, not a callback scope around napi_call_function: from
// Node 24 on, AsyncLocalStorage lives in V8's continuation data, which
// napi_make_callback restores and napi_open_callback_scope does not. It
// needs an object for `this`: the global object, as a sloppy function gets.
// Nested in the entry's scope, it never drains microtasks.
napi_status CallInEntry(Napi::Env env, AddonState* state, napi_async_context context, napi_value fn, size_t argc,
                        const napi_value* argv, napi_value* result);

// Closes a heap-allocated uv handle wrapper and deletes it in the close
// callback, where libuv is done with its memory. T has `handle` and a StatePtr `state`.
template <typename T>
void CloseAndDelete(T* wrapper, AddonState* state) {
  state->UvCloseStarted();
  uv_handle_t* handle = reinterpret_cast<uv_handle_t*>(&wrapper->handle);
  handle->data = wrapper;
  uv_close(handle, [](uv_handle_t* h) {
    std::unique_ptr<T> owned(static_cast<T*>(h->data));
    StatePtr s = owned->state;  // keeps the state alive past the delete
    owned.reset();
    s->UvCloseFinished();
  });
}

// Opens a Node callback scope (async context; microtasks run when the
// outermost one closes) with the state's resource object: node-addon-api's
// CallbackScope(env, context) makes a new object on every entry. Wrap the
// result in a Napi::CallbackScope, which closes it.
inline napi_callback_scope OpenCallbackScope(Napi::Env env, AddonState* state, napi_async_context context) {
  napi_callback_scope scope = nullptr;
  napi_open_callback_scope(env, state->scopeResource.Value(), context, &scope);
  return scope;
}

// A system error shaped like Node's: message "syscall CODE", .code, .errno, .syscall.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall);

// Stores `value` as property `key` of `wrapper` and returns a weak reference
// to it, for fast access. The value then lives as long as the wrapper does,
// and a callback in it that refers back to its own handle is a cycle the GC
// can collect; a strong reference would be a root keeping both for ever.
Napi::ObjectReference HeldByWrapper(Napi::Object wrapper, const char* key, Napi::Object value);

// The pending JS exception, cleared; empty when none is pending (a call that
// failed without throwing: the environment is going away).
Napi::Value TakeException(Napi::Env env);

}  // namespace cs
