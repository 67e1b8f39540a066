#include "multi.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "easy.h"

namespace cs {

namespace {

// User callback kinds and slot layout; shared with lib/native.ts.
enum MultiCallbackKind : int { kSocketFunction = 0, kTimerFunction = 1 };
constexpr int kAbortCauseSlot = 4;

void SetCloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

std::vector<int> OpenFds() {
  std::vector<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  int own = dirfd(dir);  // the listing's own fd is not an open fd of ours
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    int fd = atoi(entry->d_name);
    if (fd != own) fds.push_back(fd);
  }
  closedir(dir);
  return fds;
}

// curl_multi_init may open fds of its own (the wakeup socketpair); libcurl
// before 8.x does not make them close-on-exec.
CURLM* MultiInitCloexec() {
  std::vector<int> before = OpenFds();
  CURLM* multi = curl_multi_init();
  std::vector<int> after = OpenFds();
  std::unordered_set<int> known(before.begin(), before.end());
  for (int fd : after) {
    if (!known.count(fd)) SetCloexec(fd);
  }
  return multi;
}

// libcurl 8.x hands every socket it got from opensocket to the close
// callback; 7.88 sometimes closes one itself, which would leave a cached
// record watching an fd number someone else may get next.
bool CacheRecords() {
  static const bool cache = curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000;
  return cache;
}

// CURL_CSELECT_* for what poll() reported of a socket watched for `events`
// (UV_READABLE, UV_WRITABLE), or 0.
int Readiness(short revents, int events) {
  if (revents & (POLLERR | POLLNVAL)) return CURL_CSELECT_ERR;
  int ready = 0;
  if ((events & UV_READABLE) && (revents & (POLLIN | POLLHUP))) ready |= CURL_CSELECT_IN;
  if ((events & UV_WRITABLE) && (revents & (POLLOUT | POLLHUP))) ready |= CURL_CSELECT_OUT;
  return ready;
}

short PollEvents(int events) {
  return static_cast<short>(((events & UV_READABLE) ? POLLIN : 0) | ((events & UV_WRITABLE) ? POLLOUT : 0));
}

// Rounds of CheckFirstWaits: a socket acted on can ask to wait again (a
// connect, then its response) or start another (the next address of a
// host); those after the last round wait on the loop.
constexpr int kFirstCheckRounds = 4;

SocketRecord* NewRecord(const StatePtr& state, Multi* owner, curl_socket_t fd) {
  auto record = std::make_unique<SocketRecord>();
  record->state = state;
  record->owner = owner;
  record->fd = fd;
  return record.release();  // owned by records_, freed in ReleaseRecord
}

}  // namespace

Napi::Function Multi::Init(Napi::Env env) {
  return DefineClass(env, "NativeMulti", {});
}

Napi::Object Multi::Calls(Napi::Env env) {
  Napi::Object calls = Napi::Object::New(env);
  AddCall<Multi, &Multi::Add>(calls, "add");
  AddCall<Multi, &Multi::Cancel>(calls, "cancel");
  AddCall<Multi, &Multi::Close>(calls, "close");
  AddCall<Multi, &Multi::Setopt>(calls, "setopt");
  AddCall<Multi, &Multi::SetCallback>(calls, "setCallback");
  AddCall<Multi, &Multi::Assign>(calls, "assign");
  AddCall<Multi, &Multi::SocketAction>(calls, "socketAction");
  AddCall<Multi, &Multi::Running>(calls, "running");
  return calls;
}

Multi* Multi::FromId(Napi::Env env, Napi::Value id) {
  return StateOf(env)->multiIds.Find(env, id);
}

// new NativeMulti(manual: boolean)
Multi::Multi(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Multi>(info) {
  Napi::Env env = info.Env();
  state_ = GetState(env);
  id_ = state_->multiIds.Add(this, info.This().As<Napi::Object>());
  // The creator's async context, for the callbacks this Multi runs from uv events.
  asyncContext_ = std::make_unique<OwnedAsyncContext>(env, "curl-sockets:Multi");
  if (!asyncContext_->ok()) {
    Napi::Error::New(env, "Multi: Node-API could not make an async context").ThrowAsJavaScriptException();
    return;
  }
  manual_ = info.Length() > 0 && info[0].ToBoolean().Value();
  multi_ = MultiInitCloexec();
  if (multi_ == nullptr) {
    Napi::Error::New(env, "curl_multi_init failed").ThrowAsJavaScriptException();
    return;
  }
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Multi::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Multi::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);

  auto timer = std::make_unique<Timer>();
  timer->state = state_;
  timer->owner = this;
  uv_timer_init(state_->loop, &timer->handle);
  timer->handle.data = timer.get();
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer->handle));  // an idle Multi must not hold the process
  timer_ = timer.release();  // owned until CloseAndDelete

  auto batch = std::make_unique<EventBatch>();
  batch->state = state_;
  batch->owner = this;
  uv_check_init(state_->loop, &batch->handle);
  batch->handle.data = batch.get();
  uv_unref(reinterpret_cast<uv_handle_t*>(&batch->handle));
  batch_ = batch.release();

  // Holds the loop open while a transfer is in flight (polls and timer are unref'd).
  auto keepAlive = std::make_unique<KeepAlive>();
  keepAlive->state = state_;
  uv_async_init(state_->loop, &keepAlive->handle, [](uv_async_t*) {});
  uv_unref(reinterpret_cast<uv_handle_t*>(&keepAlive->handle));
  keepAlive_ = keepAlive.release();

  // Weak, held by the wrapper: a callback that uses its own Multi (as a
  // manual driver does) must not keep an idle Multi alive for ever.
  slots_ = HeldByWrapper(info.This().As<Napi::Object>(), "slots", Napi::Array::New(env, kAbortCauseSlot + 1));
  state_->multis.insert(this);
}

Multi::~Multi() {
  NoJsScope noJs(state_.get());
  Shutdown();
  state_->multiIds.Remove(id_);
  if (state_->tearingDown && asyncContext_) asyncContext_->Abandon();
}

Napi::Value Multi::Slot(int index) {
  Napi::Object slots = slots_.Value();
  return slots.IsEmpty() ? Env().Undefined() : slots.Get(static_cast<uint32_t>(index));
}

void Multi::TransfersChanged() {
  bool busy = !transfers_.empty();
  if (busy == keptAlive_ || keepAlive_ == nullptr) return;
  keptAlive_ = busy;
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(&keepAlive_->handle);
  if (busy) {
    uv_ref(h);
    Ref();  // a Multi with transfers in flight is not collected
  } else {
    uv_unref(h);
    if (!state_->tearingDown) Unref();
  }
}

// libcurl 7.88-8.14 lets its pool keep 4 connections per handle added at
// the moment a connection goes idle. With perform() a handle is removed as
// soon as its transfer ends, so at the end of every burst that limit falls
// towards 4 and warm connections are closed, only to be opened again by the
// next burst. Until the user sets MAXCONNECTS, the limit follows the most
// transfers this Multi has had in flight at once instead: never lower than
// libcurl's own, and it does not shrink in a lull.
void Multi::GrowPoolLimit() {
  if (userSetMaxConnects_ || transfers_.size() <= peakTransfers_) return;
  peakTransfers_ = transfers_.size();
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(4 * peakTransfers_));
}

// add(easyId, maxBodyBytes, callbackBits, into) -> CURLMcode, or -1 when
// `into` (a Uint8Array, or undefined) is not one or shares bytes with the
// `into` of a transfer in flight. callbackBits: the Easy's kTransferTimeCallbacks kinds
// with a JS function, for this transfer.
Napi::Value Multi::Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_->InLibcurl()) return Napi::Number::New(env, CURLM_RECURSIVE_API_CALL);
  if (multi_ == nullptr || closeRequested_) return Napi::Number::New(env, CURLM_BAD_HANDLE);
  Easy* easy = Easy::FromId(env, info[1]);
  if (easy == nullptr || easy->handle() == nullptr) return Napi::Number::New(env, CURLM_BAD_EASY_HANDLE);
  if (easy->multi() != nullptr) return Napi::Number::New(env, CURLM_ADDED_ALREADY);
  if (!info[4].IsUndefined() && !easy->into_.Claim(env, info[4], state_->claimedMemory)) {
    return Napi::Number::New(env, -1);
  }
  easy->maxBodyBytes_ = info[2].As<Napi::Number>().DoubleValue();
  unsigned transferBits = info[3].As<Napi::Number>().Uint32Value() & kTransferTimeCallbacks;
  easy->callbacksSet_ = (easy->callbacksSet_ & ~kTransferTimeCallbacks) | transferBits;
  easy->Started(this);
  transfers_.insert(easy);
  TransfersChanged();
  GrowPoolLimit();
  CURLMcode rc;
  {
    LibcurlCall call(state_.get());
    rc = curl_multi_add_handle(multi_, easy->handle());
  }
  if (rc != CURLM_OK) {
    transfers_.erase(easy);
    easy->Finished();
    TransfersChanged();
  }
  state_->Settle(env);
  return Napi::Number::New(env, rc);
}

// cancel(easyId, reason): abort or close of one transfer.
Napi::Value Multi::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Easy* easy = Easy::FromId(env, info[1]);
  int reason = info[2].As<Napi::Number>().Int32Value();
  if (easy == nullptr || easy->multi() != this) return env.Undefined();
  easy->RequestCancel(reason);
  if (!state_->InLibcurl()) CancelNow(easy);
  state_->Settle(env);  // deferred to the end of the current entry when inside libcurl
  return env.Undefined();
}

void Multi::CancelNow(Easy* easy) {
  if (transfers_.erase(easy) == 0) return;  // already finished, delivery pending
  {
    LibcurlCall call(state_.get());
    curl_multi_remove_handle(multi_, easy->handle());
  }
  UncorkReused();
  CorkNewIdle();
  completions_.push_back({easy, CURLE_OK, easy->cancelReason()});
  TransfersChanged();
}

void Multi::Detach(Easy* easy) {
  if (transfers_.erase(easy) != 0 && multi_ != nullptr) {
    {
      LibcurlCall call(state_.get());
      curl_multi_remove_handle(multi_, easy->handle());
    }
    UncorkReused();
    CorkNewIdle();
  }
  for (auto it = completions_.begin(); it != completions_.end();) {
    it = it->easy == easy ? completions_.erase(it) : it + 1;
  }
  easy->Finished();
  TransfersChanged();
}

Napi::Value Multi::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (multi_ == nullptr) return env.Undefined();
  closeRequested_ = true;
  // Mark now: a transfer that finishes inside the current libcurl call must
  // still reject, not be delivered as a success.
  for (Easy* easy : transfers_) easy->RequestCancel(kEndedByMultiClose);
  for (const Completion& c : completions_) c.easy->RequestCancel(kEndedByMultiClose);
  state_->Settle(env);  // runs now, or after libcurl returns when called from a callback
  return env.Undefined();
}

bool Multi::ApplyDeferred(Napi::Env env) {
  if (!cancelRequested_ && !abortRequested_ && !closeRequested_) return false;  // the common case, per event
  cancelRequested_ = false;
  bool progress = false;
  if (abortRequested_ || closeRequested_) {
    int reason = abortRequested_ ? kEndedByMultiAbort : kEndedByMultiClose;
    abortRequested_ = false;
    for (Easy* easy : transfers_) easy->RequestCancel(reason);
  }
  std::vector<Easy*> cancelled;
  for (Easy* easy : transfers_) {
    if (easy->cancelRequested()) cancelled.push_back(easy);
  }
  for (Easy* easy : cancelled) {
    CancelNow(easy);
    progress = true;
  }
  if (closeRequested_ && transfers_.empty() && completions_.empty() && multi_ != nullptr) {
    CloseNow();
    progress = true;
  }
  return progress;
}

bool Multi::DeliverCompletions(Napi::Env env) {
  if (completions_.empty()) return false;
  std::vector<Completion> done;
  done.swap(completions_);
  Napi::Value cause = hasAbortCause_ ? Slot(kAbortCauseSlot) : env.Undefined();
  for (const Completion& c : done) {
    int reason = c.reason != kEndedByLibcurl ? c.reason : c.easy->cancelReason();
    c.easy->Deliver(env, c.code, reason, reason == kEndedByMultiAbort ? cause : env.Undefined());
  }
  if (transfers_.empty() && hasAbortCause_) {
    hasAbortCause_ = false;
    slots_.Value().Set(static_cast<uint32_t>(kAbortCauseSlot), env.Undefined());
  }
  return true;
}

void Multi::CloseNow() {
  {
    LibcurlCall call(state_.get());
    curl_multi_cleanup(multi_);  // closes pooled connections: CLOSESOCKETFUNCTION may run
  }
  multi_ = nullptr;
  std::vector<SocketRecord*> left;
  for (auto& entry : records_) left.push_back(entry.second);
  for (SocketRecord* record : left) ReleaseRecord(record);
  if (timer_) {
    uv_timer_stop(&timer_->handle);
    CloseAndDelete(timer_, state_.get());
    timer_ = nullptr;
  }
  readyEvents_.clear();
  reusedCorked_.clear();
  newIdle_.clear();
  if (batch_) {
    CloseAndDelete(batch_, state_.get());  // uv_close stops it
    batch_ = nullptr;
  }
  if (keepAlive_) {
    if (keptAlive_ && !state_->tearingDown) Unref();
    keptAlive_ = false;
    CloseAndDelete(keepAlive_, state_.get());
    keepAlive_ = nullptr;
  }
  state_->multis.erase(this);
}

void Multi::Shutdown() {
  if (multi_ == nullptr) return;
  std::vector<Easy*> attached(transfers_.begin(), transfers_.end());
  for (const Completion& c : completions_) attached.push_back(c.easy);
  for (Easy* easy : attached) Detach(easy);
  CloseNow();
}

// setopt(id, value) for the LONG multi options -> CURLMcode
Napi::Value Multi::Setopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (multi_ == nullptr) return Napi::Number::New(env, CURLM_BAD_HANDLE);
  CURLMoption id = static_cast<CURLMoption>(info[1].As<Napi::Number>().Int32Value());
  long value = info[2].IsBoolean() ? (info[2].As<Napi::Boolean>().Value() ? 1 : 0)
                                   : static_cast<long>(info[2].As<Napi::Number>().Int64Value());
  CURLMcode rc = curl_multi_setopt(multi_, id, value);
  if (id == CURLMOPT_MAXCONNECTS && rc == CURLM_OK) userSetMaxConnects_ = true;
  return Napi::Number::New(env, rc);
}

// setCallback(kind, fn | null, data)
Napi::Value Multi::SetCallback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kind = info[1].As<Napi::Number>().Int32Value();
  bool on = info[2].IsFunction();
  Napi::Object slots = slots_.Value();
  slots.Set(static_cast<uint32_t>(2 * kind), on ? info[2] : env.Undefined());
  slots.Set(static_cast<uint32_t>(2 * kind + 1), info[3]);
  if (on) callbacksSet_ |= 1u << kind;
  else callbacksSet_ &= ~(1u << kind);
  return env.Undefined();
}

// assign(fd, value) -> CURLMcode (only writes the native record)
Napi::Value Multi::Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  curl_socket_t fd = info[1].As<Napi::Number>().Int32Value();
  auto it = records_.find(fd);
  if (it == records_.end()) return Napi::Number::New(env, CURLM_BAD_SOCKET);
  SocketRecord* record = it->second;
  if (record->user.IsEmpty()) record->user = Napi::Persistent(Napi::Array::New(env, 1).As<Napi::Object>());
  record->user.Value().Set(0u, info[2]);
  return Napi::Number::New(env, CURLM_OK);
}

// socketAction(fd, events) -> running transfers, or -CURLMcode
Napi::Value Multi::SocketAction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_->InLibcurl()) return Napi::Number::New(env, -CURLM_RECURSIVE_API_CALL);
  if (multi_ == nullptr) return Napi::Number::New(env, -CURLM_BAD_HANDLE);
  // TS checks the fd too; here as well, because libcurl 8.x reads outside its
  // socket table for a negative fd other than CURL_SOCKET_TIMEOUT.
  double number = info[1].As<Napi::Number>().DoubleValue();
  if (number != CURL_SOCKET_TIMEOUT && !(number >= 0 && number <= INT_MAX && number == std::trunc(number))) {
    return Napi::Number::New(env, -CURLM_BAD_SOCKET);
  }
  curl_socket_t fd = static_cast<curl_socket_t>(number);
  int events = info[2].As<Napi::Number>().Int32Value();
  int rc = RunSocketAction(fd, events);
  state_->Settle(env);
  if (rc != CURLM_OK) return Napi::Number::New(env, -rc);
  return Napi::Number::New(env, static_cast<double>(transfers_.size()));
}

Napi::Value Multi::Running(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(transfers_.size()));
}

int Multi::RunSocketAction(curl_socket_t fd, int events) {
  LibcurlCall call(state_.get());
  CURLMcode rc = ActOnSocket(fd, events);
  DrainMessages();
  return rc;
}

CURLMcode Multi::ActOnSocket(curl_socket_t fd, int events) {
  int running = 0;
  inSocketAction_ = true;
  CURLMcode rc = curl_multi_socket_action(multi_, fd, events, &running);
  CheckFirstWaits();
  inSocketAction_ = false;
  UncorkReused();
  CorkNewIdle();
  return rc;
}

// Socket events wait for the loop's check phase, right after it has polled,
// and then run together in one entry: every ready socket is read first, then
// JS sees all the finished transfers at once, and the requests it starts in
// response go out together from the next timer pass instead of one by one
// between reads. On loopback that keeps a busy peer from going idle between
// requests (waking it costs the sender an inter-processor interrupt).
void Multi::QueueEvent(curl_socket_t fd, int flags) {
  if (batch_ == nullptr) return;
  if (readyEvents_.empty()) uv_check_start(&batch_->handle, &Multi::OnCheck);
  readyEvents_.push_back({fd, flags});
}

void Multi::OnCheck(uv_check_t* handle) {
  static_cast<EventBatch*>(handle->data)->owner->RunReadyEvents();
}

void Multi::RunReadyEvents() {
  uv_check_stop(&batch_->handle);
  runningEvents_.swap(readyEvents_);
  if (multi_ == nullptr || !state_->CanCallJs()) {
    runningEvents_.clear();
    return;
  }
  Napi::Env env = Env();
  Napi::HandleScope handleScope(env);
  Napi::CallbackScope callbackScope(env, OpenCallbackScope(env, state_.get(), *asyncContext_));
  EntryScopeCount entry(state_.get(), *asyncContext_);
  {
    LibcurlCall call(state_.get());
    for (const ReadyEvent& event : runningEvents_) {
      // After an abort or close every transfer ends anyway; a socket still
      // ready is reported again by the next poll.
      if (abortRequested_ || closeRequested_) break;
      // Skip a socket released since it was polled (its fd number may even
      // belong to a newer socket by now: that one is polled on its own).
      auto it = records_.find(event.fd);
      if (it == records_.end() || !it->second->pollInitialized) continue;
      ActOnSocket(event.fd, event.flags);
    }
    // Once for the batch: a finished transfer stays counted by libcurl until
    // every socket was read, as it would be one event at a time.
    DrainMessages();
  }
  runningEvents_.clear();
  state_->Settle(env);
}

// An idle pooled TCP connection is corked: the next request on it is sent
// when libcurl returns (UncorkReused), together with the other requests
// started in the same pass. Corked once the libcurl call that let it go
// returns, so a connection closed right after its transfer (FORBID_REUSE,
// Connection: close) costs no setsockopt. Not TCP (a Unix socket): tried once.
void Multi::CorkNewIdle() {
  for (curl_socket_t fd : newIdle_) {
    auto it = records_.find(fd);
    if (it == records_.end()) continue;  // closed meanwhile
    SocketRecord* record = it->second;
    if (!record->idle || record->corked || record->corkUnsupported) continue;  // in use again, or a newer socket
    int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0) record->corked = true;
    else record->corkUnsupported = true;
  }
  newIdle_.clear();
}

void Multi::UncorkReused() {
  for (curl_socket_t fd : reusedCorked_) {
    auto it = records_.find(fd);
    if (it == records_.end() || !it->second->corked) continue;  // closed meanwhile: close sent it
    int off = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);  // sends what is queued
    it->second->corked = false;
  }
  reusedCorked_.clear();
}

// A socket libcurl asks to wait for, before it was ever registered with uv,
// is first tested with poll() once libcurl returns: on loopback and nearby
// peers a connect has usually finished by then, and often the response to
// the request sent right after it has arrived too. Acting on it at once
// spares registering it with uv (libuv probes a new fd with an epoll_ctl pair
// and an ioctl, deletes before it adds, and deletes again at close) and a trip
// around the event loop; a socket that is not ready is watched as usual, so
// each wait is tested once. One poll() tests a whole round.
void Multi::CheckFirstWaits() {
  // By index: acting on one socket can append others. The lists keep their
  // capacity, so this allocates nothing per connection.
  size_t begin = 0;
  for (int round = 0; round < kFirstCheckRounds && begin < firstChecks_.size(); ++round) {
    size_t end = firstChecks_.size();
    unsigned thisRound = ++checkRound_;
    pollSet_.clear();
    for (size_t i = begin; i < end; ++i) {
      auto it = records_.find(firstChecks_[i]);
      bool waiting = it != records_.end() && it->second->firstCheck;
      if (waiting) it->second->checkRound = thisRound;
      // poll() skips a negative fd: one no longer waiting takes no part.
      pollSet_.push_back({waiting ? firstChecks_[i] : -1, waiting ? PollEvents(it->second->events) : short{0}, 0});
    }
    bool stopped = abortRequested_ || closeRequested_;
    if (!stopped && poll(pollSet_.data(), pollSet_.size(), 0) < 0) stopped = true;  // then all wait on the loop
    for (size_t i = 0; i < pollSet_.size(); ++i) {
      if (pollSet_[i].fd < 0) continue;
      curl_socket_t fd = pollSet_[i].fd;
      // Acting on an earlier socket may have closed this one, and its fd
      // number may even belong to a newer socket by now, which this poll()
      // did not see (its own entry comes later): only the record polled in
      // this round is taken.
      SocketRecord* record = TakeFirstCheck(fd, thisRound);
      if (record == nullptr) continue;
      int ready = stopped ? 0 : Readiness(pollSet_[i].revents, record->events);
      if (ready == 0) {
        Watch(record, record->events);
        continue;
      }
      int running = 0;
      curl_multi_socket_action(multi_, fd, ready, &running);  // may free the record
      stopped = abortRequested_ || closeRequested_;
      // libcurl calls SOCKETFUNCTION only when what it waits for changes: a
      // socket it still waits on as before (a response only partly in, or a
      // readiness it found spurious) is neither queued again nor released,
      // and is registered now.
      auto it = records_.find(fd);
      if (it != records_.end() && !it->second->pollInitialized && !it->second->firstCheck) {
        Watch(it->second, it->second->events);
      }
    }
    begin = end;
  }
  for (size_t i = begin; i < firstChecks_.size(); ++i) {  // past the last round: wait on the loop
    if (SocketRecord* record = TakeFirstCheck(firstChecks_[i], 0)) Watch(record, record->events);
  }
  firstChecks_.clear();
}

// The record of fd if it still waits for its first check (clearing that),
// else null: it was removed, or the fd number now belongs to a record that
// was checked already, or (round != 0) to one this round did not poll.
SocketRecord* Multi::TakeFirstCheck(curl_socket_t fd, unsigned round) {
  auto it = records_.find(fd);
  if (it == records_.end() || !it->second->firstCheck) return nullptr;
  if (round != 0 && it->second->checkRound != round) return nullptr;
  it->second->firstCheck = false;
  return it->second;
}

bool Multi::InitPoll(SocketRecord* record) {
  int rc = uv_poll_init_socket(state_->loop, &record->handle, record->fd);
  if (rc != 0) {
    if (state_->CanCallJs()) RequestAbort(SystemError(Env(), -rc, "uv_poll_init").Value());
    return false;
  }
  record->pollInitialized = true;
  state_->socketsRegistered += 1;
  record->events = 0;
  record->handle.data = record;
  uv_unref(reinterpret_cast<uv_handle_t*>(&record->handle));
  return true;
}

void Multi::Watch(SocketRecord* record, int events) {
  if (record->firstCheck) {
    record->events = events;  // CheckFirstWaits applies it
    return;
  }
  if (!record->pollInitialized && !InitPoll(record)) return;
  if (events != record->events) {
    uv_poll_start(&record->handle, events, &Multi::OnPoll);
    record->events = events;
  }
}

void Multi::DrainMessages() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* handle = msg->easy_handle;
    CURLcode code = msg->data.result;  // msg is invalid after remove_handle
    char* priv = nullptr;
    curl_easy_getinfo(handle, CURLINFO_PRIVATE, &priv);
    Easy* easy = reinterpret_cast<Easy*>(priv);
    curl_multi_remove_handle(multi_, handle);
    if (easy == nullptr || transfers_.erase(easy) == 0) continue;
    completions_.push_back({easy, code, kEndedByLibcurl});
  }
  // remove_handle can let a connection go idle, or take an idle one back
  // (a TLS shutdown when the pool is full).
  UncorkReused();
  CorkNewIdle();
  TransfersChanged();
}

void Multi::EventEntry(curl_socket_t fd, int events) {
  if (multi_ == nullptr || !state_->CanCallJs()) return;
  Napi::Env env = Env();
  Napi::HandleScope handleScope(env);
  Napi::CallbackScope callbackScope(env, OpenCallbackScope(env, state_.get(), *asyncContext_));
  EntryScopeCount entry(state_.get(), *asyncContext_);
  RunSocketAction(fd, events);
  state_->Settle(env);
}

void Multi::OnPoll(uv_poll_t* handle, int status, int events) {
  SocketRecord* record = static_cast<SocketRecord*>(handle->data);
  if (record->idle) {
    // No transfer uses this pooled connection (the peer closed it, most
    // likely): stop watching; libcurl finds out when it next looks at it.
    uv_poll_stop(handle);
    record->events = 0;
    return;
  }
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  record->owner->QueueEvent(record->fd, flags);
}

void Multi::OnUvTimer(uv_timer_t* handle) {
  Timer* timer = static_cast<Timer*>(handle->data);
  timer->owner->EventEntry(CURL_SOCKET_TIMEOUT, 0);
}

// Calls the user's SOCKETFUNCTION / TIMERFUNCTION through `caller` (from
// lib/slot-calls.ts, which adds the data) with `args`. -1, a throw or an
// invalid return aborts this Multi after libcurl returns; libcurl itself
// always gets 0.
template <size_t N>
void Multi::CallUser(int kind, const Napi::FunctionReference& caller, const napi_value (&args)[N]) {
  Napi::Env env = Env();
  Napi::Object slots = slots_.Value();
  if (slots.IsEmpty()) return;  // held by the wrapper: gone only with it
  napi_value argv[N + 2] = {slots, Napi::Number::New(env, 2 * kind)};
  std::copy(args, args + N, argv + 2);
  napi_value result = nullptr;
  napi_status status = CallInEntry(env, state_.get(), nullptr, caller.Value(), N + 2, argv, &result);
  const char* name = kind == kSocketFunction ? "SOCKETFUNCTION" : "TIMERFUNCTION";
  if (status != napi_ok) {
    Napi::Value error = TakeException(env);
    RequestAbort(!error.IsEmpty() ? error : Napi::Error::New(env, std::string(name) + " could not be called").Value());
    return;
  }
  Napi::Value value(env, result);
  if (value.IsUndefined()) return;
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (d == -1) RequestAbort(env.Undefined());
    else if (!std::isfinite(d) || d != std::trunc(d)) RequestAbort(Napi::TypeError::New(env, std::string(name) + " returned a non-integer number; expected 0, -1 or nothing").Value());
    return;
  }
  RequestAbort(Napi::TypeError::New(env, std::string(name) + " returned a " +
                                             (value.IsString() ? "string" : "non-number") + "; expected 0, -1 or nothing").Value());
}

// For the socket and timer callbacks' catch blocks (see easy_callbacks.cc: no
// C++ exception may unwind through libcurl). A socket or timer the binding
// could not record would leave transfers waiting for ever, so they all end
// once libcurl returns. No JS value is touched where JS cannot run
// (a finalizer's curl_multi_cleanup).
void Multi::AbortAfterFailure() {
  if (state_->CanCallJs()) {
    RequestAbort(Env().Undefined());
    return;
  }
  abortRequested_ = true;
  for (Easy* easy : transfers_) easy->RequestCancel(kEndedByMultiAbort);
}

void Multi::RequestAbort(Napi::Value cause) {
  abortRequested_ = true;
  // Every transfer on this Multi rejects, also one that finished inside the
  // libcurl call that is running now (its REMOVE can be what aborts).
  for (Easy* easy : transfers_) easy->RequestCancel(kEndedByMultiAbort);
  for (const Completion& c : completions_) c.easy->RequestCancel(kEndedByMultiAbort);
  if (!hasAbortCause_) {
    hasAbortCause_ = true;
    slots_.Value().Set(static_cast<uint32_t>(kAbortCauseSlot), cause);
  }
}

int Multi::OnSocket(CURL* easyHandle, curl_socket_t fd, int what, void* userp, void* socketp) try {
  Multi* self = static_cast<Multi*>(userp);
  SocketRecord* record = static_cast<SocketRecord*>(socketp);
  AddonState* s = self->state_.get();
  bool callUser = (self->callbacksSet_ & (1u << kSocketFunction)) && s->CanCallJs();

  if (what != CURL_POLL_REMOVE) {
    if (record == nullptr) {
      auto cached = self->records_.find(fd);
      if (cached != self->records_.end()) {
        record = cached->second;  // an idle pooled connection is in use again
        record->idle = false;
        if (record->corked) self->reusedCorked_.push_back(fd);
      } else {
        // Resolver and other internal fds never pass through opensocket.
        bool ours = s->openSockets.count(fd) != 0;
        if (!ours) SetCloexec(fd);
        record = NewRecord(self->state_, self, fd);
        record->cacheable = ours && CacheRecords();
        self->records_[fd] = record;
      }
      curl_multi_assign(self->multi_, fd, record);
    }
    if (!self->manual_) {
      int events = 0;
      if (what & CURL_POLL_IN) events |= UV_READABLE;
      if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
      if (!record->pollInitialized && !record->firstCheck && events != 0 && self->inSocketAction_) {
        record->firstCheck = true;  // tested once libcurl returns (CheckFirstWaits)
        self->firstChecks_.push_back(fd);
      }
      self->Watch(record, events);
    }
  }

  if (callUser) {
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    char* priv = nullptr;
    curl_easy_getinfo(easyHandle, CURLINFO_PRIVATE, &priv);
    Easy* easy = reinterpret_cast<Easy*>(priv);
    Napi::Value owner = easy != nullptr ? easy->Owner(env) : env.Null();
    if (owner.IsUndefined()) owner = env.Null();
    Napi::Value socketValue = record != nullptr && !record->user.IsEmpty() ? record->user.Value().Get(0u) : env.Undefined();
    self->CallUser(kSocketFunction, s->callSocketSlot, {owner, Napi::Number::New(env, fd), Napi::Number::New(env, what), socketValue});
  }

  if (what == CURL_POLL_REMOVE && record != nullptr) {
    curl_multi_assign(self->multi_, fd, nullptr);
    if (record->cacheable && !self->manual_ && s->openSockets.count(fd)) {
      // Keep watching the idle connection: the next transfer on it usually
      // asks for the same events, which then costs nothing. An event while
      // idle stops the poll (OnPoll). A record never registered with uv (its
      // transfers all ended in the first-wait check) is kept too, for the
      // cork: otherwise its next request leaves alone, at once, and the peer
      // it wakes often answers before the check, so it never gets one. On
      // loopback such connections made s1's slow rounds (nginx slept 0.2-0.5
      // times per request instead of 0.05). Only corked when another transfer
      // is in flight (the finished one is still counted here): a transfer that
      // ran alone has no others to send with, and its next request should
      // leave at once (sequential requests: two setsockopt and a few µs less).
      record->idle = true;
      record->user.Reset();
      bool batching = self->transfers_.size() > 1;
      if (batching && !record->corked && !record->corkUnsupported) self->newIdle_.push_back(fd);
    } else {
      self->ReleaseRecord(record);
    }
  }
  return 0;
} catch (...) {
  static_cast<Multi*>(userp)->AbortAfterFailure();
  return 0;
}

void Multi::SocketClosing(curl_socket_t fd) {
  auto it = records_.find(fd);
  if (it != records_.end() && it->second->idle) ReleaseRecord(it->second);
}

// Stops and frees a socket record. uv_close unregisters the fd from the loop
// right away, so libcurl may hand out the same fd number again at once.
void Multi::ReleaseRecord(SocketRecord* record) {
  auto it = records_.find(record->fd);
  if (it != records_.end() && it->second == record) records_.erase(it);
  record->user.Reset();  // deleting a reference runs no JS
  if (record->pollInitialized) {
    CloseAndDelete(record, state_.get());  // uv_close stops the poll: one epoll_ctl
  } else {
    std::unique_ptr<SocketRecord> drop(record);
  }
}

int Multi::OnTimer(CURLM*, long timeoutMs, void* userp) try {
  Multi* self = static_cast<Multi*>(userp);
  if (!self->manual_ && self->timer_ != nullptr) {
    if (timeoutMs < 0) uv_timer_stop(&self->timer_->handle);
    else uv_timer_start(&self->timer_->handle, &Multi::OnUvTimer, static_cast<uint64_t>(timeoutMs), 0);
  }
  if ((self->callbacksSet_ & (1u << kTimerFunction)) && self->state_->CanCallJs()) {
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->CallUser(kTimerFunction, self->state_->callSlot1, {Napi::Number::New(env, static_cast<double>(timeoutMs))});
  }
  return 0;
} catch (...) {
  static_cast<Multi*>(userp)->AbortAfterFailure();
  return 0;
}

}  // namespace cs
