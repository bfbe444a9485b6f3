/*
 * simd.h — helpers of the hand-vectorised kernels (conv/direct_small.c,
 * pool2d.c): GCC vector types and a function attribute that compiles a hot
 * loop also for AVX2+FMA (x86-64-v3) and AVX-512 (x86-64-v4), picked at
 * run time by sm_simd_level().
 */
#ifndef SM_SIMD_H
#define SM_SIMD_H
#include <stdint.h>
#include <string.h>
#include "sm.h"

/*
 * SM_CLONES(type, name, (params), (args)) defines `static type name(params)`
 * from `SM_INLINE type name_body(params)`: three copies of the body, for
 * AVX-512 (x86-64-v4), AVX2 + FMA (x86-64-v3) and the baseline, and a
 * dispatch on sm_simd_level() (cpu.c), which honours SIAMESE_SIMD so that
 * the tests run every copy. SM_CLONES_VOID is the same for void functions.
 * Sanitizer and non-GCC builds keep the baseline copy only.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SM_HAVE_CLONES 1
#define SM_V4 __attribute__((target("arch=x86-64-v4")))
#define SM_V3 __attribute__((target("arch=x86-64-v3")))
#define SM_CLONES(type, name, params, args) \
    SM_V4 static type name##_v4 params { return name##_body args; } \
    SM_V3 static type name##_v3 params { return name##_body args; } \
    static type name##_v0 params { return name##_body args; } \
    static type name params \
    { \
        int level_ = sm_simd_level(); \
        return level_ >= SM_SIMD_AVX512 ? name##_v4 args : level_ == SM_SIMD_AVX2 ? name##_v3 args : name##_v0 args; \
    }
#define SM_CLONES_VOID(name, params, args) \
    SM_V4 static void name##_v4 params { name##_body args; } \
    SM_V3 static void name##_v3 params { name##_body args; } \
    static void name##_v0 params { name##_body args; } \
    static void name params \
    { \
        int level_ = sm_simd_level(); \
        if (level_ >= SM_SIMD_AVX512) name##_v4 args; \
        else if (level_ == SM_SIMD_AVX2) name##_v3 args; \
        else name##_v0 args; \
    }
#else
#define SM_CLONES(type, name, params, args) static type name params { return name##_body args; }
#define SM_CLONES_VOID(name, params, args) static void name params { name##_body args; }
#endif
#define SM_INLINE static inline __attribute__((always_inline))

typedef float sm_v8f __attribute__((vector_size(32)));
typedef int32_t sm_v8i __attribute__((vector_size(32)));

#endif
