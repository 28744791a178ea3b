// SPDX-License-Identifier: BSD-2-Clause
/*
 * cowtable torture: many threads hammer one table with marks, releases,
 * lookups and reference hand-offs, while the harness checks invariants that
 * any bug in the skip list, the reference counts or the reclamation breaks.
 *
 * Two modes:
 *   holder  every reference is owned by a thread.  A creator marks a page
 *           with a frame taken from a frame pool (unique while in use), so a
 *           result of 2 proves a new entry and two references in its hands;
 *           holders fork (mark again), release, and hand references to other
 *           threads.  A holder must never get NOT_COW.  Every LAST returns
 *           its frame to the pool, which flags a frame released twice; at
 *           the end the pool must be full again (no frame never released).
 *   anon    one fixed frame per page, marks and releases by anyone on hot
 *           pages: entries die and are reborn constantly, marks race the
 *           last release of the same page; a mark must never return 1.
 *
 * Checked in both modes (docs/testing.md explains each):
 *   1 references conserved per page: LAST == releases - marks; empty at end
 *   2 frames ledger (holder mode: the pool; anon mode: per-page frames)
 *   3 no use after reclaim: the library's stamps (CT_STRESS_CHECKS)
 *   4 allocator balance zero after fini
 *   5 structure at quiescent points: levels sorted, subsets of level 0, no
 *     marked/dead/retired node reachable, length == count
 *   6 bounded memory: a thread stalls inside a section; pending leaves rise,
 *     then drain; the peak is printed; nothing pending after the barriers
 *   7 no progress for --watchdog seconds is a failure (livelock)
 *
 * Prints the seed and configuration, a progress line each second and a
 * final VERDICT line; exits 0 only on PASS.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cowtable.h"
#include "ct_internal.h"
#include "test_alloc.h"

#ifndef CT_STRESS_CHECKS
#error "the torture needs a library built with CT_STRESS_CHECKS"
#endif

#define PAGE         COWTABLE_PAGE_SIZE
#define HELD_MAX     256
#define EXCHANGE_MAX 4096
#define POOL_FRAMES  (1u << 20)

enum mode { MODE_HOLDER, MODE_ANON };
enum op { OP_MARK, OP_RELEASE, OP_LOOKUP, OP_HANDOFF, OP_RANGE, OP_COUNT };

struct config {
	unsigned int threads;
	double seconds;
	uint64_t ops; /* per thread; 0: run for seconds */
	unsigned int keys, hot, hot_pct, stride;
	unsigned int mix[OP_COUNT];
	enum mode mode;
	uint64_t seed;
	uint64_t alloc_fail;
	unsigned int stall_ms;
	double check_every, watchdog;
	int keep_going; /* report every violation instead of stopping at the first */
};

struct tally {
	int64_t marks, releases, lasts;
};

struct held {
	uint32_t key;
	cowtable_frame_t frame;
};

struct worker {
	pthread_t tid;
	unsigned int id;
	uint64_t rng;
	uint64_t ops; /* read by the progress line */
	struct tally *tally;
	int64_t range_releases; /* releases by release_range: per page unknown */
	struct held held[HELD_MAX];
	unsigned int nheld;
};

static struct config cfg;
static struct cowtable table;
static struct test_alloc alloc;
static struct worker *workers;
static uint64_t violations;
static int stop;

/* Quiescent points: the main thread pauses every worker between operations. */
static pthread_mutex_t pause_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pause_cond = PTHREAD_COND_INITIALIZER;
static int pause_wanted;
static unsigned int paused, finished;

/* Hand-offs of references between threads (holder mode). */
static pthread_mutex_t exchange_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held exchange[EXCHANGE_MAX];
static unsigned int nexchange;

/* The frame pool (holder mode): bit set = frame in use by one entry lifetime. */
static uint64_t pool[POOL_FRAMES / 64];

static void violation(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED) < 20) {
		va_start(ap, fmt);
		printf("VIOLATION: ");
		vprintf(fmt, ap);
		printf("\n");
		fflush(stdout);
		va_end(ap);
	}
	if (!cfg.keep_going) {
		/* The table may be corrupt now: stop before it crashes the harness. */
		printf("VERDICT: FAIL (stopped at the first violation, seed %" PRIu64 ")\n",
		       cfg.seed);
		fflush(stdout);
		_exit(1);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static cowtable_frame_t pool_get(struct worker *w)
{
	unsigned int i, start = (unsigned int)(test_rand(&w->rng) % (POOL_FRAMES / 64));
	uint64_t word, bit;

	for (i = 0; i < POOL_FRAMES / 64; i++) {
		unsigned int j = (start + i) % (POOL_FRAMES / 64);

		word = __atomic_load_n(&pool[j], __ATOMIC_RELAXED);
		while (word != ~0ull) {
			bit = ~word & (word + 1); /* lowest clear bit */
			if (__atomic_compare_exchange_n(&pool[j], &word, word | bit, 0,
			                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				return (cowtable_frame_t)j * 64 +
				       (cowtable_frame_t)__builtin_ctzll(bit) + 1;
		}
	}
	return 0; /* the pool is exhausted: no frame 0 is ever used */
}

static void pool_put(cowtable_frame_t frame, const char *who)
{
	uint64_t f = frame - 1, bit = 1ull << (f % 64);

	if (frame == 0 || f >= POOL_FRAMES) {
		violation("%s returned frame %llu, which the pool never gave out", who,
		          (unsigned long long)frame);
		return;
	}
	if ((__atomic_fetch_and(&pool[f / 64], ~bit, __ATOMIC_ACQ_REL) & bit) == 0)
		violation("frame %llu released twice (%s)", (unsigned long long)frame, who);
}

static unsigned int pick_key(struct worker *w)
{
	uint64_t x = test_rand(&w->rng);

	if (cfg.hot > 0 && x % 100 < cfg.hot_pct)
		return (unsigned int)((x >> 8) % cfg.hot);
	return (unsigned int)((x >> 8) % cfg.keys);
}

/*
 * Key k's page: --stride pages apart.  Stride 1 (consecutive pages: range
 * operations cover runs of keys, and 64 keys share a leaf) makes marks race
 * releases of other pages of the same leaf; stride 64 gives every key a leaf
 * of its own, born and killed with its page.
 */
static uintptr_t vaddr_of(unsigned int key)
{
	return (uintptr_t)0x100000 + (uintptr_t)key * cfg.stride * PAGE;
}

static unsigned int key_of(uintptr_t vaddr)
{
	return (unsigned int)((vaddr - 0x100000) / PAGE / cfg.stride);
}

static cowtable_frame_t anon_frame(unsigned int key)
{
	return (cowtable_frame_t)key + 1;
}

static void hold(struct worker *w, unsigned int key, cowtable_frame_t frame)
{
	w->held[w->nheld].key = key;
	w->held[w->nheld].frame = frame;
	w->nheld++;
}

/* Release the reference held in slot i. */
static void release_held(struct worker *w, struct cowtable_ctx *ctx, unsigned int i)
{
	struct held h = w->held[i];
	cowtable_frame_t frame = 0;
	int r;

	w->held[i] = w->held[--w->nheld];
	r = cowtable_release(ctx, vaddr_of(h.key), &frame);
	if (r != COWTABLE_SHARED && r != COWTABLE_LAST) {
		violation("a holder of page %u got %d from release", h.key, r);
		return;
	}
	if (frame != h.frame)
		violation("release of page %u returned frame %llu, held %llu", h.key,
		          (unsigned long long)frame, (unsigned long long)h.frame);
	w->tally[h.key].releases++;
	if (r == COWTABLE_LAST) {
		w->tally[h.key].lasts++;
		pool_put(frame, "LAST");
	}
}

static void holder_mark(struct worker *w, struct cowtable_ctx *ctx)
{
	cowtable_frame_t frame;
	unsigned int key, i;
	int r;

	if (w->nheld + 2 > HELD_MAX)
		return;
	if (w->nheld > 0 && (test_rand(&w->rng) & 1)) {
		/* Fork a page we hold: the entry is alive, the count must grow. */
		i = (unsigned int)(test_rand(&w->rng) % w->nheld);
		key = w->held[i].key;
		frame = w->held[i].frame;
		r = cowtable_mark(ctx, vaddr_of(key), frame);
		if (r < 2) {
			violation("a holder of page %u got %d from mark", key, r);
			return;
		}
		w->tally[key].marks++;
		hold(w, key, frame);
		return;
	}
	/* Create: a frame nobody else uses, so 2 means a new entry. */
	key = pick_key(w);
	frame = pool_get(w);
	if (frame == 0)
		return;
	r = cowtable_mark(ctx, vaddr_of(key), frame);
	if (r == 2) {
		w->tally[key].marks++;
		hold(w, key, frame);
		hold(w, key, frame);
		return;
	}
	if (r != COWTABLE_EEXIST && r != COWTABLE_ENOMEM)
		violation("a create of page %u got %d from mark", key, r);
	pool_put(frame, "unused frame");
}

static void holder_lookup(struct worker *w, struct cowtable_ctx *ctx)
{
	cowtable_frame_t frame = 0;
	uint32_t refs = 0;
	unsigned int key, i;

	if (w->nheld > 0 && (test_rand(&w->rng) & 1)) {
		i = (unsigned int)(test_rand(&w->rng) % w->nheld);
		key = w->held[i].key;
		if (!cowtable_lookup(ctx, vaddr_of(key), &frame, &refs) ||
		    frame != w->held[i].frame || refs == 0)
			violation("a holder of page %u looked it up: frame %llu refs %u", key,
			          (unsigned long long)frame, refs);
		if (!cowtable_is_cow(ctx, vaddr_of(key)))
			violation("a holder of page %u was told it is not COW", key);
		return;
	}
	key = pick_key(w);
	if (cowtable_lookup(ctx, vaddr_of(key), &frame, &refs) && refs == 0)
		violation("lookup of page %u saw a count of 0", key);
}

static void holder_handoff(struct worker *w)
{
	pthread_mutex_lock(&exchange_lock);
	if (w->nheld > 0 && nexchange < EXCHANGE_MAX && (test_rand(&w->rng) & 1)) {
		exchange[nexchange++] = w->held[--w->nheld];
	} else if (nexchange > 0 && w->nheld < HELD_MAX) {
		w->held[w->nheld++] = exchange[--nexchange];
	}
	pthread_mutex_unlock(&exchange_lock);
}

static void range_last(uintptr_t vaddr, cowtable_frame_t frame, void *arg)
{
	struct worker *w = arg;
	unsigned int key = key_of(vaddr);

	if (key >= cfg.keys || frame != anon_frame(key)) {
		violation("release_range: LAST for %#lx with frame %llu", (unsigned long)vaddr,
		          (unsigned long long)frame);
		return;
	}
	w->tally[key].lasts++;
}

struct walk {
	uintptr_t prev;
	int first;
};

static bool range_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	struct walk *wk = arg;
	unsigned int key = key_of(vaddr);

	if ((!wk->first && vaddr <= wk->prev) || key >= cfg.keys || frame != anon_frame(key) ||
	    refs == 0)
		violation("foreach: %#lx frame %llu refs %u after %#lx", (unsigned long)vaddr,
		          (unsigned long long)frame, refs, (unsigned long)wk->prev);
	wk->prev = vaddr;
	wk->first = 0;
	return true;
}

/* Ranges over hot and cold pages, racing the single-page traffic (anon mode). */
static void anon_range(struct worker *w, struct cowtable_ctx *ctx)
{
	cowtable_frame_t frames[64];
	unsigned int key = pick_key(w), n, i;
	uint64_t x = test_rand(&w->rng);
	struct walk wk = {0, 1};
	size_t marked;
	int r;

	n = 1 + (unsigned int)(x % 64);
	if (key + n > cfg.keys)
		n = cfg.keys - key;
	/* mark_range marks consecutive pages: one key's page when keys are apart. */
	if (cfg.stride > 1 && (x >> 8) % 3 == 0)
		n = 1;
	switch ((x >> 8) % 3) {
	case 0:
		for (i = 0; i < n; i++)
			frames[i] = anon_frame(key + i);
		r = cowtable_mark_range(ctx, vaddr_of(key), n, frames, &marked);
		if (r != 0 && r != COWTABLE_ENOMEM)
			violation("mark_range of %u pages at %u returned %d", n, key, r);
		if ((r == 0) != (marked == n))
			violation("mark_range returned %d having marked %zu of %u", r, marked, n);
		for (i = 0; i < marked; i++)
			w->tally[key + i].marks++;
		break;
	case 1:
		w->range_releases += (int64_t)cowtable_release_range(
		        ctx, vaddr_of(key), vaddr_of(key + n), range_last, w);
		break;
	default:
		cowtable_foreach(ctx, vaddr_of(key), vaddr_of(key + n), range_visit, &wk);
		break;
	}
}

static void anon_op(struct worker *w, struct cowtable_ctx *ctx, enum op op)
{
	unsigned int key = pick_key(w);
	cowtable_frame_t frame = 0;
	uint32_t refs = 0;
	int r;

	switch (op) {
	case OP_RANGE:
		anon_range(w, ctx);
		break;
	case OP_MARK:
		r = cowtable_mark(ctx, vaddr_of(key), anon_frame(key));
		if (r >= 2)
			w->tally[key].marks++;
		else if (r != COWTABLE_ENOMEM)
			violation("mark of page %u returned %d", key, r);
		break;
	case OP_RELEASE:
		r = cowtable_release(ctx, vaddr_of(key), &frame);
		if (r == COWTABLE_SHARED || r == COWTABLE_LAST) {
			w->tally[key].releases++;
			w->tally[key].lasts += r == COWTABLE_LAST;
			if (frame != anon_frame(key))
				violation("release of page %u returned frame %llu", key,
				          (unsigned long long)frame);
		} else if (r != COWTABLE_NOT_COW) {
			violation("release of page %u returned %d", key, r);
		}
		break;
	default:
		if (cowtable_lookup(ctx, vaddr_of(key), &frame, &refs) &&
		    (refs == 0 || frame != anon_frame(key)))
			violation("lookup of page %u: frame %llu refs %u", key,
			          (unsigned long long)frame, refs);
		break;
	}
}

static enum op pick_op(struct worker *w)
{
	unsigned int total = 0, i, x;

	for (i = 0; i < OP_COUNT; i++)
		total += cfg.mix[i];
	x = (unsigned int)(test_rand(&w->rng) % total);
	for (i = 0; i < OP_COUNT; i++) {
		if (x < cfg.mix[i])
			return (enum op)i;
		x -= cfg.mix[i];
	}
	return OP_LOOKUP;
}

static void maybe_pause(void)
{
	if (!__atomic_load_n(&pause_wanted, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&pause_lock);
	paused++;
	pthread_cond_broadcast(&pause_cond);
	while (pause_wanted)
		pthread_cond_wait(&pause_cond, &pause_lock);
	paused--;
	pthread_mutex_unlock(&pause_lock);
}

static struct cowtable_ctx *get_ctx(void)
{
	struct cowtable_ctx *ctx;

	/* Contexts may fail to allocate under --alloc-fail: try again. */
	while ((ctx = cowtable_ctx_get(&table)) == NULL)
		sleep_ms(1);
	return ctx;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct cowtable_ctx *ctx = get_ctx();
	double next_stall = now() + 1.0;
	uint64_t n = 0;
	enum op op;

	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE) && (cfg.ops == 0 || n < cfg.ops)) {
		maybe_pause();
		op = pick_op(w);
		if (cfg.mode == MODE_ANON) {
			anon_op(w, ctx, op);
		} else if (op == OP_MARK) {
			holder_mark(w, ctx);
		} else if (op == OP_RELEASE) {
			if (w->nheld > 0)
				release_held(w, ctx, (unsigned int)(test_rand(&w->rng) % w->nheld));
		} else if (op == OP_HANDOFF) {
			holder_handoff(w);
		} else {
			holder_lookup(w, ctx);
		}
		__atomic_store_n(&w->ops, ++n, __ATOMIC_RELAXED);
		if (w->id == 0 && cfg.stall_ms > 0 && (n & 1023) == 0 && now() >= next_stall) {
			/* Stall inside an epoch section: reclamation stops for everyone. */
			ct_enter(ctx);
			sleep_ms(cfg.stall_ms);
			ct_exit(ctx);
			next_stall = now() + 3.0 * cfg.stall_ms / 1000.0 + 1.0;
		}
	}
	while (w->nheld > 0)
		release_held(w, ctx, w->nheld - 1);
	cowtable_barrier(ctx);
	cowtable_ctx_put(ctx);
	pthread_mutex_lock(&pause_lock);
	finished++;
	pthread_cond_broadcast(&pause_cond);
	pthread_mutex_unlock(&pause_lock);
	return NULL;
}

static int64_t pending_leaves(void)
{
	struct ct_table *t = ct_table_of(&table);
	struct cowtable_ctx *c;
	int64_t sum = 0;

	for (c = ct_load_ptr(&t->contexts); c != NULL; c = c->next)
		sum += ct_load_stat(&c->pending);
	return sum;
}

/* What the library's own checks found (CT_STRESS_CHECKS), reported once. */
static void library_checks(const char *when)
{
	static const char *what[] = {
	        [CT_CHECK_STAMP] = "a leaf seen by a search after its retirement or free",
	        [CT_CHECK_DEAD] = "a retired leaf freed with a hold or a tracked page",
	        [CT_CHECK_BOUND] = "a context over the reclamation bound after a poll",
	};
	struct ct_table *t = ct_table_of(&table);
	uint32_t check = ct_load_u32(&t->last_check);

	if (ct_load_stat(&t->violations) == 0)
		return;
	violation("%s: %lld library checks failed, the last: %s (%#llx)", when,
	          (long long)ct_load_stat(&t->violations),
	          check < sizeof(what) / sizeof(what[0]) && what[check] ? what[check] : "?",
	          (unsigned long long)ct_load_u64(&t->last_stamp));
	ct_store_stat(&t->violations, 0);
}

/* Invariant 5, with every worker paused between operations. */
static void check_structure(const char *when)
{
	struct ct_table *t = ct_table_of(&table);
	struct ct_leaf *l, *below;
	size_t tracked = 0;
	uintptr_t word;
	unsigned int k, live;
	int i;

	for (i = 0; i < CT_MAX_LEVEL; i++) {
		below = ct_ptr(*ct_next(t->head, 0));
		for (l = ct_ptr(*ct_next(t->head, (unsigned int)i)); l != NULL; l = ct_ptr(word)) {
			word = *ct_next(l, (unsigned int)i);
			if (word & CT_FROZEN)
				violation("%s: frozen leaf %#lx reachable at level %d", when,
				          (unsigned long)l->key, i);
			if (l->stamp != CT_STAMP_LIVE)
				violation("%s: leaf %#lx at level %d: stamp %#llx", when,
				          (unsigned long)l->key, i, (unsigned long long)l->stamp);
			if ((int)ct_leaf_height(l) <= i)
				violation("%s: leaf %#lx of height %u linked at level %d", when,
				          (unsigned long)l->key, ct_leaf_height(l), i);
			if (ct_ptr(word) != NULL && ct_ptr(word)->key <= l->key)
				violation("%s: level %d out of order at %#lx", when, i,
				          (unsigned long)l->key);
			if (l->key != ct_block_of(l->key))
				violation("%s: leaf key %#lx is not a block's first address", when,
				          (unsigned long)l->key);
			if (i == 0) {
				/* Quiescent: no mark or drop in flight, so holds == tracked slots
				 * (H). */
				for (live = 0, k = 0; k < CT_LEAF_PAGES; k++)
					live += l->slot[k] != 0;
				if (live == 0 || l->holds != live)
					violation("%s: leaf %#lx has %u holds and %u tracked pages",
					          when, (unsigned long)l->key, l->holds, live);
				tracked += live;
				continue;
			}
			/* Subset of level 0: find l there, walking forward only. */
			while (below != NULL && below != l)
				below = ct_ptr(*ct_next(below, 0));
			if (below == NULL)
				violation("%s: leaf %#lx at level %d is not on level 0", when,
				          (unsigned long)l->key, i);
		}
	}
	if (tracked != cowtable_count(&table))
		violation("%s: the leaves hold %zu tracked pages, count says %zu", when, tracked,
		          cowtable_count(&table));
	library_checks(when);
}

/* Waits for every worker to stop between operations; a worker stuck inside one is a livelock. */
static void pause_all(void)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)cfg.watchdog + 1;
	pthread_mutex_lock(&pause_lock);
	__atomic_store_n(&pause_wanted, 1, __ATOMIC_RELEASE);
	while (paused + finished < cfg.threads) {
		if (pthread_cond_timedwait(&pause_cond, &pause_lock, &deadline) == ETIMEDOUT) {
			cfg.keep_going = 0;
			violation("%u of %u workers did not finish an operation within %.0f s: "
			          "livelock or deadlock",
			          cfg.threads - paused - finished, cfg.threads, cfg.watchdog);
		}
	}
	pthread_mutex_unlock(&pause_lock);
}

static void resume_all(void)
{
	pthread_mutex_lock(&pause_lock);
	__atomic_store_n(&pause_wanted, 0, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&pause_cond);
	pthread_mutex_unlock(&pause_lock);
}

static uint64_t total_ops(void)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < cfg.threads; i++)
		sum += __atomic_load_n(&workers[i].ops, __ATOMIC_RELAXED);
	return sum;
}

static int all_done(void)
{
	int done;

	pthread_mutex_lock(&pause_lock);
	done = finished == cfg.threads;
	pthread_mutex_unlock(&pause_lock);
	return done;
}

/* The end: drain, conservation per page, the pool, the allocator. */
static void final_checks(int64_t *lives)
{
	struct cowtable_ctx *ctx = get_ctx();
	int64_t range_releases = 0, unknown, unknown_sum = 0;
	unsigned int k, i;
	struct tally sum;
	int r;

	for (i = 0; i < cfg.threads; i++)
		range_releases += workers[i].range_releases;

	for (i = 0; i < nexchange; i++) {
		struct worker w0;

		memset(&w0, 0, sizeof(w0));
		w0.tally = workers[0].tally;
		w0.held[0] = exchange[i];
		w0.nheld = 1;
		release_held(&w0, ctx, 0);
	}
	nexchange = 0;
	for (k = 0; k < cfg.keys; k++) {
		memset(&sum, 0, sizeof(sum));
		for (i = 0; i < cfg.threads; i++) {
			sum.marks += workers[i].tally[k].marks;
			sum.releases += workers[i].tally[k].releases;
			sum.lasts += workers[i].tally[k].lasts;
		}
		/* Holder mode leaves nothing to drain; anon mode drains here. */
		while ((r = cowtable_release(ctx, vaddr_of(k), NULL)) != COWTABLE_NOT_COW) {
			if (cfg.mode == MODE_HOLDER)
				violation("page %u still tracked after every holder released it",
				          k);
			sum.releases++;
			sum.lasts += r == COWTABLE_LAST;
		}
		*lives += sum.lasts;
		/*
		 * Releases by release_range are known only in total: per page,
		 * the shortfall must be non-negative, and the shortfalls must
		 * add up to that total.
		 */
		unknown = sum.lasts - sum.releases + sum.marks;
		unknown_sum += unknown;
		if (range_releases == 0 ? unknown != 0 : unknown < 0)
			violation("page %u: %lld LAST results, %lld releases - %lld marks", k,
			          (long long)sum.lasts, (long long)sum.releases,
			          (long long)sum.marks);
	}
	if (unknown_sum != range_releases)
		violation("%lld releases by release_range, but the pages account for %lld",
		          (long long)range_releases, (long long)unknown_sum);
	cowtable_barrier(ctx);
	check_structure("end");
	if (cowtable_count(&table) != 0)
		violation("%zu entries left at the end", cowtable_count(&table));
	if (pending_leaves() != 0)
		violation("%lld retired leaves still pending after every barrier",
		          (long long)pending_leaves());
	if (cfg.mode == MODE_HOLDER) {
		uint64_t missing = 0;

		for (i = 0; i < POOL_FRAMES / 64; i++)
			missing += (uint64_t)__builtin_popcountll(pool[i]);
		if (missing != 0)
			violation("%llu frames never released", (unsigned long long)missing);
	}
	cowtable_ctx_put(ctx);
}

static void usage(void)
{
	printf("usage: cowtable_torture [--threads N] [--seconds S | --ops N] [--keys K] [--stride "
	       "P]\n"
	       "  [--hot H] [--hot-pct P] [--mix mark:release:lookup:handoff[:range]]\n"
	       "  [--mode holder|anon] [--seed S] [--alloc-fail N] [--stall-ms M]\n"
	       "  [--check-every S] [--watchdog S] [--keep-going 0|1]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	int i;

	cfg = (struct config){.threads = 4,
	                      .seconds = 10,
	                      .keys = 4096,
	                      .stride = 1,
	                      .hot = 4,
	                      .hot_pct = 50,
	                      .mix = {30, 30, 30, 10},
	                      .mode = MODE_HOLDER,
	                      .seed = (uint64_t)time(NULL),
	                      .check_every = 2,
	                      .watchdog = 30};
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		i++;
		if (!strcmp(a, "--threads"))
			cfg.threads = (unsigned int)atoi(v);
		else if (!strcmp(a, "--seconds"))
			cfg.seconds = atof(v);
		else if (!strcmp(a, "--ops"))
			cfg.ops = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--keys"))
			cfg.keys = (unsigned int)atoi(v);
		else if (!strcmp(a, "--stride"))
			cfg.stride = (unsigned int)atoi(v);
		else if (!strcmp(a, "--hot"))
			cfg.hot = (unsigned int)atoi(v);
		else if (!strcmp(a, "--hot-pct"))
			cfg.hot_pct = (unsigned int)atoi(v);
		else if (!strcmp(a, "--mix") &&
		         sscanf(v, "%u:%u:%u:%u:%u", &cfg.mix[0], &cfg.mix[1], &cfg.mix[2],
		                &cfg.mix[3], &cfg.mix[4]) >= 4)
			;
		else if (!strcmp(a, "--mode") && (!strcmp(v, "holder") || !strcmp(v, "anon")))
			cfg.mode = !strcmp(v, "anon") ? MODE_ANON : MODE_HOLDER;
		else if (!strcmp(a, "--seed"))
			cfg.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--alloc-fail"))
			cfg.alloc_fail = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--stall-ms"))
			cfg.stall_ms = (unsigned int)atoi(v);
		else if (!strcmp(a, "--check-every"))
			cfg.check_every = atof(v);
		else if (!strcmp(a, "--watchdog"))
			cfg.watchdog = atof(v);
		else if (!strcmp(a, "--keep-going"))
			cfg.keep_going = atoi(v);
		else
			usage();
	}
	if (cfg.threads < 1 || cfg.keys < 1 || cfg.keys > (1u << 20) || cfg.hot > cfg.keys ||
	    cfg.stride < 1 || cfg.stride > 4096 ||
	    cfg.mix[0] + cfg.mix[1] + cfg.mix[2] + cfg.mix[3] + cfg.mix[4] == 0 ||
	    (cfg.mode == MODE_HOLDER && cfg.mix[4] != 0))
		usage();
}

int main(int argc, char **argv)
{
	struct cowtable_allocator al = test_allocator(&alloc);
	double start, last_progress, last_print, next_check, t;
	uint64_t ops, last_ops = 0, prev_ops = 0;
	int64_t pending, peak_pending = 0, lives = 0;
	unsigned int i;

	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("cowtable torture: mode %s, %u threads, %s %g, %u keys %u pages apart (%u hot, "
	       "%u%%), mix "
	       "%u:%u:%u:%u:%u, seed %" PRIu64 ", alloc-fail 1/%" PRIu64 ", stall %u ms, "
	       "max level %d%s\n",
	       cfg.mode == MODE_ANON ? "anon" : "holder", cfg.threads,
	       cfg.ops ? "ops/thread" : "seconds", cfg.ops ? (double)cfg.ops : cfg.seconds,
	       cfg.keys, cfg.stride, cfg.hot, cfg.hot_pct, cfg.mix[0], cfg.mix[1], cfg.mix[2],
	       cfg.mix[3], cfg.mix[4], cfg.seed, cfg.alloc_fail, cfg.stall_ms, CT_MAX_LEVEL,
#ifdef CT_INJECT_DELAYS
	       ", injected delays"
#else
	       ""
#endif
	);
	alloc.fail_one_in = cfg.alloc_fail;
	if (cowtable_init(&table, &al) != 0)
		return 2;
	workers = calloc(cfg.threads, sizeof(*workers));
	if (workers == NULL)
		return 2;
	for (i = 0; i < cfg.threads; i++) {
		workers[i].id = i;
		workers[i].rng = cfg.seed * 0x9e3779b97f4a7c15ull + i;
		workers[i].tally = calloc(cfg.keys, sizeof(struct tally));
		if (workers[i].tally == NULL)
			return 2;
	}
	for (i = 0; i < cfg.threads; i++)
		pthread_create(&workers[i].tid, NULL, work, &workers[i]);

	start = last_progress = last_print = now();
	next_check = start + cfg.check_every;
	while (!all_done()) {
		sleep_ms(50);
		t = now();
		pending = pending_leaves();
		if (pending > peak_pending)
			peak_pending = pending;
		if (cfg.ops == 0 && t - start >= cfg.seconds)
			__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		ops = total_ops();
		if (ops != prev_ops) {
			prev_ops = ops;
			last_progress = t;
		} else if (t - last_progress > cfg.watchdog) {
			cfg.keep_going = 0;
			violation("no operation completed for %.0f s: livelock or deadlock",
			          cfg.watchdog);
		}
		if (t - last_print >= 1.0) {
			last_print = t;
			printf("[%4.0fs] %10.0f ops/s, %8zu live entries, %7lld pending leaves "
			       "(peak %lld), %llu violations\n",
			       t - start, (double)(ops - last_ops), cowtable_count(&table),
			       (long long)pending, (long long)peak_pending,
			       (unsigned long long)violations);
			last_ops = ops;
		}
		if (cfg.check_every > 0 && t >= next_check && !all_done()) {
			pause_all();
			check_structure("quiescent point");
			resume_all();
			next_check = now() + cfg.check_every;
		}
	}
	for (i = 0; i < cfg.threads; i++)
		pthread_join(workers[i].tid, NULL);
	t = now() - start;
	ops = total_ops();
	alloc.fail_one_in = 0;
	final_checks(&lives);
	cowtable_fini(&table);
	if (!test_alloc_balanced(&alloc, "torture"))
		violations++;
	for (i = 0; i < cfg.threads; i++)
		free(workers[i].tally);
	free(workers);
	printf("VERDICT: %s: %" PRIu64 " ops in %.1f s (%.0f ops/s), %lld entry lifetimes, "
	       "peak %lld pending leaves, %llu allocations failed on purpose, "
	       "%llu violations, seed %" PRIu64 "\n",
	       violations == 0 ? "PASS" : "FAIL", ops, t, (double)ops / t, (long long)lives,
	       (long long)peak_pending, (unsigned long long)alloc.failures,
	       (unsigned long long)violations, cfg.seed);
	return violations == 0 ? 0 : 1;
}
