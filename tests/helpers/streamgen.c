/* SPDX-License-Identifier: MIT */
#include "tests/helpers/streamgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/digest.h"
#include "migrate/pagesend.h"
#include "protocol/frame.h"
#include "vm/state.h"

static int mem_write(struct mio *io, const void *buf, size_t len)
{
	struct memio *m = (struct memio *)io;

	if (m->len + len > m->cap) {
		size_t cap = (m->cap ? m->cap * 2 : 1 << 20);
		uint8_t *p;

		while (cap < m->len + len)
			cap *= 2;
		p = realloc(m->buf, cap);
		if (!p)
			return -ENOMEM;
		m->buf = p;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

static int mem_read(struct mio *io, void *buf, size_t len)
{
	struct memio *m = (struct memio *)io;
	size_t left = m->len - m->pos;

	if (left == 0 && len)
		return -ENODATA;
	if (left < len) {
		m->pos = m->len;
		return -ECONNRESET;
	}
	memcpy(buf, m->buf + m->pos, len);
	m->pos += len;
	io->bytes_in += len;
	return 0;
}

void memio_init(struct memio *m)
{
	memset(m, 0, sizeof(*m));
	m->io.write = mem_write;
	m->io.read = mem_read;
}

void memio_fini(struct memio *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

void memio_rewind(struct memio *m)
{
	m->pos = 0;
	m->io.bytes_in = 0;
}

void streamgen_defaults(struct streamgen_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = "gen";
	o->mem_bytes = 16ull << 20;
	o->vcpus = 1;
	o->pages = 64;
	o->skip_vcpu = -1;
	o->channels = 1;
	o->session = 42;
}

void streamgen_page(uint64_t i, uint8_t *page)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;

	for (size_t k = 0; k < 4096; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* half the words repeat, so compressors have something to do */
		uint64_t v = (k & 64) ? i : x;

		memcpy(page + k, &v, 8);
	}
}

static void make_state(struct vm_state *st, const struct streamgen_opts *o)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->config.name, sizeof(st->config.name), "%s", o->name);
	st->config.mem_bytes = o->mem_bytes;
	st->config.vcpus = o->vcpus;
	strcpy(st->config.guest, "memcheck");
	strcpy(st->config.guest_args, "workset=1M");
	st->config.mac[0] = 0x52;
	st->config.mac[1] = 0x54;
	st->config.mac[5] = 0x42;
	for (unsigned i = 0; i < o->vcpus; i++) {
		struct vcpu_state *v = &st->vcpu[i];

		v->index = i;
		/* the state vm_create() boots a vCPU with, so KVM accepts it */
		vm_boot_vcpu_state(i, &v->sregs, &v->regs, &v->fpu);
		v->mp_state = KVM_MP_STATE_RUNNABLE;
		if (i == 0 && o->bad_sregs)
			v->sregs.cr4 &= ~0x20ull;	/* EFER.LME and CR0.PG without CR4.PAE */
		v->tsc_khz = 2000000;
		v->nmsrs = 1;
		v->msrs[0].index = 0x10;
		v->ncpuid = 1;
		v->cpuid[0].function = 0;
	}
	for (int c = 0; c < 3; c++)
		st->pit.channels[c].mode = 0xff;
	strcpy(st->uart.console, "hello");
	st->uart.console_len = 5;
	st->uart.console_total = 5;
	st->ev.progress = 1234;
}

static int put(struct mio *io, ssize_t n, const uint8_t *buf)
{
	return n < 0 ? (int)n : mio_write(io, buf, (size_t)n);
}

int streamgen_write(struct mio *io, const struct streamgen_opts *o)
{
	struct vm_state *st = calloc(1, sizeof(*st));
	size_t cap = state_section_bound() + 64;
	uint8_t *buf = malloc(cap), *sec = malloc(cap), page[4096];
	struct codec_config cc = { .ops = NULL };
	struct page_sender *ps = NULL;
	struct wire_hello h;
	struct wire_complete c;
	uint32_t nsec = 0;
	int ret = -ENOMEM;

	if (!st || !buf || !sec)
		goto out;
	make_state(st, o);
	if (o->compress && codec_by_name(o->compress, &cc) < 0) {
		ret = -EINVAL;
		goto out;
	}
	ret = page_sender_create(&cc, 0, io, &ps);
	if (ret < 0)
		goto out;
	memset(&h, 0, sizeof(h));
	h.version = WIRE_VERSION;
	h.caps = page_sender_caps(ps) | (o->digest ? WIRE_CAP_VERIFY : 0) |
		 (o->channels > 1 ? WIRE_CAP_MULTI : 0);
	h.page_size = 4096;
	h.mem_bytes = o->mem_bytes;
	h.vcpus = o->vcpus;
	h.channel = o->channel;
	h.channels = o->channels;
	h.session = o->session;
	snprintf(h.name, sizeof(h.name), "%s", o->name);
	strcpy(h.guest, "memcheck");
	strcpy(h.guest_args, "workset=1M");
	memcpy(h.mac, st->config.mac, 6);
	ret = put(io, frame_put_hello(buf, cap, &h), buf);
	for (uint64_t i = 0, first = 1; !ret && i < o->pages; i++) {
		if ((512 + i) / 64 % o->channels != o->channel)
			continue;
		streamgen_page(i, page);
		ret = page_sender_page(ps, (first && o->bad_page) ? o->bad_page : 512 + i, page,
				       true);
		first = 0;
	}
	if (!ret)
		ret = page_sender_flush(ps);
	if (!ret && o->channel) {
		struct wire_end_round er = { .round = 0 };
		struct page_sender_stats pst;

		page_sender_get_stats(ps, &pst);
		er.pages = pst.pages;
		ret = put(io, frame_put_end_round(buf, cap, &er), buf);
		memset(&c, 0, sizeof(c));
		c.pages = pst.entries;
		if (!ret)
			ret = put(io, frame_put_complete(buf, cap, &c), buf);
		if (!ret)
			ret = mio_flush(io);
		goto out;
	}
	if (!ret)
		ret = put(io, frame_put_switchover(buf, cap, 0, o->paused ? WIRE_SWITCHOVER_PAUSED : 0), buf);
	for (int t = STATE_SEC_CONFIG; !ret && t <= STATE_SEC_NIC; t++) {
		unsigned n = t == STATE_SEC_VCPU ? o->vcpus : 1;

		for (unsigned i = 0; !ret && i < n; i++) {
			ssize_t len;

			if (t == STATE_SEC_VCPU && (int)i == o->skip_vcpu)
				continue;
			len = state_write_section(st, (enum state_section_type)t, i, sec, cap);
			if (len > 0)
				len = frame_put_state(buf, cap, sec, (size_t)len);
			ret = put(io, len, buf);
			nsec++;
		}
	}
	if (!ret) {
		memset(&c, 0, sizeof(c));
		c.pages = o->pages;
		c.state_sections = nsec;
		if (o->digest) {
			/* the RAM the receiver will hold: the data pages at 512 + i */
			uint8_t *ram = calloc(1, o->mem_bytes);

			if (!ram) {
				ret = -ENOMEM;
				goto out;
			}
			for (uint64_t i = 0; i < o->pages; i++)
				streamgen_page(i, ram + (512 + i) * 4096);
			ret = ram_digest(-1, ram, o->mem_bytes, c.digest);
			free(ram);
			c.digest_alg = WIRE_DIGEST_SHA256;
			if (o->digest == 2)
				c.digest[0] ^= 1;
		}
		if (!ret)
			ret = put(io, frame_put_complete(buf, cap, &c), buf);
	}
	if (!ret)
		ret = mio_flush(io);
out:
	page_sender_destroy(ps);
	free(st);
	free(buf);
	free(sec);
	return ret;
}
