// Marks code that compiles for both the CPU and the GPU (the HOOMD-blue pattern: one evaluator, two drivers).
#pragma once
#if defined(__CUDACC__)
#define AS_HD __host__ __device__ __forceinline__
#else
#define AS_HD inline
#endif
