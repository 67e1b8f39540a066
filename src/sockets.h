// Socket helpers for JS: create, close, get/set options, duplicate, peer.
#pragma once

#include <napi.h>

namespace cs {
void InitSockets(Napi::Env env, Napi::Object exports);
}
