#pragma once

#include <napi.h>

namespace cs {
Napi::Object MakeConstants(Napi::Env env);
}
