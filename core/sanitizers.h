// Which sanitizer this translation unit is built with, the same on GCC
// (__SANITIZE_ADDRESS__, __SANITIZE_THREAD__) and clang (__has_feature): SLUICE_ASAN
// and SLUICE_TSAN are defined to 1 under AddressSanitizer and ThreadSanitizer.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define SLUICE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLUICE_TSAN 1
#endif
#endif
