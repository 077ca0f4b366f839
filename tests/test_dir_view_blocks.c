/*
 * test_dir_view_blocks.c - stores through a view reach the backing file
 * when the page's blocks are smaller than a page and some of them are
 * dirty already.
 *
 * The dir backend writes back only a page's dirty blocks, so a store
 * through a view must dirty every block of its page (block_dirty_folio),
 * as the kernel's block_page_mkwrite does.  Two ways to lose it:
 *  1. a write dirties block 0 of a page; a store through a view then
 *     maps the page (a write fault) and lands in block 2: the page was
 *     dirty already, so nothing dirtied block 2;
 *  2. the page is mapped (read fault) after block 0 was dirtied: a dirty
 *     page went in writable, so the store took no write-protect fault;
 *  3. a store maps the page writable with every block dirty; a truncate to
 *     mid-page cleans the blocks past the new end, and an extending
 *     truncate brings them back inside the file: the page must be
 *     write-protected again (pagecache_isize_extended), or a store there
 *     dirties nothing.
 * In both the backing file must hold the stored byte after fsync.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "pcache.h"
#include "harness.h"

static void one_case(const char *dir, int how)
{
	struct pcache_config cfg;
	struct pcache *pc;
	char path[4200], name[32], buf[16] = "0123456789";
	unsigned char got = 0, *v;
	volatile unsigned char sink;
	int fd, bfd;

	pcache_config_init(&cfg);
	cfg.backend = "dir";
	cfg.backend_arg = dir;
	cfg.block_size = 1024;
	CHECK_EQ(pcache_create(&cfg, &pc), 0);
	snprintf(name, sizeof(name), "case-%d", how);
	fd = pcache_open(pc, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0, "open: %d", fd);
	CHECK_EQ(pcache_ftruncate(fd, 4096), 0);
	CHECK_EQ(pcache_fsync(fd), 0);
	v = pcache_mmap(fd, 4096, PROT_READ | PROT_WRITE, 0);
	if (PCACHE_IS_ERR(v)) {
		if (PCACHE_PTR_ERR(v) == -EOPNOTSUPP)
			TEST_SKIP("views are not supported here");
		CHECK(0, "pcache_mmap: %d", PCACHE_PTR_ERR(v));
		exit(test_exit());
	}
	if (how == 3) {
		v[0] = 1;					/* every block dirty */
		CHECK_EQ(pcache_ftruncate(fd, 1100), 0);	/* blocks 3-7 clean */
		CHECK_EQ(pcache_ftruncate(fd, 4096), 0);
	} else if (how == 2) {
		CHECK_EQ(pcache_pwrite(fd, buf, 10, 0), 10);	/* block 0 dirty */
		sink = v[100];					/* mapped: read fault */
		(void)sink;
	} else {
		CHECK_EQ(pcache_pwrite(fd, buf, 10, 0), 10);	/* block 0 dirty */
	}
	v[2048] = 0x5a;						/* block 2 */
	CHECK_EQ(pcache_fsync(fd), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	bfd = open(path, O_RDONLY);
	CHECK(bfd >= 0, "open %s", path);
	CHECK_EQ(pread(bfd, &got, 1, 2048), 1);
	CHECK(got == 0x5a, "case %d: the backing file has 0x%02x at 2048 after a store"
	      " of 0x5a through the view and fsync", how, got);
	close(bfd);
	CHECK_EQ(pcache_munmap(v, 4096), 0);
	CHECK_EQ(pcache_close(fd), 0);
	CHECK_EQ(pcache_destroy(pc), 0);
}

int main(void)
{
	char dir[] = "/tmp/pcache-test-dvb.XXXXXX";

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	one_case(dir, 1);
	one_case(dir, 2);
	one_case(dir, 3);
	for (int how = 1; how <= 3; how++) {
		char path[64];

		snprintf(path, sizeof(path), "%s/case-%d", dir, how);
		unlink(path);
	}
	CHECK(rmdir(dir) == 0, "rmdir %s", dir);
	return test_exit();
}
