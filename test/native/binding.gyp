# The tests' attack addon: built by `npm run build` (scripts/build-native.mjs) into
# test/native/build, apart from the package's addon, so the package never builds or ships it.
{
  "targets": [
    {
      "target_name": "zygote_attack_helper",
      "sources": ["attack.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
