// SPDX-License-Identifier: BSD-2-Clause
/*
 * vmclone: guests cloned from one memory snapshot, copy-on-write in user
 * space, with cowtable tracking who shares each snapshot frame.
 *
 * Guest memory lives in frames of a memfd pool.  The snapshot is the pool's
 * first N frames, filled with a known pattern.  Each of V clones maps the
 * snapshot read-only (write-protected) at its guest-physical addresses and
 * marks every page in the snapshot's table (one sharer more, as a fork); the
 * snapshot then drops its own reference.  Each clone runs T vCPU threads that
 * write random guest pages.  The first write of a clone to a shared page
 * traps (userfaultfd write-protect, or mprotect + SIGSEGV) and is handled
 * with cowtable_release(): SHARED takes a pool frame, copies and maps it
 * writable at that page of that clone; LAST maps the shared frame writable in
 * place.  A clone that exits releases the pages it still shares with
 * cowtable_release_range(); frames whose last sharer left go back to the pool.
 *
 * The checks always run; a failure prints "FAIL vmclone: ..." and the run
 * exits 1.  docs/hypervisor.md describes the wiring and the limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cowtable.h"

#define PAGE   4096u
#define WORDS  (PAGE / 8)
#define NONE32 UINT32_MAX
#define MAX_T  64 /* a vCPU owns word <vcpu> of every page it writes */

/* A page's state in one clone. */
enum {
	PG_SHARED,    /* maps the snapshot frame, holds one reference */
	PG_BUSY,      /* a fault handler is resolving it */
	PG_PRIVATE,   /* maps a frame of its own (copy, or the frame reused in place) */
	PG_ABANDONED, /* the run stopped before it was resolved: scratch page, reference kept */
	PG_DROPPED,   /* the run stopped after its release: scratch page, no reference */
};

enum fault_mode { FAULT_AUTO, FAULT_UFFD, FAULT_SIGNAL };
enum inject { INJ_NONE, INJ_MMAP, INJ_UFFD };

struct options {
	size_t pages; /* snapshot frames */
	unsigned clones, vcpus;
	size_t writes;     /* per vCPU; 0: from the mapping budget */
	size_t pool_extra; /* frames beyond the snapshot; 0: enough for every write */
	bool hotcold, keep_snapshot, broken_no_copy, kernel, bench;
	enum fault_mode fault;
	enum inject inject;
	uint64_t seed;
	const char *data;
};

/* ---------------------------------------------------------------- pool */
/*
 * The frame pool: a memfd and a lock-free stack of free frame numbers (a
 * tagged top against ABA), so that a SIGSEGV handler may take and give back
 * frames without a lock.
 */
struct pool {
	int fd;
	uint8_t *va; /* the whole pool, for copies and checks */
	size_t frames;
	_Atomic uint64_t top; /* tag << 32 | (frame + 1); low half 0: empty */
	_Atomic uint32_t *next;
};

static void pool_put(struct pool *p, uint32_t f)
{
	uint64_t old = atomic_load(&p->top), new;

	do {
		atomic_store_explicit(&p->next[f], (uint32_t)old, memory_order_relaxed);
		new = ((old >> 32) + 1) << 32 | (uint64_t)(f + 1);
	} while (!atomic_compare_exchange_weak(&p->top, &old, new));
}

static uint32_t pool_take(struct pool *p)
{
	uint64_t old = atomic_load(&p->top), new;
	uint32_t f;

	do {
		if ((uint32_t)old == 0)
			return NONE32;
		f = (uint32_t)old - 1;
		new = ((old >> 32) + 1) << 32 |
		      atomic_load_explicit(&p->next[f], memory_order_relaxed);
	} while (!atomic_compare_exchange_weak(&p->top, &old, new));
	return f;
}

static uint8_t *frame_va(struct pool *p, uint64_t f)
{
	return p->va + f * PAGE;
}

/* ----------------------------------------------------------- the run */
struct clone;

struct vcpu {
	struct clone *c;
	unsigned id;
	pthread_t tid;
	struct cowtable_ctx *ctx; /* signal path: the fault runs on this thread */
	uint64_t *last;           /* its last stamp in each page, 0 if none */
	uint32_t *lat;            /* ns of each write that trapped */
	size_t nlat, writes;
	uint64_t t0, t1;
	int bad;
	bool started; /* its thread runs (main thread only) */
};

struct clone {
	unsigned id;
	uint8_t *base; /* guest-physical address 0 */
	_Atomic uint8_t *state;
	_Atomic uint8_t *dups; /* traps on a page already private */
	uint32_t *priv;        /* the frame a private page maps */
	int uffd, stopfd;
	pthread_t handler;
	bool handler_started;
	struct cowtable_ctx *hctx; /* uffd path: the handler thread's context */
	struct vcpu *vcpus;
	_Atomic uint64_t copies, in_place, dup_faults;
	_Atomic size_t nsamples;
	uint32_t *table_ns, *handler_ns;
	size_t cap;
};

struct run {
	struct options o;
	enum fault_mode mode;
	struct pool pool;
	struct cowtable table;
	struct clone *clones;
	unsigned nclones; /* set up so far */
	size_t writes;
	_Atomic long vma_left; /* mappings we may still add (vm.max_map_count) */
	_Atomic bool stop, go;
	_Atomic int failures;
	char why[256]; /* the first failure that stopped the run */
	_Atomic bool why_set;
};

static struct run *g; /* for the SIGSEGV handler */

static void fail(const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "FAIL vmclone: %s\n", buf);
	if (g)
		atomic_fetch_add(&g->failures, 1);
}

/* Stops the run (bad luck, not a bug): the first reason is kept and printed. */
static void stop_run(const char *what)
{
	bool f = false;

	if (atomic_compare_exchange_strong(&g->why_set, &f, true))
		snprintf(g->why, sizeof(g->why), "%s", what);
	atomic_store(&g->stop, true);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
	return *s;
}

/* The snapshot's contents: word w of guest page p. */
static uint64_t pattern(size_t p, size_t w)
{
	return ((uint64_t)p << 9 | w) * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u;
}

/* A vCPU's write: bit 63 set, so that it never equals a pattern by chance. */
static uint64_t stamp(unsigned clone, unsigned vcpu, uint64_t seq)
{
	return 1ull << 63 | (uint64_t)clone << 48 | (uint64_t)vcpu << 40 | (seq & 0xffffffffffull);
}

/* The page a vCPU writes next: uniform, or 90% in a hot 1/64 of memory. */
static size_t pick_page(uint64_t *rng, size_t pages, bool hotcold)
{
	uint64_t r = next_rand(rng);
	size_t hot = pages / 64 ? pages / 64 : 1;

	if (hotcold && r % 10 != 0)
		return (size_t)(next_rand(rng) % hot) * 61 % pages;
	return (size_t)(next_rand(rng) % pages);
}

/* ------------------------------------------------------ fault handling */
/*
 * Maps a scratch page over a page the run could not resolve, so that the
 * trapped write lands there instead of in a shared frame.  Without even
 * that, stop the process: memory stays as it is.
 */
static void map_scratch(void *page)
{
	if (mmap(page, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
	         0) == MAP_FAILED) {
		static const char msg[] = "vmclone: mmap of a scratch page failed; stopping\n";
		ssize_t n = write(2, msg, sizeof(msg) - 1);
		(void)n;
		_exit(1);
	}
}

static int copy_mmap(struct clone *c, void *page, uint32_t f)
{
	if (g->o.inject == INJ_MMAP && atomic_load(&c->copies) + 1 >= 8) {
		errno = ENOMEM; /* --inject=mmap: the 8th copy of a clone fails */
		return -1;
	}
	return mmap(page, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, g->pool.fd,
	            (off_t)f * PAGE) == MAP_FAILED
	               ? -1
	               : 0;
}

/* Lets the page be written in place: the mapping stays, protection goes. */
static int unprotect(struct clone *c, uint8_t *page)
{
	if (g->mode == FAULT_UFFD) {
		struct uffdio_writeprotect wp = {.range = {.start = (uintptr_t)page, .len = PAGE},
		                                 .mode = 0};
		return ioctl(c->uffd, UFFDIO_WRITEPROTECT, &wp);
	}
	return mprotect(page, PAGE, PROT_READ | PROT_WRITE);
}

/*
 * One write fault of clone @c on guest page @p, on context @ctx.  Returns
 * once the page is writable (or the run stopped and a scratch page took its
 * place).  Safe in a SIGSEGV handler: no locks, no allocation of its own;
 * cowtable_release() may free retired leaves, which is safe here because the
 * signal only interrupts a guest write, never the allocator.
 */
static void cow_fault(struct clone *c, struct cowtable_ctx *ctx, size_t p)
{
	uint8_t *page = c->base + p * PAGE;
	uint8_t st = PG_SHARED;
	uint64_t t0 = now_ns(), t1, t2;
	cowtable_frame_t shared = ~(cowtable_frame_t)0;
	uint32_t f;
	int r;

	if (!atomic_compare_exchange_strong(&c->state[p], &st, PG_BUSY)) {
		/* Another vCPU of this clone trapped first, or the trap raced its fix. */
		while (atomic_load(&c->state[p]) == PG_BUSY)
			;
		atomic_fetch_add(&c->dup_faults, 1);
		if (atomic_fetch_add(&c->dups[p], 1) > MAX_T)
			fail("clone %u page %zu: trapped again after it was made private: "
			     "the ordinary path was not taken",
			     c->id, p);
		goto wake;
	}
	if (atomic_load(&g->stop))
		goto abandon;
	/* Everything that can fail is settled before the release changes the table. */
	if (atomic_fetch_sub(&g->vma_left, 2) < 2) {
		stop_run("mapping budget exhausted: vm.max_map_count allows no more per-page "
		         "mappings (raise it or use --writes)");
		goto abandon;
	}
	f = pool_take(&g->pool);
	if (f == NONE32) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		         "pool exhausted: no free frame for a copy (pool of %zu frames)",
		         g->pool.frames);
		stop_run(msg);
		goto abandon;
	}
	t1 = now_ns();
	r = cowtable_release(ctx, p * PAGE, &shared);
	t2 = now_ns();
	if ((r == COWTABLE_SHARED || r == COWTABLE_LAST) && shared != p) {
		fail("clone %u page %zu: the table holds frame %" PRIu64 ", the snapshot's is %zu",
		     c->id, p, (uint64_t)shared, p);
		pool_put(&g->pool, f);
		goto dropped;
	}
	if (r == COWTABLE_SHARED && !g->o.broken_no_copy) {
		memcpy(frame_va(&g->pool, f), frame_va(&g->pool, shared), PAGE);
		if (copy_mmap(c, page, f) != 0) {
			char msg[160];

			snprintf(msg, sizeof(msg),
			         "mmap of a copied frame at clone %u page %zu: %s", c->id, p,
			         strerror(errno));
			pool_put(&g->pool, f);
			stop_run(msg);
			goto dropped;
		}
		c->priv[p] = f;
		atomic_fetch_add(&c->copies, 1);
	} else if (r == COWTABLE_SHARED || r == COWTABLE_LAST) {
		/* LAST: the frame is ours; --broken=no-copy does this on SHARED too. */
		pool_put(&g->pool, f);
		atomic_fetch_add(&g->vma_left, g->mode == FAULT_UFFD ? 2 : 0);
		if (unprotect(c, page) != 0) {
			char msg[160];

			snprintf(msg, sizeof(msg), "unprotecting clone %u page %zu: %s", c->id, p,
			         strerror(errno));
			stop_run(msg);
			if (r == COWTABLE_LAST)
				pool_put(&g->pool, (uint32_t)shared);
			goto dropped;
		}
		c->priv[p] = r == COWTABLE_LAST ? (uint32_t)shared : NONE32;
		atomic_fetch_add(&c->in_place, 1);
	} else {
		fail("clone %u page %zu: release returned %d for a page the clone shares", c->id, p,
		     r);
		pool_put(&g->pool, f);
		goto dropped;
	}
	atomic_store(&c->state[p], PG_PRIVATE);
	if (g->mode == FAULT_UFFD && r == COWTABLE_SHARED && !g->o.broken_no_copy) {
		struct uffdio_range wake = {.start = (uintptr_t)page, .len = PAGE};

		if (ioctl(c->uffd, UFFDIO_WAKE, &wake) != 0)
			fail("UFFDIO_WAKE: %s", strerror(errno));
	}
	size_t i = atomic_fetch_add(&c->nsamples, 1);
	if (i < c->cap) {
		c->table_ns[i] = (uint32_t)(t2 - t1);
		c->handler_ns[i] = (uint32_t)(now_ns() - t0);
	}
	return;
abandon:
	map_scratch(page);
	atomic_store(&c->state[p], PG_ABANDONED);
	goto wake;
dropped:
	map_scratch(page);
	atomic_store(&c->state[p], PG_DROPPED);
wake:
	if (g->mode == FAULT_UFFD) {
		struct uffdio_range wake = {.start = (uintptr_t)page, .len = PAGE};

		ioctl(c->uffd, UFFDIO_WAKE, &wake);
	}
}

static _Thread_local struct vcpu *tls_vcpu;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct vcpu *v = tls_vcpu;
	uint8_t *a = si->si_addr;
	size_t span = g->o.pages * PAGE;

	(void)uc;
	if (v == NULL || a < v->c->base || a >= v->c->base + span) {
		/* Not a guest write: crash as the default action would. */
		signal(sig, SIG_DFL);
		return;
	}
	cow_fault(v->c, v->ctx, (size_t)(a - v->c->base) / PAGE);
}

static void *uffd_handler(void *arg)
{
	struct clone *c = arg;
	struct uffd_msg msgs[32];

	for (;;) {
		struct pollfd pf[2] = {{.fd = c->uffd, .events = POLLIN},
		                       {.fd = c->stopfd, .events = POLLIN}};
		ssize_t n;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail("poll on userfaultfd: %s", strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		n = read(c->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			fail("read from userfaultfd: %s", strerror(errno));
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			uint64_t a = msgs[i].arg.pagefault.address;

			if (msgs[i].event != UFFD_EVENT_PAGEFAULT ||
			    !(msgs[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
				fail("userfaultfd: unexpected event %u flags %llx", msgs[i].event,
				     (unsigned long long)msgs[i].arg.pagefault.flags);
				continue;
			}
			cow_fault(c, c->hctx, (size_t)(a - (uintptr_t)c->base) / PAGE);
		}
	}
	return NULL;
}

/* ------------------------------------------------------ userfaultfd */
static int uffd_open(char *why, size_t len)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM};
	int fd;

	if (g->o.inject == INJ_UFFD) {
		snprintf(why, len, "userfaultfd: %s (--inject=uffd)", strerror(ENOSYS));
		return -1;
	}
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, len, "userfaultfd(): %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		snprintf(why, len,
		         "UFFDIO_API with UFFD_FEATURE_WP_HUGETLBFS_SHMEM: %s (write-protect on "
		         "shmem needs Linux 5.19 or later)",
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int uffd_protect(int fd, void *start, size_t len, char *why, size_t wlen)
{
	struct uffdio_register reg = {.range = {.start = (uintptr_t)start, .len = len},
	                              .mode = UFFDIO_REGISTER_MODE_WP};
	struct uffdio_writeprotect wp = {.range = {.start = (uintptr_t)start, .len = len},
	                                 .mode = UFFDIO_WRITEPROTECT_MODE_WP};

	if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) {
		snprintf(why, wlen, "UFFDIO_REGISTER_MODE_WP on shmem: %s", strerror(errno));
		return -1;
	}
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
		snprintf(why, wlen, "UFFDIO_WRITEPROTECT on shmem: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Whether write-protect faults on shmem work here: one page, protected. */
static bool uffd_probe(char *why, size_t len)
{
	int fd = uffd_open(why, len), mfd;
	void *m;
	bool ok;

	if (fd < 0)
		return false;
	mfd = memfd_create("vmclone-probe", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, PAGE) != 0) {
		snprintf(why, len, "memfd_create: %s", strerror(errno));
		close(fd);
		return false;
	}
	m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ok = m != MAP_FAILED && uffd_protect(fd, m, PAGE, why, len) == 0;
	if (m != MAP_FAILED)
		munmap(m, PAGE);
	close(mfd);
	close(fd);
	return ok;
}

/* ------------------------------------------------------------ vCPUs */
/*
 * A guest's own access to its memory.  What orders it against a handler's
 * remap is the page table (the write traps until the new mapping is there),
 * not the C memory model, so ThreadSanitizer does not watch it: it would
 * see the remap as a write that races with the access it let through.
 */
__attribute__((noinline, no_sanitize("thread"))) static uint64_t guest_write(volatile uint64_t *w,
                                                                             uint64_t s)
{
	*w = s;
	return *w;
}

static void *vcpu_main(void *arg)
{
	struct vcpu *v = arg;
	struct clone *c = v->c;
	uint64_t rng = g->o.seed * 0x9e3779b97f4a7c15ull + v->id * 7919u + 1;
	size_t i;

	tls_vcpu = v;
	while (!atomic_load(&g->go))
		;
	v->t0 = now_ns();
	for (i = 0; i < g->writes && !atomic_load_explicit(&g->stop, memory_order_relaxed); i++) {
		size_t p = pick_page(&rng, g->o.pages, g->o.hotcold);
		volatile uint64_t *w = (volatile uint64_t *)(c->base + p * PAGE) + v->id;
		uint64_t s = stamp(c->id, v->id, i + 1);
		/* Whether this write will trap: the page is still shared. */
		bool traps = atomic_load_explicit(&c->state[p], memory_order_relaxed) == PG_SHARED;
		uint64_t t0 = traps ? now_ns() : 0, back = guest_write(w, s);

		if (traps)
			v->lat[v->nlat++] = (uint32_t)(now_ns() - t0);
		if (back != s && atomic_load(&c->state[p]) == PG_PRIVATE) {
			fail("clone %u vCPU %u page %zu: read back %" PRIx64
			     " after writing %" PRIx64,
			     c->id, v->id, p, back, s);
			v->bad++;
		}
		v->last[p] = s;
	}
	v->writes = i;
	v->t1 = now_ns();
	return NULL;
}

/* --------------------------------------------------------- the checks */
/* Word w of clone c's page p, as the clone must see it. */
static void check_word(struct clone *c, size_t p, size_t w, uint64_t got, uint64_t want)
{
	if (got == want)
		return;
	if (got >> 63 && (unsigned)(got >> 48 & 0x7fff) != c->id)
		fail("clone %u page %zu word %zu holds a write of clone %u (vCPU %u)", c->id, p, w,
		     (unsigned)(got >> 48 & 0x7fff), (unsigned)(got >> 40 & 0xff));
	else
		fail("clone %u page %zu word %zu: %" PRIx64 ", expected %" PRIx64, c->id, p, w, got,
		     want);
}

static bool visit_snapshot(uintptr_t va, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	size_t p = va / PAGE, *bad = arg;
	const uint64_t *w = (const uint64_t *)frame_va(&g->pool, frame);

	(void)refs;
	if (frame != p) {
		fail("page %zu is tracked with frame %" PRIu64, p, (uint64_t)frame);
		return ++*bad < 10;
	}
	for (size_t i = 0; i < WORDS; i++)
		if (w[i] != pattern(p, i)) {
			fail("snapshot frame %zu changed while shared: word %zu is %" PRIx64, p, i,
			     w[i]);
			return ++*bad < 10;
		}
	return true;
}

static void check_clones(struct run *r, struct cowtable_ctx *ctx)
{
	size_t bad = 0;

	/* The snapshot's frames never change while shared. */
	cowtable_foreach(ctx, 0, r->o.pages * PAGE, visit_snapshot, &bad);
	for (unsigned ci = 0; ci < r->nclones; ci++) {
		struct clone *c = &r->clones[ci];

		for (size_t p = 0; p < r->o.pages && bad < 10; p++) {
			const uint64_t *w = (const uint64_t *)(c->base + p * PAGE);
			uint8_t st = atomic_load(&c->state[p]);
			size_t n = st == PG_PRIVATE ? WORDS : st == PG_SHARED ? r->o.vcpus : 0;

			/*
			 * A shared page's frame is checked whole above; reading it through
			 * the clone (a read fault per page) is sampled in large snapshots.
			 */
			if (st == PG_SHARED && r->o.pages > 16384 && p % 16 != ci % 16)
				continue;

			for (size_t i = 0; i < n; i++) {
				uint64_t want = i < r->o.vcpus && c->vcpus[i].last[p]
				                        ? c->vcpus[i].last[p]
				                        : pattern(p, i);

				if (w[i] != want) {
					check_word(c, p, i, w[i], want);
					bad++;
					break;
				}
			}
		}
	}
}

/* A clone exits: its private frames go back, and it drops every page it still shares. */
struct exit_arg {
	struct pool *pool;
	size_t lasts;
};

static void on_last(uintptr_t va, cowtable_frame_t frame, void *arg)
{
	struct exit_arg *e = arg;

	(void)va;
	pool_put(e->pool, (uint32_t)frame);
	e->lasts++;
}

static size_t clone_exit(struct run *r, struct clone *c, struct cowtable_ctx *ctx)
{
	struct exit_arg e = {.pool = &r->pool};
	size_t p = 0, n = r->o.pages;

	while (p < n) {
		size_t q = p;
		uint8_t st;

		/* A run of pages it still holds a reference to. */
		while (q < n &&
		       ((st = atomic_load(&c->state[q])) == PG_SHARED || st == PG_ABANDONED))
			q++;
		if (q > p && cowtable_release_range(ctx, p * PAGE, q * PAGE, on_last, &e) != q - p)
			fail("clone %u: release_range [%zu, %zu) released fewer pages", c->id, p,
			     q);
		p = q;
		while (p < n &&
		       ((st = atomic_load(&c->state[p])) != PG_SHARED && st != PG_ABANDONED)) {
			if (st == PG_PRIVATE && c->priv[p] != NONE32)
				pool_put(&r->pool, c->priv[p]);
			p++;
		}
	}
	return e.lasts;
}

/* Every frame is back in the pool, exactly once. */
static void check_pool(struct run *r)
{
	uint8_t *seen = calloc(r->pool.frames, 1);
	size_t n = 0, twice = 0;
	uint32_t f;

	if (seen == NULL) {
		fail("out of memory for the pool check");
		return;
	}
	while ((f = pool_take(&r->pool)) != NONE32) {
		twice += seen[f]++ != 0;
		n++;
	}
	if (n != r->pool.frames || twice)
		fail("pool: %zu frames back of %zu, %zu of them twice", n, r->pool.frames, twice);
	else
		printf("frames: all %zu back in the pool, each once\n", n);
	free(seen);
}

/* ------------------------------------------------------------ setup */
static int pool_init(struct run *r, size_t frames)
{
	struct pool *p = &r->pool;

	p->frames = frames;
	p->next = calloc(frames, sizeof(*p->next));
	p->fd = memfd_create("vmclone-pool", MFD_CLOEXEC);
	if (p->next == NULL || p->fd < 0 || ftruncate(p->fd, (off_t)(frames * PAGE)) != 0) {
		fprintf(stderr, "vmclone: frame pool of %zu MiB (memfd): %s\n", frames / 256,
		        strerror(errno));
		return -1;
	}
	/* Populated at once: one call instead of a fault per frame. */
	p->va = mmap(NULL, frames * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->fd,
	             0);
	if (p->va == MAP_FAILED) {
		fprintf(stderr, "vmclone: mmap of the frame pool (%zu MiB): %s\n", frames / 256,
		        strerror(errno));
		return -1;
	}
	atomic_store(&p->top, 0);
	/* The snapshot is frames [0, pages); the rest are free. */
	for (size_t f = frames; f-- > r->o.pages;)
		pool_put(p, (uint32_t)f);
	for (size_t pg = 0; pg < r->o.pages; pg++) {
		uint64_t *w = (uint64_t *)frame_va(p, pg);

		for (size_t i = 0; i < WORDS; i++)
			w[i] = pattern(pg, i);
	}
	return 0;
}

static long map_count(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int ch;

	if (f == NULL)
		return 1000;
	while ((ch = getc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static long max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long n = 65530;

	if (f != NULL) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 65530;
		fclose(f);
	}
	return n;
}

/* A clone: map the snapshot write-protected, mark every page (one sharer more). */
static int clone_setup(struct run *r, struct clone *c, unsigned id, struct cowtable_ctx *ctx,
                       const cowtable_frame_t *frames)
{
	size_t span = r->o.pages * PAGE;
	int prot = r->mode == FAULT_UFFD ? PROT_READ | PROT_WRITE : PROT_READ;
	char why[256];
	int ret;

	c->id = id;
	c->uffd = c->stopfd = -1;
	c->state = calloc(r->o.pages, 1);
	c->dups = calloc(r->o.pages, 1);
	c->priv = malloc(r->o.pages * sizeof(*c->priv));
	c->vcpus = calloc(r->o.vcpus, sizeof(*c->vcpus));
	c->cap = r->writes * r->o.vcpus;
	c->table_ns = calloc(c->cap + 1, sizeof(uint32_t));
	c->handler_ns = calloc(c->cap + 1, sizeof(uint32_t));
	if (!c->state || !c->dups || !c->priv || !c->vcpus || !c->table_ns || !c->handler_ns) {
		fprintf(stderr, "vmclone: out of memory for clone %u's page state\n", id);
		return -1;
	}
	memset(c->priv, 0xff, r->o.pages * sizeof(*c->priv));
	for (unsigned v = 0; v < r->o.vcpus; v++) {
		c->vcpus[v] = (struct vcpu){.c = c, .id = v};
		c->vcpus[v].last = calloc(r->o.pages, sizeof(uint64_t));
		c->vcpus[v].lat = malloc((r->writes + 1) * sizeof(uint32_t));
		if (!c->vcpus[v].last || !c->vcpus[v].lat) {
			fprintf(stderr, "vmclone: out of memory for clone %u's vCPUs\n", id);
			return -1;
		}
	}
	c->base = mmap(NULL, span, prot, MAP_SHARED, r->pool.fd, 0);
	if (c->base == MAP_FAILED) {
		c->base = NULL;
		fprintf(stderr, "vmclone: mmap of clone %u's guest memory (%zu MiB): %s\n", id,
		        span >> 20, strerror(errno));
		return -1;
	}
	if (r->mode == FAULT_UFFD) {
		c->uffd = uffd_open(why, sizeof(why));
		if (c->uffd < 0 || uffd_protect(c->uffd, c->base, span, why, sizeof(why)) != 0) {
			fprintf(stderr, "vmclone: clone %u: %s\n", id, why);
			munmap(c->base, span);
			c->base = NULL;
			return -1;
		}
	}
	/* Marked only once the mapping is protected: from here it holds a reference. */
	ret = cowtable_mark_range(ctx, 0, r->o.pages, frames, NULL);
	if (ret != 0) {
		fprintf(stderr, "vmclone: cowtable_mark_range for clone %u: error %d\n", id, ret);
		munmap(c->base, span);
		c->base = NULL;
		return -1;
	}
	r->nclones++;
	return 0;
}

static void clone_free(struct run *r, struct clone *c)
{
	if (c->base)
		munmap(c->base, r->o.pages * PAGE);
	if (c->uffd >= 0)
		close(c->uffd);
	if (c->stopfd >= 0)
		close(c->stopfd);
	for (unsigned v = 0; c->vcpus && v < r->o.vcpus; v++) {
		free(c->vcpus[v].last);
		free(c->vcpus[v].lat);
	}
	free(c->vcpus);
	free(c->state);
	free(c->dups);
	free(c->priv);
	free(c->table_ns);
	free(c->handler_ns);
}

/* ---------------------------------------------------------- figures */
struct figures {
	size_t faults, copies, in_place, dups;
	double faults_per_s, p50_us, p99_us, table_p50_ns, table_part, handler_p50_us;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint32_t *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	return v[(size_t)(q * (double)(n - 1))];
}

/* Faults per second over the vCPU phase, and percentiles of one trapped write. */
static void latency_figures(struct figures *fg, uint32_t *lat, size_t n, uint64_t t0, uint64_t t1)
{
	qsort(lat, n, sizeof(*lat), cmp_u32);
	fg->faults = n;
	fg->faults_per_s = t1 > t0 ? (double)n * 1e9 / (double)(t1 - t0) : 0;
	fg->p50_us = pct(lat, n, 0.50) / 1e3;
	fg->p99_us = pct(lat, n, 0.99) / 1e3;
}

/* --------------------------------------------------- one cowtable run */
static int run_cowtable(struct run *r, struct figures *fg)
{
	struct cowtable_ctx *ctx;
	cowtable_frame_t *frames = malloc(r->o.pages * sizeof(*frames));
	size_t extra =
	        r->o.pool_extra ? r->o.pool_extra : r->writes * r->o.vcpus * r->o.clones + 64;
	int rc = 0;

	if (frames == NULL || pool_init(r, r->o.pages + extra) != 0) {
		free(frames);
		return -1;
	}
	if (cowtable_init(&r->table, NULL) != 0 || (ctx = cowtable_ctx_get(&r->table)) == NULL) {
		fprintf(stderr, "vmclone: cowtable_init: out of memory\n");
		free(frames);
		return -1;
	}
	for (size_t p = 0; p < r->o.pages; p++)
		frames[p] = p;
	atomic_store(&r->vma_left, (max_map_count() - map_count() - 512 - 8 * (long)r->o.clones));
	r->clones = calloc(r->o.clones, sizeof(*r->clones));
	if (r->clones == NULL)
		rc = -1;
	for (unsigned i = 0; rc == 0 && i < r->o.clones; i++)
		r->clones[i].uffd = r->clones[i].stopfd = -1;
	for (unsigned i = 0; rc == 0 && i < r->o.clones; i++)
		if (clone_setup(r, &r->clones[i], i, ctx, frames) != 0)
			rc = -1;
	/* The snapshot drops its own reference: its frames now belong to the clones. */
	if (!r->o.keep_snapshot && r->nclones > 0 &&
	    cowtable_release_range(ctx, 0, r->o.pages * PAGE, NULL, NULL) != r->o.pages)
		fail("the snapshot's release of its reference released fewer pages");
	free(frames);

	if (rc == 0 && r->mode == FAULT_SIGNAL) {
		struct sigaction sa = {.sa_sigaction = on_segv,
		                       .sa_flags = SA_SIGINFO | SA_NODEFER};

		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, NULL) != 0) {
			fprintf(stderr, "vmclone: sigaction(SIGSEGV): %s\n", strerror(errno));
			rc = -1;
		}
	}
	/* Contexts: one per fault handler thread (uffd) or per vCPU thread (signal). */
	for (unsigned i = 0; rc == 0 && i < r->nclones; i++) {
		struct clone *c = &r->clones[i];

		if (r->mode == FAULT_UFFD) {
			c->hctx = cowtable_ctx_get(&r->table);
			c->stopfd = eventfd(0, EFD_CLOEXEC);
			if (c->hctx == NULL || c->stopfd < 0 ||
			    pthread_create(&c->handler, NULL, uffd_handler, c) != 0) {
				fprintf(stderr, "vmclone: clone %u's fault handler thread\n", i);
				rc = -1;
				break;
			}
			c->handler_started = true;
		}
		for (unsigned v = 0; v < r->o.vcpus; v++) {
			c->vcpus[v].ctx =
			        r->mode == FAULT_SIGNAL ? cowtable_ctx_get(&r->table) : NULL;
			if ((r->mode == FAULT_SIGNAL && c->vcpus[v].ctx == NULL) ||
			    pthread_create(&c->vcpus[v].tid, NULL, vcpu_main, &c->vcpus[v]) != 0) {
				fprintf(stderr, "vmclone: clone %u's vCPU %u thread\n", i, v);
				rc = -1;
				break;
			}
			c->vcpus[v].started = true;
		}
	}
	if (rc != 0)
		atomic_store(&r->stop, true);
	atomic_store(&r->go, true);

	uint64_t t0 = UINT64_MAX, t1 = 0;
	size_t nlat = 0, nsamp = 0;
	for (unsigned i = 0; i < r->nclones; i++) {
		struct clone *c = &r->clones[i];

		for (unsigned v = 0; v < r->o.vcpus; v++) {
			if (!c->vcpus[v].started)
				continue;
			pthread_join(c->vcpus[v].tid, NULL);
			t0 = c->vcpus[v].t0 < t0 ? c->vcpus[v].t0 : t0;
			t1 = c->vcpus[v].t1 > t1 ? c->vcpus[v].t1 : t1;
			nlat += c->vcpus[v].nlat;
		}
		if (c->handler_started) {
			uint64_t one = 1;

			if (write(c->stopfd, &one, sizeof(one)) != sizeof(one))
				fail("eventfd write: %s", strerror(errno));
			pthread_join(c->handler, NULL);
		}
		nsamp += atomic_load(&c->nsamples) < c->cap ? atomic_load(&c->nsamples) : c->cap;
	}
	if (r->mode == FAULT_SIGNAL)
		signal(SIGSEGV, SIG_DFL);

	/* Figures, before the checks touch every page. */
	uint32_t *lat = malloc((nlat + 1) * sizeof(*lat)),
	         *tab = malloc((nsamp + 1) * sizeof(*tab)),
	         *hnd = malloc((nsamp + 1) * sizeof(*hnd));
	double sum_tab = 0;
	size_t k = 0, m = 0;

	if (lat && tab && hnd) {
		for (unsigned i = 0; i < r->nclones; i++) {
			struct clone *c = &r->clones[i];
			size_t ns = atomic_load(&c->nsamples);

			for (unsigned v = 0; v < r->o.vcpus; v++)
				for (size_t j = 0; j < c->vcpus[v].nlat; j++)
					lat[k++] = c->vcpus[v].lat[j];
			for (size_t j = 0; j < ns && j < c->cap; j++) {
				hnd[m] = c->handler_ns[j];
				tab[m++] = c->table_ns[j];
				sum_tab += c->table_ns[j];
			}
			fg->copies += atomic_load(&c->copies);
			fg->in_place += atomic_load(&c->in_place);
			fg->dups += atomic_load(&c->dup_faults);
		}
		double sum_lat = 0;
		for (size_t j = 0; j < k; j++)
			sum_lat += lat[j];
		latency_figures(fg, lat, k, t0, t1);
		qsort(tab, m, sizeof(*tab), cmp_u32);
		fg->table_p50_ns = pct(tab, m, 0.5);
		fg->table_part = sum_lat > 0 ? sum_tab / sum_lat : 0;
		/* The handler's own part: release, copy, remap, wake. */
		qsort(hnd, m, sizeof(*hnd), cmp_u32);
		fg->handler_p50_us = pct(hnd, m, 0.5) / 1e3;
	}
	free(lat);
	free(tab);
	free(hnd);

	check_clones(r, ctx);
	/* Clones exit; frames whose last sharer left go back to the pool. */
	for (unsigned i = 0; i < r->nclones; i++)
		clone_exit(r, &r->clones[i], ctx);
	if (r->o.keep_snapshot && r->nclones > 0) {
		struct exit_arg e = {.pool = &r->pool};

		cowtable_release_range(ctx, 0, r->o.pages * PAGE, on_last, &e);
	}
	for (unsigned i = 0; i < r->nclones; i++) {
		struct clone *c = &r->clones[i];

		if (c->hctx)
			cowtable_ctx_put(c->hctx);
		for (unsigned v = 0; v < r->o.vcpus; v++)
			if (c->vcpus[v].ctx)
				cowtable_ctx_put(c->vcpus[v].ctx);
	}
	cowtable_ctx_put(ctx);
	if (cowtable_count(&r->table) != 0)
		fail("cowtable_count is %zu after every clone exited", cowtable_count(&r->table));
	else
		printf("table: cowtable_count 0 after every clone exited\n");
	check_pool(r);
	cowtable_fini(&r->table);
	for (unsigned i = 0; i < r->o.clones && r->clones; i++)
		clone_free(r, &r->clones[i]);
	free(r->clones);
	r->clones = NULL;
	r->nclones = 0;
	munmap(r->pool.va, r->pool.frames * PAGE);
	close(r->pool.fd);
	free(r->pool.next);
	return rc;
}

/* ---------------------------------------------- the kernel, for comparison */
/*
 * The same job done by the kernel: V forked processes map the snapshot
 * MAP_PRIVATE and their T threads write the same pages in the same order;
 * each first write is the kernel's own copy-on-write fault.
 */
struct kshared {
	_Atomic unsigned ready;
	_Atomic bool go;
	_Atomic int bad;
	uint64_t t0[1024], t1[1024];
	uint32_t nlat[1024];
	uint32_t lat[]; /* writes per vCPU, for each process and thread */
};

struct kvcpu {
	struct kshared *k;
	uint8_t *base;
	_Atomic uint8_t *touched;
	unsigned clone, id, slot;
	size_t writes;
};

static void *kvcpu_main(void *arg)
{
	struct kvcpu *v = arg;
	struct kshared *k = v->k;
	uint64_t rng = g->o.seed * 0x9e3779b97f4a7c15ull + v->id * 7919u + 1;
	uint32_t *lat = k->lat + (size_t)v->slot * v->writes, n = 0;

	while (!atomic_load(&k->go))
		;
	k->t0[v->slot] = now_ns();
	for (size_t i = 0; i < v->writes; i++) {
		size_t p = pick_page(&rng, g->o.pages, g->o.hotcold);
		volatile uint64_t *w = (volatile uint64_t *)(v->base + p * PAGE) + v->id;
		uint64_t s = stamp(v->clone, v->id, i + 1);
		bool first = atomic_exchange_explicit(&v->touched[p], 1, memory_order_relaxed) == 0;
		uint64_t t0 = first ? now_ns() : 0;

		*w = s;
		if (first)
			lat[n++] = (uint32_t)(now_ns() - t0);
		if (*w != s)
			atomic_fetch_add(&k->bad, 1);
	}
	k->t1[v->slot] = now_ns();
	k->nlat[v->slot] = n;
	return NULL;
}

static int run_kernel(struct run *r, struct figures *fg)
{
	size_t slots = (size_t)r->o.clones * r->o.vcpus;
	size_t ksize = sizeof(struct kshared) + slots * r->writes * sizeof(uint32_t);
	struct kshared *k;
	pid_t *pids;
	int rc = 0;

	if (slots > 1024) {
		fprintf(stderr, "vmclone: --kernel supports at most 1024 vCPUs in all\n");
		return -1;
	}
	k = mmap(NULL, ksize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pids = calloc(r->o.clones, sizeof(*pids));
	if (k == MAP_FAILED || pids == NULL) {
		fprintf(stderr, "vmclone: mmap of the kernel run's results: %s\n", strerror(errno));
		free(pids);
		return -1;
	}
	if (pool_init(r, r->o.pages) != 0) {
		free(pids);
		munmap(k, ksize);
		return -1;
	}
	fflush(NULL);
	for (unsigned i = 0; i < r->o.clones; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			fprintf(stderr, "vmclone: fork: %s\n", strerror(errno));
			rc = -1;
			break;
		}
		if (pids[i] == 0) {
			uint8_t *base = mmap(NULL, r->o.pages * PAGE, PROT_READ | PROT_WRITE,
			                     MAP_PRIVATE, r->pool.fd, 0);
			_Atomic uint8_t *touched = calloc(r->o.pages, 1);
			struct kvcpu v[MAX_T];
			pthread_t tid[MAX_T];

			if (base == MAP_FAILED || touched == NULL)
				_exit(3);
			for (unsigned t = 0; t < r->o.vcpus; t++) {
				v[t] = (struct kvcpu){.k = k,
				                      .base = base,
				                      .touched = touched,
				                      .clone = i,
				                      .id = t,
				                      .slot = i * r->o.vcpus + t,
				                      .writes = r->writes};
				if (pthread_create(&tid[t], NULL, kvcpu_main, &v[t]) != 0)
					_exit(3);
			}
			atomic_fetch_add(&k->ready, 1);
			for (unsigned t = 0; t < r->o.vcpus; t++)
				pthread_join(tid[t], NULL);
			_exit(0);
		}
	}
	while (rc == 0 && atomic_load(&k->ready) < r->o.clones)
		usleep(100);
	atomic_store(&k->go, true);
	for (unsigned i = 0; i < r->o.clones; i++) {
		int st;

		if (pids[i] > 0 &&
		    (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
			fprintf(stderr, "vmclone: kernel run: process %u failed\n", i);
			rc = -1;
		}
	}
	if (atomic_load(&k->bad))
		fail("kernel run: %d writes did not read back", atomic_load(&k->bad));
	/* MAP_PRIVATE never writes the file: the snapshot must be intact. */
	for (size_t p = 0; p < r->o.pages; p++)
		for (size_t i = 0; i < r->o.vcpus; i++)
			if (((uint64_t *)frame_va(&r->pool, p))[i] != pattern(p, i)) {
				fail("kernel run: snapshot page %zu changed", p);
				p = r->o.pages;
				break;
			}
	if (rc == 0) {
		uint64_t t0 = UINT64_MAX, t1 = 0;
		size_t n = 0;
		uint32_t *lat = malloc((slots * r->writes + 1) * sizeof(*lat));

		for (size_t s = 0; lat && s < slots; s++) {
			t0 = k->t0[s] < t0 ? k->t0[s] : t0;
			t1 = k->t1[s] > t1 ? k->t1[s] : t1;
			memcpy(lat + n, k->lat + s * r->writes, k->nlat[s] * sizeof(*lat));
			n += k->nlat[s];
		}
		if (lat)
			latency_figures(fg, lat, n, t0, t1);
		free(lat);
	}
	munmap(r->pool.va, r->pool.frames * PAGE);
	close(r->pool.fd);
	free(r->pool.next);
	r->pool.next = NULL;
	free(pids);
	munmap(k, ksize);
	return rc;
}

/* ------------------------------------------------------------- main */
static void usage(FILE *f)
{
	fprintf(f,
	        "usage: vmclone [options]\n"
	        "  --snapshot-mib=N   snapshot size (default 1024)\n"
	        "  --clones=V         clones of the snapshot (default: the figures' set, "
	        "1x1, 4x1, 8x2)\n"
	        "  --vcpus=T          vCPU threads per clone, 1..%d (default 1)\n"
	        "  --writes=W         writes per vCPU (default: what vm.max_map_count allows)\n"
	        "  --mix=uniform|hotcold  (default uniform; the figures' set runs both)\n"
	        "  --fault=uffd|signal|auto  how the first write traps (default auto)\n"
	        "  --pool-extra=F     free frames beyond the snapshot (default: one per write)\n"
	        "  --keep-snapshot    the snapshot keeps its reference (no clone reuses in place)\n"
	        "  --kernel           also run the kernel's own copy-on-write (MAP_PRIVATE, fork)\n"
	        "  --seed=S           random seed (default 1)\n"
	        "  --data=FILE        append the figures as a table for plot.sh\n"
	        "  --broken=no-copy   a deliberate bug: SHARED maps the shared frame writable\n"
	        "  --inject=mmap|uffd make a copy's mmap or userfaultfd fail\n",
	        MAX_T);
}

static bool parse_size(const char *s, size_t *out, size_t lo, size_t hi)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = (size_t)v;
	return true;
}

static const char *mode_name(enum fault_mode m)
{
	return m == FAULT_UFFD ? "uffd" : "signal";
}

static void print_header(void)
{
	printf("%-8s %-6s %3s %3s %-8s %8s %10s %9s %9s %10s %9s %7s %7s %6s\n", "run", "fault",
	       "V", "T", "mix", "faults", "faults/s", "p50_us", "p99_us", "handler_us", "table_ns",
	       "table%", "copies", "reuse");
}

static void print_row(struct run *r, const char *what, const char *fault, const struct figures *f)
{
	printf("%-8s %-6s %3u %3u %-8s %8zu %10.0f %9.2f %9.2f %10.2f %9.0f %6.2f%% %7zu %6zu\n",
	       what, fault, r->o.clones, r->o.vcpus, r->o.hotcold ? "hotcold" : "uniform",
	       f->faults, f->faults_per_s, f->p50_us, f->p99_us, f->handler_p50_us, f->table_p50_ns,
	       100 * f->table_part, f->copies, f->in_place);
	if (r->o.data) {
		FILE *d = fopen(r->o.data, "a");

		if (d == NULL) {
			fprintf(stderr, "vmclone: %s: %s\n", r->o.data, strerror(errno));
			return;
		}
		fprintf(d, "%s %s %ux%u %s %.0f %.3f %.3f %.0f %.4f %.3f\n", what, fault,
		        r->o.clones, r->o.vcpus, r->o.hotcold ? "hotcold" : "uniform",
		        f->faults_per_s, f->p50_us, f->p99_us, f->table_p50_ns, f->table_part,
		        f->handler_p50_us);
		fclose(d);
	}
}

/* One configuration: cowtable's run, then the kernel's if asked. */
static int one(struct run *r)
{
	struct figures fc = {0}, fk = {0};
	long budget = (max_map_count() - map_count() - 1024 - 8 * (long)r->o.clones) / 2;
	int rc;

	r->writes = r->o.writes;
	if (r->writes == 0)
		r->writes = budget > 0 ? (size_t)budget / (r->o.clones * r->o.vcpus) : 1;
	atomic_store(&r->stop, false);
	atomic_store(&r->go, false);
	atomic_store(&r->why_set, false);
	rc = run_cowtable(r, &fc);
	if (atomic_load(&r->why_set)) {
		/* After the checks' lines: the tests match the two in this order. */
		fflush(stdout);
		fprintf(stderr, "vmclone: stopped: %s\n", r->why);
		rc = -1;
	}
	print_row(r, "cowtable", mode_name(r->mode), &fc);
	if (rc == 0 && r->o.kernel && !r->o.broken_no_copy) {
		atomic_store(&r->go, false);
		if (run_kernel(r, &fk) != 0)
			rc = -1;
		print_row(r, "kernel", "-", &fk);
	}
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"snapshot-mib", required_argument, 0, 'm'},
	                                     {"clones", required_argument, 0, 'V'},
	                                     {"vcpus", required_argument, 0, 'T'},
	                                     {"writes", required_argument, 0, 'w'},
	                                     {"mix", required_argument, 0, 'x'},
	                                     {"fault", required_argument, 0, 'f'},
	                                     {"pool-extra", required_argument, 0, 'p'},
	                                     {"keep-snapshot", no_argument, 0, 'k'},
	                                     {"kernel", no_argument, 0, 'K'},
	                                     {"seed", required_argument, 0, 's'},
	                                     {"data", required_argument, 0, 'd'},
	                                     {"broken", required_argument, 0, 'b'},
	                                     {"inject", required_argument, 0, 'i'},
	                                     {"help", no_argument, 0, 'h'},
	                                     {0, 0, 0, 0}};
	static struct run run;
	struct run *r = &run;
	size_t mib = 1024, v;
	bool mix_set = false, clones_set = false;
	char why[256];
	int ch, rc = 0;

	g = r;
	setvbuf(stdout, NULL, _IOLBF, 0);
	r->o = (struct options){.vcpus = 1, .clones = 1, .seed = 1, .fault = FAULT_AUTO};
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (!parse_size(optarg, &mib, 1, 1 << 20))
				goto bad;
			break;
		case 'V':
			if (!parse_size(optarg, &v, 1, 1024))
				goto bad;
			r->o.clones = (unsigned)v, clones_set = true;
			break;
		case 'T':
			if (!parse_size(optarg, &v, 1, MAX_T))
				goto bad;
			r->o.vcpus = (unsigned)v;
			break;
		case 'w':
			if (!parse_size(optarg, &r->o.writes, 1, (size_t)1 << 32))
				goto bad;
			break;
		case 'p':
			if (!parse_size(optarg, &r->o.pool_extra, 1, (size_t)1 << 31))
				goto bad;
			break;
		case 's':
			if (!parse_size(optarg, &v, 0, SIZE_MAX))
				goto bad;
			r->o.seed = v;
			break;
		case 'x':
			if (strcmp(optarg, "uniform") && strcmp(optarg, "hotcold"))
				goto bad;
			r->o.hotcold = !strcmp(optarg, "hotcold"), mix_set = true;
			break;
		case 'f':
			if (!strcmp(optarg, "uffd"))
				r->o.fault = FAULT_UFFD;
			else if (!strcmp(optarg, "signal"))
				r->o.fault = FAULT_SIGNAL;
			else if (!strcmp(optarg, "auto"))
				r->o.fault = FAULT_AUTO;
			else
				goto bad;
			break;
		case 'k':
			r->o.keep_snapshot = true;
			break;
		case 'K':
			r->o.kernel = true;
			break;
		case 'd':
			r->o.data = optarg;
			break;
		case 'b':
			if (strcmp(optarg, "no-copy"))
				goto bad;
			r->o.broken_no_copy = true;
			break;
		case 'i':
			if (!strcmp(optarg, "mmap"))
				r->o.inject = INJ_MMAP;
			else if (!strcmp(optarg, "uffd"))
				r->o.inject = INJ_UFFD;
			else
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	r->o.pages = mib * 256;

	/* The trap: userfaultfd write-protect on shmem if this kernel has it. */
	{
		struct utsname u;
		bool have = r->o.fault != FAULT_SIGNAL && uffd_probe(why, sizeof(why));

		uname(&u);
		if (r->o.fault == FAULT_UFFD && !have) {
			/* 77: the run did not happen (the project's "skipped"). */
			fprintf(stderr, "vmclone: userfaultfd unavailable: %s (kernel %s)\n", why,
			        u.release);
			return 77;
		}
		r->mode = have ? FAULT_UFFD : FAULT_SIGNAL;
		printf("fault: %s (%s), kernel %s\n", mode_name(r->mode),
		       have ? "userfaultfd write-protect on shmem" : "mprotect + SIGSEGV",
		       u.release);
		if (r->o.fault == FAULT_AUTO && !have)
			printf("fault: userfaultfd not used: %s\n", why);
	}
	printf("snapshot: %zu MiB (%zu frames)%s\n", mib, r->o.pages,
	       r->o.broken_no_copy ? "; BROKEN: SHARED maps the shared frame writable" : "");
	print_header();
	if (clones_set) {
		rc = one(r);
	} else {
		/* The figures' set: V x T = 1x1, 4x1, 8x2, uniform and hot/cold. */
		static const unsigned vt[][2] = {{1, 1}, {4, 1}, {8, 2}};

		/*
		 * The snapshot stays, as a snapshot file does for later clones: every
		 * first write copies, as the kernel's MAP_PRIVATE fault does.
		 */
		r->o.kernel = true;
		r->o.keep_snapshot = true;
		for (size_t i = 0; i < 3 && rc == 0; i++)
			for (int h = 0; h < 2 && rc == 0; h++) {
				if (mix_set && h != r->o.hotcold)
					continue;
				r->o.clones = vt[i][0], r->o.vcpus = vt[i][1], r->o.hotcold = h;
				rc = one(r);
			}
	}
	if (atomic_load(&r->failures)) {
		printf("vmclone: %d check(s) failed\n", atomic_load(&r->failures));
		return 1;
	}
	if (rc == 0)
		printf("vmclone: all checks passed\n");
	return rc == 0 ? 0 : 1;
bad:
	usage(stderr);
	return 2;
}
