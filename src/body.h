// The response body of one transfer, kept natively and handed to JS once.
//
// A body whose Content-Length is known and large is written straight into the
// Buffer JS will get, saving a second copy of every byte. Other bodies grow in
// a native vector and are copied out at the end. A large body's Buffer is
// made over BodyPool memory, which is reused once V8 frees the Buffer.
#pragma once

#include <napi.h>

#include <cstddef>
#include <vector>

#include "body_pool.h"

namespace cs {

class Body {
 public:
  // From this Content-Length up the body goes straight into its Buffer.
  static constexpr size_t kDirectMinBytes = BodyPool::kMinBytes;

  size_t Size() const { return direct_ != nullptr ? directSize_ : bytes_.size(); }
  // Whether Prepare ran for this transfer.
  bool Prepared() const { return prepared_; }

  // Called before the first Append of a transfer with the announced length
  // (or -1). `pool`: where a large body's Buffer comes from, or null when JS
  // objects may not be made now.
  void Prepare(Napi::Env env, double expected, BodyPool* pool);
  void Append(const char* data, size_t length);

  // The body as a Buffer, or, when it fits into `scratch`, copied there and
  // given as its length (TS makes the Buffer: cheaper than napi for a few
  // bytes), or empty when there was no memory for it. The object is empty
  // again afterwards.
  Napi::Value Take(Napi::Env env, char* scratch, size_t scratchLength, BodyPool* pool);
  void Clear();

 private:
  void LeaveDirect();

  std::vector<char> bytes_;
  // A Buffer of `length` bytes from the pool (or V8 when the pool has none),
  // with *data set to its bytes; empty on failure, no exception pending.
  static Napi::Value NewBuffer(Napi::Env env, size_t length, BodyPool* pool, char** data);

  Napi::Reference<Napi::Value> buffer_;  // set while writing directly
  char* direct_ = nullptr;
  size_t directSize_ = 0;
  size_t directCapacity_ = 0;
  bool prepared_ = false;
};

}  // namespace cs
