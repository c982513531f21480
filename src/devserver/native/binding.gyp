{
  'targets': [
    {
      'target_name': 'wiredtiger',
      'sources': ['wiredtiger.cc'],
      # node-addon-api headers only: depending on its gyp target would drop a
      # .stamp file into a node_modules/ beside this file.
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # C++ exceptions on: every WiredTiger error becomes a thrown Napi::Error.
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'libraries': ['-lwiredtiger'],
    },
  ],
}
