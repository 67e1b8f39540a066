{
  "variables": {
    # Path of the curl-config to build against (e.g. a libcurl installed in /opt).
    "curl_config%": "curl-config",
    # Set to "true" for an AddressSanitizer/UBSan build: npm run build:asan
    "sanitize%": "false"
  },
  "targets": [
    {
      "target_name": "curl_sockets",
      "sources": [
        "src/addon.cc",
        "src/state.cc",
        "src/easy.cc",
        "src/easy_callbacks.cc",
        "src/multi.cc",
        "src/poller.cc",
        "src/sockets.cc",
        "src/constants.cc",
        "src/body.cc",
        "src/body_pool.cc",
        "src/handle_pool.cc",
        "src/caller_memory.cc",
        "src/handshake_ack.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["<!@(sh scripts/curl-flags.sh cflags <(curl_config))", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden"],
      "libraries": ["<!@(sh scripts/curl-flags.sh libs <(curl_config))"],
      "conditions": [
        ["sanitize=='true'", {
          "cflags": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ],
      "configurations": {
        "Debug": {
          "cflags": ["-g", "-O0"],
          "defines": ["CURL_SOCKETS_DEBUG"]
        }
      }
    }
  ]
}
