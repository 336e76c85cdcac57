# The package's addon, zygote_native: the only target, since the package ships this file and
# builds from it where no prebuilt binary loads. The tests' attack addon has its own
# (test/native/binding.gyp).
{
  "targets": [
    {
      "target_name": "zygote_native",
      "sources": [
        "native/addon.cc",
        "native/channel.cc",
        "native/childfds.cc",
        "native/errors.cc",
        "native/fdpass.cc",
        "native/files.cc",
        "native/fork.cc",
        "native/forkable.cc",
        "native/init.cc",
        "native/platform.cc",
        "native/heap.cc",
        "native/prefault.cc",
        "native/pretouch.cc",
        "native/maps.cc",
        "native/probe.cc",
        "native/process.cc",
        "native/report.cc",
        "native/signals.cc",
        "native/sources.cc",
        "native/stream.cc",
        "native/sandbox/creds.cc",
        "native/sandbox/idmap.cc",
        "native/sandbox/landlock.cc",
        "native/sandbox/mountsrc.cc",
        "native/sandbox/namespaces.cc",
        "native/sandbox/network.cc",
        "native/sandbox/outputfs.cc",
        "native/sandbox/rlimits.cc",
        "native/sandbox/root.cc",
        "native/sandbox/seccomp.cc",
        "native/sandbox/userns.cc"
      ],
      "libraries": ["-lseccomp"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
