"""cffi build script for ocirt._native (API mode, compiled by `pip install .`)."""

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int ocirt_mount(const char *source, const char *target, const char *fstype,
                    unsigned long flags, const char *data);
    int ocirt_umount2(const char *target, int flags);
    int ocirt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                      uint64_t resolve);
    int ocirt_setns(int fd, int nstype);
    int ocirt_unshare(int flags);
    """
)
ffibuilder.set_source(
    "ocirt._native",
    '#include "ocirt_native.h"',
    sources=["native/ocirt_native.c"],
    include_dirs=["native"],
    extra_compile_args=["-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
