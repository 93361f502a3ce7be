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

// ---- Reading a file's metadata in a separate process ----
// libhdf5 1.10 trusts the parts of a file that no HDF5 format checksums: a damaged global heap
// (where variable-length strings live), or a damaged object header in the original format,
// makes it read out of bounds or loop forever before any check of ours can run (found by
// fuzzing, docs/reliability.md). A program that opens files from elsewhere can first have a
// fresh process of its own read every attribute of every object (sb_H5_read_all_metadata),
// and learn from how that process ended (sb_run_probe) whether the library survives the file.
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

static herr_t sb__read_attribute(hid_t location, const char *name, const H5A_info_t *info, void *data) {
    (void)info; (void)data;
    hid_t a = H5Aopen(location, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    hid_t native = type >= 0 ? H5Tget_native_type(type, H5T_DIR_DEFAULT) : -1;
    hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    size_t size = native >= 0 ? H5Tget_size(native) : 0;
    if (n >= 0 && size > 0 && (size_t)n <= ((size_t)1 << 30) / size) {
        void *buffer = calloc((size_t)n + 1, size);
        if (buffer && H5Aread(a, native, buffer) >= 0 && H5Tdetect_class(native, H5T_VLEN) + H5Tis_variable_str(native) > 0)
            H5Dvlen_reclaim(native, space, H5P_DEFAULT, buffer);
        free(buffer);
    }
    if (native >= 0) H5Tclose(native);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Aclose(a);
    return 0;
}

static herr_t sb__read_object(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)info; (void)data;
    hid_t object = H5Oopen(group, name, H5P_DEFAULT);
    if (object < 0) return 0;
    H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, sb__read_attribute, NULL);
    H5Oclose(object);
    return 0;
}

/// Opens the file and reads every object header and every attribute value, ignoring errors
/// (the real open reports those): what a probe process does.
static inline void sb_H5_read_all_metadata(const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return;
    H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, sb__read_attribute, NULL);
    H5Lvisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, sb__read_object, NULL);
    H5Fclose(file);
}

/// Runs argv (argv[0] an executable path) with its standard streams on /dev/null and waits.
/// 0: it exited; 1: it died of signal *signal_number; 2: it was still running after
/// timeout_ms and was killed; -1: it could not be started. posix_spawn, not fork: a fork of a
/// threaded process can inherit a lock another thread holds (HDF5's own) and wait forever.
static inline int sb_run_probe(char *const argv[], int timeout_ms, int *signal_number) {
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0) return -1;
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Nothing else of ours goes with it: a child holding a copy of an open HDF5 file keeps that
    // file's lock, and another open of the file in this process fails while it runs.
    extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *, int);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    extern char **environ;
    pid_t child;
    int failed = posix_spawn(&child, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (failed) return -1;
    int status = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t done = waitpid(child, &status, WNOHANG);
        if (done == child) break;
        if (done < 0 && errno != EINTR) return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (elapsed >= timeout_ms) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return 2;
        }
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    if (WIFSIGNALED(status)) { *signal_number = WTERMSIG(status); return 1; }
    return 0;
}
