#include "poller.h"

#include <curl/curl.h>
#include <fcntl.h>

#include <cerrno>

namespace cs {

Napi::Function Poller::Init(Napi::Env env) {
  return DefineClass(env, "NativePoller", {});
}

Napi::Object Poller::Calls(Napi::Env env) {
  Napi::Object calls = Napi::Object::New(env);
  AddCall<Poller, &Poller::Start>(calls, "start");
  AddCall<Poller, &Poller::Stop>(calls, "stop");
  AddCall<Poller, &Poller::Close>(calls, "close");
  return calls;
}

Poller* Poller::FromId(Napi::Env env, Napi::Value id) {
  return StateOf(env)->pollerIds.Find(env, id);
}

// new NativePoller(fd)
Poller::Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
  Napi::Env env = info.Env();
  state_ = GetState(env);
  id_ = state_->pollerIds.Add(this, info.This().As<Napi::Object>());
  // The creator's async context, for the callback this Poller runs from uv events.
  asyncContext_ = std::make_unique<OwnedAsyncContext>(env, "curl-sockets:Poller");
  if (!asyncContext_->ok()) {
    Napi::Error::New(env, "Poller: Node-API could not make an async context").ThrowAsJavaScriptException();
    return;
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  fd_ = fd;
  auto handle = std::make_unique<Handle>();
  handle->state = state_;
  handle->owner = this;
  int rc = uv_poll_init_socket(state_->loop, &handle->handle, fd);
  if (rc != 0) {
    SystemError(env, -rc, "uv_poll_init").ThrowAsJavaScriptException();
    return;
  }
  handle->handle.data = handle.get();
  handle_ = handle.release();  // owned until CloseAndDelete
  state_->pollers.insert(this);
}

Poller::~Poller() {
  NoJsScope noJs(state_.get());
  Shutdown();
  state_->pollerIds.Remove(id_);
  if (state_->tearingDown && asyncContext_) asyncContext_->Abandon();
}

void Poller::Shutdown() {
  if (handle_ == nullptr) return;
  uv_poll_stop(&handle_->handle);
  handle_->owner = nullptr;
  CloseAndDelete(handle_, state_.get());
  handle_ = nullptr;
  if (active_ && !state_->tearingDown && state_->noJsDepth == 0) Unref();
  active_ = false;
  callback_.Reset();
  state_->pollers.erase(this);
}

// start(events: CURL_CSELECT_IN | CURL_CSELECT_OUT bits, callback(status, events))
Napi::Value Poller::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ == nullptr) {
    Napi::Error::New(env, "Poller is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // libuv adds the fd to epoll only on the next loop iteration, and aborts
  // the process if it is not open by then; and a second started Poller on
  // the same fd would silently take the first one's place.
  if (fcntl(fd_, F_GETFD) == -1) {
    SystemError(env, EBADF, "uv_poll_start").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (Poller* other : state_->pollers) {
    if (other != this && other->active_ && other->fd_ == fd_) {
      SystemError(env, EEXIST, "uv_poll_start").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  int wanted = info[1].As<Napi::Number>().Int32Value();
  int events = 0;
  if (wanted & CURL_CSELECT_IN) events |= UV_READABLE;
  if (wanted & CURL_CSELECT_OUT) events |= UV_WRITABLE;
  // Held by the wrapper: a callback that uses its own Poller must not keep a
  // stopped one alive for ever (an active one is Ref()'d).
  callback_ = HeldByWrapper(Value(), "callback", info[2].As<Napi::Object>());
  int rc = uv_poll_start(&handle_->handle, events, &Poller::OnPoll);
  if (rc != 0) {
    SystemError(env, -rc, "uv_poll_start").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!active_) Ref();  // a watching Poller keeps its JS object alive
  active_ = true;
  return env.Undefined();
}

Napi::Value Poller::Stop(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr) uv_poll_stop(&handle_->handle);
  if (active_) Unref();
  active_ = false;
  return info.Env().Undefined();
}

Napi::Value Poller::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  Value().Set("callback", info.Env().Undefined());
  return info.Env().Undefined();
}

void Poller::OnPoll(uv_poll_t* handle, int status, int events) {
  Handle* h = static_cast<Handle*>(handle->data);
  Poller* self = h->owner;
  if (self == nullptr || !self->state_->CanCallJs() || self->callback_.IsEmpty()) return;
  Napi::Env env = self->Env();
  Napi::HandleScope handleScope(env);
  Napi::CallbackScope callbackScope(env, OpenCallbackScope(env, self->state_.get(), *self->asyncContext_));
  EntryScopeCount entry(self->state_.get(), *self->asyncContext_);
  int flags = 0;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  napi_value args[] = {Napi::Number::New(env, status < 0 ? status : 0), Napi::Number::New(env, flags)};
  napi_value result;
  Napi::Object fn = self->callback_.Value();
  if (fn.IsEmpty()) return;
  if (CallInEntry(env, self->state_.get(), nullptr, fn, 2, args, &result) != napi_ok) {
    Napi::Value error = TakeException(env);
    if (!error.IsEmpty()) napi_fatal_exception(env, error);  // like any other event callback: uncaughtException
  }
}

}  // namespace cs
