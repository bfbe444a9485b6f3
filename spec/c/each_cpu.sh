#!/bin/sh
# Runs the plain-C tests (the programs given as arguments) under every
# OpenBLAS kernel this CPU can run (OPENBLAS_CORETYPE unset, Haswell,
# SkylakeX, Cooperlake, Zen) and every SIMD level of our own kernels
# (SIAMESE_SIMD unset, avx2, portable), so that each leaf of each dispatch
# is compared with its reference on one AVX-512 machine. A kernel or level
# the CPU lacks is skipped with a line saying so. Exit 1 on the first
# failing combination, which is named.
set -u
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
runs_core() {
  case "$1" in
    "") return 0 ;;
    Haswell|Zen) has avx2 fma ;;
    SkylakeX) has avx2 fma avx512f avx512bw avx512dq avx512vl avx512cd ;;
    Cooperlake) has avx2 fma avx512f avx512bw avx512dq avx512vl avx512cd avx512_bf16 ;;
  esac
}
runs_simd() {
  case "$1" in
    ""|portable) return 0 ;;
    avx2) has avx2 fma ;;
  esac
}
combos=0
for core in "" Haswell SkylakeX Cooperlake Zen; do
  if ! runs_core "$core"; then echo "each_cpu: skipped OPENBLAS_CORETYPE=$core (this CPU lacks its instructions)"; continue; fi
  for simd in "" avx2 portable; do
    if ! runs_simd "$simd"; then echo "each_cpu: skipped SIAMESE_SIMD=$simd (this CPU lacks its instructions)"; continue; fi
    label="OPENBLAS_CORETYPE=${core:-unset} SIAMESE_SIMD=${simd:-unset}"
    for t in "$@"; do
      if ! out=$(env ${core:+OPENBLAS_CORETYPE=$core} ${simd:+SIAMESE_SIMD=$simd} "$t" 2>&1); then
        printf '%s\n' "$out"
        echo "each_cpu: FAILED $t with $label"
        exit 1
      fi
    done
    combos=$((combos + 1))
    echo "each_cpu: $label: $# suites passed"
  done
done
echo "each_cpu: all suites passed under $combos combinations"
