#include "ocirt_native.h"

#include <errno.h>
#include <linux/openat2.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

int ocirt_mount(const char *source, const char *target, const char *fstype,
                unsigned long flags, const char *data)
{
    if (mount(source, target, fstype, flags, data) < 0)
        return -errno;
    return 0;
}

int ocirt_umount2(const char *target, int flags)
{
    if (umount2(target, flags) < 0)
        return -errno;
    return 0;
}

int ocirt_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                  uint64_t resolve)
{
    struct open_how how;
    long fd;

    memset(&how, 0, sizeof(how));
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    /* openat2 may return EAGAIN under RESOLVE_IN_ROOT when a rename races the
     * walk (see openat2(2)); retry a bounded number of times. */
    for (int attempt = 0; attempt < 16; attempt++) {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN && errno != EINTR)
            break;
    }
    return -errno;
}

int ocirt_setns(int fd, int nstype)
{
    if (setns(fd, nstype) < 0)
        return -errno;
    return 0;
}

int ocirt_unshare(int flags)
{
    if (unshare(flags) < 0)
        return -errno;
    return 0;
}
