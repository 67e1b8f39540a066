#include "body_pool.h"

#include <sys/mman.h>

#include "state.h"

namespace cs {

// What a Buffer made here holds until V8 frees it.
struct BodyPool::Holder {
  std::shared_ptr<BodyPool> pool;
  size_t capacity;
};

struct BodyPool::IdleTimer {
  uv_timer_t handle;
  StatePtr state;  // CloseAndDelete's accounting
  BodyPool* pool;
};

BodyPool::~BodyPool() { UnmapFree(); }

void BodyPool::UnmapFree() {
  for (auto& entry : free_) {
    for (void* block : entry.second.blocks) munmap(block, entry.first);
  }
  free_.clear();
  cachedBytes_ = 0;
}

// Rounded up to 64 KiB steps up to 1 MiB, then to eighths of a power of two,
// so blocks of nearby sizes are shared and at most 1/8 of a block is unused.
size_t BodyPool::Capacity(size_t length) {
  constexpr size_t kStep = 64 * 1024;
  size_t step = kStep;
  if (length > 16 * kStep) {
    int bits = 63 - __builtin_clzll(static_cast<unsigned long long>(length));
    step = size_t{1} << (bits - 3);
  }
  return (length + step - 1) & ~(step - 1);
}

BodyPool::Block BodyPool::Lease(size_t length) {
  if (shutDown_ || length == 0) return Block{};
  size_t capacity = Capacity(length);
  void* data = Take(capacity);
  if (data == nullptr) return Block{};
  stats_.liveBytes += static_cast<double>(capacity);
  return Block{data, capacity};
}

void BodyPool::Release(Block block) {
  if (block.data == nullptr) return;
  stats_.liveBytes -= static_cast<double>(block.capacity);
  Give(block.data, block.capacity);
}

Napi::Value BodyPool::Wrap(Napi::Env env, Block block, size_t length) {
  auto holder = std::make_unique<Holder>(Holder{shared_from_this(), block.capacity});
  napi_value buffer = nullptr;
  if (napi_create_external_buffer(env, length, block.data, Finalize, holder.get(), &buffer) != napi_ok) {
    TakeException(env);
    return Napi::Value();
  }
  holder.release();  // owned by the Buffer now: Finalize takes it back
  // V8 starts a minor GC when a young generation holding more than a few
  // semi-spaces' worth of ArrayBuffer memory asks its allocator for more, but
  // it only asks on allocator-made buffers, not on external ones like this.
  // A one-byte Buffer from the allocator lets that check run, so bodies are
  // freed (and come back here) at the pace of the usual napi_create_buffer
  // path, not only by full GCs after tens of MiB more. (V8 13 and later
  // check too late for this: lib/large-body-pacing.ts paces them.)
  void* unused = nullptr;
  napi_value nudge = nullptr;
  if (napi_create_buffer(env, 1, &unused, &nudge) != napi_ok) TakeException(env);
  return Napi::Value(env, buffer);
}

Napi::Value BodyPool::NewBuffer(Napi::Env env, size_t length, char** data) {
  Block block = Lease(length);
  if (block.data == nullptr) return Napi::Value();
  Napi::Value buffer = Wrap(env, block, length);
  if (buffer.IsEmpty()) {
    Release(block);
    return buffer;
  }
  *data = static_cast<char*>(block.data);
  return buffer;
}

void BodyPool::Finalize(napi_env env, void* data, void* hint) {
  std::unique_ptr<Holder> holder(static_cast<Holder*>(hint));
  BodyPool* pool = holder->pool.get();
  pool->stats_.liveBytes -= static_cast<double>(holder->capacity);
  pool->Give(data, holder->capacity);
}

void* BodyPool::Take(size_t capacity) {
  auto it = free_.find(capacity);
  if (it != free_.end() && !it->second.blocks.empty()) {
    FreeList& list = it->second;
    void* block = list.blocks.back();
    list.blocks.pop_back();
    if (list.untouched > list.blocks.size()) list.untouched = list.blocks.size();
    cachedBytes_ -= capacity;
    ++stats_.reused;
    return block;
  }
  void* block = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (block == MAP_FAILED) return nullptr;
  ++stats_.mapped;
  return block;
}

void BodyPool::Give(void* block, size_t capacity) {
  if (shutDown_ || capacity > kMaxCachedBytes) {
    munmap(block, capacity);
    return;
  }
  // Full: the block just freed is the likelier one to be asked for next, so
  // room is made by unmapping the oldest free blocks of the other size that
  // holds the most. Only when this size alone fills the cache does it go.
  while (cachedBytes_ + capacity > kMaxCachedBytes) {
    auto victim = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->first == capacity || it->second.blocks.empty()) continue;
      if (victim == free_.end() || it->first * it->second.blocks.size() > victim->first * victim->second.blocks.size()) {
        victim = it;
      }
    }
    if (victim == free_.end()) {
      munmap(block, capacity);
      return;
    }
    FreeList& list = victim->second;
    munmap(list.blocks.front(), victim->first);
    list.blocks.erase(list.blocks.begin());
    if (list.untouched > 0) --list.untouched;
    cachedBytes_ -= victim->first;
    if (list.blocks.empty()) free_.erase(victim);
  }
  free_[capacity].blocks.push_back(block);
  cachedBytes_ += capacity;
  StartIdleTimer();
}

void BodyPool::StartIdleTimer() {
  if (timer_ == nullptr) {
    StatePtr state = state_.lock();
    if (state == nullptr || state->tearingDown) return;
    auto timer = std::make_unique<IdleTimer>();
    timer->state = std::move(state);
    timer->pool = this;
    if (uv_timer_init(loop_, &timer->handle) != 0) return;
    timer->handle.data = timer.get();
    timer_ = timer.release();  // from here on freed through CloseAndDelete
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_->handle));
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_->handle))) return;
  uv_timer_start(
      &timer_->handle, [](uv_timer_t* handle) { static_cast<IdleTimer*>(handle->data)->pool->ReleaseIdle(); },
      kIdleMs, kIdleMs);
}

// Unmaps the blocks of each size that nobody took since the last check (the
// oldest ones: blocks are handed out newest first), then marks the rest.
void BodyPool::ReleaseIdle() {
  for (auto it = free_.begin(); it != free_.end();) {
    FreeList& list = it->second;
    for (size_t i = 0; i < list.untouched; ++i) munmap(list.blocks[i], it->first);
    list.blocks.erase(list.blocks.begin(), list.blocks.begin() + static_cast<std::ptrdiff_t>(list.untouched));
    cachedBytes_ -= list.untouched * it->first;
    list.untouched = list.blocks.size();
    it = list.blocks.empty() ? free_.erase(it) : std::next(it);
  }
  if (free_.empty()) uv_timer_stop(&timer_->handle);  // started again by the next Give
}

void BodyPool::Shutdown(AddonState* state) {
  shutDown_ = true;
  UnmapFree();
  if (timer_ != nullptr) {
    uv_timer_stop(&timer_->handle);
    CloseAndDelete(timer_, state);
    timer_ = nullptr;
  }
}

BodyPool::Stats BodyPool::GetStats() const {
  Stats stats = stats_;
  stats.cachedBytes = static_cast<double>(cachedBytes_);
  return stats;
}

}  // namespace cs
