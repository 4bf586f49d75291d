/* SPDX-License-Identifier: MIT */
#include "migrate/pageplace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE

int page_placer_init(struct page_placer *pp, uint8_t *ram, int fd, uint64_t ram_bytes,
		     struct codec_ctx *zstd, struct codec_ctx *lz4)
{
	memset(pp, 0, sizeof(*pp));
	pp->ram = ram;
	pp->fd = fd;
	pp->npages = ram_bytes / PAGE;
	pp->zstd = zstd;
	pp->lz4 = lz4;
	if (zstd || lz4) {
		pp->scratch = malloc((size_t)PLACE_RUN_MAX * PAGE);
		if (!pp->scratch)
			return -ENOMEM;
	}
	return 0;
}

void page_placer_fini(struct page_placer *pp)
{
	free(pp->scratch);
	pp->scratch = NULL;
}

/* Write the run gathered so far, all of it: a short write goes on where it stopped. */
static int flush_run(struct page_placer *pp)
{
	struct iovec *iov = pp->iov;
	unsigned n = pp->niov;
	off_t off = (off_t)(pp->run_first * PAGE);

	pp->niov = 0;
	pp->nscratch = 0;
	while (n) {
		ssize_t w = pwritev(pp->fd, iov, (int)n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		off += w;
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Make room for page at the end of the run: write the run when page does not extend it. */
static int open_slot(struct page_placer *pp, uint64_t page, struct page_place_counts *cnt)
{
	int ret;

	if (!pp->niov) {
		pp->run_first = page;
		return 0;
	}
	if (page == pp->run_first + pp->niov && pp->niov < PLACE_RUN_MAX)
		return 0;	/* nscratch <= niov: a scratch page is free too */
	cnt->writes++;
	ret = flush_run(pp);
	pp->run_first = page;
	return ret;
}

static void add_whole(struct page_placer *pp, const void *data)
{
	/* pwritev() only reads through iov_base */
	memcpy(&pp->iov[pp->niov].iov_base, &data, sizeof(data));
	pp->iov[pp->niov++].iov_len = PAGE;
}

static int flush_pending(struct page_placer *pp, struct page_place_counts *cnt)
{
	if (!pp->niov)
		return 0;
	cnt->writes++;
	return flush_run(pp);
}

static int bad_payload(const struct page_iter *it, const struct wire_page *pg, char *err,
		       size_t errlen)
{
	return err_set(-EBADMSG, err, errlen, "PAGES: entry %u (page %llu): bad %s payload",
		       it->index - 1, (unsigned long long)pg->page,
		       codec_get(pg->codec) ? codec_get(pg->codec)->name : "?");
}

int page_place(struct page_placer *pp, const uint8_t *p, size_t len, uint32_t caps,
	       struct page_place_counts *cnt, char *err, size_t errlen)
{
	struct page_iter it;
	struct wire_page pg;
	bool by_write;
	int ret;

	ret = pages_begin(&it, p, len, pp->npages, PAGE, caps, err, errlen);
	if (ret < 0)
		return ret;
	by_write = it.round == 0;
	while ((ret = pages_next(&it, &pg, err, errlen)) > 0) {
		uint8_t *dst = pp->ram + pg.page * PAGE;
		struct codec_ctx *ctx;
		uint8_t *to;

		switch (pg.codec) {
		case CODEC_RAW:
			if (!by_write) {
				memcpy(dst, pg.data, PAGE);
				cnt->raw_pages++;
				break;
			}
			ret = open_slot(pp, pg.page, cnt);
			if (ret < 0)
				goto write_failed;
			add_whole(pp, pg.data);	/* straight from the frame */
			cnt->raw_pages++;
			break;
		case CODEC_ZSTD:
		case CODEC_LZ4:
			ctx = pg.codec == CODEC_ZSTD ? pp->zstd : pp->lz4;
			if (!ctx || !pp->scratch)
				goto bad;
			if (!by_write) {
				if (codec_decode(ctx, pg.data, pg.len, dst, PAGE) != PAGE)
					goto bad;
				cnt->compressed_pages++;
				break;
			}
			ret = open_slot(pp, pg.page, cnt);
			if (ret < 0)
				goto write_failed;
			to = pp->scratch + (size_t)pp->nscratch * PAGE;
			if (codec_decode(ctx, pg.data, pg.len, to, PAGE) != PAGE)
				goto bad;
			pp->nscratch++;
			add_whole(pp, to);
			cnt->compressed_pages++;
			break;
		case CODEC_ZERO:
		case CODEC_XBZRLE:
			/* through the mapping, after what comes before it */
			ret = flush_pending(pp, cnt);
			if (ret < 0)
				goto write_failed;
			if (pg.codec == CODEC_ZERO) {
				memset(dst, 0, PAGE);
				cnt->zero_pages++;
				break;
			}
			if (codec_xbzrle_ops.decode(NULL, pg.data, pg.len, dst, PAGE) != PAGE)
				goto bad;
			cnt->xbzrle_pages++;
			break;
		default:
			goto bad;
		}
		cnt->pages++;
	}
	if (ret < 0)
		goto drop;
	ret = flush_pending(pp, cnt);
	if (ret < 0)
		goto write_failed;
	return 0;
bad:
	ret = bad_payload(&it, &pg, err, errlen);
	goto drop;
write_failed:
	err_set(ret, err, errlen, "cannot write guest RAM: %s", strerror(-ret));
drop:
	pp->niov = 0;
	pp->nscratch = 0;
	return ret;
}

int page_place_map(uint8_t *ram, int fd, uint64_t ram_bytes, const atomic_bool *stop,
		   uint64_t *pages)
{
	off_t pos = 0, end = (off_t)ram_bytes;

	*pages = 0;
	while (pos < end && !atomic_load(stop)) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0)
			return errno == ENXIO ? 0 : -errno;	/* ENXIO: no data past pos */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > end)
			hole = end;
		for (pos = data; pos < hole && !atomic_load(stop);) {
			size_t n = (size_t)MIN((off_t)PLACE_MAP_STEP, hole - pos);

			if (madvise(ram + pos, n, MADV_POPULATE_WRITE) < 0)
				return -errno;
			*pages += n / PAGE;
			pos += (off_t)n;
		}
	}
	return 0;
}
