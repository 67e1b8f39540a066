// Memory a caller lends for one transfer's body (Multi.perform's `into`): a
// Uint8Array the binding writes the body into while the transfer runs, so a
// client can reuse the same bytes for every transfer, as a C client reuses
// its buffer, instead of making a Buffer per body for V8 to free later.
//
// JS may detach the array's buffer (or shrink a resizable one) whenever it
// runs, so the bytes are looked up again before every write. Two transfers
// in flight must not write into the same bytes: Claim refuses an overlap.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cs {

class CallerMemory {
 public:
  CallerMemory() = default;
  CallerMemory(const CallerMemory&) = delete;
  CallerMemory& operator=(const CallerMemory&) = delete;

  bool Active() const { return !view_.IsEmpty(); }
  // Takes `view` (a Uint8Array) for one transfer and adds it to `claimed`,
  // the memory of every transfer in flight. False, and nothing taken, when
  // `view` is not a Uint8Array or shares bytes with memory in `claimed`.
  bool Claim(Napi::Env env, napi_value view, std::vector<CallerMemory*>& claimed);
  // Ends the claim (the transfer is over); idempotent.
  void Release(std::vector<CallerMemory*>& claimed);
  // The view's bytes as they are now (null and 0 once detached). False when
  // they cannot be read at all (the environment is going away).
  bool CurrentBytes(Napi::Env env, char** data, size_t* length) const;

 private:
  Napi::Reference<Napi::Value> view_;
  // The claimed range, as it was at Claim time.
  uintptr_t begin_ = 0;
  uintptr_t end_ = 0;
};

}  // namespace cs
