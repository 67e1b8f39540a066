// Numbers for native wrappers, so that a hot JS call can name its wrapper by
// an id instead of being a method on it: node-addon-api finds a method's
// `this` with napi_unwrap, which reads a private symbol through V8's runtime
// (about 800 instructions), and a new Easy per request made ten such calls.
// An id that is not (or no longer) in the table finds nothing, never a
// freed wrapper.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

namespace cs {

template <typename T>
class WrapperIds {
 public:
  // Freed ids are given out again, so the table stays as large as the most
  // wrappers alive at once.
  uint32_t Add(T* wrapper) {
    if (!free_.empty()) {
      uint32_t id = free_.back();
      free_.pop_back();
      wrappers_[id] = wrapper;
      return id;
    }
    wrappers_.push_back(wrapper);
    return static_cast<uint32_t>(wrappers_.size() - 1);
  }

  // Add, and shows the id to JS as the read-only `id` property of `self`
  // (the wrapper's JS object).
  uint32_t Add(T* wrapper, Napi::Object self) {
    uint32_t id = Add(wrapper);
    self.DefineProperty(Napi::PropertyDescriptor::Value("id", Napi::Number::New(self.Env(), id), napi_enumerable));
    return id;
  }

  void Remove(uint32_t id) {
    if (id >= wrappers_.size() || wrappers_[id] == nullptr) return;
    wrappers_[id] = nullptr;
    free_.push_back(id);
  }

  T* Find(uint32_t id) const { return id < wrappers_.size() ? wrappers_[id] : nullptr; }

  // The wrapper a JS value names: exactly one of the ids given out.
  T* Find(napi_env env, napi_value id) const {
    double n = -1;
    if (napi_get_value_double(env, id, &n) != napi_ok || !(n >= 0 && n < 4294967296.0)) return nullptr;
    uint32_t index = static_cast<uint32_t>(n);
    return index == n ? Find(index) : nullptr;
  }

 private:
  std::vector<T*> wrappers_;
  std::vector<uint32_t> free_;
};

// A JS function that calls `Method` on the wrapper its first argument names
// (T::FromId). When there is none, it throws T::kGoneMessage.
template <typename T, Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
Napi::Value CallById(const Napi::CallbackInfo& info) {
  T* wrapper = T::FromId(info.Env(), info[0]);
  if (wrapper == nullptr) {
    Napi::Error::New(info.Env(), T::kGoneMessage).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return (wrapper->*Method)(info);
}

// Adds the JS function `name` to `calls`: Method on the wrapper named by the
// function's first argument.
template <typename T, Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
void AddCall(Napi::Object calls, const char* name) {
  calls.Set(name, Napi::Function::New<CallById<T, Method>>(calls.Env(), name));
}

}  // namespace cs
