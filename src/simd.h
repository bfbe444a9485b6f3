/*
 * simd.h — helpers of the hand-vectorised kernels (conv2d_direct.c,
 * pool2d.c): GCC vector types and a function attribute that compiles a hot
 * loop also for AVX2+FMA (x86-64-v3) and AVX-512 (x86-64-v4), picked at
 * load time (ifunc). The portable build keeps the default target only.
 */
#ifndef SM_SIMD_H
#define SM_SIMD_H
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SM_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SM_HOT
#endif
#define SM_INLINE static inline __attribute__((always_inline))

typedef float sm_v8f __attribute__((vector_size(32)));
typedef int32_t sm_v8i __attribute__((vector_size(32)));

#endif
