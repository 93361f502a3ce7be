// HDF5's C API as Debian's libhdf5-dev installs it (serial build).
// Most HDF5 constants are macros over global ids (H5T_NATIVE_FLOAT expands to a call
// that opens the library first), which Swift cannot import; these inline functions
// hand them to Swift.
#include <hdf5/serial/hdf5.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline hid_t sb_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t sb_H5S_ALL(void) { return H5S_ALL; }
static inline hsize_t sb_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline hid_t sb_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline size_t sb_H5T_VARIABLE(void) { return H5T_VARIABLE; }

static inline unsigned sb_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned sb_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned sb_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned sb_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

static inline hid_t sb_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t sb_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t sb_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t sb_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t sb_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }

static inline hid_t sb_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t sb_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t sb_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t sb_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t sb_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t sb_H5T_C_S1(void) { return H5T_C_S1; }

/// Turns off HDF5's own printing of error stacks; errors are read with sb_H5_error_message.
static inline void sb_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct { char top[256]; char deepest[256]; } sb_H5_error_text;

static herr_t sb_H5_error_walker(unsigned n, const H5E_error2_t *err, void *data) {
    sb_H5_error_text *text = (sb_H5_error_text *)data;
    const char *desc = (err && err->desc) ? err->desc : "";
    if (n == 0) snprintf(text->top, sizeof text->top, "%s", desc);
    snprintf(text->deepest, sizeof text->deepest, "%s", desc);
    return 0;
}

/// The current error stack as "what failed: why" (outermost and innermost descriptions); clears it.
static inline void sb_H5_error_message(char *out, size_t len) {
    sb_H5_error_text text;
    text.top[0] = 0; text.deepest[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, sb_H5_error_walker, &text);
    H5Eclear2(H5E_DEFAULT);
    if (text.top[0] == 0) snprintf(out, len, "unknown HDF5 error");
    else if (strcmp(text.top, text.deepest) == 0) snprintf(out, len, "%s", text.top);
    else snprintf(out, len, "%s: %s", text.top, text.deepest);
}

/// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE), so a finished run folder
/// replaces an older one with no moment where neither is in place. -1 with errno set where the
/// kernel or file system cannot (the caller then falls back to two renames).
static inline int sb_rename_exchange(const char *a, const char *b) {
#if defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
#else
    errno = ENOSYS;
    return -1;
#endif
}
