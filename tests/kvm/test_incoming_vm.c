/* SPDX-License-Identifier: MIT */
/*
 * test_incoming_vm.c - the stream decoder's last step on real KVM: a VM
 * built from a synthetic stream (tests/helpers/streamgen, whose vCPU state
 * is the boot state vm_create() gives, so every KVM must accept it). Each
 * valid stream (every codec, 1 and 2 vCPUs, a parallel one) becomes a VM
 * whose configuration and RAM are the stream's, left unstarted; a stream
 * whose vCPU state KVM refuses (long mode without CR4.PAE) is refused with
 * a message naming the register set, and no VM is left; a stream whose
 * SWITCHOVER says the guest was paused reports it. The host-only checks of
 * the same decoder are tests/unit/test_incoming. Exits 77 without /dev/kvm.
 *
 * The VM is prepared while the pages arrive (vm_prepare on kvmig-prep) and
 * COMPLETE only loads the state: every valid stream says so in its stats.
 * A stream that fails after the prepare (a bad page, a vCPU's state left
 * out, a wrong digest, a state KVM refuses, a stream cut short, a CPUID
 * frame that hides a feature the state then has) leaves no VM, no fd and
 * no thread behind (/proc/self/fd, /proc/self/task and vm_count() are as
 * before). Two live migrations on a unix socket: one whose VM was prepared
 * during pre-copy, one with a dirty ring (whose size HELLO does not say,
 * so the VM is built again at COMPLETE); both guests run on at the
 * destination, their counters going on from the source's.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate/incoming.h"
#include "migrate/migrate.h"
#include "migrate/session.h"
#include "migrate/snapshot.h"
#include "protocol/channel.h"
#include "tests/helpers/frame_bytes.h"
#include "tests/helpers/kvmtest.h"
#include "tests/helpers/streamgen.h"
#include "vm/vm.h"

/* Build a VM from m; return the error and its message; *st the stats. */
static int build(struct memio *m, struct vm **vm, char *err, size_t errlen,
		 struct incoming_stats *st)
{
	struct incoming *inc;
	int ret;

	*vm = NULL;
	memio_rewind(m);
	assert_int_equal(incoming_create(&m->io, NULL, NULL, &inc), 0);
	ret = incoming_run(inc, vm, err, errlen);
	incoming_get_stats(inc, st);
	incoming_destroy(inc);
	if (ret == 0)
		assert_non_null(*vm);
	else
		assert_null(*vm);
	return ret;
}

/* The VM holds what the stream carried: its configuration and data pages. */
static void check_vm(struct vm *vm, const struct streamgen_opts *o)
{
	const struct vm_config *cfg = vm_get_config(vm);
	uint8_t page[4096];

	assert_string_equal(cfg->name, o->name);
	assert_int_equal(cfg->vcpus, o->vcpus);
	assert_int_equal(cfg->mem_bytes, o->mem_bytes);
	assert_int_equal(vm_vcpu_count(vm), o->vcpus);
	assert_int_equal(vm_get_run_state(vm), VM_RUN_CREATED);
	for (uint64_t i = 0; i < o->pages; i++) {
		streamgen_page(i, page);
		if (memcmp(vm_ram(vm) + (512 + i) * 4096, page, sizeof(page)))
			fail_msg("data page %llu differs in the built VM", (unsigned long long)i);
	}
}

static void test_incoming_vm_valid_streams(void **unused)
{
	const char *codecs[] = { NULL, "zstd", "lz4", "lz4hc" };
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	struct vm *vm;
	char err[512];

	(void)unused;
	for (size_t c = 0; c < 4; c++) {
		for (unsigned vcpus = 1; vcpus <= 2; vcpus++) {
			memio_init(&m);
			streamgen_defaults(&o);
			o.compress = codecs[c];
			o.vcpus = vcpus;
			o.pages = 700;
			o.digest = 1;
			assert_int_equal(streamgen_write(&m.io, &o), 0);
			if (build(&m, &vm, err, sizeof(err), &st) != 0)
				fail_msg("%s, %u vCPU(s): %s", codecs[c] ? codecs[c] : "raw", vcpus,
					 err);
			assert_int_equal(st.pages, 700);
			assert_false(st.paused);
			/* prepared while the pages came: COMPLETE only loaded the state */
			assert_true(st.vm_prepared);
			assert_true(st.vm_prebuilt);
			assert_false(st.vm_rebuilt);
			check_vm(vm, &o);
			vm_destroy(vm);
			memio_fini(&m);
		}
	}
}

/* KVM refuses the vCPU state: the error names the register set; no VM. */
static void test_incoming_vm_refused_state(void **unused)
{
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	struct vm *vm;
	char err[512] = "";
	int ret;

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.bad_sregs = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	ret = build(&m, &vm, err, sizeof(err), &st);
	assert_true(ret < 0);
	assert_true(st.stream_ok);	/* the stream was fine; KVM said no */
	if (!strstr(err, "cannot build the VM") || !strstr(err, "KVM_SET_SREGS"))
		fail_msg("the refusal does not name the register set: %s", err);
	memio_fini(&m);
}

/* A guest that left its host paused is built, and the stats say so. */
static void test_incoming_vm_paused(void **unused)
{
	struct incoming_stats st;
	struct streamgen_opts o;
	struct memio m;
	struct vm *vm;
	char err[512];

	(void)unused;
	memio_init(&m);
	streamgen_defaults(&o);
	o.paused = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	if (build(&m, &vm, err, sizeof(err), &st) != 0)
		fail_msg("%s", err);
	assert_true(st.paused);
	assert_true(st.vm_prebuilt);
	check_vm(vm, &o);
	vm_destroy(vm);
	memio_fini(&m);
}

/* ---- failures after the prepare leave nothing behind ------------------- */

static unsigned count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

struct leak_mark {
	unsigned fds, threads, vms;
};

static void leak_mark(struct leak_mark *m)
{
	m->fds = count_dir("/proc/self/fd");
	m->threads = count_dir("/proc/self/task");
	m->vms = vm_count();
}

/* Every fd, thread and VM made since before is gone (threads are joined: no wait). */
static void leak_check(const struct leak_mark *before, const char *what)
{
	struct leak_mark now;

	leak_mark(&now);
	if (now.fds != before->fds || now.threads != before->threads || now.vms != before->vms)
		fail_msg("%s: %u fds, %u threads, %u VMs before; %u, %u, %u after", what,
			 before->fds, before->threads, before->vms, now.fds, now.threads, now.vms);
}

/* A stream refused after its VM was prepared: no VM, and nothing left. */
static void refuse_after_prepare(struct memio *m, const char *what, const char *needle)
{
	struct incoming_stats st;
	struct leak_mark before;
	struct vm *vm;
	char err[512] = "";

	leak_mark(&before);
	assert_true(build(m, &vm, err, sizeof(err), &st) < 0);
	printf("    %s: %s\n", what, err);
	assert_true(st.vm_prepared);	/* the failure came after the prepare */
	assert_false(st.vm_prebuilt);
	if (!strstr(err, needle))
		fail_msg("%s: the error does not say '%s': %s", what, needle, err);
	leak_check(&before, what);
}

static void test_incoming_vm_fail_after_prepare(void **unused)
{
	struct streamgen_opts o;
	struct memio m;

	(void)unused;
	/* a page outside RAM in the first PAGES frame, right after HELLO */
	memio_init(&m);
	streamgen_defaults(&o);
	o.pages = 300;
	o.bad_page = (o.mem_bytes / 4096) + 5;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	refuse_after_prepare(&m, "bad page", "PAGES");
	memio_fini(&m);
	/* vCPU 1's state never came */
	memio_init(&m);
	streamgen_defaults(&o);
	o.vcpus = 2;
	o.skip_vcpu = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	refuse_after_prepare(&m, "state left out", "state");
	memio_fini(&m);
	/* the RAM digest does not match */
	memio_init(&m);
	streamgen_defaults(&o);
	o.pages = 300;
	o.digest = 2;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	refuse_after_prepare(&m, "wrong digest", "digest");
	memio_fini(&m);
	/* KVM refuses the state loaded into the prepared VM */
	memio_init(&m);
	streamgen_defaults(&o);
	o.vcpus = 2;
	o.bad_sregs = 1;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	refuse_after_prepare(&m, "state KVM refuses", "KVM_SET_SREGS");
	memio_fini(&m);
	/* the peer went away: the stream stops in the middle of its pages */
	memio_init(&m);
	streamgen_defaults(&o);
	o.pages = 600;
	assert_int_equal(streamgen_write(&m.io, &o), 0);
	m.len /= 2;
	refuse_after_prepare(&m, "stream cut", "");
	memio_fini(&m);
}

/* Load a whole file into m. */
static void memio_load(struct memio *m, const char *path)
{
	uint8_t buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(mio_write(&m->io, buf, (size_t)n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(mio_flush(&m->io), 0);
	close(fd);
}

/*
 * The CPUID frame of a real VM's snapshot with SSE taken out (resealed):
 * the host can run that, so the VM is prepared; at COMPLETE vCPU 0's
 * state has SSE after all, and the stream is refused.
 */
static void test_incoming_vm_cpuid_mismatch_after_prepare(void **unused)
{
	char path[64], err[256];
	struct vm *vm = kvmtest_start_vm("cpu", "idle", "", 32ull << 20, 1, 0);
	struct memio m;
	size_t off = 0;
	bool cut = false;

	(void)unused;
	snprintf(path, sizeof(path), "/tmp/kvmig-test-prep-%d.snap", getpid());
	if (snapshot_save(vm, path, NULL, err, sizeof(err)))
		fail_msg("snapshot_save: %s", err);
	vm_destroy(vm);
	memio_init(&m);
	memio_load(&m, path);
	unlink(path);
	/* frames: type u16, flags u16, len u32, payload, crc u32 */
	while (off + WIRE_HDR_BYTES <= m.len && !cut) {
		uint8_t *f = m.buf + off;
		uint32_t len = f[4] | f[5] << 8 | f[6] << 16 | (uint32_t)f[7] << 24;
		size_t total = WIRE_HDR_BYTES + len + WIRE_CRC_BYTES;

		if ((f[0] | f[1] << 8) == WIRE_F_CPUID) {
			uint8_t *p = f + WIRE_HDR_BYTES;
			uint32_t count = p[8] | p[9] << 8 | p[10] << 16 | (uint32_t)p[11] << 24;

			for (uint32_t i = 0; i < count; i++) {
				uint8_t *e = p + 12 + i * 28;	/* function index flags eax ebx ecx edx */

				if (e[0] == 1 && !e[1] && !e[2] && !e[3] && !e[4]) {
					/* EDX bit 25: SSE, which every x86-64 guest has */
					assert_true(e[27] & 0x02);
					e[27] &= ~0x02;
					cut = true;
				}
			}
			reseal(f, total);
		}
		off += total;
	}
	assert_true(cut);
	memio_rewind(&m);
	refuse_after_prepare(&m, "CPUID mismatch", "sse");
	memio_fini(&m);
}

struct chan {
	struct memio in, back;
	pthread_t thread;
	int ret;
	char err[512];
	struct vm *vm;
	struct session_table *sessions;
};

static void *chan_thread(void *arg)
{
	struct chan *c = arg;
	struct incoming *inc;

	memio_rewind(&c->in);
	if (incoming_create(&c->in.io, &c->back.io, NULL, &inc) < 0) {
		c->ret = -ENOMEM;
		return NULL;
	}
	incoming_set_sessions(inc, c->sessions);
	c->ret = incoming_run(inc, &c->vm, c->err, sizeof(c->err));
	incoming_destroy(inc);
	return NULL;
}

/* Two channels of one migration meet in one RAM; channel 0 builds the VM. */
static void test_incoming_vm_parallel(void **unused)
{
	struct streamgen_opts o[2];
	struct session_table *t;
	struct chan c[2];

	(void)unused;
	memset(c, 0, sizeof(c));
	assert_int_equal(session_table_create(&t), 0);
	for (unsigned i = 0; i < 2; i++) {
		c[i].sessions = t;
		memio_init(&c[i].in);
		memio_init(&c[i].back);
		streamgen_defaults(&o[i]);
		o[i].pages = 1000;
		o[i].digest = 1;
		o[i].compress = "zstd";
		o[i].channels = 2;
		o[i].channel = i;
		o[i].session = 9100;
		assert_int_equal(streamgen_write(&c[i].in.io, &o[i]), 0);
	}
	for (unsigned i = 2; i-- > 0;)
		assert_int_equal(pthread_create(&c[i].thread, NULL, chan_thread, &c[i]), 0);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(c[i].thread, NULL);
	session_table_destroy(t);
	if (c[0].ret != 0)
		fail_msg("channel 0: %s", c[0].err);
	assert_int_equal(c[1].ret, 1);
	assert_null(c[1].vm);
	check_vm(c[0].vm, &o[0]);
	vm_destroy(c[0].vm);
	for (unsigned i = 0; i < 2; i++) {
		memio_fini(&c[i].in);
		memio_fini(&c[i].back);
	}
}

/* ---- live migrations ---------------------------------------------------- */

struct live_dest {
	struct channel_listener *l;
	pthread_t thread;
	struct vm *vm;
	struct incoming_stats st;
	int vms_held;		/* VMs incoming_destroy() took with it, the guest running */
	int ret;
	char err[512];
};

/* Accept, receive, hand over, start, confirm: what kvmigd does. */
static void *live_dest_thread(void *arg)
{
	struct live_dest *d = arg;
	struct incoming *inc = NULL;
	struct channel *ch = NULL;
	struct mio io;
	char msg[256];

	d->ret = channel_accept(d->l, 30000, &ch, msg, sizeof(msg));
	if (d->ret < 0) {
		snprintf(d->err, sizeof(d->err), "accept: %s", msg);
		return NULL;
	}
	mio_channel_open(&io, ch);
	d->ret = incoming_create(&io, &io, "dst", &inc);
	if (!d->ret)
		d->ret = incoming_run(inc, &d->vm, d->err, sizeof(d->err));
	if (!d->ret)
		d->ret = incoming_handover(inc, d->err, sizeof(d->err));
	if (d->ret && d->vm) {
		vm_destroy(d->vm);
		d->vm = NULL;
	}
	if (!d->ret)
		d->ret = vm_start(d->vm);
	if (!d->ret)
		d->ret = incoming_send_resumed(inc);
	if (inc)
		incoming_get_stats(inc, &d->st);
	d->vms_held = vm_count();
	incoming_destroy(inc);
	d->vms_held -= vm_count();
	mio_close(&io);
	return NULL;
}

/* Move a running guest to an in-process destination; return its stats. */
static void live_move(const char *guest, const char *args, unsigned vcpus, uint32_t ring,
		      struct incoming_stats *dst_st)
{
	struct vm *src = kvmtest_start_vm("src", guest, args, 64ull << 20, vcpus, ring);
	struct vm_guest_stats a, b;
	struct migrate_opts o;
	struct migrate_job *job;
	struct migrate_stats ms;
	struct live_dest d;
	char spec[96], uri[128], err[512];
	int ret;

	kvmtest_wait(src, 2000, 0, 120, NULL);
	memset(&d, 0, sizeof(d));
	snprintf(spec, sizeof(spec), "unix:/tmp/kvmig-test-prep-%d.sock", getpid());
	unlink(spec + 5);
	if (channel_listen(spec, &d.l, err, sizeof(err)))
		fail_msg("listen %s: %s", spec, err);
	snprintf(uri, sizeof(uri), "unix://%s", spec + 5);
	assert_int_equal(pthread_create(&d.thread, NULL, live_dest_thread, &d), 0);
	migrate_opts_defaults(&o);
	o.verify = true;
	o.auto_converge = true;
	o.max_iterations = 0;
	o.max_downtime_ms = 1000;
	o.timeout_ms = 300000;
	if (ring)
		o.dirty_track = DIRTYLOG_RING;
	if (migrate_start(src, uri, &o, &job, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	ret = migrate_wait(job);
	migrate_get_stats(job, &ms);
	migrate_job_free(job);
	pthread_join(d.thread, NULL);
	channel_listener_close(d.l);
	unlink(spec + 5);
	if (ret)
		fail_msg("migration failed: %s (destination: %s)", ms.error, d.err);
	if (d.ret)
		fail_msg("destination: %s", d.err);
	printf("    %s, %u vCPU(s), ring %u: downtime %llu ms, COMPLETE to VM ready %llu us, "
	       "%s\n",
	       guest, vcpus, ring, (unsigned long long)ms.downtime_ms,
	       (unsigned long long)d.st.complete_to_ready_us,
	       d.st.vm_prebuilt ? "prepared during pre-copy"
	       : d.st.vm_rebuilt ? "prepared, built again" : "built at COMPLETE");
	assert_true(ms.verified);
	assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
	vm_get_stats(src, &a);
	vm_destroy(src);
	/* the guest goes on at the destination, from where it stopped */
	assert_int_equal(vm_get_run_state(d.vm), VM_RUN_RUNNING);
	assert_int_equal(vm_get_config(d.vm)->dirty_ring, ring);
	vm_get_stats(d.vm, &b);
	assert_true(b.progress >= a.progress);
	kvmtest_wait(d.vm, a.progress + 2000, 0, 120, NULL);
	vm_get_stats(d.vm, &b);
	assert_int_equal(b.errors, 0);
	assert_int_equal(vm_dead_vcpus(d.vm), 0);
	vm_destroy(d.vm);
	*dst_st = d.st;
	/* a prepared VM that did not fit went after the guest ran, not in the downtime */
	assert_int_equal(d.vms_held, d.st.vm_rebuilt ? 1 : 0);
}

static void test_incoming_vm_live_prebuilt(void **unused)
{
	struct incoming_stats st;
	struct leak_mark before;

	(void)unused;
	leak_mark(&before);
	for (unsigned vcpus = 1; vcpus <= 2; vcpus++) {
		live_move("memcheck", "workset=4M", vcpus, 0, &st);
		assert_true(st.vm_prepared);
		assert_true(st.vm_prebuilt);
		assert_false(st.vm_rebuilt);
		assert_true(st.complete_ns > 0);
	}
	leak_check(&before, "two live migrations");
}

/*
 * A dirty-ring VM: HELLO does not carry the ring's size, so the VM
 * prepared without a ring does not fit the state and is built again at
 * COMPLETE; the unfit one stays until incoming_destroy(), after the guest
 * runs (live_move checks). The guest is paced (rate=): see test_migrate's
 * ring case.
 */
static void test_incoming_vm_live_dirty_ring(void **unused)
{
	struct incoming_stats st;

	(void)unused;
	live_move("randdirty", "workset=4M,rate=2000", 2, 4096, &st);
	assert_true(st.vm_prepared);
	assert_false(st.vm_prebuilt);
	assert_true(st.vm_rebuilt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incoming_vm_valid_streams),
		cmocka_unit_test(test_incoming_vm_refused_state),
		cmocka_unit_test(test_incoming_vm_paused),
		cmocka_unit_test(test_incoming_vm_parallel),
		cmocka_unit_test(test_incoming_vm_fail_after_prepare),
		cmocka_unit_test(test_incoming_vm_cpuid_mismatch_after_prepare),
		cmocka_unit_test(test_incoming_vm_live_prebuilt),
		cmocka_unit_test(test_incoming_vm_live_dirty_ring),
	};
	char why[200];

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: needs /dev/kvm: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
