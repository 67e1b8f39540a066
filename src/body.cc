#include "body.h"

#include <cstring>

#include "state.h"

namespace cs {

namespace {
constexpr size_t kKeepCapacity = 64 * 1024;  // a reused handle keeps up to this much
// A larger announced length grows natively instead, as it arrives: the pool
// keeps no block that large for reuse, and a server that announces a huge
// body and stalls holds only what it sent.
constexpr double kMaxDirectBytes = 64 * 1024 * 1024;
}  // namespace

Napi::Value Body::NewBuffer(Napi::Env env, size_t length, BodyPool* pool, char** data) {
  if (pool != nullptr && length >= BodyPool::kMinBytes) {
    Napi::Value pooled = pool->NewBuffer(env, length, data);
    if (!pooled.IsEmpty()) return pooled;
  }
  // Uninitialized memory: Take() never hands out bytes that were not written.
  napi_value value = nullptr;
  void* bytes = nullptr;
  if (napi_create_buffer(env, length, &bytes, &value) != napi_ok) {
    TakeException(env);
    return Napi::Value();
  }
  *data = static_cast<char*>(bytes);
  return Napi::Value(env, value);
}

void Body::Prepare(double expected, BodyPool* pool) {
  Clear();
  prepared_ = true;
  if (expected <= 0) return;
  if (expected >= kDirectMinBytes && expected <= kMaxDirectBytes && pool != nullptr) {
    BodyPool::Block block = pool->Lease(static_cast<size_t>(expected));
    if (block.data != nullptr) {
      pool_ = pool->shared_from_this();
      block_ = block;
      direct_ = static_cast<char*>(block.data);
      directCapacity_ = static_cast<size_t>(expected);
      directSize_ = 0;
      return;
    }
  }
  // Not past kMaxDirectBytes either: the length is the server's word, and a
  // hostile one could announce a GiB and send ten bytes.
  if (expected <= kMaxDirectBytes) bytes_.reserve(static_cast<size_t>(expected));
}

void Body::PrepareInto(char* data, size_t capacity, double expected, BodyPool* pool) {
  if (data == nullptr || capacity == 0 || expected > static_cast<double>(capacity)) {
    Prepare(expected, pool);
    return;
  }
  Clear();
  prepared_ = true;
  inCallerMemory_ = true;
  direct_ = data;
  directCapacity_ = capacity;
  directSize_ = 0;
}

bool Body::Retarget(char* data, size_t capacity) {
  if (!inCallerMemory_) return true;
  if (directSize_ > 0 && (data != direct_ || capacity < directSize_)) return false;
  direct_ = data;
  directCapacity_ = capacity;
  return true;
}

void Body::Append(const char* data, size_t length) {
  if (direct_ != nullptr) {
    if (length <= directCapacity_ - directSize_) {
      std::memcpy(direct_ + directSize_, data, length);
      directSize_ += length;
      return;
    }
    // More than announced (a decoded Content-Encoding) or than the caller's
    // memory holds: go on natively.
    LeaveDirect();
  }
  bytes_.insert(bytes_.end(), data, data + length);
}

void Body::LeaveDirect() {
  bytes_.assign(direct_, direct_ + directSize_);
  ReleaseBlock();
}

void Body::ReleaseBlock() {
  if (pool_ != nullptr) pool_->Release(block_);
  inCallerMemory_ = false;
  pool_.reset();
  block_ = BodyPool::Block{};
  direct_ = nullptr;
  directSize_ = directCapacity_ = 0;
}

Napi::Value Body::Take(Napi::Env env, char* scratch, size_t scratchLength, BodyPool* pool) {
  const char* source = bytes_.data();
  size_t size = bytes_.size();
  Napi::Value result;
  if (inCallerMemory_) {
    result = Napi::Number::New(env, static_cast<double>(directSize_));
    Clear();
    return result;
  }
  if (direct_ != nullptr) {
    if (directSize_ == directCapacity_) {
      result = pool_->Wrap(env, block_, directSize_);
      if (!result.IsEmpty()) {
        pool_.reset();  // the Buffer owns the block now: Clear gives nothing back
        Clear();
        return result;
      }
      // No external buffers here: copied into one of V8's below.
    }
    // Short (a failed transfer): copy, so the unwritten rest never reaches JS.
    source = direct_;
    size = directSize_;
  }
  if (scratch != nullptr && size <= scratchLength) {
    if (size > 0) std::memcpy(scratch, source, size);
    result = Napi::Number::New(env, static_cast<double>(size));
  } else {
    char* data = nullptr;
    result = NewBuffer(env, size, pool, &data);
    if (result.IsEmpty()) {
      Clear();
      return result;
    }
    if (size > 0) std::memcpy(data, source, size);
  }
  Clear();
  return result;
}

void Body::Clear() {
  prepared_ = false;
  ReleaseBlock();
  bytes_.clear();  // keeps the capacity for the next transfer on this handle
  if (bytes_.capacity() > kKeepCapacity) bytes_ = std::vector<char>();
}

}  // namespace cs
