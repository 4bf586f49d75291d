/* SPDX-License-Identifier: MIT */
/*
 * vm.c - the VMM: KVM VM and vCPU set-up, the vCPU threads, pause/resume,
 * the device models (COM1 UART, guest event port, NIC identity) and state
 * capture/load in KVM's load order (see ../shared/kvm-notes.md).
 *
 * Pausing (the race, step by step): the controller sets pause_req under
 * the lock, then signals every vCPU thread; the SIGUSR1 handler sets that
 * thread's run->immediate_exit. A vCPU thread clears immediate_exit, then
 * (after a full fence) checks pause_req under the lock before each KVM_RUN.
 *   - signal before the clear: the clear loses it, but the check that
 *     follows sees pause_req (set before the signal) and parks;
 *   - signal after the check: KVM_RUN sees immediate_exit and returns EINTR
 *     at once; the next loop parks.
 * Resume waits until every thread has left its parking loop, so the next
 * pause never counts a stale acknowledgement.
 */
#define LOG_PREFIX "vm: "
#include "vm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/err.h"
#include "common/clock.h"
#include "common/log.h"
#include "vm/cpucheck.h"
#include "vm/guest.h"
#include "vm/guest_abi.h"
#include "vm/state.h"

#define KVM_API_EXPECTED 12
#define COM1_BASE 0x3f8
#define HIGH_RAM_GPA (4ull << 30)

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	bool parked;		/* in the pause loop (under vm->lock) */
	bool need_complete;	/* last exit was I/O: complete it before saving */
	_Atomic bool dead;	/* the thread ended (set under vm->lock; read anywhere) */
	_Atomic bool throttle_kick;	/* the throttle timer asks for a nap */
	uint64_t exits;		/* KVM_RUN returns (diagnostics) */
	struct kvm_dirty_gfn *ring;	/* dirty ring, or NULL */
	size_t ring_bytes;
	/* under vm->ring_lock: */
	uint32_t ring_fetch;	/* next entry to harvest; KVM's reset index once reset */
	uint32_t ring_pending;	/* entries flagged RESET since the last reset */
	bool ring_overflow;	/* entries were lost since the last harvest */
	bool ring_suspect;	/* ring_fetch may not be KVM's reset index */
};

struct vm {
	struct vm_config cfg;
	struct guest_params gp;
	enum vm_run_state run_state;
	bool from_state;		/* built for a state (named when it crashes) */
	bool awaiting_state;		/* vm_prepare'd: vm_load_state not yet done */
	bool ram_borrowed;		/* ram is the caller's until vm_load_state */
	bool threads_parked;		/* vCPU threads started parked (pause_req), still CREATED */
	int kvm_fd, vm_fd;
	struct vm_ram ram;
	unsigned nvcpus;
	struct vcpu vcpus[VM_MAX_VCPUS];

	struct kvm_cpuid2 *cpuid;	/* the guest's CPUID (supported, or the state's),
					 * APIC ids patched per vCPU */
	uint32_t tsc_khz;		/* the vCPUs' TSC rate, 0 if KVM did not say */
	uint32_t msr_index[STATE_MAX_MSRS];
	unsigned nmsrs;

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* parked count changes, resume, stop */
	bool pause_req;
	_Atomic bool stop_req;		/* set under lock; vm_dead_vcpus reads it without */
	unsigned nparked;
	_Atomic unsigned nexited;	/* set under lock; vm_get_run_state reads it without */

	pthread_mutex_t uart_lock;	/* UART registers and console */
	struct uart_state uart;

	_Atomic uint64_t ev_progress, ev_errors, ev_ticks, ev_last_error, ev_events, ev_fatal;
	_Atomic uint32_t ev_started;

	struct vm_pause_stats pause;

	bool manual_protect;		/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on */
	pthread_mutex_t ring_lock;	/* every ring, ring_bm and each reset */
	uint64_t *ring_bm;		/* pages harvested at ring-full exits */
	bool ring_bm_any;
	_Atomic uint64_t ring_resets;	/* resets that consumed entries */
	_Atomic unsigned throttle_pct;
	pthread_t throttle_thread;
	bool throttle_started;
};

static __thread struct kvm_run *tls_run;
static _Atomic unsigned live_vms;	/* vm_count() */

static void sig_kick(int sig)
{
	(void)sig;
	if (tls_run)
		tls_run->immediate_exit = 1;
}

static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

static void sig_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_kick;	/* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, req, arg);
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : ret;
}

/* ---- configuration ---------------------------------------------------- */

void vm_config_defaults(struct vm_config *cfg, const char *name)
{
	uint8_t rnd[3] = { 0 };

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "%s", name ? name : "");
	cfg->mem_bytes = 64ull << 20;
	cfg->vcpus = 1;
	strcpy(cfg->guest, "idle");
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		uint64_t t = clock_now_ns();

		memcpy(rnd, &t, sizeof(rnd));
	}
	cfg->mac[0] = 0x52;
	cfg->mac[1] = 0x54;
	cfg->mac[2] = 0x00;
	memcpy(cfg->mac + 3, rnd, 3);
}

int vm_config_check(const struct vm_config *cfg, char *err, size_t errlen)
{
	struct guest_params gp;

	if (!cfg->name[0] || !memchr(cfg->name, 0, sizeof(cfg->name)))
		return err_set(-EINVAL, err, errlen, "a VM needs a name of 1..%d characters",
			    VM_NAME_MAX - 1);
	for (const char *p = cfg->name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return err_set(-EINVAL, err, errlen,
				    "VM name '%s': use letters, digits, '-', '_' and '.'", cfg->name);
	if (cfg->mem_bytes < VM_MIN_MEM_BYTES || cfg->mem_bytes > VM_MAX_MEM_BYTES)
		return err_set(-EINVAL, err, errlen, "memory must be between 16M and 64G");
	if (cfg->mem_bytes % (2u << 20))
		return err_set(-EINVAL, err, errlen, "memory must be a multiple of 2M");
	if (cfg->vcpus < 1 || cfg->vcpus > VM_MAX_VCPUS)
		return err_set(-EINVAL, err, errlen, "vCPUs must be between 1 and %d", VM_MAX_VCPUS);
	if (cfg->mac[0] & 1)
		return err_set(-EINVAL, err, errlen, "MAC must be a unicast address");
	if (cfg->dirty_ring && (cfg->dirty_ring < 256 || cfg->dirty_ring > 65536 ||
				(cfg->dirty_ring & (cfg->dirty_ring - 1))))
		return err_set(-EINVAL, err, errlen,
			    "dirty ring entries must be a power of two from 256 to 65536");
	return guest_parse(cfg->guest, cfg->guest_args, cfg->mem_bytes, cfg->vcpus, &gp, err,
			   errlen);
}

int vm_kvm_available(char *err, size_t errlen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int ver;

	if (fd < 0)
		return err_set(-errno, err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (ver != KVM_API_EXPECTED)
		return err_set(-EOPNOTSUPP, err, errlen, "KVM API version %d, need %d", ver,
			    KVM_API_EXPECTED);
	return 0;
}

/* ---- RAM ---------------------------------------------------------------- */

int vm_ram_create(struct vm_ram *ram, uint64_t bytes, char *err, size_t errlen)
{
	ram->fd = -1;
	ram->slot_view = MAP_FAILED;
	ram->alias = MAP_FAILED;
	ram->bytes = bytes;
	ram->fd = memfd_create("kvmig-ram", MFD_CLOEXEC);
	if (ram->fd < 0)
		return err_set(-errno, err, errlen, "memfd_create: %s", strerror(errno));
	if (ftruncate(ram->fd, (off_t)bytes) < 0)
		goto fail_errno;
	ram->slot_view = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			      ram->fd, 0);
	if (ram->slot_view == MAP_FAILED)
		goto fail_errno;
	ram->alias = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			  ram->fd, 0);
	if (ram->alias == MAP_FAILED)
		goto fail_errno;
	madvise(ram->slot_view, bytes, MADV_DONTDUMP);
	return 0;
fail_errno: {
	int e = errno;

	vm_ram_destroy(ram);
	return err_set(-e, err, errlen, "cannot allocate %llu MiB of guest RAM: %s",
		    (unsigned long long)(bytes >> 20), strerror(e));
}
}

void vm_ram_destroy(struct vm_ram *ram)
{
	if (ram->alias != MAP_FAILED && ram->alias)
		munmap(ram->alias, ram->bytes);
	if (ram->slot_view != MAP_FAILED && ram->slot_view)
		munmap(ram->slot_view, ram->bytes);
	if (ram->fd >= 0)
		close(ram->fd);
	ram->fd = -1;
	ram->alias = ram->slot_view = MAP_FAILED;
}

static int set_slots(struct vm *vm, uint32_t flags)
{
	uint64_t low = guest_low_ram_bytes(vm->ram.bytes);
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.flags = flags,
		.guest_phys_addr = 0,
		.memory_size = low,
		.userspace_addr = (uintptr_t)vm->ram.slot_view,
	};
	int ret = xioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);

	if (ret < 0 || vm->ram.bytes == low)
		return ret;
	r.slot = 1;
	r.guest_phys_addr = HIGH_RAM_GPA;
	r.memory_size = vm->ram.bytes - low;
	r.userspace_addr = (uintptr_t)vm->ram.slot_view + low;
	return xioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

/* ---- devices ------------------------------------------------------------ */

static void console_put(struct uart_state *u, char c)
{
	uint32_t pos = (uint32_t)(u->console_total % VM_CONSOLE_BYTES);

	u->console[pos] = c;
	u->console_total++;
	if (u->console_len < VM_CONSOLE_BYTES)
		u->console_len++;
}

/* 16550 at COM1: transmit only; the line is always ready. */
static void uart_io(struct vm *vm, uint16_t port, bool out, uint8_t *data)
{
	struct uart_state *u = &vm->uart;
	unsigned reg = port - COM1_BASE;
	bool dlab;

	pthread_mutex_lock(&vm->uart_lock);
	dlab = u->lcr & 0x80;
	if (out) {
		switch (reg) {
		case 0:
			if (dlab)
				u->dll = *data;
			else
				console_put(u, (char)*data);
			break;
		case 1:
			if (dlab)
				u->dlm = *data;
			else
				u->ier = *data & 0x0f;
			break;
		case 3:
			u->lcr = *data;
			break;
		case 4:
			u->mcr = *data & 0x1f;
			break;
		case 7:
			u->scr = *data;
			break;
		default:
			break;
		}
	} else {
		switch (reg) {
		case 0:
			*data = dlab ? u->dll : 0;
			break;
		case 1:
			*data = dlab ? u->dlm : u->ier;
			break;
		case 2:
			*data = 0x01;	/* no interrupt pending */
			break;
		case 3:
			*data = u->lcr;
			break;
		case 4:
			*data = u->mcr;
			break;
		case 5:
			*data = 0x60;	/* THR and transmitter empty */
			break;
		case 6:
			*data = 0xb0;	/* DCD, DSR, CTS */
			break;
		default:
			*data = u->scr;
			break;
		}
	}
	pthread_mutex_unlock(&vm->uart_lock);
}

static void event_port(struct vm *vm, struct vcpu *v, uint32_t val)
{
	uint32_t arg = val & GUEST_EV_ARG_MASK;

	atomic_fetch_add(&vm->ev_events, 1);
	switch (val >> GUEST_EV_SHIFT) {
	case GUEST_EV_PROGRESS:
		atomic_fetch_add(&vm->ev_progress, arg);
		break;
	case GUEST_EV_ERROR:
		atomic_fetch_add(&vm->ev_errors, 1);
		atomic_store(&vm->ev_last_error, arg);
		pr_warn("%s: guest self-check failed on working-set page %u (vCPU %u)",
			vm->cfg.name, arg, v->index);
		break;
	case GUEST_EV_TICK:
		atomic_fetch_add(&vm->ev_ticks, arg);
		break;
	case GUEST_EV_STARTED:
		if (arg < VM_MAX_VCPUS)
			atomic_fetch_or(&vm->ev_started, 1u << arg);
		break;
	case GUEST_EV_FATAL:
		atomic_fetch_add(&vm->ev_fatal, 1);
		pr_err("%s: guest exception %u on vCPU %u; the vCPU stops", vm->cfg.name, arg,
		       v->index);
		break;
	default:
		break;
	}
}

static void handle_io(struct vm *vm, struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;

		if (port >= COM1_BASE && port < COM1_BASE + 8 && run->io.size == 1) {
			uart_io(vm, port, out, data);
		} else if (port == GUEST_EVENT_PORT && out && run->io.size == 4) {
			uint32_t val;

			memcpy(&val, data, 4);
			event_port(vm, v, val);
		} else if (!out) {
			memset(data, 0xff, run->io.size);
		}
	}
}

/* ---- vCPU threads ------------------------------------------------------ */

/* Finish an I/O exit so KVM's register state is complete (kvm-notes). */
static void complete_pending(struct vcpu *v)
{
	if (!v->need_complete)
		return;
	v->run->immediate_exit = 1;
	(void)ioctl(v->fd, KVM_RUN, 0);
	v->run->immediate_exit = 0;
	v->need_complete = false;
}

/* Park while a pause is requested. Called with vm->lock held. */
static void park(struct vm *vm, struct vcpu *v)
{
	if (!vm->pause_req)
		return;
	complete_pending(v);
	v->parked = true;
	vm->nparked++;
	pthread_cond_broadcast(&vm->cond);
	while (vm->pause_req && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	v->parked = false;
	vm->nparked--;
	pthread_cond_broadcast(&vm->cond);
}

/*
 * Auto-converge: the throttle thread kicks every vCPU each period; a kicked
 * vCPU sleeps pct / (100 - pct) periods, so it runs (100 - pct)% of the
 * time. The nap waits on the VM's condition so pause and stop cut it short.
 */
#define THROTTLE_PERIOD_NS 10000000ull

static void throttle_nap(struct vm *vm, struct vcpu *v)
{
	unsigned pct = atomic_load(&vm->throttle_pct);
	struct timespec ts;
	uint64_t ns;

	if (!atomic_exchange(&v->throttle_kick, false))
		return;
	if (!pct)
		return;
	ns = THROTTLE_PERIOD_NS * pct / (100 - pct);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)((uint64_t)ts.tv_nsec + ns) / 1000000000;
	ts.tv_nsec = (long)(((uint64_t)ts.tv_nsec + ns) % 1000000000);
	pthread_mutex_lock(&vm->lock);
	while (!vm->pause_req && !vm->stop_req &&
	       pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&vm->lock);
}

/*
 * ---- dirty ring ---------------------------------------------------------
 *
 * KVM publishes a vCPU's dirty pages in its ring: it fills the entry at its
 * producer index D and sets DIRTY; we read it and set RESET (harvest);
 * KVM_RESET_DIRTY_RINGS walks each ring from its reset index R over the
 * entries flagged RESET, re-protects their pages, makes them invalid and
 * returns how many it consumed. While D - R is at the soft limit (the size
 * less a reserve) KVM_RUN exits at once with KVM_EXIT_DIRTY_RING_FULL. KVM
 * never compares R with D when it resets: an entry flagged at R is consumed
 * even when it was never published, and R beyond D stalls the vCPU for good.
 *
 * A KVM that logs every guest store (kvm_pvm, which emulates them) can push
 * more than a whole ring between two checks of the soft limit: entries are
 * overwritten (their pages lost), and once R trails D by the soft limit
 * with every entry consumed, nothing is left to harvest and the vCPU would
 * exit on every KVM_RUN for ever. Hence:
 *
 *  1. At most one ring is harvested per reset (ring_pending): a whole ring
 *     between two resets may have wrapped, so it counts as an overflow.
 *  2. A ring-full exit harvests into vm->ring_bm (the pages are kept; the
 *     next vm_dirty_ring_harvest() hands them over) and resets.
 *  3. A ring-full exit with nothing to harvest at ring_fetch and no reset
 *     since its KVM_RUN began (ring_resets) proves D - R >= soft limit >= 1:
 *     the ring is out of step. The pages of any published entry are kept;
 *     if one is published further on, the invalid gap from R to it lies in
 *     [R, D) and is flagged RESET; if none is, exactly one entry at R is
 *     flagged (safe, D > R). That reset must consume what was flagged; when
 *     it does not, ring_fetch is not R (ring_suspect), and the next such
 *     exit finds R by flagging one position at a time until KVM consumes
 *     it. Each step lets KVM_RUN retry; the vCPU runs as soon as D - R is
 *     under the soft limit.
 *  Every repair is an overflow: lost entries make the dirty set unknown.
 *  Harvest, repair and reset all run under vm->ring_lock.
 */

/* Record entry e's page in bm. */
static void ring_record(const struct vm *vm, const struct kvm_dirty_gfn *e, uint64_t *bm)
{
	uint64_t low_pages = guest_low_ram_bytes(vm->ram.bytes) / VM_PAGE_SIZE;
	uint64_t npages = vm->ram.bytes / VM_PAGE_SIZE;
	uint64_t page = (e->slot & 0xffff) == 1 ? low_pages + e->offset : e->offset;

	if (page < npages)
		bitmap_set(bm, page);
}

static uint32_t ring_entries(const struct vcpu *v)
{
	return (uint32_t)(v->ring_bytes / sizeof(*v->ring));
}

/* Harvest vCPU v's published entries into bm. Under ring_lock. */
static long ring_collect(struct vm *vm, struct vcpu *v, uint64_t *bm)
{
	uint32_t n = ring_entries(v);
	long got = 0;

	while (v->ring_pending < n) {
		struct kvm_dirty_gfn *e = &v->ring[v->ring_fetch % n];

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		ring_record(vm, e, bm);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_fetch++;
		v->ring_pending++;
		got++;
	}
	if (v->ring_pending >= n)
		v->ring_overflow = true;	/* a whole ring: it may have wrapped */
	return got;
}

/* KVM_RESET_DIRTY_RINGS. Return: entries consumed, or -errno. Under ring_lock. */
static int ring_reset_locked(struct vm *vm)
{
	uint32_t want = 0;
	int cleared;

	for (unsigned i = 0; i < vm->nvcpus; i++)
		want += vm->vcpus[i].ring ? vm->vcpus[i].ring_pending : 0;
	cleared = ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
	if (cleared < 0)
		cleared = -errno;
	if (cleared > 0)
		atomic_fetch_add(&vm->ring_resets, 1);
	if (cleared == (int)want) {
		for (unsigned i = 0; i < vm->nvcpus; i++)
			vm->vcpus[i].ring_pending = 0;
		return cleared;
	}
	/* not all consumed (or unknown): what is still flagged stays pending */
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		uint32_t n = ring_entries(v), left = 0;

		if (!v->ring || !v->ring_pending)
			continue;
		for (uint32_t k = v->ring_fetch - v->ring_pending; k != v->ring_fetch; k++)
			if (__atomic_load_n(&v->ring[k % n].flags, __ATOMIC_ACQUIRE) ==
			    KVM_DIRTY_GFN_F_RESET)
				left++;
		if (left) {
			v->ring_suspect = true;
			v->ring_overflow = true;
		}
		v->ring_pending = left;
	}
	return cleared;
}

/* Find R by flagging one position at a time: D > R, so consuming one is safe. */
static void ring_find_reset_index(struct vm *vm, struct vcpu *v)
{
	uint32_t n = ring_entries(v);

	(void)ring_reset_locked(vm);	/* the other rings' flagged entries first */
	for (uint32_t k = 0; k < n; k++) {
		uint32_t idx = v->ring_fetch - k;
		struct kvm_dirty_gfn *e = &v->ring[idx % n];
		uint32_t old = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		int cleared;

		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		cleared = ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
		if (cleared > 0) {
			atomic_fetch_add(&vm->ring_resets, 1);
			v->ring_fetch = idx + 1;
			v->ring_suspect = false;
			pr_debug("%s: vCPU %u: dirty ring back in step after %u probes",
				 vm->cfg.name, v->index, k + 1);
			return;
		}
		__atomic_store_n(&e->flags, old, __ATOMIC_RELEASE);
	}
	pr_err("%s: vCPU %u: the dirty ring's reset index was not found", vm->cfg.name,
	       v->index);
}

/* Out of step (case 3 above). Under ring_lock. */
static void ring_repair(struct vm *vm, struct vcpu *v)
{
	uint32_t n = ring_entries(v), gap = n;

	v->ring_overflow = true;
	for (uint32_t k = 0; k < n; k++) {
		struct kvm_dirty_gfn *e = &v->ring[(v->ring_fetch + k) % n];
		uint32_t f = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if (f & KVM_DIRTY_GFN_F_DIRTY) {
			ring_record(vm, e, vm->ring_bm);
			vm->ring_bm_any = true;
			if (gap == n)
				gap = k;
		} else if (f & KVM_DIRTY_GFN_F_RESET) {
			/* flagged before but never consumed: not ours to consume now */
			__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
		}
	}
	v->ring_pending = 0;
	if (v->ring_suspect) {
		ring_find_reset_index(vm, v);
		return;
	}
	if (gap == n)
		gap = 1;	/* nothing published: D - R >= 1, consume one */
	for (uint32_t k = 0; k < gap; k++)
		__atomic_store_n(&v->ring[(v->ring_fetch + k) % n].flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
	v->ring_fetch += gap;
	v->ring_pending = gap;
	(void)ring_collect(vm, v, vm->ring_bm);
}

/*
 * KVM_EXIT_DIRTY_RING_FULL: keep the pages, reset, and get the vCPU going
 * again. gen: ring_resets when this KVM_RUN began.
 */
static void ring_full(struct vm *vm, struct vcpu *v, uint64_t gen)
{
	sigset_t set, old;
	long got;
	int cleared;

	/* a kick must not cut the reset short: its count is the check */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	pthread_mutex_lock(&vm->ring_lock);
	got = ring_collect(vm, v, vm->ring_bm);
	if (got > 0)
		vm->ring_bm_any = true;
	if (!got && (!v->ring_pending || v->ring_suspect) &&
	    atomic_load(&vm->ring_resets) == gen)
		ring_repair(vm, v);
	cleared = ring_reset_locked(vm);
	pthread_mutex_unlock(&vm->ring_lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (cleared < 0)
		pr_err("%s: KVM_RESET_DIRTY_RINGS: %s", vm->cfg.name, strerror(-cleared));
}

/* Where a crashed vCPU was: enough to tell a guest bug from a host one. */
static void dump_crash(const struct vm *vm, const struct vcpu *v)
{
	struct kvm_regs r;
	struct kvm_sregs sr;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;

	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
		return;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0)
		pr_err("%s: vCPU %u: mp_state %u, %llu exits, need_complete %d", vm->cfg.name,
		       v->index, mp.mp_state, (unsigned long long)v->exits, v->need_complete);
	pr_err("%s: vCPU %u: rip 0x%llx rsp 0x%llx rflags 0x%llx cr0 0x%llx cr2 0x%llx "
	       "cr3 0x%llx cr4 0x%llx efer 0x%llx idt 0x%llx/%u",
	       vm->cfg.name, v->index, (unsigned long long)r.rip, (unsigned long long)r.rsp,
	       (unsigned long long)r.rflags, (unsigned long long)sr.cr0,
	       (unsigned long long)sr.cr2, (unsigned long long)sr.cr3,
	       (unsigned long long)sr.cr4, (unsigned long long)sr.efer,
	       (unsigned long long)sr.idt.base, sr.idt.limit);
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0)
		pr_err("%s: vCPU %u: exception %u (injected %u pending %u, error 0x%x), "
		       "interrupt %u (injected %u), nmi pending %u",
		       vm->cfg.name, v->index, ev.exception.nr, ev.exception.injected,
		       ev.exception.pending, ev.exception.error_code, ev.interrupt.nr,
		       ev.interrupt.injected, ev.nmi.pending);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	uint64_t ring_gen = 0;
	sigset_t set;

	tls_run = v->run;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;) {
		int ret;

		v->run->immediate_exit = 0;
		atomic_thread_fence(memory_order_seq_cst);
		pthread_mutex_lock(&vm->lock);
		park(vm, v);
		if (vm->stop_req) {
			pthread_mutex_unlock(&vm->lock);
			break;
		}
		pthread_mutex_unlock(&vm->lock);

		ring_gen = atomic_load(&vm->ring_resets);
		ret = ioctl(v->fd, KVM_RUN, 0);
		v->exits++;
		v->need_complete = false;
		if (ret < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				throttle_nap(vm, v);
				continue;
			}
			pr_err("%s: vCPU %u: KVM_RUN: %s", vm->cfg.name, v->index, strerror(errno));
			break;
		}
		switch (v->run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(vm, v);
			v->need_complete = true;
			break;
		case KVM_EXIT_MMIO:
			if (!v->run->mmio.is_write)
				memset(v->run->mmio.data, 0xff, sizeof(v->run->mmio.data));
			v->need_complete = true;
			break;
		case KVM_EXIT_INTR:
		case KVM_EXIT_HLT:
			break;
		case KVM_EXIT_DIRTY_RING_FULL:
			ring_full(vm, v, ring_gen);
			break;
		case KVM_EXIT_SHUTDOWN:
			/* tests/run.sh reads the VM's origin here (its retry rule) */
			pr_err("%s: vCPU %u: triple fault in a VM %s, the guest is shut down",
			       vm->cfg.name, v->index,
			       vm->from_state ? "built from a state" : "booted here");
			dump_crash(vm, v);
			goto out;
		case KVM_EXIT_FAIL_ENTRY:
			pr_err("%s: vCPU %u: entry failed, reason 0x%llx", vm->cfg.name, v->index,
			       (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
			goto out;
		case KVM_EXIT_INTERNAL_ERROR:
			pr_err("%s: vCPU %u: KVM internal error %u", vm->cfg.name, v->index,
			       v->run->internal.suberror);
			goto out;
		default:
			pr_err("%s: vCPU %u: unexpected exit %u", vm->cfg.name, v->index,
			       v->run->exit_reason);
			goto out;
		}
	}
out:
	pthread_mutex_lock(&vm->lock);
	atomic_store(&v->dead, true);
	atomic_fetch_add(&vm->nexited, 1);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

/* ---- creation ----------------------------------------------------------- */

static struct vm *vm_alloc(const struct vm_config *cfg)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->ram.fd = -1;
	vm->ram.alias = vm->ram.slot_view = MAP_FAILED;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;
	if (cfg->dirty_ring) {
		vm->ring_bm = calloc(bitmap_words(cfg->mem_bytes / VM_PAGE_SIZE), 8);
		if (!vm->ring_bm) {
			free(vm);
			return NULL;
		}
	}
	pthread_mutex_init(&vm->ring_lock, NULL);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	pthread_mutex_init(&vm->uart_lock, NULL);
	atomic_store(&vm->ev_last_error, UINT64_MAX);
	vm->run_state = VM_RUN_CREATED;
	atomic_fetch_add(&live_vms, 1);
	return vm;
}

static int get_supported_cpuid(struct vm *vm)
{
	unsigned n = STATE_MAX_CPUID;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	int ret;

	if (!c)
		return -ENOMEM;
	c->nent = n;
	ret = xioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (ret < 0) {
		free(c);
		return ret;
	}
	vm->cpuid = c;
	return 0;
}

/* The MSRs of KVM_GET_MSR_INDEX_LIST that vCPU v can read back. */
static int probe_msrs(struct vm *vm, int vcpu_fd)
{
	struct {
		struct kvm_msr_list hdr;
		uint32_t idx[STATE_MAX_MSRS];
	} list;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} one;
	int ret;

	memset(&list, 0, sizeof(list));
	list.hdr.nmsrs = STATE_MAX_MSRS;
	ret = xioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list);
	if (ret < 0)
		return ret;
	vm->nmsrs = 0;
	for (unsigned i = 0; i < list.hdr.nmsrs && i < STATE_MAX_MSRS; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e.index = list.idx[i];
		if (ioctl(vcpu_fd, KVM_GET_MSRS, &one) == 1)
			vm->msr_index[vm->nmsrs++] = list.idx[i];
	}
	return 0;
}

static void cpuid_for_vcpu(const struct kvm_cpuid2 *src, unsigned apic_id,
			   struct kvm_cpuid_entry2 *dst, uint32_t *n)
{
	*n = src->nent;
	memcpy(dst, src->entries, src->nent * sizeof(dst[0]));
	for (unsigned i = 0; i < src->nent; i++) {
		struct kvm_cpuid_entry2 *e = &dst[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (apic_id << 24);
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = apic_id;
	}
}

static int set_cpuid(struct vcpu *v, const struct kvm_cpuid_entry2 *ent, uint32_t n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	int ret;

	if (!c)
		return -ENOMEM;
	c->nent = n;
	memcpy(c->entries, ent, n * sizeof(ent[0]));
	ret = xioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	return ret;
}

/* VM fd, irqchip, PIT and memory slots on vm->ram. */
static int vm_build_machine(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = 0 };
	int ret;

	pthread_once(&sig_once, sig_install);
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return err_set(-errno, err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
	vm->vm_fd = xioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return err_set(vm->vm_fd, err, errlen, "KVM_CREATE_VM: %s", strerror(-vm->vm_fd));
	(void)ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	ret = xioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(-ret));
	ret = xioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_CREATE_PIT2: %s", strerror(-ret));
	/*
	 * Manual protect with INITIALLY_SET leaves pages writable when logging
	 * starts, which is what the bitmap wants; the ring needs the classic
	 * write protection to see the first writes, so ring VMs go without.
	 */
	if (!vm->cfg.dirty_ring &&
	    ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET },
		};

		vm->manual_protect = ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
	}
	if (vm->cfg.dirty_ring) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL };
		uint64_t bytes = (uint64_t)vm->cfg.dirty_ring * sizeof(struct kvm_dirty_gfn);
		int max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);

		if (max <= 0) {
			cap.cap = KVM_CAP_DIRTY_LOG_RING;
			max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
		}
		if (max <= 0)
			return err_set(-EOPNOTSUPP, err, errlen, "this KVM has no dirty ring");
		if (bytes > (uint64_t)max)
			return err_set(-EINVAL, err, errlen, "dirty ring of %u entries exceeds KVM's %d bytes",
				    vm->cfg.dirty_ring, max);
		cap.args[0] = bytes;
		ret = xioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap);
		if (ret < 0)
			return err_set(ret, err, errlen, "enabling the dirty ring: %s", strerror(-ret));
	}
	ret = set_slots(vm, 0);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-ret));
	ret = get_supported_cpuid(vm);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
	return 0;
}

static int vcpu_open(struct vm *vm, unsigned i, char *err, size_t errlen)
{
	struct vcpu *v = &vm->vcpus[i];
	int sz;

	v->vm = vm;
	v->index = i;
	v->fd = xioctl(vm->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)i);
	if (v->fd < 0)
		return err_set(v->fd, err, errlen, "KVM_CREATE_VCPU %u: %s", i, strerror(-v->fd));
	sz = xioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < 0)
		return err_set(sz, err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(-sz));
	v->run_size = (size_t)sz;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return err_set(-errno, err, errlen, "mmap kvm_run: %s", strerror(errno));
	}
	if (vm->cfg.dirty_ring) {
		v->ring_bytes = (size_t)vm->cfg.dirty_ring * sizeof(struct kvm_dirty_gfn);
		v->ring = mmap(NULL, v->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
			       KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));
		if (v->ring == MAP_FAILED) {
			v->ring = NULL;
			return err_set(-errno, err, errlen, "mmap dirty ring: %s", strerror(errno));
		}
	}
	vm->nvcpus = MAX(vm->nvcpus, i + 1);
	return 0;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t l, uint8_t db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = l;
	s->db = db;
	s->g = 1;
}

void vm_boot_vcpu_state(unsigned index, struct kvm_sregs *sregs, struct kvm_regs *regs,
			struct kvm_fpu *fpu)
{
	set_seg(&sregs->cs, GUEST_CS_SEL, 11, 1, 0);
	set_seg(&sregs->ds, GUEST_DS_SEL, 3, 0, 1);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	memset(&sregs->tr, 0, sizeof(sregs->tr));
	sregs->tr.type = 11;
	sregs->tr.present = 1;
	sregs->tr.limit = 0x67;
	memset(&sregs->ldt, 0, sizeof(sregs->ldt));
	sregs->ldt.type = 2;
	sregs->ldt.present = 1;
	sregs->ldt.limit = 0xffff;
	sregs->gdt.base = GUEST_GDT_GPA;
	sregs->gdt.limit = 23;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = 0x80000011 | 0x2;	/* PG, ET, PE, MP */
	sregs->cr3 = GUEST_PML4_GPA;
	sregs->cr4 = 0x20 | 0x200 | 0x400; /* PAE, OSFXSR, OSXMMEXCPT */
	sregs->efer = 0x500;		/* LME, LMA */
	if (!sregs->apic_base)		/* xAPIC enabled at its default base; BSP flag */
		sregs->apic_base = 0xfee00000 | 0x800 | (index == 0 ? 0x100 : 0);

	memset(regs, 0, sizeof(*regs));
	regs->rip = GUEST_CODE_GPA;
	regs->rsp = GUEST_STACK_GPA + (uint64_t)(index + 1) * GUEST_STACK_BYTES;
	regs->rdi = index;
	regs->rsi = GUEST_BOOTINFO_GPA;
	regs->rflags = 0x2;

	memset(fpu, 0, sizeof(*fpu));
	fpu->fcw = 0x37f;
	fpu->mxcsr = 0x1f80;
}

/* Registers of a fresh vCPU entering the guest in long mode. */
static int vcpu_boot_regs(struct vm *vm, struct vcpu *v, char *err, size_t errlen)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	int ret;

	ret = xioctl(v->fd, KVM_GET_SREGS, &sregs);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_GET_SREGS: %s", strerror(-ret));
	vm_boot_vcpu_state(v->index, &sregs, &regs, &fpu);
	ret = xioctl(v->fd, KVM_SET_SREGS, &sregs);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_SREGS: %s", strerror(-ret));

	ret = xioctl(v->fd, KVM_SET_REGS, &regs);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_REGS: %s", strerror(-ret));

	ret = xioctl(v->fd, KVM_SET_FPU, &fpu);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_FPU: %s", strerror(-ret));
	ret = xioctl(v->fd, KVM_SET_MP_STATE, &mp);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_MP_STATE: %s", strerror(-ret));
	(void)vm;
	return 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen)
{
	return vm_create_hiding(cfg, NULL, out, err, errlen);
}

int vm_create_hiding(const struct vm_config *cfg, const struct cpucheck_mask *hide, struct vm **out,
		     char *err, size_t errlen)
{
	struct vm *vm = NULL;
	int ret;

	*out = NULL;
	ret = vm_config_check(cfg, err, errlen);
	if (ret < 0)
		return ret;
	vm = vm_alloc(cfg);
	if (!vm)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	ret = guest_parse(cfg->guest, cfg->guest_args, cfg->mem_bytes, cfg->vcpus, &vm->gp, err,
			  errlen);
	if (ret < 0)
		goto out;
	ret = vm_ram_create(&vm->ram, cfg->mem_bytes, err, errlen);
	if (ret < 0)
		goto out;
	ret = vm_build_machine(vm, err, errlen);
	if (ret < 0)
		goto out;
	guest_write_boot(vm->ram.alias, cfg->mem_bytes, cfg->vcpus, &vm->gp);
	if (hide)
		cpucheck_mask_entries(vm->cpuid->entries, vm->cpuid->nent, hide);
	for (unsigned i = 0; i < cfg->vcpus; i++) {
		struct kvm_cpuid_entry2 ent[STATE_MAX_CPUID];
		uint32_t n;

		ret = vcpu_open(vm, i, err, errlen);
		if (ret < 0)
			goto out;
		if (i == 0) {
			int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);

			vm->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
		}
		cpuid_for_vcpu(vm->cpuid, i, ent, &n);
		ret = set_cpuid(&vm->vcpus[i], ent, n);
		if (ret < 0) {
			err_set(ret, err, errlen, "KVM_SET_CPUID2: %s", strerror(-ret));
			goto out;
		}
		if (i == 0) {
			ret = probe_msrs(vm, vm->vcpus[0].fd);
			if (ret < 0) {
				err_set(ret, err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
				goto out;
			}
		}
		ret = vcpu_boot_regs(vm, &vm->vcpus[i], err, errlen);
		if (ret < 0)
			goto out;
	}
	*out = vm;
	return 0;
out:
	vm_destroy(vm);
	return ret;
}

/* One thread per vCPU; with pause_req set they park before their first KVM_RUN. */
static int start_threads(struct vm *vm)
{
	int ret = 0;

	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		sigset_t set, old;

		/* the thread starts with SIGUSR1 blocked and unblocks it itself */
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &set, &old);
		ret = -pthread_create(&v->thread, NULL, vcpu_thread, v);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (ret < 0) {
			pr_err("%s: cannot start vCPU thread %u: %s", vm->cfg.name, i, strerror(-ret));
			break;
		}
		v->thread_started = true;
	}
	return ret;
}

/* Let every parked vCPU thread run and wait until none is parked. */
static void unpark_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = false;
	pthread_cond_broadcast(&vm->cond);
	while (vm->nparked > 0)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
}

int vm_start(struct vm *vm)
{
	int ret = 0;

	if (vm->run_state != VM_RUN_CREATED || vm->awaiting_state)
		return -EINVAL;
	if (vm->threads_parked) {
		/* vm_prepare started them parked: let them go, as vm_resume does */
		unpark_vcpus(vm);
		vm->threads_parked = false;
		vm->run_state = VM_RUN_RUNNING;
		return 0;
	}
	ret = start_threads(vm);
	vm->run_state = ret < 0 ? VM_RUN_STOPPED : VM_RUN_RUNNING;
	return ret;
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i].thread_started && !atomic_load(&vm->vcpus[i].dead))
			pthread_kill(vm->vcpus[i].thread, SIGUSR1);
}

static unsigned live_threads(const struct vm *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i].thread_started && !atomic_load(&vm->vcpus[i].dead))
			n++;
	return n;
}

int vm_pause(struct vm *vm, uint64_t *latency_ns)
{
	uint64_t t0 = clock_now_ns(), dt;

	if (vm->run_state == VM_RUN_PAUSED || vm->run_state == VM_RUN_CREATED) {
		if (latency_ns)
			*latency_ns = 0;
		return 0;
	}
	if (vm->run_state != VM_RUN_RUNNING)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = true;
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	pthread_mutex_lock(&vm->lock);
	while (vm->nparked < live_threads(vm))
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	dt = clock_now_ns() - t0;
	vm->pause.count++;
	vm->pause.last_ns = dt;
	vm->pause.total_ns += dt;
	vm->pause.max_ns = MAX(vm->pause.max_ns, dt);
	if (latency_ns)
		*latency_ns = dt;
	vm->run_state = VM_RUN_PAUSED;
	return 0;
}

int vm_resume(struct vm *vm)
{
	if (vm->run_state == VM_RUN_RUNNING)
		return 0;
	if (vm->run_state == VM_RUN_CREATED)
		return vm_start(vm);
	if (vm->run_state != VM_RUN_PAUSED)
		return -EINVAL;
	unpark_vcpus(vm);
	vm->run_state = VM_RUN_RUNNING;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	pthread_mutex_lock(&vm->lock);
	vm->stop_req = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	kick_all(vm);
	if (vm->throttle_started)
		pthread_join(vm->throttle_thread, NULL);
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->thread_started)
			pthread_join(v->thread, NULL);
		if (v->ring)
			munmap(v->ring, v->ring_bytes);
		if (v->run)
			munmap(v->run, v->run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (!vm->ram_borrowed)
		vm_ram_destroy(&vm->ram);
	free(vm->cpuid);
	pthread_mutex_destroy(&vm->ring_lock);
	free(vm->ring_bm);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->uart_lock);
	free(vm);
	atomic_fetch_sub(&live_vms, 1);
}

unsigned vm_count(void)
{
	return atomic_load(&live_vms);
}

/* ---- queries ------------------------------------------------------------ */

enum vm_run_state vm_get_run_state(const struct vm *vm)
{
	if (vm->run_state == VM_RUN_RUNNING && atomic_load(&vm->nexited) == vm->nvcpus && vm->nvcpus)
		return VM_RUN_STOPPED;
	return vm->run_state;
}

void vm_debug_dump(struct vm *vm)
{
	if (vm_pause(vm, NULL) < 0)
		return;
	for (unsigned i = 0; i < vm->cfg.vcpus; i++)
		dump_crash(vm, &vm->vcpus[i]);
	if (vm_resume(vm) < 0)
		pr_err("%s: cannot resume after the debug dump", vm->cfg.name);
}

unsigned vm_dead_vcpus(const struct vm *vm)
{
	unsigned n = 0;

	if (atomic_load(&vm->stop_req))
		return 0;
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (atomic_load(&vm->vcpus[i].dead))
			n++;
	return n;
}

const char *vm_run_state_name(enum vm_run_state s)
{
	switch (s) {
	case VM_RUN_CREATED:
		return "paused";
	case VM_RUN_RUNNING:
		return "running";
	case VM_RUN_PAUSED:
		return "paused";
	case VM_RUN_STOPPED:
		return "stopped";
	}
	return "unknown";
}

const struct vm_config *vm_get_config(const struct vm *vm)
{
	return &vm->cfg;
}

void vm_get_stats(const struct vm *vm, struct vm_guest_stats *st)
{
	st->progress = atomic_load(&vm->ev_progress);
	st->errors = atomic_load(&vm->ev_errors);
	st->ticks = atomic_load(&vm->ev_ticks);
	st->last_error_gfn = atomic_load(&vm->ev_last_error);
	st->events = atomic_load(&vm->ev_events);
}

void vm_get_pause_stats(const struct vm *vm, struct vm_pause_stats *st)
{
	*st = vm->pause;
}

size_t vm_console_read(struct vm *vm, char *buf, size_t cap)
{
	const struct uart_state *u = &vm->uart;
	size_t n, start;

	if (!cap)
		return 0;
	pthread_mutex_lock(&vm->uart_lock);
	n = MIN((size_t)u->console_len, cap - 1);
	/* the newest n bytes, oldest first */
	start = (size_t)((u->console_total - n) % VM_CONSOLE_BYTES);
	for (size_t i = 0; i < n; i++)
		buf[i] = u->console[(start + i) % VM_CONSOLE_BYTES];
	pthread_mutex_unlock(&vm->uart_lock);
	buf[n] = '\0';
	return n;
}

uint8_t *vm_ram(const struct vm *vm)
{
	return vm->ram.alias;
}

uint64_t vm_ram_bytes(const struct vm *vm)
{
	return vm->ram.bytes;
}

int vm_ram_fd(const struct vm *vm)
{
	return vm->ram.fd;
}

uint64_t vm_ram_offset_to_gpa(uint64_t off)
{
	return guest_ram_off_to_gpa(off);
}

void vm_workset(const struct vm *vm, uint64_t *off, uint64_t *bytes)
{
	*off = vm->gp.ws_off;
	*bytes = vm->gp.share_pages * VM_PAGE_SIZE * vm->cfg.vcpus;
}

int vm_get_fd(const struct vm *vm)
{
	return vm->vm_fd;
}

/* ---- state capture and load -------------------------------------------- */

static int get_msrs(struct vm *vm, struct vcpu *v, struct vcpu_state *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[STATE_MAX_MSRS];
	} m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = vm->nmsrs;
	for (unsigned i = 0; i < vm->nmsrs; i++)
		m.e[i].index = vm->msr_index[i];
	ret = xioctl(v->fd, KVM_GET_MSRS, &m);
	if (ret < 0)
		return ret;
	if ((unsigned)ret != vm->nmsrs)
		return -EIO;
	s->nmsrs = vm->nmsrs;
	memcpy(s->msrs, m.e, vm->nmsrs * sizeof(m.e[0]));
	return 0;
}

static int set_msrs(struct vcpu *v, const struct vcpu_state *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[STATE_MAX_MSRS];
	} m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = s->nmsrs;
	memcpy(m.e, s->msrs, s->nmsrs * sizeof(m.e[0]));
	ret = xioctl(v->fd, KVM_SET_MSRS, &m);
	if (ret < 0)
		return ret;
	if ((unsigned)ret != s->nmsrs) {
		pr_err("KVM_SET_MSRS: MSR 0x%x refused", s->msrs[ret].index);
		return -EINVAL;
	}
	return 0;
}

/* A vCPU ioctl that must work: on failure *failed names it (the register set). */
#define TRY(call, what)                                                                      \
	do {                                                                                 \
		ret = (call);                                                                \
		if (ret < 0) {                                                               \
			*failed = what;                                                      \
			pr_err("vCPU %u: %s: %s", v->index, what, strerror(-ret));           \
			return ret;                                                          \
		}                                                                            \
	} while (0)

static int vcpu_capture(struct vm *vm, struct vcpu *v, struct vcpu_state *s, const char **failed)
{
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_xsave xsave;
	int ret;

	memset(s, 0, sizeof(*s));
	s->index = v->index;
	TRY(xioctl(v->fd, KVM_GET_REGS, &s->regs), "KVM_GET_REGS");
	TRY(xioctl(v->fd, KVM_GET_SREGS, &s->sregs), "KVM_GET_SREGS");
	TRY(xioctl(v->fd, KVM_GET_FPU, &s->fpu), "KVM_GET_FPU");
	TRY(xioctl(v->fd, KVM_GET_XCRS, &s->xcrs), "KVM_GET_XCRS");
	TRY(xioctl(v->fd, KVM_GET_XSAVE, &xsave), "KVM_GET_XSAVE");
	memcpy(s->xsave, xsave.region, sizeof(s->xsave));
	TRY(xioctl(v->fd, KVM_GET_LAPIC, &lapic), "KVM_GET_LAPIC");
	memcpy(s->lapic, lapic.regs, sizeof(s->lapic));
	TRY(xioctl(v->fd, KVM_GET_VCPU_EVENTS, &s->events), "KVM_GET_VCPU_EVENTS");
	TRY(xioctl(v->fd, KVM_GET_MP_STATE, &mp), "KVM_GET_MP_STATE");
	s->mp_state = mp.mp_state;
	TRY(xioctl(v->fd, KVM_GET_DEBUGREGS, &s->debugregs), "KVM_GET_DEBUGREGS");
	TRY(xioctl(v->fd, KVM_GET_TSC_KHZ, 0), "KVM_GET_TSC_KHZ");
	s->tsc_khz = (uint32_t)ret;
	TRY(get_msrs(vm, v, s), "KVM_GET_MSRS");
	cpuid_for_vcpu(vm->cpuid, v->index, s->cpuid, &s->ncpuid);
	return 0;
}

int vm_capture(struct vm *vm, struct vm_state *st)
{
	struct kvm_irqchip chip;
	int ret;

	if (vm->run_state == VM_RUN_RUNNING)
		return -EBUSY;
	memset(st, 0, sizeof(*st));
	st->config = vm->cfg;
	for (unsigned i = 0; i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;
		ret = xioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip);
		if (ret < 0) {
			pr_err("KVM_GET_IRQCHIP %u: %s", i, strerror(-ret));
			return ret;
		}
		if (i < 2)
			st->pic[i] = chip.chip.pic;
		else
			st->ioapic = chip.chip.ioapic;
	}
	ret = xioctl(vm->vm_fd, KVM_GET_PIT2, &st->pit);
	if (ret < 0) {
		pr_err("KVM_GET_PIT2: %s", strerror(-ret));
		return ret;
	}
	ret = xioctl(vm->vm_fd, KVM_GET_CLOCK, &st->clock);
	if (ret < 0) {
		pr_err("KVM_GET_CLOCK: %s", strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		const char *failed = "KVM";	/* logged where it failed */

		ret = vcpu_capture(vm, &vm->vcpus[i], &st->vcpu[i], &failed);
		if (ret < 0)
			return ret;
	}
	pthread_mutex_lock(&vm->uart_lock);
	st->uart = vm->uart;
	pthread_mutex_unlock(&vm->uart_lock);
	st->ev.progress = atomic_load(&vm->ev_progress);
	st->ev.errors = atomic_load(&vm->ev_errors);
	st->ev.ticks = atomic_load(&vm->ev_ticks);
	st->ev.last_error_gfn = atomic_load(&vm->ev_last_error);
	st->ev.events = atomic_load(&vm->ev_events);
	st->ev.fatal = atomic_load(&vm->ev_fatal);
	st->ev.started_mask = atomic_load(&vm->ev_started);
	return 0;
}

static int vcpu_load(struct vcpu *v, const struct vcpu_state *s, const char **failed)
{
	struct kvm_mp_state mp = { .mp_state = s->mp_state };
	struct kvm_lapic_state lapic;
	struct kvm_xsave xsave;
	struct kvm_vcpu_events ev = s->events;
	struct kvm_xcrs xcrs = s->xcrs;
	int ret, khz;

	TRY(set_cpuid(v, s->cpuid, s->ncpuid), "KVM_SET_CPUID2");
	khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz > 0 && (uint32_t)khz != s->tsc_khz &&
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0)
		pr_warn("vCPU %u: TSC runs at %d kHz here, %u kHz at the source", v->index, khz,
			s->tsc_khz);
	TRY(xioctl(v->fd, KVM_SET_SREGS, (void *)(uintptr_t)&s->sregs), "KVM_SET_SREGS");
	TRY(xioctl(v->fd, KVM_SET_REGS, (void *)(uintptr_t)&s->regs), "KVM_SET_REGS");
	TRY(xioctl(v->fd, KVM_SET_FPU, (void *)(uintptr_t)&s->fpu), "KVM_SET_FPU");
	if (xcrs.nr_xcrs)
		TRY(xioctl(v->fd, KVM_SET_XCRS, &xcrs), "KVM_SET_XCRS");
	memset(&xsave, 0, sizeof(xsave));
	memcpy(xsave.region, s->xsave, sizeof(s->xsave));
	TRY(xioctl(v->fd, KVM_SET_XSAVE, &xsave), "KVM_SET_XSAVE");
	TRY(set_msrs(v, s), "KVM_SET_MSRS");
	memcpy(lapic.regs, s->lapic, sizeof(lapic.regs));
	TRY(xioctl(v->fd, KVM_SET_LAPIC, &lapic), "KVM_SET_LAPIC");
	ev.flags &= ~(uint32_t)KVM_VCPUEVENT_VALID_SMM;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	TRY(xioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev), "KVM_SET_VCPU_EVENTS");
	TRY(xioctl(v->fd, KVM_SET_MP_STATE, &mp), "KVM_SET_MP_STATE");
	TRY(xioctl(v->fd, KVM_SET_DEBUGREGS, (void *)(uintptr_t)&s->debugregs),
	    "KVM_SET_DEBUGREGS");
	return 0;
}

int vm_prepare(const struct vm_config *cfg, const struct vm_ram *ram, struct vm **out, char *err,
	       size_t errlen)
{
	struct vm *vm;
	int ret;

	*out = NULL;
	ret = vm_config_check(cfg, err, errlen);
	if (ret < 0)
		return ret;
	if (ram->bytes != cfg->mem_bytes)
		return err_set(-EINVAL, err, errlen, "RAM of %llu bytes for a VM of %llu",
			       (unsigned long long)ram->bytes, (unsigned long long)cfg->mem_bytes);
	vm = vm_alloc(cfg);
	if (!vm)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	vm->from_state = true;
	vm->awaiting_state = true;
	vm->ram = *ram;		/* borrowed until vm_load_state */
	vm->ram_borrowed = true;
	ret = guest_parse(cfg->guest, cfg->guest_args, cfg->mem_bytes, cfg->vcpus, &vm->gp, err,
			  errlen);
	if (ret < 0)
		goto out;
	ret = vm_build_machine(vm, err, errlen);
	if (ret < 0)
		goto out;
	for (unsigned i = 0; i < cfg->vcpus; i++) {
		ret = vcpu_open(vm, i, err, errlen);
		if (ret < 0)
			goto out;
	}
	ret = probe_msrs(vm, vm->vcpus[0].fd);
	if (ret < 0) {
		err_set(ret, err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-ret));
		goto out;
	}
	/* parked before their first KVM_RUN: vm_start lets them go */
	vm->pause_req = true;
	ret = start_threads(vm);
	if (ret < 0) {
		err_set(ret, err, errlen, "cannot start the vCPU threads: %s", strerror(-ret));
		goto out;
	}
	vm->threads_parked = true;
	*out = vm;
	return 0;
out:
	vm_destroy(vm);
	return ret;
}

/* Can st be loaded into vm, built by vm_prepare for its config? */
static bool state_fits(const struct vm *vm, const struct vm_config *c)
{
	return c->mem_bytes == vm->cfg.mem_bytes && c->vcpus == vm->cfg.vcpus &&
	       c->dirty_ring == vm->cfg.dirty_ring && !strcmp(c->guest, vm->cfg.guest) &&
	       !strcmp(c->guest_args, vm->cfg.guest_args);
}

int vm_load_state(struct vm *vm, const struct vm_state *st, struct vm_ram *ram, char *err,
		  size_t errlen)
{
	struct kvm_irqchip chip;
	struct kvm_clock_data clock;
	const char *failed = "KVM";
	char name[VM_NAME_MAX];
	int ret;

	if (!vm->awaiting_state || ram->alias != vm->ram.alias || ram->fd != vm->ram.fd)
		return err_set(-EINVAL, err, errlen, "the VM was not prepared on this RAM");
	if (!state_fits(vm, &st->config))
		return err_set(-ESTALE, err, errlen,
			       "the state (%u vCPUs, %s, dirty ring %u) is not the VM prepared "
			       "(%u vCPUs, %s, dirty ring %u)",
			       st->config.vcpus, st->config.guest, st->config.dirty_ring,
			       vm->cfg.vcpus, vm->cfg.guest, vm->cfg.dirty_ring);
	memcpy(name, vm->cfg.name, sizeof(name));
	vm->cfg = st->config;	/* the MAC and the rest come with the state */
	memcpy(vm->cfg.name, name, sizeof(name));
	for (unsigned i = 0; i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;
		if (i < 2)
			chip.chip.pic = st->pic[i];
		else
			chip.chip.ioapic = st->ioapic;
		ret = xioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip);
		if (ret < 0)
			return err_set(ret, err, errlen, "KVM_SET_IRQCHIP %u: %s", i, strerror(-ret));
	}
	ret = xioctl(vm->vm_fd, KVM_SET_PIT2, (void *)(uintptr_t)&st->pit);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_PIT2: %s", strerror(-ret));
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		ret = vcpu_load(&vm->vcpus[i], &st->vcpu[i], &failed);
		if (ret < 0)
			return err_set(ret, err, errlen,
				       "loading vCPU %u state failed: %s refused it: %s", i, failed,
				       strerror(-ret));
		if (i == 0) {
			int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);

			vm->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
		}
	}
	/* the guest keeps the CPUID it came with, wherever it goes next */
	vm->cpuid->nent = st->vcpu[0].ncpuid;
	memcpy(vm->cpuid->entries, st->vcpu[0].cpuid,
	       st->vcpu[0].ncpuid * sizeof(vm->cpuid->entries[0]));
	memset(&clock, 0, sizeof(clock));
	clock.clock = st->clock.clock;
	ret = xioctl(vm->vm_fd, KVM_SET_CLOCK, &clock);
	if (ret < 0)
		return err_set(ret, err, errlen, "KVM_SET_CLOCK: %s", strerror(-ret));
	vm->uart = st->uart;
	atomic_store(&vm->ev_progress, st->ev.progress);
	atomic_store(&vm->ev_errors, st->ev.errors);
	atomic_store(&vm->ev_ticks, st->ev.ticks);
	atomic_store(&vm->ev_last_error, st->ev.last_error_gfn);
	atomic_store(&vm->ev_events, st->ev.events);
	atomic_store(&vm->ev_fatal, st->ev.fatal);
	atomic_store(&vm->ev_started, st->ev.started_mask);
	vm->awaiting_state = false;
	vm->ram_borrowed = false;	/* the RAM is the VM's now */
	ram->fd = -1;
	ram->alias = ram->slot_view = MAP_FAILED;
	return 0;
}

int vm_create_from_state(const struct vm_state *st, struct vm_ram *ram, const char *name,
			 struct vm **out, char *err, size_t errlen)
{
	struct vm_config cfg = st->config;
	struct vm *vm;
	int ret;

	*out = NULL;
	if (name && name[0])
		snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	ret = vm_prepare(&cfg, ram, &vm, err, errlen);
	if (ret == 0) {
		ret = vm_load_state(vm, st, ram, err, errlen);
		if (ret < 0)
			vm_destroy(vm);
	}
	if (ret < 0) {
		vm_ram_destroy(ram);	/* after the VM: its slots were on it */
		return ret;
	}
	*out = vm;
	return 0;
}

/* ---- CPU compatibility (vm/cpucheck.h) ---------------------------------- */

int vm_guest_cpu(const struct vm *vm, struct cpucheck_cpu *cpu)
{
	memset(cpu, 0, sizeof(*cpu));
	if (!vm->cpuid || vm->cpuid->nent > CPUCHECK_MAX_ENTRIES)
		return -E2BIG;
	cpuid_for_vcpu(vm->cpuid, 0, cpu->ent, &cpu->n);
	cpu->tsc_khz = vm->tsc_khz;
	return 0;
}

int vm_host_cpu(struct cpucheck_cpu *cpu, char *err, size_t errlen)
{
	struct kvm_cpuid2 *c = NULL;
	int kvm_fd, vm_fd = -1, vcpu_fd = -1, khz, ret;

	memset(cpu, 0, sizeof(*cpu));
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return err_set(-errno, err, errlen, "cannot open /dev/kvm: %s", strerror(errno));
	c = calloc(1, sizeof(*c) + CPUCHECK_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c) {
		ret = err_set(-ENOMEM, err, errlen, "out of memory");
		goto out;
	}
	c->nent = CPUCHECK_MAX_ENTRIES;
	ret = xioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (ret < 0) {
		err_set(ret, err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
		goto out;
	}
	cpu->n = c->nent;
	memcpy(cpu->ent, c->entries, c->nent * sizeof(c->entries[0]));
	/* the TSC rate of a new guest: the VM fd answers on newer kernels, a vCPU always */
	vm_fd = xioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0) {
		ret = err_set(vm_fd, err, errlen, "KVM_CREATE_VM: %s", strerror(-vm_fd));
		goto out;
	}
	khz = ioctl(vm_fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		vcpu_fd = xioctl(vm_fd, KVM_CREATE_VCPU, 0);
		khz = vcpu_fd < 0 ? vcpu_fd : xioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	}
	if (khz <= 0) {
		ret = err_set(khz < 0 ? khz : -EIO, err, errlen, "KVM_GET_TSC_KHZ: %s",
			      strerror(khz < 0 ? -khz : EIO));
		goto out;
	}
	cpu->tsc_khz = (uint32_t)khz;
	ret = 0;
out:
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	close(kvm_fd);
	free(c);
	return ret;
}

/* ---- dirty tracking hooks --------------------------------------------- */

unsigned vm_get_slots(const struct vm *vm, struct vm_slot slots[2])
{
	uint64_t low = guest_low_ram_bytes(vm->ram.bytes);

	slots[0] = (struct vm_slot){ .slot = 0, .gpa = 0, .ram_off = 0, .bytes = low };
	if (vm->ram.bytes == low)
		return 1;
	slots[1] = (struct vm_slot){
		.slot = 1, .gpa = HIGH_RAM_GPA, .ram_off = low, .bytes = vm->ram.bytes - low
	};
	return 2;
}

unsigned vm_vcpu_count(const struct vm *vm)
{
	return vm->nvcpus;
}

int vm_set_dirty_logging(struct vm *vm, bool on)
{
	return set_slots(vm, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
}

bool vm_manual_protect(const struct vm *vm)
{
	return vm->manual_protect;
}

long vm_dirty_ring_harvest(struct vm *vm, unsigned i, uint64_t *bitmap)
{
	struct vcpu *v = &vm->vcpus[i];
	bool overflow;
	long got;

	if (i >= vm->nvcpus || !v->ring)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&vm->ring_lock);
	got = ring_collect(vm, v, bitmap);
	if (vm->ring_bm_any) {
		uint64_t npages = vm->ram.bytes / VM_PAGE_SIZE;

		got += (long)bitmap_count(vm->ring_bm, 0, npages);
		(void)bitmap_or_count(bitmap, 0, vm->ring_bm, npages);
		bitmap_zero(vm->ring_bm, npages);
		vm->ring_bm_any = false;
	}
	overflow = v->ring_overflow;
	v->ring_overflow = false;
	pthread_mutex_unlock(&vm->ring_lock);
	return overflow ? -EOVERFLOW : got;
}

int vm_dirty_ring_reset(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->ring_lock);
	ret = ring_reset_locked(vm);
	pthread_mutex_unlock(&vm->ring_lock);
	return ret < 0 ? ret : 0;
}

static void *throttle_thread(void *arg)
{
	struct vm *vm = arg;

	pthread_mutex_lock(&vm->lock);
	while (!vm->stop_req) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)THROTTLE_PERIOD_NS;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
		if (vm->stop_req || vm->pause_req || !atomic_load(&vm->throttle_pct))
			continue;
		for (unsigned i = 0; i < vm->nvcpus; i++)
			atomic_store(&vm->vcpus[i].throttle_kick, true);
		pthread_mutex_unlock(&vm->lock);
		kick_all(vm);
		pthread_mutex_lock(&vm->lock);
	}
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

void vm_set_throttle(struct vm *vm, unsigned pct)
{
	bool start;

	pct = MIN(pct, (unsigned)VM_MAX_THROTTLE);
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->throttle_pct, pct);
	start = pct && !vm->throttle_started;
	pthread_mutex_unlock(&vm->lock);
	/* one timer thread per VM, started on first use, ended by vm_destroy */
	if (start && pthread_create(&vm->throttle_thread, NULL, throttle_thread, vm) == 0)
		vm->throttle_started = true;
}

unsigned vm_get_throttle(const struct vm *vm)
{
	return atomic_load(&vm->throttle_pct);
}
