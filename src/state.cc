#include "state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "easy.h"
#include "multi.h"
#include "poller.h"

namespace cs {

StatePtr GetState(Napi::Env env) {
  return *env.GetInstanceData<StatePtr>();
}

AddonState* StateOf(Napi::Env env) {
  return env.GetInstanceData<StatePtr>()->get();
}

napi_status CallInEntry(Napi::Env env, AddonState* state, napi_async_context context, napi_value fn, size_t argc,
                        const napi_value* argv, napi_value* result) {
  if (state->entryScopeDepth == 0) return napi_call_function(env, env.Undefined(), fn, argc, argv, result);
  if (context == nullptr) context = state->entryContext;
  return napi_make_callback(env, context, env.Global(), fn, argc, argv, result);
}

void AddonState::UvCloseFinished() {
  --pendingUvCloses;
  if (tearingDown && pendingUvCloses == 0 && cleanupHook != nullptr) {
    napi_async_cleanup_hook_handle hook = cleanupHook;
    cleanupHook = nullptr;
    napi_remove_async_cleanup_hook(hook);
  }
}

void AddonState::Settle(Napi::Env env) {
  if (libcurlDepth > 0 || settling || !CanCallJs()) return;
  settling = true;
  bool progress = true;
  while (progress) {
    progress = false;
    // A snapshot: a Multi may close (and leave the set) while we go.
    settleScratch.assign(multis.begin(), multis.end());
    for (Multi* multi : settleScratch) {
      if (multis.count(multi) && multi->ApplyDeferred(env)) progress = true;
    }
    settleScratch.assign(multis.begin(), multis.end());
    for (Multi* multi : settleScratch) {
      if (multis.count(multi) && multi->DeliverCompletions(env)) progress = true;
    }
    if (!deferredEasyCloses.empty()) {
      std::vector<Easy*> closes;
      closes.swap(deferredEasyCloses);
      for (Easy* easy : closes) {
        if (easies.count(easy) && easy->multi() == nullptr) easy->Destroy();
        else if (easies.count(easy)) deferredEasyCloses.push_back(easy);
      }
      progress = progress || deferredEasyCloses.size() < closes.size();
    }
  }
  settling = false;
}

// Environment teardown (process exit, worker termination): JS can no longer
// run, so every handle is closed natively. The async cleanup hook lets the
// loop run the uv close callbacks before it is closed.
void AddonState::TearDown() {
  tearingDown = true;
  NoJsScope noJs(this);
  std::vector<Multi*> ms(multis.begin(), multis.end());
  for (Multi* multi : ms) multi->Shutdown();
  std::vector<Easy*> es(easies.begin(), easies.end());
  for (Easy* easy : es) easy->Destroy();
  std::vector<Poller*> ps(pollers.begin(), pollers.end());
  for (Poller* poller : ps) poller->Shutdown();
  // Never close what libcurl did not hand back: an entry may be stale.
  openSockets.clear();
  handlePool.Clear();
  if (bodyPool != nullptr) bodyPool->Shutdown(this);
  // uv close callbacks may outlive the environment: drop every reference now.
  onTransferDone.Reset();
  emitWarning.Reset();
  callOpenSocket.Reset();
  openSocketRewrite.Reset();
  callSlot1.Reset();
  callSlot2.Reset();
  callSlot4.Reset();
  callSocketSlot.Reset();
  scopeResource.Reset();
}

unsigned long FdInode(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? static_cast<unsigned long>(st.st_ino) : 0;
}

void TrackSocket(AddonState* state, curl_socket_t fd, OpenSocket entry) {
  entry.inode = state->verifySocketInodes ? FdInode(fd) : 0;
  state->openSockets[fd] = std::move(entry);
}

bool OwnedByLibcurl(AddonState* state, curl_socket_t fd) {
  auto it = state->openSockets.find(fd);
  if (it == state->openSockets.end()) return false;
  if (!state->verifySocketInodes) return true;
  if (it->second.inode != 0 && it->second.inode == FdInode(fd)) return true;
  state->openSockets.erase(it);  // stale: libcurl closed it without telling us
  return false;
}

int NotOwnSocketError(int fd) {
  if (fd < 0) return EBADF;
  if (fd <= STDERR_FILENO) return ENOTSOCK;
  struct stat st;
  if (fstat(fd, &st) != 0) return errno == EBADF ? EBADF : ENOTSOCK;
  return S_ISSOCK(st.st_mode) ? 0 : ENOTSOCK;
}

Napi::ObjectReference HeldByWrapper(Napi::Object wrapper, const char* key, Napi::Object value) {
  wrapper.Set(key, value);
  return Napi::Weak(value);
}

Napi::Value TakeException(Napi::Env env) {
  bool pending = false;
  napi_value error = nullptr;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return Napi::Value();
  if (napi_get_and_clear_last_exception(env, &error) != napi_ok) return Napi::Value();
  return Napi::Value(env, error);
}

Napi::Error SystemError(Napi::Env env, int err, const char* syscall) {
  const char* code = uv_err_name(-err);
  std::string message = std::string(syscall) + " " + code + " (" + std::strerror(err) + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

}  // namespace cs
