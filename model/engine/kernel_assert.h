#pragma once
// Invariant checks inside engine kernels: always on (also under NDEBUG),
// abort with file:line. Only for programming errors, never for user input.

#include <cstdio>
#include <cstdlib>

#define QSWEEP_KASSERT(cond)                                                                   \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: engine invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
