#include "handle_pool.h"

namespace cs {

namespace {

// Options that keep nothing in the handle once curl_easy_reset has run: plain
// settings of a request. Anything else (cookies, HSTS, alt-svc, credentials,
// client certificates, an option this list does not know) makes a handle
// single-use. Names the running libcurl does not know are skipped.
constexpr const char* kStatelessOptions[] = {
    "URL", "PORT", "FORBID_REUSE", "FRESH_CONNECT", "FOLLOWLOCATION", "MAXREDIRS", "POSTREDIR",
    "HTTPHEADER", "HEADEROPT", "CUSTOMREQUEST", "NOBODY", "HTTPGET", "POST", "POSTFIELDS",
    "COPYPOSTFIELDS", "POSTFIELDSIZE", "POSTFIELDSIZE_LARGE", "TIMEOUT", "TIMEOUT_MS",
    "CONNECTTIMEOUT", "CONNECTTIMEOUT_MS", "LOW_SPEED_LIMIT", "LOW_SPEED_TIME", "USERAGENT",
    "REFERER", "ACCEPT_ENCODING", "TRANSFER_ENCODING", "HTTP_VERSION", "HTTP09_ALLOWED",
    "IPRESOLVE", "RESOLVE", "CONNECT_TO", "NOPROGRESS", "VERBOSE", "FAILONERROR",
    "KEEP_SENDING_ON_ERROR", "SSL_VERIFYPEER", "SSL_VERIFYHOST", "CAINFO", "CAPATH", "SSLVERSION",
    "PROTOCOLS", "PROTOCOLS_STR", "REDIR_PROTOCOLS", "REDIR_PROTOCOLS_STR", "DEFAULT_PROTOCOL",
    "PROXY", "NOPROXY", "DOH_URL", "TCP_NODELAY", "TCP_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL",
    "TCP_KEEPCNT", "BUFFERSIZE", "MAXFILESIZE", "MAXFILESIZE_LARGE", "DNS_CACHE_TIMEOUT", "HEADER",
    "RANGE", "EXPECT_100_TIMEOUT_MS", "HAPPY_EYEBALLS_TIMEOUT_MS", "MAXAGE_CONN",
    "MAXLIFETIME_CONN", "PIPEWAIT", "MAX_RECV_SPEED_LARGE", "MAX_SEND_SPEED_LARGE",
    "SERVER_RESPONSE_TIMEOUT", "PATH_AS_IS", "REQUEST_TARGET", "INTERFACE", "LOCALPORT",
    "LOCALPORTRANGE", "UNIX_SOCKET_PATH", "ABSTRACT_UNIX_SOCKET",
};

constexpr unsigned int kFirstVersionWithMultiSessionCache = 0x080C00;  // 8.12.0

}  // namespace

void ResetHandle(CURL* handle) {
  curl_easy_reset(handle);
  curl_easy_setopt(handle, CURLOPT_RESOLVE, static_cast<curl_slist*>(nullptr));
}

HandlePool::HandlePool() {
  enabled_ = curl_version_info(CURLVERSION_NOW)->version_num >= kFirstVersionWithMultiSessionCache;
  if (!enabled_) return;
  for (const char* name : kStatelessOptions) {
    const curl_easyoption* option = curl_easy_option_by_name(name);
    if (option != nullptr) stateless_.insert(static_cast<int>(option->id));
  }
}

HandlePool::~HandlePool() { Clear(); }

CURL* HandlePool::Take() {
  if (idle_.empty()) return curl_easy_init();
  CURL* handle = idle_.back();
  idle_.pop_back();
  return handle;
}

void HandlePool::Give(CURL* handle) {
  if (handle == nullptr) return;
  if (!enabled_ || idle_.size() >= kMaxIdle) {
    curl_easy_cleanup(handle);
    return;
  }
  ResetHandle(handle);
  idle_.push_back(handle);
}

void HandlePool::Clear() {
  for (CURL* handle : idle_) curl_easy_cleanup(handle);
  idle_.clear();
}

}  // namespace cs
