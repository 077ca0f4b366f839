/*
 * sys.c - the default system call table (see sys.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sys.h"

#define SYS_REAL_CALLS {			\
	.memfd_create	= memfd_create,		\
	.ftruncate	= ftruncate,		\
	.fallocate	= fallocate,		\
	.mmap		= mmap,			\
	.munmap		= munmap,		\
	.close		= close,		\
	.pread		= pread,		\
	.preadv		= preadv,		\
	.pwrite		= pwrite,		\
	.pwritev	= pwritev,		\
	.fsync		= fsync,		\
	.fdatasync	= fdatasync,		\
}

const struct sys_ops sys_default = SYS_REAL_CALLS;
struct sys_ops sys = SYS_REAL_CALLS;

int sys_err(void)
{
	return errno ? -errno : -EIO;
}
