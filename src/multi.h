// Multi: a libcurl multi handle driven by libuv on the JS thread ('uv'
// mode), or by the application through socketAction ('manual' mode).
#pragma once

#include <curl/curl.h>
#include <napi.h>
#include <poll.h>
#include <uv.h>

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "async_context.h"
#include "state.h"

namespace cs {

class Easy;
class Multi;

// One per socket libcurl asked us to watch; it is also libcurl's socketp
// (curl_multi_assign). In 'uv' mode it owns the uv_poll_t and is freed in
// the handle's close callback.
struct SocketRecord {
  uv_poll_t handle;
  StatePtr state;
  Multi* owner = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
  bool pollInitialized = false;
  // A pooled connection's record is kept after REMOVE (still polling if it
  // was registered, and corked), so the next transfer on it costs no
  // epoll_ctl and its request waits for the others (see Multi::OnSocket).
  // Only for sockets libcurl opened through us, which reach the close
  // callback, where the record is released before the fd is closed.
  bool cacheable = false;
  bool idle = false;
  // A socket libcurl asked to wait for before it was ever registered with uv:
  // it is tested once libcurl returns (Multi::CheckFirstWaits), and only
  // registered if it is not ready yet.
  bool firstCheck = false;
  unsigned checkRound = 0;  // the CheckFirstWaits round that polled it
  // The uv events being watched; while firstCheck is set, the ones wanted.
  int events = 0;
  // TCP_CORK is set while the pooled connection is idle, so the next request
  // on it is queued, not sent, until libcurl returns (see Multi::OnSocket).
  bool corked = false;
  bool corkUnsupported = false;  // not TCP: never tried again
  Napi::ObjectReference user;  // [value] set by assign()
};

class Multi : public Napi::ObjectWrap<Multi> {
 public:
  static Napi::Function Init(Napi::Env env);
  // The JS calls on a Multi: functions whose first argument is the wrapper's
  // `id` (see wrapper_ids.h), not methods.
  static Napi::Object Calls(Napi::Env env);
  static Multi* FromId(Napi::Env env, Napi::Value id);
  static constexpr const char* kGoneMessage = "the Multi is closed";
  explicit Multi(const Napi::CallbackInfo& info);
  ~Multi() override;

  // Called by AddonState::Settle once libcurl has returned.
  bool ApplyDeferred(Napi::Env env);
  bool DeliverCompletions(Napi::Env env);
  // Removes an in-flight transfer now (not inside libcurl); it is delivered
  // by the next Settle.
  void CancelNow(Easy* easy);
  // An Easy is being freed while attached here: detach it, no JS.
  void Detach(Easy* easy);
  // Closes everything natively, no JS (teardown, GC).
  void Shutdown();
  // An Easy on this Multi asked to be cancelled; ApplyDeferred looks at the
  // transfers only when one did.
  void NoteCancel() { cancelRequested_ = true; }
  // libcurl is about to close fd: release its idle record while the fd is
  // still the same socket.
  void SocketClosing(curl_socket_t fd);

 private:
  // A uv handle of this Multi's, freed by CloseAndDelete.
  template <typename Handle>
  struct OwnedHandle {
    Handle handle;
    StatePtr state;
    Multi* owner;
  };
  using Timer = OwnedHandle<uv_timer_t>;
  // Runs the socket events of one loop iteration together (Multi::OnCheck).
  using EventBatch = OwnedHandle<uv_check_t>;
  struct KeepAlive {
    uv_async_t handle;
    StatePtr state;
  };
  struct ReadyEvent {
    curl_socket_t fd;
    int flags;
  };
  struct Completion {
    Easy* easy;
    CURLcode code;
    int reason;
  };

  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Setopt(const Napi::CallbackInfo& info);
  Napi::Value SetCallback(const Napi::CallbackInfo& info);
  Napi::Value Assign(const Napi::CallbackInfo& info);
  Napi::Value SocketAction(const Napi::CallbackInfo& info);
  Napi::Value Running(const Napi::CallbackInfo& info);

  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* userp, void* socketp);
  static int OnTimer(CURLM* multi, long timeoutMs, void* userp);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnUvTimer(uv_timer_t* handle);
  static void OnCheck(uv_check_t* handle);

  // One entry into libcurl from the uv timer (socket events go through QueueEvent).
  void EventEntry(curl_socket_t fd, int events);
  int RunSocketAction(curl_socket_t fd, int events);
  // curl_multi_socket_action and what follows it, inside a LibcurlCall.
  CURLMcode ActOnSocket(curl_socket_t fd, int events);
  void QueueEvent(curl_socket_t fd, int flags);
  void RunReadyEvents();
  void CorkNewIdle();
  void UncorkReused();
  void CheckFirstWaits();
  SocketRecord* TakeFirstCheck(curl_socket_t fd, unsigned round);
  // Makes the record's uv_poll_t watch `events` (initializing it first).
  void Watch(SocketRecord* record, int events);
  bool InitPoll(SocketRecord* record);
  void DrainMessages();
  // Defined in multi.cc, its only user.
  template <size_t N>
  void CallUser(int kind, const Napi::FunctionReference& caller, const napi_value (&args)[N]);
  void RequestAbort(Napi::Value cause);
  void AbortAfterFailure();
  void ReleaseRecord(SocketRecord* record);
  void TransfersChanged();
  // Keeps MAXCONNECTS at 4x the most transfers ever in flight (see multi.cc).
  void GrowPoolLimit();
  void CloseNow();
  Napi::Value Slot(int index);

  StatePtr state_;
  uint32_t id_ = 0;  // for the wrapper's life
  CURLM* multi_ = nullptr;
  bool manual_ = false;
  Timer* timer_ = nullptr;
  KeepAlive* keepAlive_ = nullptr;
  EventBatch* batch_ = nullptr;
  std::vector<ReadyEvent> readyEvents_;
  std::vector<ReadyEvent> runningEvents_;  // keeps its capacity: no allocation per batch
  std::vector<curl_socket_t> reusedCorked_;  // corked idle connections taken into use
  std::vector<curl_socket_t> newIdle_;       // connections gone idle in this libcurl call
  bool keptAlive_ = false;
  size_t peakTransfers_ = 0;         // the most transfers in flight at once
  bool userSetMaxConnects_ = false;  // then GrowPoolLimit leaves MAXCONNECTS alone
  std::unique_ptr<OwnedAsyncContext> asyncContext_;
  std::unordered_set<Easy*> transfers_;
  std::unordered_map<curl_socket_t, SocketRecord*> records_;
  std::vector<Completion> completions_;
  bool inSocketAction_ = false;
  std::vector<curl_socket_t> firstChecks_;  // fds of records with firstCheck set
  std::vector<pollfd> pollSet_;            // one round of CheckFirstWaits
  unsigned checkRound_ = 0;                // numbers its rounds
  Napi::ObjectReference slots_;  // [socketFn, socketData, timerFn, timerData, abortCause]
  unsigned callbacksSet_ = 0;
  bool abortRequested_ = false;
  bool hasAbortCause_ = false;
  bool closeRequested_ = false;
  bool cancelRequested_ = false;
  bool referenced_ = false;
};

}  // namespace cs
