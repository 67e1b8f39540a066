// Numbers for native wrappers, so that a hot JS call can name its wrapper by
// an id instead of being a method on it: node-addon-api finds a method's
// `this` with napi_unwrap, which reads a private symbol through V8's runtime
// (about 800 instructions), and a new Easy per request made ten such calls.
// An id that is not (or no longer) in the table finds nothing, never a
// freed wrapper.
#pragma once

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

  void Remove(uint32_t id) {
    if (id >= wrappers_.size() || wrappers_[id] == nullptr) return;
    wrappers_[id] = nullptr;
    free_.push_back(id);
  }

  T* Find(uint32_t id) const { return id < wrappers_.size() ? wrappers_[id] : nullptr; }

 private:
  std::vector<T*> wrappers_;
  std::vector<uint32_t> free_;
};

}  // namespace cs
