/*
 * test_dir_truncate.c - a truncate to the middle of a page whose blocks
 * are not all uptodate must not leave the old bytes past the new end.
 *
 * With sub-page blocks a write into a new page reads in only the blocks it
 * covers in part, so the page is dirty but not uptodate.  Truncating into
 * that page must zero what lies past the new end even so: the blocks the
 * write filled stay uptodate, and once the file grows again they are
 * inside it - read back through the cache, and written back (a dirty page
 * whose dirty blocks all went with the truncate writes its uptodate ones).
 * Both must be zeroes, as the file's hole is.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

#define OLD_OFF		2164
#define OLD_LEN		7280
#define NEW_SIZE	1663
#define EXT_OFF		13312

int main(void)
{
	char dir[] = "/tmp/pcache-test-dtr.XXXXXX", path[64];
	static unsigned char buf[EXT_OFF + 1];
	struct pcache_config cfg;
	struct pcache *pc;
	long bad;
	int fd, bfd;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = dir;
	cfg.block_size = 1024;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	fd = pcache_open(pc, "f", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %d", fd);

	pattern_fill(buf, OLD_LEN, 1, OLD_OFF);
	CHECK_EQ(pcache_pwrite(fd, buf, OLD_LEN, OLD_OFF), OLD_LEN);
	CHECK_EQ(pcache_ftruncate(fd, NEW_SIZE), 0);
	buf[0] = 0x5a;
	CHECK_EQ(pcache_pwrite(fd, buf, 1, EXT_OFF), 1);

	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ(pcache_pread(fd, buf, EXT_OFF - NEW_SIZE, NEW_SIZE), EXT_OFF - NEW_SIZE);
	for (bad = 0; bad < EXT_OFF - NEW_SIZE && !buf[bad]; bad++)
		;
	CHECK(bad == EXT_OFF - NEW_SIZE, "pcache_pread: byte %ld of the hole is 0x%02x, not 0",
	      NEW_SIZE + bad, buf[bad]);

	CHECK_EQ(pcache_fsync(fd), 0);
	snprintf(path, sizeof(path), "%s/f", dir);
	bfd = open(path, O_RDONLY);
	CHECK(bfd >= 0, "open %s", path);
	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ(pread(bfd, buf, EXT_OFF - NEW_SIZE, NEW_SIZE), EXT_OFF - NEW_SIZE);
	for (bad = 0; bad < EXT_OFF - NEW_SIZE && !buf[bad]; bad++)
		;
	CHECK(bad == EXT_OFF - NEW_SIZE, "backing file after fsync: byte %ld of the hole"
	      " is 0x%02x, not 0", NEW_SIZE + bad, buf[bad]);
	close(bfd);

	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
	unlink(path);
	CHECK(rmdir(dir) == 0, "rmdir %s", dir);
	return test_exit();
}
