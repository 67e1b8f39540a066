// Memory for large response bodies, reused once V8 has freed their Buffers.
//
// Why: a body must live until V8 collects its Buffer, which frees bodies in
// batches. Given back to glibc, a batch lands at the top of the heap and is
// returned to the kernel, so the next bodies fault in and zero fresh pages:
// that doubled the CPU time per MiB against a C client, which frees each body
// at once and gets the same memory back. Blocks from this pool are mapped
// once and handed out again, and blocks nobody took for a while are unmapped,
// so RSS still falls after a burst.
//
// One pool per environment (AddonState). Every Buffer made here holds the pool
// alive, so a Buffer freed after teardown unmaps its block safely.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

namespace cs {

struct AddonState;

class BodyPool : public std::enable_shared_from_this<BodyPool> {
 public:
  // Bodies from this size up come from the pool; smaller ones from V8's allocator.
  static constexpr size_t kMinBytes = 64 * 1024;
  // Free blocks kept for reuse, at most, in bytes.
  static constexpr size_t kMaxCachedBytes = 64 * 1024 * 1024;
  // A free block nobody took for a whole period of this is unmapped.
  static constexpr uint64_t kIdleMs = 1000;

  BodyPool(uv_loop_t* loop, std::weak_ptr<AddonState> state) : loop_(loop), state_(std::move(state)) {}
  ~BodyPool();
  BodyPool(const BodyPool&) = delete;
  BodyPool& operator=(const BodyPool&) = delete;

  // Pooled memory, held natively until it is made into a Buffer or released.
  struct Block {
    void* data = nullptr;
    size_t capacity = 0;
  };
  // A block of at least `length` bytes (uninitialized); data is null when
  // none could be had (no memory, or the pool is shut down).
  Block Lease(size_t length);
  // Gives back a block that never became a Buffer.
  void Release(Block block);
  // A Buffer of the block's first `length` bytes. On success the Buffer owns
  // the block (it comes back when V8 frees the Buffer); on failure (a runtime
  // that forbids external buffers) the caller still does, and the value is
  // empty with no exception pending.
  Napi::Value Wrap(Napi::Env env, Block block, size_t length);
  // Lease and Wrap in one, with `*data` set to the bytes.
  Napi::Value NewBuffer(Napi::Env env, size_t length, char** data);
  // Teardown: unmaps the free blocks and stops the idle timer; Buffers still
  // alive unmap their blocks when they are freed.
  void Shutdown(AddonState* state);

  struct Stats {
    double mapped = 0;       // blocks mapped so far
    double reused = 0;       // blocks handed out again
    double cachedBytes = 0;  // bytes in free blocks now
    double liveBytes = 0;    // bytes of the blocks held by Buffers or transfers now
  };
  Stats GetStats() const;

 private:
  struct Holder;
  struct IdleTimer;
  // Free blocks of one capacity, newest last. `untouched` counts the oldest
  // ones nobody took since the last idle check.
  struct FreeList {
    std::vector<void*> blocks;
    size_t untouched = 0;
  };

  static size_t Capacity(size_t length);
  static void Finalize(napi_env env, void* data, void* hint);
  void* Take(size_t capacity);
  void Give(void* block, size_t capacity);
  void StartIdleTimer();
  void ReleaseIdle();
  void UnmapFree();

  uv_loop_t* loop_;
  std::weak_ptr<AddonState> state_;  // for the idle timer's uv close accounting
  std::unordered_map<size_t, FreeList> free_;
  size_t cachedBytes_ = 0;
  IdleTimer* timer_ = nullptr;  // owned by libuv once started; closed by Shutdown
  bool shutDown_ = false;
  Stats stats_;
};

}  // namespace cs
