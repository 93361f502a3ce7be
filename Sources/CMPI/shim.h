// Open MPI's C API as Debian's libopenmpi-dev installs it (include path from pkg-config
// ompi-c). Open MPI's predefined handles (MPI_COMM_WORLD, MPI_DOUBLE, MPI_SUM, …) are macros
// that cast the address of a library global, which Swift cannot import; these inline
// functions hand them to Swift.
#include <mpi.h>

static inline MPI_Comm sb_MPI_COMM_WORLD(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype sb_MPI_DOUBLE(void) { return MPI_DOUBLE; }
static inline MPI_Op sb_MPI_SUM(void) { return MPI_SUM; }
static inline MPI_Op sb_MPI_MAX(void) { return MPI_MAX; }
static inline void *sb_MPI_IN_PLACE(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler sb_MPI_ERRORS_RETURN(void) { return MPI_ERRORS_RETURN; }
static inline int sb_MPI_SUCCESS(void) { return MPI_SUCCESS; }
static inline int sb_MPI_MAX_ERROR_STRING(void) { return MPI_MAX_ERROR_STRING; }
