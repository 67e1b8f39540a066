// Module entry: per-environment state, classes, constants, library facts.
#include <curl/curl.h>
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <mutex>

#include "constants.h"
#include "easy.h"
#include "multi.h"
#include "poller.h"
#include "sockets.h"
#include "state.h"

namespace cs {

namespace {

std::once_flag globalInitOnce;
CURLcode globalInitResult = CURLE_OK;

// initialize({ onTransferDone, emitWarning, callOpenSocket, openSocketRewrite,
//              callSlot1, callSlot2, callSlot4, callSocketSlot,
//              infoScratchLength, bodyScratchLength })
// -> { infoScratch: Float64Array, bodyScratch: Buffer }: the TS layer's hooks,
// handed over once at load (never through globals), and the scratch memory
// TS reads finished transfers from.
Napi::Value Initialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StatePtr state = GetState(env);
  Napi::Object options = info[0].As<Napi::Object>();
  state->onTransferDone = Napi::Persistent(options.Get("onTransferDone").As<Napi::Function>());
  state->emitWarning = Napi::Persistent(options.Get("emitWarning").As<Napi::Function>());
  state->callOpenSocket = Napi::Persistent(options.Get("callOpenSocket").As<Napi::Function>());
  state->openSocketRewrite = Napi::Persistent(options.Get("openSocketRewrite").As<Napi::Object>());
  state->callSlot1 = Napi::Persistent(options.Get("callSlot1").As<Napi::Function>());
  state->callSlot2 = Napi::Persistent(options.Get("callSlot2").As<Napi::Function>());
  state->callSlot4 = Napi::Persistent(options.Get("callSlot4").As<Napi::Function>());
  state->callSocketSlot = Napi::Persistent(options.Get("callSocketSlot").As<Napi::Function>());
  if (state->scopeResource.IsEmpty()) state->scopeResource = Napi::Persistent(Napi::Object::New(env));
  constexpr uint32_t kMaxScratch = 1 << 20;
  if (state->infoScratch.empty()) {
    // Sized once: the buffers lent to JS keep pointing at this memory.
    state->infoScratch.assign(std::min(options.Get("infoScratchLength").As<Napi::Number>().Uint32Value(), kMaxScratch), 0.0);
    state->bodyScratch.assign(std::min(options.Get("bodyScratchLength").As<Napi::Number>().Uint32Value(), kMaxScratch), 0);
  }
  napi_value infoBuffer, infoArray, bodyBuffer;
  std::vector<double>& numbers = state->infoScratch;
  std::vector<char>& bytes = state->bodyScratch;
  if (napi_create_external_arraybuffer(env, numbers.data(), numbers.size() * sizeof(double), nullptr, nullptr, &infoBuffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, numbers.size(), infoBuffer, 0, &infoArray) != napi_ok ||
      napi_create_external_buffer(env, bytes.size(), bytes.data(), nullptr, nullptr, &bodyBuffer) != napi_ok) {
    if (!env.IsExceptionPending()) Napi::Error::New(env, "curl-sockets: cannot lend scratch buffers to JS").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("infoScratch", Napi::Value(env, infoArray));
  result.Set("bodyScratch", Napi::Value(env, bodyBuffer));
  return result;
}

Napi::Object VersionInfo(Napi::Env env) {
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", Napi::String::New(env, v->version));
  o.Set("versionNum", Napi::Number::New(env, v->version_num));
  o.Set("host", Napi::String::New(env, v->host ? v->host : ""));
  o.Set("sslVersion", v->ssl_version ? Napi::String::New(env, v->ssl_version) : env.Null());
  o.Set("libzVersion", v->libz_version ? Napi::String::New(env, v->libz_version) : env.Null());
  o.Set("aresVersion", v->ares ? Napi::String::New(env, v->ares) : env.Null());
  o.Set("nghttp2Version", v->nghttp2_version ? Napi::String::New(env, v->nghttp2_version) : env.Null());
  Napi::Array protocols = Napi::Array::New(env);
  uint32_t i = 0;
  for (const char* const* p = v->protocols; p && *p; ++p) protocols.Set(i++, Napi::String::New(env, *p));
  o.Set("protocols", protocols);
  Napi::Array features = Napi::Array::New(env);
  i = 0;
  if (v->age >= CURLVERSION_ELEVENTH && v->feature_names) {
    for (const char* const* f = v->feature_names; *f; ++f) features.Set(i++, Napi::String::New(env, *f));
  }
  o.Set("featureNames", features);
  o.Set("featureBits", Napi::Number::New(env, v->features));
  return o;
}

// listOptions() -> [name, id, type, isAlias][] from the running libcurl.
Napi::Value ListOptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = Napi::Array::New(env);
  uint32_t i = 0;
  const curl_easyoption* option = nullptr;
  while ((option = curl_easy_option_next(option)) != nullptr) {
    Napi::Array row = Napi::Array::New(env, 4);
    row.Set(0u, Napi::String::New(env, option->name));
    row.Set(1u, Napi::Number::New(env, option->id));
    row.Set(2u, Napi::Number::New(env, option->type));
    row.Set(3u, Napi::Boolean::New(env, (option->flags & CURLOT_FLAG_ALIAS) != 0));
    list.Set(i++, row);
  }
  return list;
}

Napi::Value Strerror(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int code = info[0].As<Napi::Number>().Int32Value();
  bool multi = info.Length() > 1 && info[1].ToBoolean().Value();
  return Napi::String::New(env, multi ? curl_multi_strerror(static_cast<CURLMcode>(code))
                                      : curl_easy_strerror(static_cast<CURLcode>(code)));
}

// idleHandleCount(): libcurl handles kept for new Easy objects (for tests).
Napi::Value IdleHandleCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(GetState(info.Env())->handlePool.IdleCount()));
}

// registeredSocketCount(): sockets registered with uv by any Multi of this
// environment so far (for tests).
Napi::Value RegisteredSocketCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetState(info.Env())->socketsRegistered);
}

// bodyPoolStats() -> { mapped, reused, cachedBytes, liveBytes }: the large
// body memory of this environment (for tests).
Napi::Value BodyPoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BodyPool::Stats stats = GetState(env)->bodyPool->GetStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("mapped", stats.mapped);
  o.Set("reused", stats.reused);
  o.Set("cachedBytes", stats.cachedBytes);
  o.Set("liveBytes", stats.liveBytes);
  return o;
}

void OnEnvironmentCleanup(napi_async_cleanup_hook_handle handle, void* data) {
  AddonState* state = static_cast<StatePtr*>(data)->get();
  state->cleanupHook = handle;
  state->TearDown();
  if (state->pendingUvCloses == 0 && state->cleanupHook != nullptr) {
    state->cleanupHook = nullptr;
    napi_remove_async_cleanup_hook(handle);
  }
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  std::call_once(globalInitOnce, [] { globalInitResult = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (globalInitResult != CURLE_OK) {
    Napi::Error::New(env, "curl_global_init failed").ThrowAsJavaScriptException();
    return exports;
  }
  auto state = std::make_shared<AddonState>();
  state->env = env;
  state->verifySocketInodes = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
  // 64 KiB: the size Node reads sockets with, in the range curl's maintainers advise.
  state->defaultBufferSize = curl_version_info(CURLVERSION_NOW)->version_num >= 0x080700 ? 65536L : 0L;
  napi_get_uv_event_loop(env, &state->loop);
  state->bodyPool = std::make_shared<BodyPool>(state->loop, state);
  // The instance data holds one StatePtr; objects hold others, so the state
  // outlives whichever finalizer runs last.
  auto* holder = new StatePtr(state);
  env.SetInstanceData<StatePtr>(holder);  // deleted by node-addon-api's default finalizer
  napi_add_async_cleanup_hook(env, OnEnvironmentCleanup, holder, nullptr);

  Napi::Function easy = Easy::Init(env);
  Napi::Function multi = Multi::Init(env);
  Napi::Function poller = Poller::Init(env);
  exports.Set("NativeEasy", easy);
  exports.Set("easy", Easy::Calls(env));
  exports.Set("NativeMulti", multi);
  exports.Set("multi", Multi::Calls(env));
  exports.Set("NativePoller", poller);
  exports.Set("poller", Poller::Calls(env));
  exports.Set("initialize", Napi::Function::New<Initialize>(env, "initialize"));
  exports.Set("listOptions", Napi::Function::New<ListOptions>(env, "listOptions"));
  exports.Set("strerror", Napi::Function::New<Strerror>(env, "strerror"));
  exports.Set("idleHandleCount", Napi::Function::New<IdleHandleCount>(env, "idleHandleCount"));
  exports.Set("registeredSocketCount", Napi::Function::New<RegisteredSocketCount>(env, "registeredSocketCount"));
  exports.Set("bodyPoolStats", Napi::Function::New<BodyPoolStats>(env, "bodyPoolStats"));
  exports.Set("versionInfo", VersionInfo(env));
  exports.Set("constants", MakeConstants(env));
  InitSockets(env, exports);
  return exports;
}

}  // namespace cs

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return cs::Init(env, exports); }

NODE_API_MODULE(curl_sockets, InitModule)
