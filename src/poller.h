// Poller: a uv_poll_t on the environment's loop, for applications that drive
// a 'manual' Multi themselves (the multi-uv.c pattern, in TypeScript).
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

#include "async_context.h"
#include "state.h"

namespace cs {

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Init(Napi::Env env);
  // The JS calls on a Poller: functions whose first argument is the
  // wrapper's `id` (see wrapper_ids.h), not methods.
  static Napi::Object Calls(Napi::Env env);
  static Poller* FromId(Napi::Env env, Napi::Value id);
  static constexpr const char* kGoneMessage = "Poller is closed";
  explicit Poller(const Napi::CallbackInfo& info);
  ~Poller() override;
  void Shutdown();

 private:
  struct Handle {
    uv_poll_t handle;
    StatePtr state;
    Poller* owner;
  };
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  static void OnPoll(uv_poll_t* handle, int status, int events);

  StatePtr state_;
  uint32_t id_ = 0;  // for the wrapper's life
  int fd_ = -1;
  Handle* handle_ = nullptr;
  bool active_ = false;
  Napi::ObjectReference callback_;  // weak; the wrapper's `callback` property holds it
  std::unique_ptr<OwnedAsyncContext> asyncContext_;
};

}  // namespace cs
