#pragma once

#include <napi.h>

namespace cs {

// The async context of a long-lived object (a Multi, a Poller): the async
// context its creator ran in, for the callbacks it runs from uv events.
//
// Made by napi_async_init without a resource object, so that Node makes one
// and holds it for as long as the context lives. node-addon-api's
// AsyncContext passes a new object of its own instead, which Node 20 and 22
// hold only weakly: once the GC had taken it, Node put an empty object in its
// place, and AsyncLocalStorage (which follows that object there) lost the
// creator's store. Node's own object refers to nothing of ours, so the
// wrapper that owns this context stays collectable.
class OwnedAsyncContext {
 public:
  // Null when Node could not make one (see ok()).
  OwnedAsyncContext(Napi::Env env, const char* name) : env_(env) {
    if (napi_async_init(env, nullptr, Napi::String::New(env, name), &context_) != napi_ok) context_ = nullptr;
  }
  ~OwnedAsyncContext() {
    if (context_ != nullptr) napi_async_destroy(env_, context_);
  }
  OwnedAsyncContext(const OwnedAsyncContext&) = delete;
  OwnedAsyncContext& operator=(const OwnedAsyncContext&) = delete;

  bool ok() const { return context_ != nullptr; }
  operator napi_async_context() const { return context_; }

  // Environment teardown: the destroy hook would need a live environment.
  void Abandon() { context_ = nullptr; }

 private:
  napi_env env_;
  napi_async_context context_ = nullptr;
};

}  // namespace cs
