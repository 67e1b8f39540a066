#include "caller_memory.h"

#include <algorithm>

namespace cs {

bool CallerMemory::Claim(Napi::Env env, napi_value view, std::vector<CallerMemory*>& claimed) {
  Release(claimed);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  bool isTypedArray = false;
  if (napi_is_typedarray(env, view, &isTypedArray) != napi_ok || !isTypedArray ||
      napi_get_typedarray_info(env, view, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array) {
    return false;
  }
  uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  uintptr_t end = begin + length;
  for (const CallerMemory* other : claimed) {
    if (begin < other->end_ && other->begin_ < end) {
      return false;
    }
  }
  view_ = Napi::Reference<Napi::Value>::New(Napi::Value(env, view), 1);
  begin_ = begin;
  end_ = end;
  claimed.push_back(this);
  return true;
}

void CallerMemory::Release(std::vector<CallerMemory*>& claimed) {
  if (!Active()) return;
  auto it = std::find(claimed.begin(), claimed.end(), this);
  if (it != claimed.end()) {
    *it = claimed.back();
    claimed.pop_back();
  }
  view_.Reset();
  begin_ = end_ = 0;
}

bool CallerMemory::CurrentBytes(Napi::Env env, char** data, size_t* length) const {
  Napi::HandleScope scope(env);
  Napi::Value view = view_.Value();
  if (view.IsEmpty()) return false;
  napi_typedarray_type type;
  void* bytes = nullptr;
  size_t count = 0;
  // A detached view reads as length 0 (and no data), a shrunk one as its new length.
  if (napi_get_typedarray_info(env, view, &type, &count, &bytes, nullptr, nullptr) != napi_ok) return false;
  *data = static_cast<char*>(bytes);
  *length = bytes == nullptr ? 0 : count;
  return true;
}

}  // namespace cs
