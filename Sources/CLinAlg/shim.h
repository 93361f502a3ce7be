// CBLAS and LAPACKE, as Debian's libopenblas-dev and liblapacke-dev install them.
// OpenBLAS-only entry points (core name, thread count) are looked up at run time
// with dlsym, so the package still links against another BLAS.
#include <cblas.h>
#include <lapacke.h>
#include <dlfcn.h>
