// SPDX-License-Identifier: BSD-2-Clause
/*
 * cowtable torture inside the Linux kernel: one kthread per online CPU, each
 * with its own cowtable context, marks, releases, looks up and walks ranges
 * of a small set of hot pages, with kmalloc/kfree as the allocator.  When
 * they stop, the module drains the table and checks the invariants of
 * stress/: references conserved per page (exactly one LAST per entry
 * lifetime), frames (each page's frame on every SHARED, LAST and lookup),
 * a mark never returns 1, the table ends empty, and the allocator gets every
 * byte back.  It prints one "cowtable_torture: VERDICT: PASS|FAIL" line.
 */
#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/cpu.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/slab.h>

#include "cowtable.h"

static int seconds = 10;
module_param(seconds, int, 0444);
static int keys = 64;
module_param(keys, int, 0444);
static int hot = 4;
module_param(hot, int, 0444);

#define BASE        0x100000UL
#define MAX_THREADS 64

struct tally {
	s64 marks, releases, lasts;
};

struct worker {
	struct task_struct *task;
	struct completion done;
	struct tally *tally;
	s64 range_releases;
	u64 ops;
	u32 rng;
};

static struct cowtable table;
static atomic64_t alloc_bytes = ATOMIC64_INIT(0);
static atomic_t violations = ATOMIC_INIT(0);
static struct worker workers[MAX_THREADS];
static unsigned int nworkers;

static void *kalloc(size_t size, void *arg)
{
	void *p = kmalloc(size, GFP_ATOMIC);

	if (p)
		atomic64_add(size, &alloc_bytes);
	return p;
}

static void kfree_sized(void *p, size_t size, void *arg)
{
	atomic64_sub(size, &alloc_bytes);
	kfree(p);
}

static const struct cowtable_allocator kallocator = {kalloc, kfree_sized, NULL};

#define violation(fmt, ...)                                                                        \
	do {                                                                                       \
		if (atomic_inc_return(&violations) <= 10)                                          \
			pr_err("cowtable_torture: VIOLATION: " fmt "\n", ##__VA_ARGS__);           \
	} while (0)

static uintptr_t va_of(unsigned int k)
{
	return BASE + (uintptr_t)k * COWTABLE_PAGE_SIZE;
}

static cowtable_frame_t frame_of(unsigned int k)
{
	return k + 1;
}

static u32 next_rand(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 17;
	w->rng ^= w->rng << 5;
	return w->rng;
}

static void on_last(uintptr_t va, cowtable_frame_t frame, void *arg)
{
	struct worker *w = arg;
	unsigned int k = (va - BASE) / COWTABLE_PAGE_SIZE;

	if (k >= keys || frame != frame_of(k)) {
		violation("release_range LAST of %lx with frame %llu", (unsigned long)va, frame);
		return;
	}
	w->tally[k].lasts++;
}

static void one_op(struct worker *w, struct cowtable_ctx *ctx)
{
	u32 x = next_rand(w);
	unsigned int k = (x >> 8) % 100 < 70 ? (x >> 16) % hot : (x >> 16) % keys;
	cowtable_frame_t f = 0, frames[16];
	unsigned int n, i;
	size_t marked;
	u32 refs = 0;
	int r;

	switch (x % 20) {
	case 0 ... 6:
		r = cowtable_mark(ctx, va_of(k), frame_of(k));
		if (r >= 2)
			w->tally[k].marks++;
		else if (r != COWTABLE_ENOMEM)
			violation("mark of page %u returned %d", k, r);
		break;
	case 7 ... 14:
		r = cowtable_release(ctx, va_of(k), &f);
		if (r == COWTABLE_SHARED || r == COWTABLE_LAST) {
			w->tally[k].releases++;
			w->tally[k].lasts += r == COWTABLE_LAST;
			if (f != frame_of(k))
				violation("release of page %u returned frame %llu", k, f);
		} else if (r != COWTABLE_NOT_COW) {
			violation("release of page %u returned %d", k, r);
		}
		break;
	case 15 ... 17:
		if (cowtable_lookup(ctx, va_of(k), &f, &refs) && (refs == 0 || f != frame_of(k)))
			violation("lookup of page %u: frame %llu refs %u", k, f, refs);
		break;
	case 18:
		n = 1 + (x >> 24) % 16;
		if (k + n > keys)
			n = keys - k;
		for (i = 0; i < n; i++)
			frames[i] = frame_of(k + i);
		r = cowtable_mark_range(ctx, va_of(k), n, frames, &marked);
		if (r != 0 && r != COWTABLE_ENOMEM)
			violation("mark_range of %u pages at %u returned %d", n, k, r);
		for (i = 0; i < marked; i++)
			w->tally[k + i].marks++;
		break;
	default:
		n = 1 + (x >> 24) % 16;
		if (k + n > keys)
			n = keys - k;
		w->range_releases +=
		        cowtable_release_range(ctx, va_of(k), va_of(k + n), on_last, w);
		break;
	}
}

static int work(void *arg)
{
	struct worker *w = arg;
	struct cowtable_ctx *ctx = cowtable_ctx_get(&table);
	unsigned long end = jiffies + seconds * HZ;

	if (ctx == NULL) {
		violation("no context");
		complete(&w->done);
		return 0;
	}
	while (time_before(jiffies, end)) {
		one_op(w, ctx);
		if ((++w->ops & 255) == 0)
			cond_resched();
	}
	cowtable_ctx_put(ctx);
	complete(&w->done);
	return 0;
}

static int __init torture_init(void)
{
	struct cowtable_ctx *ctx;
	s64 range_releases = 0, shortfall, shortfall_sum = 0, lives = 0, left;
	u64 ops = 0;
	unsigned int cpu, k, i;
	struct tally sum;
	int r;

	if (keys < 1 || keys > 4096 || hot < 1 || hot > keys)
		return -EINVAL;
	if (cowtable_init(&table, &kallocator) != 0)
		return -ENOMEM;
	for_each_online_cpu(cpu)
	{
		struct worker *w = &workers[nworkers];

		if (nworkers == MAX_THREADS)
			break;
		w->tally = kcalloc(keys, sizeof(struct tally), GFP_KERNEL);
		if (w->tally == NULL)
			return -ENOMEM;
		w->rng = get_random_u32() | 1;
		init_completion(&w->done);
		w->task = kthread_create_on_cpu(work, w, cpu, "cowtable_torture/%u");
		if (IS_ERR(w->task))
			return PTR_ERR(w->task);
		nworkers++;
	}
	pr_info("cowtable_torture: %u threads (one per CPU), %d s, %d pages (%d hot)\n", nworkers,
	        seconds, keys, hot);
	for (i = 0; i < nworkers; i++)
		wake_up_process(workers[i].task);
	for (i = 0; i < nworkers; i++) {
		wait_for_completion(&workers[i].done);
		ops += workers[i].ops;
		range_releases += workers[i].range_releases;
	}

	/* Drain, then conservation per page (range releases known only in total). */
	ctx = cowtable_ctx_get(&table);
	if (ctx == NULL)
		return -ENOMEM;
	for (k = 0; k < keys; k++) {
		memset(&sum, 0, sizeof(sum));
		for (i = 0; i < nworkers; i++) {
			sum.marks += workers[i].tally[k].marks;
			sum.releases += workers[i].tally[k].releases;
			sum.lasts += workers[i].tally[k].lasts;
		}
		/* No page can need more releases than twice its successful marks. */
		for (left = 2 * (sum.marks + 1);
		     left > 0 && (r = cowtable_release(ctx, va_of(k), NULL)) != COWTABLE_NOT_COW;
		     left--) {
			sum.releases++;
			sum.lasts += r == COWTABLE_LAST;
		}
		if (left == 0)
			violation("page %u still tracked after every release", k);
		lives += sum.lasts;
		shortfall = sum.lasts - sum.releases + sum.marks;
		shortfall_sum += shortfall;
		if (shortfall < 0 || (range_releases == 0 && shortfall != 0))
			violation("page %u: %lld LAST, %lld releases - %lld marks", k, sum.lasts,
			          sum.releases, sum.marks);
	}
	if (shortfall_sum != range_releases)
		violation("%lld releases by release_range, pages account for %lld", range_releases,
		          shortfall_sum);
	if (cowtable_count(&table) != 0)
		violation("%zu entries left", cowtable_count(&table));
	cowtable_barrier(ctx);
	cowtable_ctx_put(ctx);
	cowtable_fini(&table);
	if (atomic64_read(&alloc_bytes) != 0)
		violation("allocator balance %lld bytes after fini", atomic64_read(&alloc_bytes));
	for (i = 0; i < nworkers; i++)
		kfree(workers[i].tally);

	pr_info("cowtable_torture: VERDICT: %s: %llu ops, %lld entry lifetimes, %d violations\n",
	        atomic_read(&violations) ? "FAIL" : "PASS", ops, lives, atomic_read(&violations));
	return 0;
}

static void __exit torture_exit(void)
{
}

module_init(torture_init);
module_exit(torture_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("cowtable torture: lock-free COW frame table under per-CPU kthreads");
