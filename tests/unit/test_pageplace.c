/* SPDX-License-Identifier: MIT */
/*
 * test_pageplace.c - PAGES frames into RAM (migrate/pageplace.h), without
 * KVM. RAM is a memfd mapped shared, as vm/ maps it; the frames are built
 * with the batch builder the sender uses, and every check reads the bytes
 * back through the mapping and compares them with what the test meant to
 * send.
 *
 * Checked, in the bulk round: consecutive whole pages go in one write
 * and out-of-order ones start a new one (counted); a run longer than
 * PLACE_RUN_MAX is split; more decoded pages than the scratch holds land
 * right; entries land in frame order when a ZERO or XBZRLE entry follows
 * a whole page of the same page in one frame; XBZRLE applies to what is
 * there; a zstd page the session's caps do not allow fails with -EPROTO,
 * a payload that does not decode with -EBADMSG, a page outside RAM with
 * -ERANGE, each with a message; a RAM file that cannot be written fails
 * with that error, named. Then: page_place_map() maps the pages the bulk
 * round wrote and only those (their PTEs present in /proc/self/pagemap),
 * not at all when told to stop, and a later round stores through the
 * mapping without a write.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate/pageplace.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "protocol/xbzrle.h"

#define PAGE WIRE_PAGE_SIZE
#define NPAGES 512
#define FRAME_CAP (WIRE_HDR_BYTES + 8 + 256 * (WIRE_PAGE_ENTRY_HDR + PAGE) + WIRE_CRC_BYTES)
#define CAPS_ALL (WIRE_CAP_ZSTD | WIRE_CAP_LZ4 | WIRE_CAP_XBZRLE)

struct fx {
	int fd;
	uint8_t *ram;
	uint8_t *want;			/* what RAM must hold */
	struct codec_ctx *zstd, *lz4;
	struct page_placer pp;
	struct page_batch b;
	uint8_t *buf;
	char err[256];
};

/* a page that compresses, different for every page and seed */
static void fill_page(uint8_t *p, uint64_t page, unsigned seed)
{
	for (size_t i = 0; i < PAGE; i += 16)
		snprintf((char *)p + i, 16, "p%06llu s%05u", (unsigned long long)page, seed);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct codec_config zc = { .ops = &codec_zstd_ops, .level = 1 };
	struct codec_config lc = { .ops = &codec_lz4_ops, .level = 1 };

	assert_non_null(f);
	f->fd = memfd_create("test-pageplace", MFD_CLOEXEC);
	assert_true(f->fd >= 0);
	assert_int_equal(ftruncate(f->fd, (off_t)NPAGES * PAGE), 0);
	f->ram = mmap(NULL, (size_t)NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	assert_true(f->ram != MAP_FAILED);
	f->want = calloc(NPAGES, PAGE);
	f->buf = malloc(FRAME_CAP);
	assert_non_null(f->want);
	assert_non_null(f->buf);
	assert_int_equal(codec_ctx_create(&zc, PAGE, &f->zstd), 0);
	assert_int_equal(codec_ctx_create(&lc, PAGE, &f->lz4), 0);
	assert_int_equal(page_placer_init(&f->pp, f->ram, f->fd, (uint64_t)NPAGES * PAGE, f->zstd,
					  f->lz4),
			 0);
	batch_begin(&f->b, f->buf, FRAME_CAP, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	page_placer_fini(&f->pp);
	codec_ctx_destroy(f->zstd);
	codec_ctx_destroy(f->lz4);
	munmap(f->ram, (size_t)NPAGES * PAGE);
	close(f->fd);
	free(f->want);
	free(f->buf);
	free(f);
	return 0;
}

/* Entries: the page as it must end up in want, encoded with codec. */
static void add_page(struct fx *f, uint64_t page, uint8_t codec, unsigned seed)
{
	uint8_t *want = f->want + page * PAGE, page_bytes[PAGE];
	uint8_t *dst = batch_reserve(&f->b, PAGE);
	ssize_t n = 0;

	assert_non_null(dst);
	if (codec == CODEC_ZERO) {
		memset(want, 0, PAGE);
		batch_commit(&f->b, page, CODEC_ZERO, 0);
		return;
	}
	fill_page(page_bytes, page, seed);
	switch (codec) {
	case CODEC_RAW:
		memcpy(dst, page_bytes, PAGE);
		n = PAGE;
		break;
	case CODEC_ZSTD:
		n = codec_encode(f->zstd, page_bytes, PAGE, dst, PAGE - 1);
		break;
	case CODEC_LZ4:
		n = codec_encode(f->lz4, page_bytes, PAGE, dst, PAGE - 1);
		break;
	case CODEC_XBZRLE:
		/* the delta from what want holds now */
		n = xbzrle_encode(want, page_bytes, PAGE, dst, PAGE - 1);
		break;
	}
	assert_true(n > 0);
	memcpy(want, page_bytes, PAGE);
	batch_commit(&f->b, page, codec, (size_t)n);
}

/* Seal the frame, place it; then start the next one, of round `next`. */
static int place_then(struct fx *f, uint32_t caps, struct page_place_counts *c, uint32_t next)
{
	size_t n = batch_finish(&f->b);
	int ret;

	assert_true(n > WIRE_HDR_BYTES + WIRE_CRC_BYTES);
	f->err[0] = 0;
	ret = page_place(&f->pp, f->buf + WIRE_HDR_BYTES, n - WIRE_HDR_BYTES - WIRE_CRC_BYTES,
			 caps, c, f->err, sizeof(f->err));
	batch_begin(&f->b, f->buf, FRAME_CAP, next);
	return ret;
}

/* The same, the next frame in the same round. */
static int place(struct fx *f, uint32_t caps, struct page_place_counts *c)
{
	return place_then(f, caps, c, f->b.round);
}

/* Is the page mapped in this process at addr (its PTE present: no fault to take)? */
static bool mapped(const void *addr)
{
	uint64_t ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	off_t off = (off_t)((uintptr_t)addr / PAGE * sizeof(ent));

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &ent, sizeof(ent), off), (ssize_t)sizeof(ent));
	close(fd);
	return ent >> 63;
}

static void assert_ram(const struct fx *f)
{
	for (uint64_t p = 0; p < NPAGES; p++)
		if (memcmp(f->ram + p * PAGE, f->want + p * PAGE, PAGE))
			fail_msg("page %llu differs from what was sent", (unsigned long long)p);
}

static void runs_of_raw_pages(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};

	for (uint64_t p = 0; p < 10; p++)
		add_page(f, p, CODEC_RAW, 1);
	add_page(f, 20, CODEC_RAW, 1);
	add_page(f, 21, CODEC_RAW, 1);
	add_page(f, 5, CODEC_RAW, 2);	/* again, later in the frame: the newer wins */
	assert_int_equal(place(f, 0, &c), 0);
	assert_ram(f);
	assert_int_equal(c.pages, 13);
	assert_int_equal(c.raw_pages, 13);
	assert_int_equal(c.writes, 3);
}

static void long_run_is_split(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};

	for (uint64_t p = 100; p < 100 + PLACE_RUN_MAX + 36; p++)
		add_page(f, p, CODEC_RAW, 3);
	assert_int_equal(place(f, 0, &c), 0);
	assert_ram(f);
	assert_int_equal(c.writes, 2);
}

static void more_decoded_pages_than_scratch(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};

	/* decoded pages, a gap (a new run while scratch pages are pending), raw ones between */
	for (uint64_t p = 200; p < 200 + PLACE_RUN_MAX + 20; p++)
		add_page(f, p, p % 3 ? CODEC_ZSTD : CODEC_LZ4, 4);
	for (uint64_t p = 300; p < 340; p++)
		add_page(f, p, p % 2 ? CODEC_LZ4 : CODEC_RAW, 4);
	add_page(f, 250, CODEC_ZSTD, 5);
	assert_int_equal(place(f, CAPS_ALL, &c), 0);
	assert_ram(f);
	assert_int_equal(c.pages, PLACE_RUN_MAX + 20 + 40 + 1);
	assert_int_equal(c.compressed_pages, PLACE_RUN_MAX + 20 + 20 + 1);
	assert_int_equal(c.raw_pages, 20);
}

static void frame_order_holds(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};

	add_page(f, 7, CODEC_RAW, 6);
	assert_int_equal(place(f, CAPS_ALL, &c), 0);
	/* in one frame: a whole page, then a delta on it, then a zero page after a whole one */
	add_page(f, 8, CODEC_RAW, 7);
	add_page(f, 7, CODEC_RAW, 8);
	add_page(f, 7, CODEC_XBZRLE, 9);
	add_page(f, 9, CODEC_LZ4, 7);
	add_page(f, 9, CODEC_ZERO, 0);
	add_page(f, 10, CODEC_RAW, 7);
	assert_int_equal(place(f, CAPS_ALL, &c), 0);
	assert_ram(f);
	assert_int_equal(c.xbzrle_pages, 1);
	assert_int_equal(c.zero_pages, 1);
	assert_int_equal(c.pages, 7);
}

/*
 * The bulk round writes the file without mapping it; page_place_map()
 * maps what the file holds and nothing else (stopped, nothing); a later
 * round stores through the mapping (no write at all), decoded pages too.
 */
static void bulk_round_then_map_then_stores(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};
	atomic_bool stop;
	uint64_t n = 0;

	for (uint64_t p = 30; p < 40; p++)
		add_page(f, p, CODEC_RAW, 1);
	for (uint64_t p = 400; p < 403; p++)
		add_page(f, p, CODEC_LZ4, 1);
	assert_int_equal(place_then(f, CAPS_ALL, &c, 1), 0);
	assert_int_equal(c.writes, 2);
	assert_false(mapped(f->ram + 30 * PAGE));
	atomic_init(&stop, true);
	assert_int_equal(page_place_map(f->ram, f->fd, (uint64_t)NPAGES * PAGE, &stop, &n), 0);
	assert_int_equal(n, 0);
	assert_false(mapped(f->ram + 30 * PAGE));
	atomic_store(&stop, false);
	assert_int_equal(page_place_map(f->ram, f->fd, (uint64_t)NPAGES * PAGE, &stop, &n), 0);
	assert_int_equal(n, 13);
	for (uint64_t p = 0; p < NPAGES; p++)
		assert_int_equal(mapped(f->ram + p * PAGE), (p >= 30 && p < 40) || (p >= 400 && p < 403));
	/* round 1: the same pages again, raw, lz4, zstd, and one the bulk round did not have */
	add_page(f, 30, CODEC_RAW, 2);
	add_page(f, 31, CODEC_LZ4, 2);
	add_page(f, 32, CODEC_ZSTD, 2);
	add_page(f, 45, CODEC_RAW, 2);
	assert_int_equal(place(f, CAPS_ALL, &c), 0);
	assert_ram(f);
	assert_int_equal(c.writes, 2);
	assert_int_equal(c.pages, 17);
	assert_int_equal(c.compressed_pages, 5);
}

static void bad_input_is_named(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};
	uint8_t *dst;

	/* zstd when the session chose none */
	add_page(f, 1, CODEC_ZSTD, 1);
	assert_int_equal(place(f, 0, &c), -EPROTO);
	assert_non_null(strstr(f->err, "zstd"));

	/* a payload that does not decode */
	dst = batch_reserve(&f->b, 64);
	assert_non_null(dst);
	memset(dst, 0xa5, 64);
	batch_commit(&f->b, 2, CODEC_LZ4, 64);
	assert_int_equal(place(f, CAPS_ALL, &c), -EBADMSG);
	assert_non_null(strstr(f->err, "page 2"));
	assert_non_null(strstr(f->err, "lz4"));

	/* a page outside RAM */
	add_page(f, 3, CODEC_RAW, 1);
	batch_reserve(&f->b, PAGE);
	batch_commit(&f->b, NPAGES, CODEC_ZERO, 0);
	assert_int_equal(place(f, 0, &c), -ERANGE);
	assert_true(f->err[0] != 0);
}

static void write_error_is_named(void **state)
{
	struct fx *f = *state;
	struct page_place_counts c = {0};
	char path[64];
	int ro;

	/* the same RAM through a file that cannot be written */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	page_placer_fini(&f->pp);
	assert_int_equal(page_placer_init(&f->pp, f->ram, ro, (uint64_t)NPAGES * PAGE, f->zstd,
					  f->lz4),
			 0);
	add_page(f, 4, CODEC_RAW, 1);
	assert_int_equal(place(f, 0, &c), -EBADF);
	assert_non_null(strstr(f->err, "cannot write guest RAM"));
	close(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(runs_of_raw_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(long_run_is_split, setup, teardown),
		cmocka_unit_test_setup_teardown(more_decoded_pages_than_scratch, setup, teardown),
		cmocka_unit_test_setup_teardown(frame_order_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(bulk_round_then_map_then_stores, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_input_is_named, setup, teardown),
		cmocka_unit_test_setup_teardown(write_error_is_named, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
