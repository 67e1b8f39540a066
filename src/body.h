// The response body of one transfer, kept natively and handed to JS once.
//
// A body whose Content-Length is known and large is written straight into
// BodyPool memory that becomes the Buffer JS gets, saving a second copy of
// every byte. Other bodies grow in a native vector and are copied out at the
// end. The Buffer is made only when the transfer ends, so V8 never sees a body
// in flight: it is young when JS gets it, and dies young when JS drops it,
// however many transfers run at once. A body may also be written into memory
// the caller lends (PrepareInto); one that outgrows it goes on natively.
#pragma once

#include <napi.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "body_pool.h"

namespace cs {

class Body {
 public:
  // From this Content-Length up the body goes straight into pool memory.
  static constexpr size_t kDirectMinBytes = BodyPool::kMinBytes;

  Body() = default;
  ~Body() { ReleaseBlock(); }
  Body(const Body&) = delete;
  Body& operator=(const Body&) = delete;

  size_t Size() const { return direct_ != nullptr ? directSize_ : bytes_.size(); }
  // Whether Prepare ran for this transfer.
  bool Prepared() const { return prepared_; }

  // Called before the first Append of a transfer with the announced length
  // (or -1). `pool`: where a large body's memory comes from (or null).
  void Prepare(double expected, BodyPool* pool);
  // Prepare for a body written into the caller's `capacity` bytes at `data`
  // (CallerMemory). An announced length that cannot fit goes to Prepare.
  void PrepareInto(char* data, size_t capacity, double expected, BodyPool* pool);
  // Whether the body is being written into the caller's memory.
  bool InCallerMemory() const { return inCallerMemory_; }
  // Where the caller's memory is now (JS may have detached or shrunk it
  // since the last write). False when the bytes written so far are gone.
  bool Retarget(char* data, size_t capacity);
  void Append(const char* data, size_t length);

  // The body as a Buffer, or, when it fits into `scratch`, copied there and
  // given as its length (TS makes the Buffer: cheaper than napi for a few
  // bytes), or empty when there was no memory for it. A body in the caller's
  // memory is given as its length too; `scratch` is then null. The object is
  // empty again afterwards.
  Napi::Value Take(Napi::Env env, char* scratch, size_t scratchLength, BodyPool* pool);
  void Clear();

 private:
  void LeaveDirect();
  void ReleaseBlock();  // back to the pool, if one is held

  std::vector<char> bytes_;
  // A Buffer of `length` bytes from the pool (or V8 when the pool has none),
  // with *data set to its bytes; empty on failure, no exception pending.
  static Napi::Value NewBuffer(Napi::Env env, size_t length, BodyPool* pool, char** data);

  // Set while writing directly into pool memory.
  std::shared_ptr<BodyPool> pool_;
  BodyPool::Block block_;
  char* direct_ = nullptr;
  size_t directSize_ = 0;
  size_t directCapacity_ = 0;
  bool prepared_ = false;
  bool inCallerMemory_ = false;  // direct_ is the caller's (no pool block)
};

}  // namespace cs
