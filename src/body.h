// The response body of one transfer, kept natively and handed to JS once.
//
// A body whose Content-Length is known and large is written straight into the
// Buffer JS will get (allocated by V8, so minor GCs reclaim it), saving a
// second copy of every byte and a second set of fresh pages to fault in.
// Other bodies grow in a native vector and are copied out at the end.
#pragma once

#include <napi.h>

#include <cstddef>
#include <vector>

namespace cs {

class Body {
 public:
  // From this Content-Length up the body goes straight into its Buffer.
  static constexpr size_t kDirectMinBytes = 64 * 1024;

  size_t Size() const { return direct_ != nullptr ? directSize_ : bytes_.size(); }
  // Whether Prepare ran for this transfer.
  bool Prepared() const { return prepared_; }

  // Called before the first Append of a transfer with the announced length
  // (or -1). `canAllocate`: whether JS objects may be made now.
  void Prepare(Napi::Env env, double expected, bool canAllocate);
  void Append(const char* data, size_t length);

  // The body as a Buffer, or, when it fits into `scratch`, copied there and
  // given as its length (TS makes the Buffer: cheaper than napi for a few
  // bytes). The object is empty again afterwards.
  Napi::Value Take(Napi::Env env, char* scratch, size_t scratchLength);
  void Clear();

 private:
  void LeaveDirect();

  std::vector<char> bytes_;
  Napi::Reference<Napi::Buffer<char>> buffer_;  // set while writing directly
  char* direct_ = nullptr;
  size_t directSize_ = 0;
  size_t directCapacity_ = 0;
  bool prepared_ = false;
};

}  // namespace cs
