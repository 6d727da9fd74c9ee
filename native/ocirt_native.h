/* Syscalls that Python 3.11's os module does not expose. Each returns the result
 * (>= 0) or -errno; nothing here keeps state. */
#ifndef OCIRT_NATIVE_H
#define OCIRT_NATIVE_H

#include <stdint.h>

int ocirt_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data);
int ocirt_umount2(const char *target, int flags);
/* openat2(2) with RESOLVE_* flags: the kernel resolves path as if dirfd were "/". */
int ocirt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                  uint64_t resolve);
int ocirt_setns(int fd, int nstype);
int ocirt_unshare(int flags);

#endif
