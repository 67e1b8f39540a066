// Easy: option setting, info, lifetime. The libcurl callbacks are in
// easy_callbacks.cc.
#include "easy.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "multi.h"

namespace cs {

namespace {

// Value kinds of setopt; shared with lib/native.ts (OptionKind).
enum OptionKind : int { kLong = 0, kOffT, kString, kSlist, kBlob, kPostFields };

// Numeric results of a transfer, written into the scratch Float64Array that
// lib/native.ts reads (TransferInfoIndex). Saves building an object natively.
enum InfoIndex : int {
  kStatus = 0, kPrimaryPort, kLocalPort, kNumConnects, kRedirectCount, kOsErrno,
  kNameLookup, kConnect, kAppConnect, kPreTransfer, kStartTransfer, kTotal,
  kRedirect, kHttpVersion, kSizeDownload, kSizeUpload, kInfoCount
};

int privatePathCounter = 0;  // only makes pool keys unique; racy use is harmless
constexpr const char* kOwnerKey = "owner";

double SecondsInfo(CURL* h, CURLINFO id) {
  curl_off_t us = 0;
  curl_easy_getinfo(h, id, &us);
  return static_cast<double>(us) / 1e6;
}

long LongInfo(CURL* h, CURLINFO id) {
  long v = 0;
  curl_easy_getinfo(h, id, &v);
  return v;
}

}  // namespace

Napi::Function Easy::Init(Napi::Env env) {
  return DefineClass(env, "NativeEasy", {});
}

Napi::Object Easy::Calls(Napi::Env env) {
  Napi::Object calls = Napi::Object::New(env);
  AddCall<Easy, &Easy::Setopt>(calls, "setopt");
  AddCall<Easy, &Easy::AttachSlots>(calls, "attachSlots");
  AddCall<Easy, &Easy::SetCallback>(calls, "setCallback");
  AddCall<Easy, &Easy::Getinfo>(calls, "getinfo");
  AddCall<Easy, &Easy::Reset>(calls, "reset");
  AddCall<Easy, &Easy::Duphandle>(calls, "duphandle");
  AddCall<Easy, &Easy::Close>(calls, "close");
  AddCall<Easy, &Easy::Reopen>(calls, "reopen");
  AddCall<Easy, &Easy::UseConnectedSocket>(calls, "useConnectedSocket");
  AddCall<Easy, &Easy::DropConnectedSocket>(calls, "dropConnectedSocket");
  return calls;
}

Easy* Easy::FromId(Napi::Env env, Napi::Value id) {
  return StateOf(env)->easyIds.Find(env, id);
}

Easy::Easy(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Easy>(info) {
  state_ = GetState(info.Env());
  id_ = state_->easyIds.Add(this, info.This().As<Napi::Object>());
  Open(info.Env());
}

// Takes a libcurl handle and puts every per-owner field in its initial state:
// for a new wrapper, and for a closed one reopened for the next Easy (the
// fields Destroy() clears are in that state already).
void Easy::Open(Napi::Env env) {
  callbacksSet_ = 0;
  poolableHandle_ = true;
  errorBuffer_[0] = '\0';
  headers_.clear();
  maxBodyBytes_ = -1;
  streamedBytes_ = 0;
  bodyTooLarge_ = false;
  outOfMemory_ = false;
  hasFault_ = false;
  failTransfer_ = false;
  cancelReason_ = kEndedByLibcurl;
  closeRequested_ = false;
  userUnixPath_.clear();
  privatePath_.clear();
  userUnixPathSet_ = false;
  privatePathActive_ = false;
  restoreUnixPath_ = false;
  connectOnly_ = false;
  handle_ = state_->handlePool.Take();
  if (handle_ == nullptr) {
    Napi::Error::New(env, "curl_easy_init failed").ThrowAsJavaScriptException();
    return;
  }
  InstallOwnedOptions();
  ApplyDefaults();
  state_->easies.insert(this);
}

Easy::~Easy() {
  NoJsScope noJs(state_.get());
  Destroy();
  state_->easyIds.Remove(id_);
}

// Options the binding owns are set again after every reset and duphandle.
void Easy::InstallOwnedOptions() {
  curl_easy_setopt(handle_, CURLOPT_PRIVATE, this);
  curl_easy_setopt(handle_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle_, CURLOPT_ERRORBUFFER, errorBuffer_);
  curl_easy_setopt(handle_, CURLOPT_OPENSOCKETFUNCTION, &Easy::OnOpenSocket);
  curl_easy_setopt(handle_, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(handle_, CURLOPT_SOCKOPTFUNCTION, &Easy::OnSockopt);
  curl_easy_setopt(handle_, CURLOPT_SOCKOPTDATA, this);
  curl_easy_setopt(handle_, CURLOPT_CLOSESOCKETFUNCTION, &Easy::OnCloseSocket);
  curl_easy_setopt(handle_, CURLOPT_CLOSESOCKETDATA, state_.get());
  curl_easy_setopt(handle_, CURLOPT_WRITEFUNCTION, &Easy::OnWrite);
  curl_easy_setopt(handle_, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(handle_, CURLOPT_HEADERFUNCTION, &Easy::OnHeader);
  curl_easy_setopt(handle_, CURLOPT_HEADERDATA, this);
  for (int kind = kPrereq; kind < kCallbackKinds; ++kind) {
    if (kind == kWrite || kind == kHeader) continue;
    if (callbacksSet_ & (1u << kind)) ApplyCallbackOption(kind, true);
  }
}

// The binding's defaults where they differ from libcurl's, on a new or reset
// handle: not owned, so the user's own value (set, or replayed by TS after a
// reset) wins, and a duphandle copy keeps the original's.
void Easy::ApplyDefaults() {
  if (state_->defaultBufferSize > 0) curl_easy_setopt(handle_, CURLOPT_BUFFERSIZE, state_->defaultBufferSize);
}

// Callbacks whose libcurl option is only set while a JS function is.
void Easy::ApplyCallbackOption(int kind, bool on) {
  switch (kind) {
    case kPrereq:
      curl_easy_setopt(handle_, CURLOPT_PREREQFUNCTION, on ? &Easy::OnPrereq : nullptr);
      curl_easy_setopt(handle_, CURLOPT_PREREQDATA, this);
      break;
    case kXferinfo:
      curl_easy_setopt(handle_, CURLOPT_XFERINFOFUNCTION, on ? &Easy::OnXferinfo : nullptr);
      curl_easy_setopt(handle_, CURLOPT_XFERINFODATA, this);
      if (on) curl_easy_setopt(handle_, CURLOPT_NOPROGRESS, 0L);
      break;
    case kDebug:
      curl_easy_setopt(handle_, CURLOPT_DEBUGFUNCTION, on ? &Easy::OnDebug : nullptr);
      curl_easy_setopt(handle_, CURLOPT_DEBUGDATA, this);
      break;
    default:
      break;  // always installed natively
  }
}

// The user's Easy: the `owner` property the TS constructor sets on this
// wrapper (a property, not a reference of our own, so the Ref() held while a
// transfer is in flight keeps both alive, and otherwise they go together).
Napi::Value Easy::Owner(Napi::Env env) {
  Napi::Object self = Value();
  if (self.IsEmpty()) return env.Undefined();
  Napi::Value v = self.Get(kOwnerKey);
  return v.IsEmpty() ? env.Undefined() : v;
}

// The JS values of callbacks and the fault. TS attaches its array with the
// first callback; a handle without one gets an array here on its first fault.
Napi::Object Easy::Slots() {
  // Strong: an array of our own holds no user callback, so it forms no cycle.
  if (slots_.IsEmpty()) slots_ = Napi::Persistent(Napi::Array::New(Env(), kFaultSlot + 1).As<Napi::Object>());
  return slots_.Value();
}

Napi::Value Easy::Slot(int index) {
  return Slots().Get(static_cast<uint32_t>(index));
}

// setopt(id, kind, value): TS has validated name, type and range already.
// Returns the CURLcode.
Napi::Value Easy::Setopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CURLoption id = static_cast<CURLoption>(info[1].As<Napi::Number>().Int32Value());
  int kind = info[2].As<Napi::Number>().Int32Value();
  Napi::Value value = info[3];
  bool isNull = value.IsNull() || value.IsUndefined();
  if (poolableHandle_ && !state_->handlePool.IsStateless(id)) poolableHandle_ = false;
  CURLcode rc = CURLE_OK;
  switch (kind) {
    case kLong: {
      long v = 0;
      if (value.IsBoolean()) v = value.As<Napi::Boolean>().Value() ? 1 : 0;
      else if (!isNull) v = static_cast<long>(value.As<Napi::Number>().Int64Value());
      rc = curl_easy_setopt(handle_, id, v);
      if (rc == CURLE_OK && id == CURLOPT_CONNECT_ONLY) connectOnly_ = v != 0;
      break;
    }
    case kOffT: {
      curl_off_t v = 0;
      if (value.IsBigInt()) {
        bool lossless = true;
        v = static_cast<curl_off_t>(value.As<Napi::BigInt>().Int64Value(&lossless));
      } else if (!isNull) {
        v = static_cast<curl_off_t>(value.As<Napi::Number>().Int64Value());
      }
      rc = curl_easy_setopt(handle_, id, v);
      break;
    }
    case kString: {
      if (isNull) {
        rc = curl_easy_setopt(handle_, id, static_cast<char*>(nullptr));
      } else {
        // Most option strings (URLs, paths, header values) fit on the stack:
        // no std::string and one napi call instead of two. A string that
        // came within a character (4 bytes) of the end may have been cut.
        char small[512];
        size_t length = 0;
        if (napi_get_value_string_utf8(env, value, small, sizeof small, &length) == napi_ok && length + 4 < sizeof small) {
          rc = curl_easy_setopt(handle_, id, small);  // libcurl copies strings
        } else {
          std::string s = value.As<Napi::String>().Utf8Value();
          rc = curl_easy_setopt(handle_, id, s.c_str());
        }
      }
      if (rc == CURLE_OK && id == CURLOPT_UNIX_SOCKET_PATH) {
        userUnixPathSet_ = !isNull;
        userUnixPath_ = isNull ? std::string() : value.As<Napi::String>().Utf8Value();
        // While a handed socket's connection is private, its key stays; the
        // user's path applies once that connection is gone.
        if (privatePathActive_) curl_easy_setopt(handle_, CURLOPT_UNIX_SOCKET_PATH, privatePath_.c_str());
      }
      break;
    }
    case kSlist: {
      curl_slist* list = nullptr;
      if (!isNull) {
        Napi::Array array = value.As<Napi::Array>();
        for (uint32_t i = 0; i < array.Length(); ++i) {
          std::string item = array.Get(i).As<Napi::String>().Utf8Value();
          curl_slist* next = curl_slist_append(list, item.c_str());
          if (next == nullptr) {
            curl_slist_free_all(list);
            return Napi::Number::New(env, CURLE_OUT_OF_MEMORY);
          }
          list = next;
        }
      }
      rc = curl_easy_setopt(handle_, id, list);
      if (rc != CURLE_OK) {
        curl_slist_free_all(list);
        break;
      }
      auto old = slists_.find(id);
      if (old != slists_.end()) curl_slist_free_all(old->second);
      if (list) slists_[id] = list;
      else slists_.erase(id);
      break;
    }
    case kBlob: {
      if (isNull) {
        rc = curl_easy_setopt(handle_, id, static_cast<curl_blob*>(nullptr));
      } else {
        Napi::Buffer<char> buffer = value.As<Napi::Buffer<char>>();
        curl_blob blob{buffer.Data(), buffer.Length(), CURL_BLOB_COPY};
        rc = curl_easy_setopt(handle_, id, &blob);
      }
      break;
    }
    case kPostFields: {
      // Copied, binary-safe: the size first, then COPYPOSTFIELDS copies that many bytes.
      if (isNull) {
        curl_easy_setopt(handle_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(-1));
        rc = curl_easy_setopt(handle_, CURLOPT_POSTFIELDS, static_cast<char*>(nullptr));
      } else {
        Napi::Buffer<char> buffer = value.As<Napi::Buffer<char>>();
        static char empty[1] = {0};
        curl_easy_setopt(handle_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(buffer.Length()));
        rc = curl_easy_setopt(handle_, CURLOPT_COPYPOSTFIELDS, buffer.Length() ? buffer.Data() : empty);
      }
      break;
    }
    default:
      Napi::TypeError::New(env, "internal: unknown option kind").ThrowAsJavaScriptException();
      return env.Undefined();
  }
  return Napi::Number::New(env, rc);
}

// attachSlots(slots): the array TS keeps the callback functions and data in
// ([fn0, data0, fn1, data1, ..., fault]), once per wrapper. TS writes it
// directly, so setting a callback costs no element writes through napi.
Napi::Value Easy::AttachSlots(const Napi::CallbackInfo& info) {
  // Weak: the array is a property of the wrapper, which the user's Easy
  // holds, and the Ref() of a transfer in flight (the only time libcurl calls
  // these). A strong reference would be a GC root, and a callback that uses
  // its own Easy would keep both alive for ever.
  slots_ = Napi::Weak(info[1].As<Napi::Object>());
  return info.Env().Undefined();
}

// setCallback(kind, on, closeHook?): TS has written the kind's slots already.
// For CLOSESOCKETFUNCTION, `closeHook` is a new [fn, data] array.
Napi::Value Easy::SetCallback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kind = info[1].As<Napi::Number>().Int32Value();
  bool on = info[2].ToBoolean().Value();
  if (kind < 0 || kind >= kCallbackKinds) {
    Napi::TypeError::New(env, "internal: unknown callback kind").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (kTransferTimeCallbacks & (1u << kind)) {
    // Their bits come with each transfer (Multi's add), which would overwrite these.
    Napi::TypeError::New(env, "internal: this callback kind is set with each transfer, not here").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (on) callbacksSet_ |= (1u << kind);
  else callbacksSet_ &= ~(1u << kind);
  if (kind == kCloseSocket) {
    // A new hook: connections opened earlier keep the one they were made with.
    if (closeHook_) closeHook_->owner = nullptr;
    closeHook_.reset();
    if (on) SetCloseHook(info[3].As<Napi::Object>());
  }
  ApplyCallbackOption(kind, on);
  return env.Undefined();
}

// getinfo(id): the type comes from the id's CURLINFO_TYPEMASK bits.
Napi::Value Easy::Getinfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CURLINFO id = static_cast<CURLINFO>(info[1].As<Napi::Number>().Int32Value());
  CURLcode rc = CURLE_OK;
  Napi::Value result = env.Null();
  switch (id & CURLINFO_TYPEMASK) {
    case CURLINFO_STRING: {
      char* s = nullptr;
      rc = curl_easy_getinfo(handle_, id, &s);
      if (rc == CURLE_OK && s) result = Napi::String::New(env, s);
      break;
    }
    case CURLINFO_LONG: {
      long v = 0;
      rc = curl_easy_getinfo(handle_, id, &v);
      result = Napi::Number::New(env, static_cast<double>(v));
      break;
    }
    case CURLINFO_DOUBLE: {
      double v = 0;
      rc = curl_easy_getinfo(handle_, id, &v);
      result = Napi::Number::New(env, v);
      break;
    }
    case CURLINFO_OFF_T: {
      curl_off_t v = 0;
      rc = curl_easy_getinfo(handle_, id, &v);
      result = Napi::Number::New(env, static_cast<double>(v));
      break;
    }
    case CURLINFO_SOCKET: {
      curl_socket_t v = CURL_SOCKET_BAD;
      rc = curl_easy_getinfo(handle_, id, &v);
      result = Napi::Number::New(env, v);
      break;
    }
    case CURLINFO_SLIST: {
      curl_slist* list = nullptr;
      rc = curl_easy_getinfo(handle_, id, &list);
      Napi::Array array = Napi::Array::New(env);
      uint32_t i = 0;
      for (curl_slist* item = list; item; item = item->next) array.Set(i++, Napi::String::New(env, item->data));
      curl_slist_free_all(list);
      result = array;
      break;
    }
    default:
      rc = CURLE_UNKNOWN_OPTION;
  }
  if (rc != CURLE_OK) {
    Napi::Object failure = Napi::Object::New(env);
    failure.Set("curlCode", Napi::Number::New(env, rc));
    return failure;
  }
  return result;
}

// reset(hard): hard is Easy#reset (the handed socket goes too); soft is the
// first step of restoring one option's default, after which TS sets the
// remaining options again.
Napi::Value Easy::Reset(const Napi::CallbackInfo& info) {
  bool hard = info[1].ToBoolean().Value();
  if (hard) ClearHandedSocket();
  ResetHandle(handle_);
  for (auto& entry : slists_) curl_slist_free_all(entry.second);
  slists_.clear();
  userUnixPathSet_ = false;
  userUnixPath_.clear();
  connectOnly_ = false;
  InstallOwnedOptions();
  ApplyDefaults();
  if (privatePathActive_) curl_easy_setopt(handle_, CURLOPT_UNIX_SOCKET_PATH, privatePath_.c_str());
  return info.Env().Undefined();
}

// duphandle(newNativeEasy): copies this handle's options into the given,
// freshly constructed NativeEasy (so the wrap is made by JS as usual).
Napi::Value Easy::Duphandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Easy* target = FromId(env, info[1]);
  if (target == nullptr || target->handle_ == nullptr) {
    Napi::Error::New(env, "duphandle: the target Easy is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  CURL* copy = curl_easy_duphandle(handle_);
  if (copy == nullptr) {
    Napi::Error::New(env, "curl_easy_duphandle failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  state_->handlePool.Give(target->handle_);  // the copy's fresh handle, unused
  target->handle_ = copy;
  target->poolableHandle_ = poolableHandle_;
  target->CopyStateFrom(*this);
  return env.Undefined();
}

void Easy::SetCloseHook(Napi::Object pair) {
  auto hook = std::make_shared<CloseHook>();
  hook->state = state_;
  hook->owner = this;
  hook->slots = Napi::Weak(pair);  // TS keeps the pair in the user's Easy; claims make it strong
  closeHook_ = std::move(hook);
}

CloseHookClaim::CloseHookClaim(std::shared_ptr<CloseHook> hook) : hook_(std::move(hook)) {
  if (hook_ && hook_->claims++ == 0) hook_->slots.Ref();
}

CloseHookClaim& CloseHookClaim::operator=(CloseHookClaim&& other) noexcept {
  if (this != &other) {
    Release();
    hook_ = std::move(other.hook_);
  }
  return *this;
}

void CloseHookClaim::Release() {
  if (!hook_) return;
  // At teardown the reference is about to be deleted: no napi call then.
  if (--hook_->claims == 0 && !hook_->state->tearingDown) hook_->slots.Unref();
  hook_.reset();
}

// The user's own UNIX_SOCKET_PATH (or none), once a private pool key is gone.
void Easy::ApplyUserUnixPath() {
  curl_easy_setopt(handle_, CURLOPT_UNIX_SOCKET_PATH, userUnixPathSet_ ? userUnixPath_.c_str() : nullptr);
}

void Easy::CopyStateFrom(const Easy& other) {
  // slists are shared by pointer after curl_easy_duphandle: give the copy its own.
  for (auto& entry : other.slists_) {
    curl_slist* list = nullptr;
    for (curl_slist* item = entry.second; item; item = item->next) list = curl_slist_append(list, item->data);
    slists_[entry.first] = list;
    curl_easy_setopt(handle_, static_cast<CURLoption>(entry.first), list);
  }
  // TS has attached the copy's slots (a copy of the original's) already, and
  // gives it a close hook of its own after this.
  callbacksSet_ = other.callbacksSet_;
  userUnixPathSet_ = other.userUnixPathSet_;
  userUnixPath_ = other.userUnixPath_;
  connectOnly_ = other.connectOnly_;
  if (other.privatePathActive_) ApplyUserUnixPath();  // the private pool key belongs to the original's handed socket
  InstallOwnedOptions();
}

// close(): true when the handle is freed now (not deferred until libcurl returns).
Napi::Value Easy::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ == nullptr || closeRequested_) return Napi::Boolean::New(env, false);
  closeRequested_ = true;
  if (multi_ != nullptr) RequestCancel(kEndedByEasyClose);
  if (state_->InLibcurl() || state_->settling) {
    // Called from inside a libcurl callback: finish after libcurl returns.
    state_->deferredEasyCloses.push_back(this);
    return Napi::Boolean::New(env, false);
  }
  if (multi_ != nullptr) {
    multi_->CancelNow(this);
    state_->Settle(env);  // rejects the transfer before the handle goes
  }
  Destroy();
  return Napi::Boolean::New(env, true);  // closed now: the wrapper may be reopened
}

// reopen(): makes a wrapper whose close() returned true the wrapper of a new
// Easy. A new Easy per request then skips napi_wrap, and the GC has no weak
// reference and finalizer to process for it.
Napi::Value Easy::Reopen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ != nullptr || multi_ != nullptr) {
    Napi::Error::New(env, "reopen: the handle is still open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Open(env);
  return env.Undefined();
}

void Easy::Destroy() {
  if (handle_ == nullptr) return;
  // Only a handle libcurl has let go of is kept (a transfer closed midway has
  // been removed from its multi by now, as an aborted one that is reused is).
  bool keep = poolableHandle_ && multi_ == nullptr && !state_->tearingDown;
  if (multi_ != nullptr) multi_->Detach(this);
  into_.Release(state_->claimedMemory);
  ClearHandedSocket();
  {
    LibcurlCall call(state_.get());
    if (keep) state_->handlePool.Give(handle_);
    else curl_easy_cleanup(handle_);
  }
  handle_ = nullptr;
  for (auto& entry : slists_) curl_slist_free_all(entry.second);
  slists_.clear();
  if (closeHook_) closeHook_->owner = nullptr;
  closeHook_.reset();  // ClearHandedSocket above already unlinked a handed socket from this Easy
  state_->easies.erase(this);
  auto& deferred = state_->deferredEasyCloses;  // no dangling pointer left behind
  deferred.erase(std::remove(deferred.begin(), deferred.end(), this), deferred.end());
  // slots_ stays: the array belongs to the wrapper, and TS empties it before
  // the wrapper serves a new Easy.
  body_.Clear();
  LeaveTransferContext();
}

// useConnectedSocket(fd): the next connection uses this connected socket.
// A unique UNIX_SOCKET_PATH keys that connection in the pool so no other
// handle can be given it, and libcurl neither resolves nor connects.
Napi::Value Easy::UseConnectedSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[1].As<Napi::Number>().Int32Value();
  // The binding closes this fd later: it must be a socket nobody else will
  // close (stdio, a socket libcurl still holds, another Easy's handed one).
  if (int err = NotOwnSocketError(fd)) {
    SystemError(env, err, "useConnectedSocket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool handedElsewhere = false;
  for (Easy* other : state_->easies) handedElsewhere = handedElsewhere || (other != this && other->handedFd_ == fd);
  if (handedElsewhere || OwnedByLibcurl(state_.get(), fd)) {
    Napi::Error error = Napi::Error::New(env, "useConnectedSocket: fd " + std::to_string(fd) +
        (handedElsewhere ? " is already handed to another Easy" : " belongs to libcurl (a connection it still holds)"));
    error.Set("code", Napi::String::New(env, "ERR_SOCKET_OWNED_BY_LIBCURL"));
    error.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (handedFd_ != CURL_SOCKET_BAD && handedFd_ != fd) close(handedFd_);
  // The connection of an earlier handed socket is keyed by the private path
  // replaced below, so nothing could use it again: end it now, and keep at
  // most one socket that points back at this Easy.
  ReleaseHandedConnection();
  handedFd_ = fd;
  poolableHandle_ = false;  // the private pool key and its connection stay this handle's
  std::string key = "/nonexistent/curl-sockets/connected-socket-" + std::to_string(getpid()) + "-" +
                    std::to_string(++privatePathCounter);
  curl_easy_setopt(handle_, CURLOPT_UNIX_SOCKET_PATH, key.c_str());
  privatePath_ = key;
  privatePathActive_ = true;
  restoreUnixPath_ = false;
  return env.Undefined();
}

void Easy::HandedSocketClosed() {
  handedInUse_ = CURL_SOCKET_BAD;
  if (privatePathActive_) restoreUnixPath_ = true;  // applied before the next transfer
}

void Easy::ReleaseHandedConnection() {
  if (handedInUse_ == CURL_SOCKET_BAD) return;
  // libcurl still holds the connection in its pool; shut it down so the
  // peer sees it closed and libcurl drops it as dead.
  shutdown(handedInUse_, SHUT_RDWR);
  auto it = state_->openSockets.find(handedInUse_);
  if (it != state_->openSockets.end() && it->second.handedBy == this) it->second.handedBy = nullptr;
  handedInUse_ = CURL_SOCKET_BAD;
}

void Easy::ClearHandedSocket() {
  if (handedFd_ != CURL_SOCKET_BAD) {
    close(handedFd_);
    handedFd_ = CURL_SOCKET_BAD;
  }
  ReleaseHandedConnection();
  if (privatePathActive_ && handle_ != nullptr) ApplyUserUnixPath();
  privatePathActive_ = false;
  restoreUnixPath_ = false;
}

// dropConnectedSocket(): forgets a handed socket (closing it, or shutting
// down its pooled connection); IpPolicy#apply uses it.
Napi::Value Easy::DropConnectedSocket(const Napi::CallbackInfo& info) {
  ClearHandedSocket();
  return info.Env().Undefined();
}

void Easy::RequestCancel(int reason) {
  if (cancelReason_ == kEndedByLibcurl) cancelReason_ = reason;
  if (multi_ != nullptr) multi_->NoteCancel();
}

void Easy::Started(Multi* multi) {
  multi_ = multi;
  body_.Clear();
  headers_.clear();
  streamedBytes_ = 0;
  bodyTooLarge_ = false;
  outOfMemory_ = false;
  hasFault_ = false;
  failTransfer_ = false;
  cancelReason_ = kEndedByLibcurl;
  errorBuffer_[0] = '\0';
  if (restoreUnixPath_) {
    ApplyUserUnixPath();
    privatePathActive_ = false;
    restoreUnixPath_ = false;
  }
  if (callbacksSet_ != 0) EnterTransferContext();
  Ref();
}

void Easy::Finished() {
  multi_ = nullptr;
  into_.Release(state_->claimedMemory);
  LeaveTransferContext();
  if (!state_->tearingDown) {
    Unref();
  }
}

void Easy::EnterTransferContext() {
  LeaveTransferContext();
  napi_env env = Env();
  if (napi_async_init(env, nullptr, Napi::String::New(env, "curl-sockets:transfer"), &transferContext_) != napi_ok) {
    transferContext_ = nullptr;  // callbacks then run in the Multi's context
  }
}

void Easy::LeaveTransferContext() {
  if (transferContext_ == nullptr) return;
  // The destroy hook needs a live environment.
  if (state_->CanCallJs()) napi_async_destroy(Env(), transferContext_);
  transferContext_ = nullptr;
}

void Easy::RecordFault(Napi::Value error) {
  if (hasFault_) return;  // the first fault explains the failure
  hasFault_ = true;
  Slots().Set(static_cast<uint32_t>(kFaultSlot), error);
}

// Hands a finished transfer to TS: onTransferDone(wrapper, code, reason,
// message, body, headers, primaryIp, localIp, cause, multiCause).
void Easy::Deliver(Napi::Env env, CURLcode code, int reason, Napi::Value multiCause) {
  AddonState* s = state_.get();
  Napi::HandleScope scope(env);
  // libcurl's own message would describe the write error the limit caused.
  bool overLimit = bodyTooLarge_ && (code == CURLE_WRITE_ERROR || code == CURLE_OK);
  if (overLimit) code = CURLE_FILESIZE_EXCEEDED;
  if (outOfMemory_ && code != CURLE_OK) code = CURLE_OUT_OF_MEMORY;
  outOfMemory_ = false;
  if (failTransfer_ && code == CURLE_OK) code = CURLE_ABORTED_BY_CALLBACK;
  // Only a successful transfer's body is used.
  Napi::Value body = env.Undefined();
  if (code == CURLE_OK && reason == kEndedByLibcurl) {
    // With `into`, a number always means "in into": no scratch then.
    bool into = into_.Active();
    if (into && body_.Size() == 0) {
      body_.Clear();
      body = Napi::Number::New(env, 0);  // no bytes came: an empty view of `into`
    } else {
      body = body_.Take(env, into ? nullptr : s->bodyScratch.data(), into ? 0 : s->bodyScratch.size(), s->bodyPool.get());
    }
    if (body.IsEmpty()) {
      body = env.Undefined();
      code = CURLE_OUT_OF_MEMORY;
    }
  } else {
    body_.Clear();
  }
  double* out = s->infoScratch.data();
  char* primaryIp = nullptr;
  char* localIp = nullptr;
  if (s->infoScratch.size() >= static_cast<size_t>(kInfoCount)) {
    out[kStatus] = LongInfo(handle_, CURLINFO_RESPONSE_CODE);
    out[kPrimaryPort] = LongInfo(handle_, CURLINFO_PRIMARY_PORT);
    out[kLocalPort] = LongInfo(handle_, CURLINFO_LOCAL_PORT);
    out[kNumConnects] = LongInfo(handle_, CURLINFO_NUM_CONNECTS);
    out[kRedirectCount] = LongInfo(handle_, CURLINFO_REDIRECT_COUNT);
    out[kOsErrno] = LongInfo(handle_, CURLINFO_OS_ERRNO);
    out[kNameLookup] = SecondsInfo(handle_, CURLINFO_NAMELOOKUP_TIME_T);
    out[kConnect] = SecondsInfo(handle_, CURLINFO_CONNECT_TIME_T);
    out[kAppConnect] = SecondsInfo(handle_, CURLINFO_APPCONNECT_TIME_T);
    out[kPreTransfer] = SecondsInfo(handle_, CURLINFO_PRETRANSFER_TIME_T);
    out[kStartTransfer] = SecondsInfo(handle_, CURLINFO_STARTTRANSFER_TIME_T);
    out[kTotal] = SecondsInfo(handle_, CURLINFO_TOTAL_TIME_T);
    out[kRedirect] = SecondsInfo(handle_, CURLINFO_REDIRECT_TIME_T);
    out[kHttpVersion] = LongInfo(handle_, CURLINFO_HTTP_VERSION);
    curl_off_t size = 0;
    curl_easy_getinfo(handle_, CURLINFO_SIZE_DOWNLOAD_T, &size);
    out[kSizeDownload] = static_cast<double>(size);
    curl_easy_getinfo(handle_, CURLINFO_SIZE_UPLOAD_T, &size);
    out[kSizeUpload] = static_cast<double>(size);
  }
  curl_easy_getinfo(handle_, CURLINFO_PRIMARY_IP, &primaryIp);
  curl_easy_getinfo(handle_, CURLINFO_LOCAL_IP, &localIp);

  Napi::Value message = env.Undefined();
  if (code != CURLE_OK) {
    if (overLimit) {
      char text[96];
      std::snprintf(text, sizeof text, "the response body is larger than maxBodyBytes (%.0f bytes)", maxBodyBytes_);
      message = Napi::String::New(env, text);
    } else {
      message = Napi::String::New(env, errorBuffer_[0] ? errorBuffer_ : curl_easy_strerror(code));
    }
  }
  napi_value headers;
  napi_create_string_latin1(env, headers_.data(), headers_.size(), &headers);
  Napi::Value fault = env.Undefined();
  if (hasFault_) {
    fault = Slot(kFaultSlot);
    Slots().Set(static_cast<uint32_t>(kFaultSlot), env.Undefined());
  }
  Napi::Object wrapper = Value();
  hasFault_ = false;
  failTransfer_ = false;
  headers_.clear();
  Napi::Function done = s->onTransferDone.Value();
  napi_value args[] = {
    wrapper.IsEmpty() ? env.Undefined() : Napi::Value(wrapper),
    Napi::Number::New(env, code),
    Napi::Number::New(env, reason),
    message,
    body,
    headers,
    primaryIp ? Napi::String::New(env, primaryIp) : env.Null(),
    localIp ? Napi::String::New(env, localIp) : env.Null(),
    fault,
    multiCause,
  };
  Finished();
  napi_value ignored;
  if (napi_call_function(env, env.Undefined(), done, sizeof(args) / sizeof(args[0]), args, &ignored) != napi_ok) {
    // onTransferDone does not throw; if it ever does, do not lose the error.
    if (env.IsExceptionPending()) {
      Napi::Error error = env.GetAndClearPendingException();
      napi_fatal_exception(env, error.Value());
    }
  }
}

}  // namespace cs
