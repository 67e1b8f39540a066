#include "body.h"

#include <cstring>

namespace cs {

namespace {
constexpr size_t kKeepCapacity = 64 * 1024;  // a reused handle keeps up to this much
// A larger announced length grows natively instead: V8 counts a Buffer's
// full size at once, so a server announcing huge bodies and stalling would
// otherwise set off full GCs.
constexpr double kMaxDirectBytes = 64 * 1024 * 1024;
constexpr double kMaxReserveBytes = 1 << 30;
}  // namespace

void Body::Prepare(Napi::Env env, double expected, bool canAllocate) {
  Clear();
  prepared_ = true;
  if (expected <= 0) return;
  if (expected >= kDirectMinBytes && expected <= kMaxDirectBytes && canAllocate) {
    Napi::HandleScope scope(env);
    // Uninitialized memory: Take() never hands out bytes that were not written.
    napi_value value;
    void* data = nullptr;
    if (napi_create_buffer(env, static_cast<size_t>(expected), &data, &value) == napi_ok) {
      buffer_ = Napi::Persistent(Napi::Buffer<char>(env, value));
      direct_ = static_cast<char*>(data);
      directCapacity_ = static_cast<size_t>(expected);
      directSize_ = 0;
      return;
    }
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
  }
  if (expected <= kMaxReserveBytes) bytes_.reserve(static_cast<size_t>(expected));
}

void Body::Append(const char* data, size_t length) {
  if (direct_ != nullptr) {
    if (length <= directCapacity_ - directSize_) {
      std::memcpy(direct_ + directSize_, data, length);
      directSize_ += length;
      return;
    }
    // More than announced (a decoded Content-Encoding): go on natively.
    LeaveDirect();
  }
  bytes_.insert(bytes_.end(), data, data + length);
}

void Body::LeaveDirect() {
  bytes_.assign(direct_, direct_ + directSize_);
  direct_ = nullptr;
  directSize_ = directCapacity_ = 0;
  buffer_.Reset();
}

Napi::Value Body::Take(Napi::Env env, char* scratch, size_t scratchLength) {
  if (direct_ != nullptr) {
    Napi::Value result;
    if (directSize_ == directCapacity_) {
      result = buffer_.Value();
    } else {
      // Short (a failed transfer): copy, so the unwritten rest never reaches JS.
      result = Napi::Buffer<char>::Copy(env, direct_, directSize_);
    }
    Clear();
    return result;
  }
  Napi::Value result;
  if (scratch != nullptr && bytes_.size() <= scratchLength) {
    if (!bytes_.empty()) std::memcpy(scratch, bytes_.data(), bytes_.size());
    result = Napi::Number::New(env, static_cast<double>(bytes_.size()));
  } else {
    result = Napi::Buffer<char>::Copy(env, bytes_.data(), bytes_.size());
  }
  Clear();
  return result;
}

void Body::Clear() {
  prepared_ = false;
  direct_ = nullptr;
  directSize_ = directCapacity_ = 0;
  if (!buffer_.IsEmpty()) buffer_.Reset();
  bytes_.clear();  // keeps the capacity for the next transfer on this handle
  if (bytes_.capacity() > kKeepCapacity) bytes_ = std::vector<char>();
}

}  // namespace cs
