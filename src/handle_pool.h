// libcurl easy handles of closed Easy objects, reset and kept for the next
// Easy: a new Easy then skips curl_easy_init and curl_easy_cleanup, whose
// large allocations churn a busy heap (with a new Easy per request, about 7%
// less client CPU per request here).
//
// curl_easy_reset keeps a handle's cookies, HSTS and alt-svc caches, and
// before libcurl 8.12 its TLS session cache. So the pool only runs on libcurl
// >= 8.12 (where the connection pool, DNS cache and TLS sessions of a handle
// in a multi belong to the multi), and only takes a handle whose every option
// set was one that leaves no state behind (IsStateless). A kept handle is
// then what a reused Easy is after reset(): nothing of the previous user's
// transfers reaches the next one.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <unordered_set>
#include <vector>

namespace cs {

// curl_easy_reset, plus what it leaves behind: a RESOLVE list set since the
// last transfer stays pending (libcurl reads it when the next one starts),
// and its owner frees it right after the reset.
void ResetHandle(CURL* handle);

class HandlePool {
 public:
  static constexpr size_t kMaxIdle = 64;

  HandlePool();
  ~HandlePool();
  HandlePool(const HandlePool&) = delete;
  HandlePool& operator=(const HandlePool&) = delete;

  // Whether a handle that had this option set may be kept.
  bool IsStateless(CURLoption id) const { return enabled_ && stateless_.count(static_cast<int>(id)) != 0; }
  // A kept handle, or a new one (nullptr if libcurl cannot make one).
  CURL* Take();
  // Keeps `handle` (reset) when there is room, or frees it.
  void Give(CURL* handle);
  void Clear();
  size_t IdleCount() const { return idle_.size(); }

 private:
  std::vector<CURL*> idle_;
  std::unordered_set<int> stateless_;
  bool enabled_ = false;
};

}  // namespace cs
