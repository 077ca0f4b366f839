/*
 * sys.c - the default system call table (see sys.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sys.h"

const struct sys_ops sys_default = {
	.memfd_create	= memfd_create,
	.ftruncate	= ftruncate,
	.fallocate	= fallocate,
	.mmap		= mmap,
	.munmap		= munmap,
	.close		= close,
	.pread		= pread,
	.pwrite		= pwrite,
	.fsync		= fsync,
	.fdatasync	= fdatasync,
};

struct sys_ops sys = {
	.memfd_create	= memfd_create,
	.ftruncate	= ftruncate,
	.fallocate	= fallocate,
	.mmap		= mmap,
	.munmap		= munmap,
	.close		= close,
	.pread		= pread,
	.pwrite		= pwrite,
	.fsync		= fsync,
	.fdatasync	= fdatasync,
};

int sys_err(void)
{
	return errno ? -errno : -EIO;
}
