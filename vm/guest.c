/* SPDX-License-Identifier: MIT */
#include "vm/guest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"
#include "vm/guest_abi.h"

#define LOW_RAM_MAX (3ull << 30)
#define HIGH_RAM_GPA (4ull << 30)

/* The embedded images, from build/vm/guests/blobs.S. */
extern const uint8_t guest_blob_idle[], guest_blob_idle_end[];
extern const uint8_t guest_blob_seqdirty[], guest_blob_seqdirty_end[];
extern const uint8_t guest_blob_randdirty[], guest_blob_randdirty_end[];
extern const uint8_t guest_blob_memcheck[], guest_blob_memcheck_end[];

static const struct {
	const char *name;
	const uint8_t *start, *end;
} guests[] = {
	[GUEST_KIND_IDLE] = { "idle", guest_blob_idle, guest_blob_idle_end },
	[GUEST_KIND_SEQDIRTY] = { "seqdirty", guest_blob_seqdirty, guest_blob_seqdirty_end },
	[GUEST_KIND_RANDDIRTY] = { "randdirty", guest_blob_randdirty, guest_blob_randdirty_end },
	[GUEST_KIND_MEMCHECK] = { "memcheck", guest_blob_memcheck, guest_blob_memcheck_end },
};
_Static_assert(ARRAY_SIZE(guests) == GUEST_KIND_MEMCHECK + 1, "one image per guest kind");

int guest_kind_by_name(const char *name)
{
	for (unsigned i = 0; i < ARRAY_SIZE(guests); i++)
		if (!strcmp(name, guests[i].name))
			return (int)i;
	return -EINVAL;
}

const char *guest_kind_name(unsigned kind)
{
	return kind < ARRAY_SIZE(guests) ? guests[kind].name : "unknown";
}

uint64_t guest_low_ram_bytes(uint64_t mem_bytes)
{
	return MIN(mem_bytes, LOW_RAM_MAX);
}

uint64_t guest_ram_off_to_gpa(uint64_t off)
{
	return off < LOW_RAM_MAX ? off : off - LOW_RAM_MAX + HIGH_RAM_GPA;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

int guest_parse(const char *name, const char *args, uint64_t mem_bytes, unsigned vcpus,
		struct guest_params *gp, char *err, size_t errlen)
{
	char buf[256], *save = NULL, *tok;
	int kind = guest_kind_by_name(name);
	uint64_t max_ws;

	if (kind < 0)
		return err_set(-EINVAL, err, errlen, "unknown guest '%s' (idle, seqdirty, randdirty, memcheck)",
			    name);
	if (mem_bytes < 2 * GUEST_WORKSET_GPA)
		return err_set(-EINVAL, err, errlen, "guest memory must be at least 4M");
	if (vcpus == 0)
		return err_set(-EINVAL, err, errlen, "a guest needs at least one vCPU");
	memset(gp, 0, sizeof(*gp));
	gp->kind = (unsigned)kind;
	gp->ws_off = GUEST_WORKSET_GPA;
	max_ws = mem_bytes - GUEST_WORKSET_GPA;
	gp->ws_bytes = MIN(16ull << 20, mem_bytes - 2 * GUEST_WORKSET_GPA);
	gp->seed = 1;
	gp->tick_hz = 100;
	gp->hot_pct = 80;
	if (strlen(args) >= sizeof(buf))
		return err_set(-EINVAL, err, errlen, "guest arguments too long");
	strcpy(buf, args);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t v;
		int ret;

		if (!eq)
			return err_set(-EINVAL, err, errlen, "guest argument '%s' is not key=value", tok);
		*eq++ = '\0';
		if (!strcmp(tok, "workset"))
			ret = parse_size(eq, &v);
		else
			ret = parse_u64(eq, &v);
		if (ret < 0)
			return err_set(-EINVAL, err, errlen, "guest argument %s: bad value '%s'", tok, eq);
		if (!strcmp(tok, "workset")) {
			if (v > max_ws)
				return err_set(-EINVAL, err, errlen,
					    "workset %s exceeds the %llu MiB of RAM above 2 MiB", eq,
					    (unsigned long long)(max_ws >> 20));
			gp->ws_bytes = v;
		} else if (!strcmp(tok, "rate")) {
			gp->rate = v;
		} else if (!strcmp(tok, "seed")) {
			gp->seed = v;
		} else if (!strcmp(tok, "hz")) {
			if (v < 10 || v > 1000)
				return err_set(-EINVAL, err, errlen, "hz must be 10..1000");
			gp->tick_hz = v;
		} else if (!strcmp(tok, "hot")) {
			if (v > 100)
				return err_set(-EINVAL, err, errlen, "hot must be a percentage 0..100");
			gp->hot_pct = v;
		} else {
			return err_set(-EINVAL, err, errlen,
				    "unknown guest argument '%s' (workset, rate, seed, hz, hot)", tok);
		}
	}
	gp->share_pages = gp->ws_bytes / 4096 / vcpus;
	if (gp->kind != GUEST_KIND_IDLE && gp->share_pages == 0)
		return err_set(-EINVAL, err, errlen, "workset too small: each vCPU needs at least one page");
	gp->stride = 1;
	if (gp->share_pages > 2) {
		gp->stride = gp->share_pages / 2 + 1;
		while (gcd(gp->stride, gp->share_pages) != 1)
			gp->stride++;
	}
	return 0;
}

static void put64(uint8_t *ram, uint64_t off, uint64_t v)
{
	store_u64(ram + off, v);
}

void guest_write_boot(uint8_t *ram, uint64_t mem_bytes, unsigned vcpus,
		      const struct guest_params *gp)
{
	const uint8_t *img = guests[gp->kind].start;
	size_t img_len = (size_t)(guests[gp->kind].end - img);
	uint64_t chunks = mem_bytes >> 21;

	memcpy(ram + GUEST_CODE_GPA, img, MIN(img_len, (size_t)GUEST_CODE_MAX));

	/* GDT: null, 64-bit code, data */
	put64(ram, GUEST_GDT_GPA + 0, 0);
	put64(ram, GUEST_GDT_GPA + 8, 0x00af9a000000ffffull);
	put64(ram, GUEST_GDT_GPA + 16, 0x00cf92000000ffffull);

	/*
	 * Page tables: virtual [0, mem) onto RAM offsets, 2 MiB pages. The
	 * accessed and dirty bits are set up front, so the CPU's page walker
	 * never writes to the tables: under dirty logging those writes would
	 * fault to the hypervisor in the middle of a walk, a path nested
	 * hypervisors handle least well.
	 */
	put64(ram, GUEST_PML4_GPA, GUEST_PDPT_GPA | 0x23);
	for (uint64_t g = 0; g < DIV_ROUND_UP(chunks, 512) && g < GUEST_PD_MAX; g++)
		put64(ram, GUEST_PDPT_GPA + g * 8, (GUEST_PD_GPA + g * 4096) | 0x23);
	for (uint64_t c = 0; c < chunks && c < GUEST_PD_MAX * 512; c++)
		put64(ram, GUEST_PD_GPA + c * 8, guest_ram_off_to_gpa(c << 21) | 0xe3);

	put64(ram, GUEST_BOOTINFO_GPA + BI_MAGIC, GUEST_BI_MAGIC);
	put64(ram, GUEST_BOOTINFO_GPA + BI_KIND, gp->kind);
	put64(ram, GUEST_BOOTINFO_GPA + BI_VCPUS, vcpus);
	put64(ram, GUEST_BOOTINFO_GPA + BI_MEM_BYTES, mem_bytes);
	put64(ram, GUEST_BOOTINFO_GPA + BI_WS_BASE, gp->ws_off);
	put64(ram, GUEST_BOOTINFO_GPA + BI_WS_BYTES, gp->ws_bytes);
	put64(ram, GUEST_BOOTINFO_GPA + BI_RATE, gp->rate);
	put64(ram, GUEST_BOOTINFO_GPA + BI_SEED, gp->seed);
	put64(ram, GUEST_BOOTINFO_GPA + BI_TICK_HZ, gp->tick_hz);
	put64(ram, GUEST_BOOTINFO_GPA + BI_HOT_PCT, gp->hot_pct);
	put64(ram, GUEST_BOOTINFO_GPA + BI_STRIDE, gp->stride);
	put64(ram, GUEST_BOOTINFO_GPA + BI_SHARE_PAGES, gp->share_pages);
}
