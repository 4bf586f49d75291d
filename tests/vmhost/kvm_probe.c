/* SPDX-License-Identifier: MIT */
/*
 * kvm_probe.c - check which KVM features work on this host.
 *
 * Written for the TCG test VM (tests/vmhost/run-in-vm.sh), where /dev/kvm is
 * KVM-on-emulated-SVM, but runs anywhere. Each probe prints one line
 * "PASS name: detail" or "FAIL name: why" (or "SKIP"). Exit status: 0 when
 * every probe passed, 1 when some failed, 77 when /dev/kvm is missing.
 *
 * Usage: kvm_probe [PROBE...]   (default: all; names as printed)
 * Build: gcc -O2 -static -pthread -o kvm_probe tests/vmhost/kvm_probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int kvm_fd;
static int n_fail;
static int run_size;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void result(const char *verdict, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("%-4s %-14s ", verdict, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!strcmp(verdict, "FAIL"))
		n_fail++;
}

#define FAILRET(name, ...) do { result("FAIL", name, __VA_ARGS__); return; } while (0)

/* ---- guest code, assembled by gcc into .rodata and copied into the guest */

#define GUEST_BLOB(name) \
	extern const unsigned char name[], name##_end[]
GUEST_BLOB(rm_out);
GUEST_BLOB(rm_dirty);
GUEST_BLOB(rm_uffd);
GUEST_BLOB(lm_loop);
GUEST_BLOB(lm_timer);
GUEST_BLOB(lm_spin);
extern const unsigned char lm_timer_handler[];

__asm__(
	".pushsection .rodata\n"
	".code16\n"
	/* real mode: out 0x42 to port 0x10, hlt */
	"rm_out: mov $0x42, %al\n out %al, $0x10\n hlt\n rm_out_end:\n"
	/* real mode, DS = 0: dirty pages 2 and 5, report; then 3 and 5 */
	"rm_dirty: movb $1, 0x2000\n movb $1, 0x5000\n out %al, $0x10\n"
	"  movb $2, 0x3000\n movb $2, 0x5000\n out %al, $0x10\n hlt\n rm_dirty_end:\n"
	/* real mode, DS = 0x1000: read GPA 0x10000 (userfaultfd-backed) */
	"rm_uffd: mov 0, %al\n out %al, $0x10\n hlt\n rm_uffd_end:\n"
	".code64\n"
	/* long mode: count RCX down to 0, out 0x55 to port 0x10 */
	"lm_loop: 1: dec %rcx\n jnz 1b\n mov $0x55, %al\n out %al, $0x10\n hlt\n lm_loop_end:\n"
	/* long mode: LAPIC periodic timer, vector 0x40, until 10 ticks; count in r8.
	   RDX = initial count. */
	"lm_timer: mov $0xfee00000, %ebx\n"
	"  movl $0x1ff, 0xf0(%rbx)\n"	/* SVR: enable, spurious 0xff */
	"  movl $0xb, 0x3e0(%rbx)\n"	/* divide by 1 */
	"  movl $0x20040, 0x320(%rbx)\n"	/* LVT timer: periodic, vector 0x40 */
	"  movl %edx, 0x380(%rbx)\n"	/* initial count */
	"  xor %r8, %r8\n sti\n"
	"2: hlt\n cmp $10, %r8\n jb 2b\n cli\n"
	"  movl $0, 0x320(%rbx)\n movl $0x10000, 0x320(%rbx)\n"
	"  mov %r8d, %eax\n out %al, $0x10\n 3: hlt\n jmp 3b\n"
	"lm_timer_handler: inc %r8\n movl $0, 0xb0(%rbx)\n iretq\n"
	"lm_timer_end:\n"
	/* long mode: spin until the host writes a nonzero dword at 0x200000,
	   then store it + 1 at 0x201000 and out its low byte */
	"lm_spin: 4: movl 0x200000, %eax\n test %eax, %eax\n jz 4b\n"
	"  lea 1(%rax), %ecx\n movl %ecx, 0x201000\n out %al, $0x10\n hlt\n lm_spin_end:\n"
	".popsection\n");

#define BLOB_LEN(name) ((size_t)(name##_end - name))

/* ---- VM helpers */

struct vm {
	int fd;
	uint8_t *mem;
	size_t mem_size;
};

struct vcpu {
	int fd;
	struct kvm_run *run;
};

static int vm_create(struct vm *vm, size_t mem_size, int irqchip, char *err)
{
	struct kvm_userspace_memory_region r;

	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0)
		return sprintf(err, "KVM_CREATE_VM: %s", strerror(errno)), -1;
	/* needed on Intel for real mode; harmless on AMD */
	ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	if (irqchip && ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return sprintf(err, "KVM_CREATE_IRQCHIP: %s", strerror(errno)), -1;
	vm->mem_size = mem_size;
	vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED)
		return sprintf(err, "mmap: %s", strerror(errno)), -1;
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.guest_phys_addr = 0;
	r.memory_size = mem_size;
	r.userspace_addr = (uintptr_t)vm->mem;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return sprintf(err, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno)), -1;
	return 0;
}

static void vm_destroy(struct vm *vm)
{
	if (vm->mem && vm->mem != MAP_FAILED)
		munmap(vm->mem, vm->mem_size);
	if (vm->fd >= 0)
		close(vm->fd);
}

/* Give the vCPU the host-supported CPUID, as a real VMM does (KVM bases
 * e.g. the LAPIC timer modes on it: without it LVTT periodic is masked). */
static int vcpu_set_cpuid(struct vcpu *c, char *err)
{
	static struct kvm_cpuid2 *cpuid;

	if (!cpuid) {
		cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));
		cpuid->nent = 256;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
			sprintf(err, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
			free(cpuid);
			cpuid = NULL;
			return -1;
		}
	}
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid) < 0)
		return sprintf(err, "KVM_SET_CPUID2: %s", strerror(errno)), -1;
	return 0;
}

static int vcpu_create(struct vm *vm, struct vcpu *c, int id, char *err)
{
	c->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (c->fd < 0)
		return sprintf(err, "KVM_CREATE_VCPU: %s", strerror(errno)), -1;
	c->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED)
		return sprintf(err, "mmap vcpu: %s", strerror(errno)), -1;
	return vcpu_set_cpuid(c, err);
}

static void vcpu_destroy(struct vcpu *c)
{
	if (c->run && c->run != MAP_FAILED)
		munmap(c->run, run_size);
	if (c->fd >= 0)
		close(c->fd);
}

/* Real mode at CS:IP = 0:rip, DS = ds. */
static int vcpu_real_mode(struct vcpu *c, uint64_t rip, uint16_t ds, char *err)
{
	struct kvm_sregs s;
	struct kvm_regs r;

	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return sprintf(err, "KVM_GET_SREGS: %s", strerror(errno)), -1;
	s.cs.base = 0;
	s.cs.selector = 0;
	s.ds.base = (uint64_t)ds << 4;
	s.ds.selector = ds;
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return sprintf(err, "KVM_SET_SREGS: %s", strerror(errno)), -1;
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.rflags = 2;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return sprintf(err, "KVM_SET_REGS: %s", strerror(errno)), -1;
	return 0;
}

/* Long-mode layout: GDT 0x1000, IDT 0x4000, PML4 0x10000, PDPT 0x11000,
 * PDs 0x12000 (0-1 GiB) and 0x13000 (3-4 GiB, for the LAPIC), code 0x100000,
 * stack top 0x80000. Identity map with 2 MiB pages. */
#define LM_CODE 0x100000
static void lm_setup_memory(struct vm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->mem + 0x1000);
	uint64_t *pml4 = (uint64_t *)(vm->mem + 0x10000);
	uint64_t *pdpt = (uint64_t *)(vm->mem + 0x11000);
	uint64_t *pd0 = (uint64_t *)(vm->mem + 0x12000);
	uint64_t *pd3 = (uint64_t *)(vm->mem + 0x13000);
	int i;

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;	/* 0x08: 64-bit code */
	gdt[2] = 0x00cf93000000ffffULL;	/* 0x10: data */
	pml4[0] = 0x11000 | 3;
	pdpt[0] = 0x12000 | 3;
	pdpt[3] = 0x13000 | 3;
	for (i = 0; i < 512; i++) {
		pd0[i] = ((uint64_t)i << 21) | 0x83;
		pd3[i] = (0xc0000000ULL + ((uint64_t)i << 21)) | 0x83 | 0x18; /* PCD|PWT */
	}
}

static int vcpu_long_mode(struct vcpu *c, uint64_t rip, uint64_t rsp, char *err)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	struct kvm_segment cs = {
		.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 11,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment ds = cs;

	ds.selector = 0x10;
	ds.type = 3;
	ds.l = 0;
	ds.db = 1;
	if (ioctl(c->fd, KVM_GET_SREGS, &s) < 0)
		return sprintf(err, "KVM_GET_SREGS: %s", strerror(errno)), -1;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.gdt.base = 0x1000;
	s.gdt.limit = 3 * 8 - 1;
	s.idt.base = 0x4000;
	s.idt.limit = 256 * 16 - 1;
	s.cr3 = 0x10000;
	s.cr4 = 1 << 5;				/* PAE */
	s.cr0 = 0x80000001 | (1 << 4);		/* PG | PE | ET */
	s.efer = (1 << 8) | (1 << 10);		/* LME | LMA */
	if (ioctl(c->fd, KVM_SET_SREGS, &s) < 0)
		return sprintf(err, "KVM_SET_SREGS: %s", strerror(errno)), -1;
	memset(&r, 0, sizeof(r));
	r.rip = rip;
	r.rsp = rsp;
	r.rflags = 2;
	if (ioctl(c->fd, KVM_SET_REGS, &r) < 0)
		return sprintf(err, "KVM_SET_REGS: %s", strerror(errno)), -1;
	return 0;
}

static const char *exit_name(unsigned r)
{
	static char buf[32];

	switch (r) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: snprintf(buf, sizeof(buf), "exit %u", r); return buf;
	}
}

/* Run until an exit; expect KVM_EXIT_IO out to port 0x10, return its byte. */
static int run_expect_out(struct vcpu *c, char *err)
{
	struct kvm_run *run = c->run;

	if (ioctl(c->fd, KVM_RUN, 0) < 0)
		return sprintf(err, "KVM_RUN: %s", strerror(errno)), -1;
	if (run->exit_reason != KVM_EXIT_IO) {
		struct kvm_regs r;

		ioctl(c->fd, KVM_GET_REGS, &r);
		sprintf(err, "unexpected exit %s (hw reason 0x%llx, suberror %u) at rip 0x%llx",
			exit_name(run->exit_reason),
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			run->internal.suberror, (unsigned long long)r.rip);
		return -1;
	}
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x10)
		return sprintf(err, "unexpected IO dir %d port 0x%x", run->io.direction, run->io.port), -1;
	return ((uint8_t *)run)[run->io.data_offset];
}

/* ---- probes */

static void probe_caps(void)
{
	static const struct { int cap; const char *name; } caps[] = {
		{ KVM_CAP_IRQCHIP, "IRQCHIP" },
		{ KVM_CAP_PIT2, "PIT2" },
		{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
		{ KVM_CAP_NR_MEMSLOTS, "NR_MEMSLOTS" },
		{ KVM_CAP_NR_VCPUS, "NR_VCPUS" },
		{ KVM_CAP_MAX_VCPUS, "MAX_VCPUS" },
		{ KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "MANUAL_DIRTY_LOG_PROTECT2" },
		{ KVM_CAP_DIRTY_LOG_RING, "DIRTY_LOG_RING" },
		{ KVM_CAP_XSAVE, "XSAVE" },
		{ KVM_CAP_XCRS, "XCRS" },
		{ KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS" },
		{ KVM_CAP_DEBUGREGS, "DEBUGREGS" },
		{ KVM_CAP_TSC_CONTROL, "TSC_CONTROL" },
		{ KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK" },
		{ KVM_CAP_SPLIT_IRQCHIP, "SPLIT_IRQCHIP" },
		{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
		{ KVM_CAP_NESTED_STATE, "NESTED_STATE" },
	};
	char buf[1024];
	size_t n = 0, i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int v = ioctl(kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap);

		n += snprintf(buf + n, sizeof(buf) - n, "%s%s=%d", i ? " " : "", caps[i].name, v);
	}
	result("INFO", "caps", "%s", buf);
}

static void probe_realmode(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	char err[256];
	int v;

	if (vm_create(&vm, 0x100000, 0, err) || vcpu_create(&vm, &c, 0, err))
		goto fail;
	memcpy(vm.mem + 0x1000, rm_out, BLOB_LEN(rm_out));
	if (vcpu_real_mode(&c, 0x1000, 0, err))
		goto fail;
	v = run_expect_out(&c, err);
	if (v < 0)
		goto fail;
	if (v != 0x42) {
		sprintf(err, "out byte 0x%x, want 0x42", v);
		goto fail;
	}
	if (ioctl(c.fd, KVM_RUN, 0) < 0 || c.run->exit_reason != KVM_EXIT_HLT) {
		sprintf(err, "after out: %s, want HLT", exit_name(c.run->exit_reason));
		goto fail;
	}
	result("PASS", "realmode", "KVM_EXIT_IO port 0x10 byte 0x42, then KVM_EXIT_HLT");
	goto out;
fail:
	result("FAIL", "realmode", "%s", err);
out:
	vcpu_destroy(&c);
	vm_destroy(&vm);
}

static void probe_irqchip(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	struct kvm_pit_config pit = { .flags = 0 };
	char err[256];
	int v;

	if (vm_create(&vm, 0x100000, 1, err))
		goto fail;
	if (ioctl(vm.fd, KVM_CREATE_PIT2, &pit) < 0) {
		sprintf(err, "KVM_CREATE_PIT2: %s", strerror(errno));
		goto fail;
	}
	if (vcpu_create(&vm, &c, 0, err))
		goto fail;
	memcpy(vm.mem + 0x1000, rm_out, BLOB_LEN(rm_out));
	if (vcpu_real_mode(&c, 0x1000, 0, err))
		goto fail;
	v = run_expect_out(&c, err);
	if (v != 0x42) {
		if (v >= 0)
			sprintf(err, "out byte 0x%x", v);
		goto fail;
	}
	result("PASS", "irqchip+pit2", "KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, vCPU runs");
	goto out;
fail:
	result("FAIL", "irqchip+pit2", "%s", err);
out:
	vcpu_destroy(&c);
	vm_destroy(&vm);
}

static void probe_dirtylog(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	struct kvm_userspace_memory_region r;
	struct kvm_dirty_log dl;
	struct kvm_clear_dirty_log cl;
	uint64_t bitmap[4];
	char err[256];
	int caps;

	caps = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (caps <= 0) {
		result("FAIL", "dirtylog", "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 not supported");
		return;
	}
	if (vm_create(&vm, 0x100000, 0, err))
		goto fail;
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
	if (ioctl(vm.fd, KVM_ENABLE_CAP, &cap) < 0) {
		sprintf(err, "KVM_ENABLE_CAP MANUAL_DIRTY_LOG_PROTECT2: %s", strerror(errno));
		goto fail;
	}
	memset(&r, 0, sizeof(r));
	r.slot = 0;
	r.flags = KVM_MEM_LOG_DIRTY_PAGES;
	r.memory_size = vm.mem_size;
	r.userspace_addr = (uintptr_t)vm.mem;
	if (ioctl(vm.fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		sprintf(err, "enable KVM_MEM_LOG_DIRTY_PAGES: %s", strerror(errno));
		goto fail;
	}
	if (vcpu_create(&vm, &c, 0, err))
		goto fail;
	memcpy(vm.mem + 0x1000, rm_dirty, BLOB_LEN(rm_dirty));
	if (vcpu_real_mode(&c, 0x1000, 0, err) || run_expect_out(&c, err) < 0)
		goto fail;
	memset(bitmap, 0, sizeof(bitmap));
	memset(&dl, 0, sizeof(dl));
	dl.slot = 0;
	dl.dirty_bitmap = bitmap;
	if (ioctl(vm.fd, KVM_GET_DIRTY_LOG, &dl) < 0) {
		sprintf(err, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
		goto fail;
	}
	if ((bitmap[0] & 0x3c) != 0x24) {
		sprintf(err, "first round bitmap[0]=0x%llx, want bits 2,5 (not 3,4)",
			(unsigned long long)bitmap[0]);
		goto fail;
	}
	uint64_t first = bitmap[0];
	memset(&cl, 0, sizeof(cl));
	cl.slot = 0;
	cl.first_page = 0;
	cl.num_pages = 256;
	cl.dirty_bitmap = bitmap;		/* clear what we saw */
	if (ioctl(vm.fd, KVM_CLEAR_DIRTY_LOG, &cl) < 0) {
		sprintf(err, "KVM_CLEAR_DIRTY_LOG: %s", strerror(errno));
		goto fail;
	}
	if (run_expect_out(&c, err) < 0)
		goto fail;
	memset(bitmap, 0, sizeof(bitmap));
	if (ioctl(vm.fd, KVM_GET_DIRTY_LOG, &dl) < 0) {
		sprintf(err, "KVM_GET_DIRTY_LOG 2: %s", strerror(errno));
		goto fail;
	}
	if ((bitmap[0] & 0x3c) != 0x28) {
		sprintf(err, "second round bitmap[0]=0x%llx, want bits 3,5 (not 2,4)",
			(unsigned long long)bitmap[0]);
		goto fail;
	}
	result("PASS", "dirtylog", "MANUAL_PROTECT2 GET/CLEAR_DIRTY_LOG: round1 0x%llx round2 0x%llx",
	       (unsigned long long)first, (unsigned long long)bitmap[0]);
	goto out;
fail:
	result("FAIL", "dirtylog", "%s", err);
out:
	vcpu_destroy(&c);
	vm_destroy(&vm);
}

static int lm_run_loop(struct vm *vm, struct vcpu *c, uint64_t n, double *secs, char *err)
{
	struct kvm_regs r;
	double t0;
	int v;

	if (vcpu_long_mode(c, LM_CODE, 0x80000, err))
		return -1;
	ioctl(c->fd, KVM_GET_REGS, &r);
	r.rcx = n;
	ioctl(c->fd, KVM_SET_REGS, &r);
	t0 = now();
	v = run_expect_out(c, err);
	*secs = now() - t0;
	if (v < 0)
		return -1;
	if (v != 0x55)
		return sprintf(err, "out byte 0x%x, want 0x55", v), -1;
	(void)vm;
	return 0;
}

static void probe_longmode(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	char err[256];
	double secs;
	uint64_t n = 1000;

	if (vm_create(&vm, 0x400000, 0, err) || vcpu_create(&vm, &c, 0, err))
		goto fail;
	lm_setup_memory(&vm);
	memcpy(vm.mem + LM_CODE, lm_loop, BLOB_LEN(lm_loop));
	if (lm_run_loop(&vm, &c, 1, &secs, err))
		goto fail;
	/* grow the loop until it takes 0.5 s, then report the rate */
	for (;;) {
		if (lm_run_loop(&vm, &c, n, &secs, err))
			goto fail;
		if (secs > 0.5 || n > (1ULL << 40))
			break;
		n *= secs < 0.05 ? 10 : 2;
	}
	result("PASS", "longmode", "64-bit guest, paging; loop 'dec rcx; jnz': %.1f M iterations/s",
	       n / secs / 1e6);
	goto out;
fail:
	result("FAIL", "longmode", "%s", err);
out:
	vcpu_destroy(&c);
	vm_destroy(&vm);
}

struct smp_arg {
	struct vm *vm;
	struct vcpu c;
	uint64_t n;
	double secs;
	int rc;
	char err[256];
};

static void *smp_thread(void *p)
{
	struct smp_arg *a = p;

	a->rc = lm_run_loop(a->vm, &a->c, a->n, &a->secs, a->err);
	return NULL;
}

static void probe_smp(void)
{
	struct vm vm = { .fd = -1 };
	struct smp_arg a[2];
	pthread_t th[2];
	char err[320];
	int i, ok = 1;

	memset(a, 0, sizeof(a));
	a[0].c.fd = a[1].c.fd = -1;
	if (vm_create(&vm, 0x400000, 1, err))
		goto fail;
	lm_setup_memory(&vm);
	memcpy(vm.mem + LM_CODE, lm_loop, BLOB_LEN(lm_loop));
	for (i = 0; i < 2; i++) {
		a[i].vm = &vm;
		a[i].n = 20000000;
		if (vcpu_create(&vm, &a[i].c, i, err))
			goto fail;
		/* with the in-kernel irqchip, APs wait for INIT/SIPI: make them runnable */
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
		if (ioctl(a[i].c.fd, KVM_SET_MP_STATE, &mp) < 0) {
			sprintf(err, "KVM_SET_MP_STATE: %s", strerror(errno));
			goto fail;
		}
	}
	for (i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, smp_thread, &a[i]);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 2; i++)
		if (a[i].rc) {
			snprintf(err, sizeof(err), "vCPU %d: %s", i, a[i].err);
			ok = 0;
		}
	if (!ok)
		goto fail;
	result("PASS", "smp", "2 vCPUs (irqchip) in 2 threads, 2x%llu iterations in %.2f s / %.2f s",
	       (unsigned long long)a[0].n, a[0].secs, a[1].secs);
	goto out;
fail:
	result("FAIL", "smp", "%s", err);
out:
	for (i = 0; i < 2; i++)
		vcpu_destroy(&a[i].c);
	vm_destroy(&vm);
}

static void on_kick(int sig)
{
	(void)sig;
}

static void on_alarm(int sig);

static void probe_lapic_timer(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	struct kvm_regs r;
	char err[256];
	uint64_t handler = LM_CODE + (lm_timer_handler - lm_timer);
	uint64_t *idt;
	double t0, secs;
	int v;

	if (vm_create(&vm, 0x400000, 1, err) || vcpu_create(&vm, &c, 0, err))
		goto fail;
	lm_setup_memory(&vm);
	memcpy(vm.mem + LM_CODE, lm_timer, BLOB_LEN(lm_timer));
	idt = (uint64_t *)(vm.mem + 0x4000 + 0x40 * 16);
	idt[0] = (handler & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40) |
		 ((handler >> 16 & 0xffff) << 48);
	idt[1] = handler >> 32;
	if (vcpu_long_mode(&c, LM_CODE, 0x80000, err))
		goto fail;
	ioctl(c.fd, KVM_GET_REGS, &r);
	r.rdx = 1000000;	/* bus clock is 1 GHz in KVM: 1 ms period */
	ioctl(c.fd, KVM_SET_REGS, &r);
	t0 = now();
	{
		/* kick KVM_RUN out with a signal after 20 s to report the state */
		struct sigaction sa = { .sa_handler = on_kick };
		sigaction(SIGALRM, &sa, NULL);
		alarm(20);
	}
	v = run_expect_out(&c, err);
	alarm(0);
	signal(SIGALRM, on_alarm);
	secs = now() - t0;
	if (v < 0) {
		if (errno == EINTR) {
			struct kvm_lapic_state ls;
			uint32_t *apic = (uint32_t *)ls.regs;

			ioctl(c.fd, KVM_GET_REGS, &r);
			ioctl(c.fd, KVM_GET_LAPIC, &ls);
			sprintf(err, "no result after 20 s: rip 0x%llx r8 (ticks) %llu rflags 0x%llx; "
				"LAPIC SVR 0x%x LVTT 0x%x TMICT %u TMCCT %u TDCR 0x%x IRR[2] 0x%x ISR[2] 0x%x",
				(unsigned long long)r.rip, (unsigned long long)r.r8,
				(unsigned long long)r.rflags, apic[0xf0 / 4], apic[0x320 / 4],
				apic[0x380 / 4], apic[0x390 / 4], apic[0x3e0 / 4],
				apic[0x220 / 4], apic[0x120 / 4]);
		}
		goto fail;
	}
	if (v < 10) {
		sprintf(err, "ticks %d, want >= 10", v);
		goto fail;
	}
	result("PASS", "lapic-timer", "in-kernel LAPIC periodic timer, 10 x 1 ms ticks took %.3f s", secs);
	goto out;
fail:
	result("FAIL", "lapic-timer", "%s", err);
out:
	vcpu_destroy(&c);
	vm_destroy(&vm);
}

struct poke_arg {
	volatile uint32_t *p;
};

static void *poke_thread(void *p)
{
	struct poke_arg *a = p;

	usleep(200000);
	*a->p = 0x5a;
	return NULL;
}

/* The VMM writes guest RAM while a vCPU is spinning on it: does the guest
 * see it, and does the VMM see the guest's store? */
static void probe_coherency(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	struct poke_arg a;
	pthread_t th;
	char err[256];
	double t0, secs;
	int v;

	if (vm_create(&vm, 0x400000, 0, err) || vcpu_create(&vm, &c, 0, err))
		goto fail;
	lm_setup_memory(&vm);
	memcpy(vm.mem + LM_CODE, lm_spin, BLOB_LEN(lm_spin));
	if (vcpu_long_mode(&c, LM_CODE, 0x80000, err))
		goto fail;
	a.p = (volatile uint32_t *)(vm.mem + 0x200000);
	pthread_create(&th, NULL, poke_thread, &a);
	t0 = now();
	v = run_expect_out(&c, err);
	secs = now() - t0;
	pthread_join(th, NULL);
	if (v < 0)
		goto fail;
	if (v != 0x5a || *(volatile uint32_t *)(vm.mem + 0x201000) != 0x5b) {
		sprintf(err, "guest saw 0x%x, VMM sees 0x%x", v, *(uint32_t *)(vm.mem + 0x201000));
		goto fail;
	}
	result("PASS", "coherency", "guest saw the VMM's store to its RAM (after %.3f s), VMM saw the guest's", secs);
	goto out;
fail:
	result("FAIL", "coherency", "%s", err);
out:
	vcpu_destroy(&c);
	vm_destroy(&vm);
}

struct uffd_arg {
	int uffd;
	void *page;
	int faults;
	char err[128];
};

static void *uffd_thread(void *p)
{
	struct uffd_arg *a = p;
	struct pollfd pfd = { .fd = a->uffd, .events = POLLIN };
	struct uffd_msg msg;

	while (poll(&pfd, 1, 5000) > 0) {
		if (read(a->uffd, &msg, sizeof(msg)) != sizeof(msg))
			break;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		struct uffdio_copy cp = {
			.dst = msg.arg.pagefault.address & ~4095ULL,
			.src = (uintptr_t)a->page,
			.len = 4096,
		};
		if (ioctl(a->uffd, UFFDIO_COPY, &cp) < 0) {
			snprintf(a->err, sizeof(a->err), "UFFDIO_COPY: %s", strerror(errno));
			break;
		}
		a->faults++;
		return NULL;
	}
	if (!a->err[0])
		snprintf(a->err, sizeof(a->err), "no fault within 5 s");
	return NULL;
}

static void probe_uffd(void)
{
	struct vm vm = { .fd = -1 };
	struct vcpu c = { .fd = -1 };
	struct uffd_arg a;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct kvm_userspace_memory_region r;
	pthread_t th;
	uint8_t *area;
	char err[256];
	int started = 0, v;

	memset(&a, 0, sizeof(a));
	a.uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (a.uffd < 0) {
		result("FAIL", "userfaultfd", "userfaultfd(): %s", strerror(errno));
		return;
	}
	if (ioctl(a.uffd, UFFDIO_API, &api) < 0) {
		result("FAIL", "userfaultfd", "UFFDIO_API: %s", strerror(errno));
		return;
	}
	area = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	a.page = aligned_alloc(4096, 4096);
	memset(a.page, 0x77, 4096);
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)area;
	reg.range.len = 0x10000;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(a.uffd, UFFDIO_REGISTER, &reg) < 0) {
		sprintf(err, "UFFDIO_REGISTER: %s", strerror(errno));
		goto fail;
	}
	if (vm_create(&vm, 0x10000, 0, err))
		goto fail;
	memset(&r, 0, sizeof(r));
	r.slot = 1;
	r.guest_phys_addr = 0x10000;
	r.memory_size = 0x10000;
	r.userspace_addr = (uintptr_t)area;
	if (ioctl(vm.fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		sprintf(err, "KVM_SET_USER_MEMORY_REGION slot 1: %s", strerror(errno));
		goto fail;
	}
	if (vcpu_create(&vm, &c, 0, err))
		goto fail;
	memcpy(vm.mem + 0x1000, rm_uffd, BLOB_LEN(rm_uffd));
	if (vcpu_real_mode(&c, 0x1000, 0x1000, err))
		goto fail;
	pthread_create(&th, NULL, uffd_thread, &a);
	started = 1;
	v = run_expect_out(&c, err);
	pthread_join(th, NULL);
	started = 0;
	if (v < 0)
		goto fail;
	if (v != 0x77 || a.faults != 1) {
		sprintf(err, "guest read 0x%x after %d faults (%s), want 0x77 after 1", v, a.faults, a.err);
		goto fail;
	}
	result("PASS", "userfaultfd", "guest read of a missing page resolved by UFFDIO_COPY (api features 0x%llx)",
	       (unsigned long long)api.features);
	goto out;
fail:
	result("FAIL", "userfaultfd", "%s", err);
out:
	if (started)
		pthread_cancel(th);
	vcpu_destroy(&c);
	vm_destroy(&vm);
	close(a.uffd);
}

static const char *current_probe = "?";

static void on_alarm(int sig)
{
	(void)sig;
	printf("FAIL %-14s timed out after 120 s\nkvm_probe: SOME PROBES FAILED\n", current_probe);
	fflush(stdout);
	_exit(1);
}

static const struct { const char *name; void (*fn)(void); } probes[] = {
	{ "caps", probe_caps },
	{ "realmode", probe_realmode },
	{ "irqchip", probe_irqchip },
	{ "dirtylog", probe_dirtylog },
	{ "longmode", probe_longmode },
	{ "smp", probe_smp },
	{ "lapic-timer", probe_lapic_timer },
	{ "coherency", probe_coherency },
	{ "userfaultfd", probe_uffd },
};

int main(int argc, char **argv)
{
	size_t i;
	int j, api;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		printf("SKIP /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	result("INFO", "api", "KVM_GET_API_VERSION=%d vcpu mmap size %d", api, run_size);
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		int want = argc < 2;

		for (j = 1; j < argc; j++)
			want |= !strcmp(argv[j], probes[i].name);
		if (!want)
			continue;
		current_probe = probes[i].name;
		alarm(120);
		probes[i].fn();
		alarm(0);
	}
	printf("kvm_probe: %s\n", n_fail ? "SOME PROBES FAILED" : "all probes passed");
	return n_fail ? 1 : 0;
}
