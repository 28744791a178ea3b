// SPDX-License-Identifier: BSD-2-Clause
/*
 * cowtable torture: threads hammer one table with marks, releases, lookups,
 * range operations and reference hand-offs, while the harness checks
 * invariants that any bug in the skip list, the counts or the reclamation
 * breaks.  One source for user space and the kernel: the front ends
 * (torture_user.c, kernel/linux/torture_mod.c) give it threads, time,
 * printing and memory through torture.h, and it uses nothing else of the C
 * library but memset/memcpy.
 *
 * Three modes:
 *   holder  every reference is owned by a thread.  A creator marks a page
 *           with a frame taken from a frame pool (unique while in use), so a
 *           result of 2 proves a new entry and two references in its hands;
 *           holders fork (mark again), release, and hand references to other
 *           threads.  A holder must never get NOT_COW.  Every LAST returns
 *           its frame to the pool, which flags a frame released twice; at
 *           the end the pool must be full again (no frame never released).
 *   anon    frames fixed per page (one, or two so that marks clash), marks
 *           and releases by anyone on hot pages: entries die and are reborn
 *           constantly, marks race the last release of the same page; a mark
 *           must never return 1.  With a fifth mix weight, range operations.
 *   lin     anon's operations in short histories: every thread does a few
 *           operations on a few pages, all starting together, each recorded
 *           with the stamps of its invocation and response; then one thread
 *           checks that the history is linearizable (lin.c) and the next
 *           history begins from the state it left.
 *
 * Invariants (docs/testing.md explains each); a failure names its number:
 *   1 references conserved per page: LAST == releases - marks; empty at end
 *   2 frames: the pool (holder), each page's frames (anon, lin)
 *   3 no use after reclaim: the library's stamps (CT_STRESS_CHECKS)
 *   4 allocator balance zero after fini
 *   5 structure at quiescent points: levels sorted, subsets of level 0, no
 *     frozen/dead/retired leaf reachable, holds and tracked pages == count
 *   6 bounded memory: the bound checked at every poll; a stalled section;
 *     nothing pending after the barriers
 *   7 progress: no operation, or no quiescent point, for --watchdog seconds
 *   8 linearizability of every recorded history (lin mode)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cowtable.h"
#include "ct_internal.h"
#include "lin.h"
#include "torture.h"

static void torture_failed(void);
#define CHECK_ON_FAIL()     torture_failed()
#define CHECK_PRINT_LIMIT   20
#define CHECK_NO_PASS_COUNT /* every operation checks: no shared counter */
#include "check.h"
#include "test_alloc.h"

#ifndef CT_STRESS_CHECKS
#error "the torture needs a library built with CT_STRESS_CHECKS"
#endif

#define PAGE         COWTABLE_PAGE_SIZE
#define BASE         ((uintptr_t)0x100000) /* the first key's page (a block's first) */
#define HELD_MAX     256
#define EXCHANGE_MAX 4096
#define POOL_FRAMES  (1u << 20)
#define LIN_THREADS  4  /* threads of a history at most */
#define LIN_CALLS    8  /* operations of one thread in one history at most */
#define LIN_TRIM     6  /* counts above this are released down between histories */
#define LIN_CHECKS   64 /* histories between structure checks */

enum mode { MODE_HOLDER, MODE_ANON, MODE_LIN };
enum op { OP_MARK, OP_RELEASE, OP_LOOKUP, OP_HANDOFF, OP_RANGE, OP_COUNT };
/* Deliberately wrong answers, given by the harness in lin mode: the checker must catch them. */
enum broken { BROKEN_NONE, BROKEN_STALE_LOOKUP, BROKEN_EARLY_LAST };

struct config {
	unsigned int threads;
	uint64_t ms;  /* run time */
	uint64_t ops; /* per thread (holder, anon) or histories (lin); 0: run for ms */
	unsigned int keys, hot, hot_pct, stride, offset, frames, lin_ops;
	unsigned int mix[OP_COUNT];
	/*
	 * Odd-numbered workers' mix (--mix-odd; --mix if not given): one side
	 * may kill every leaf the other reads, so that the killer's leaf cache
	 * fills and the leaves it frees go back to the allocator, poisoned.
	 */
	unsigned int mix_odd[OP_COUNT];
	bool split;
	enum mode mode;
	enum broken broken;
	uint64_t seed;
	uint64_t alloc_fail;
	unsigned int stall_ms;
	uint64_t barrier_every; /* each worker's operations between its barriers; 0: none */
	uint64_t check_every_ms, watchdog_ms;
	int keep_going; /* report every failure instead of stopping at the first */
};

struct tally {
	int64_t marks, releases, lasts;
};

struct held {
	uint32_t key;
	cowtable_frame_t frame;
};

/* A call recorded in lin mode; pages are keys [key, key + n). */
enum call_kind {
	CALL_MARK,
	CALL_RELEASE,
	CALL_LOOKUP,
	CALL_IS_COW,
	CALL_MARK_RANGE,
	CALL_RELEASE_RANGE,
	CALL_FOREACH
};

struct call {
	uint64_t inv, resp; /* stamps */
	uint8_t kind, key, n;
	int r;        /* mark, release: the result; lookup, is_cow: found; mark_range: its error */
	size_t count; /* mark_range: pages marked; release_range: pages released */
	uint32_t refs;
	cowtable_frame_t frame; /* mark: the argument; release, lookup: the frame returned */
	uint64_t pages; /* release_range: pages LAST; foreach: pages visited (bit i: key + i) */
	cowtable_frame_t frames[LIN_MAX_PAGES]; /* mark_range: arguments; the others: reported */
	uint32_t counts[LIN_MAX_PAGES];         /* foreach: counts reported */
};

/* What a lookup saw (the broken stale lookup answers with the previous one). */
struct seen {
	bool valid, found;
	cowtable_frame_t frame;
	uint32_t refs;
};

struct worker {
	unsigned int id;
	uint64_t rng;
	uint64_t ops; /* read by the progress line */
	struct tally *tally;
	int64_t range_releases; /* releases by release_range: per page unknown */
	struct held held[HELD_MAX];
	unsigned int nheld;
	/* lin mode */
	struct call calls[LIN_CALLS];
	unsigned int ncalls;
	struct call *rec; /* the call being recorded, or NULL */
	bool range_released;
	struct seen seen[LIN_MAX_PAGES];
};

static struct config cfg;
static struct cowtable table;
static struct test_alloc alloc;
static struct worker *workers;
static int stop, aborted;

/* Quiescent points: the coordinator pauses every worker between operations. */
static int pause_wanted;
static unsigned int paused, finished;

/* Worker 0's stalled section and the workers' barriers never overlap (worker_barrier()). */
static int stalling;
static unsigned int in_barrier;

/* Hand-offs of references between threads (holder mode), under a spin lock. */
static int exchange_lock;
static struct held exchange[EXCHANGE_MAX];
static unsigned int nexchange;

/* The frame pool (holder mode): bit set = frame in use by one entry lifetime. */
static uint64_t pool[POOL_FRAMES / 64];

/* lin mode: the clock, the barrier, and the history being checked. */
static uint64_t lin_clock;
static unsigned int lin_arrived, lin_sense;
static int lin_stop;
static struct lin_state lin_init[LIN_MAX_PAGES]; /* each page when the history began */
static struct lin_page lin_pages[LIN_MAX_PAGES];
static uint32_t lin_groups[LIN_MAX_GROUPS];
static struct lin_checker *checker;
static struct lin_spec lin_spec;
static uint64_t lin_next_check;

/* lin mode statistics, kept by worker 0 alone. */
static struct {
	uint64_t histories, pages, overlapping, overlapped, ops;
	uint64_t created, shared, eexist, eoverflow, enomem, range_marks;
	uint64_t released, lasts, not_cow, some, found, not_found;
} lin_stats;

static void torture_failed(void)
{
	if (__atomic_load_n(&cfg.keep_going, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	/* The table may be corrupt now: stop before it crashes the harness. */
	if (__atomic_exchange_n(&aborted, 1, __ATOMIC_ACQ_REL) == 0) {
		tt_print("VERDICT: FAIL (stopped at the first failure, seed %llu)\n",
		         (unsigned long long)cfg.seed);
		tt_stop_here();
	}
}

static uint64_t now_ms(void)
{
	return tt_now_ns() / 1000000;
}

/* Bits set: __builtin_popcountll() would call libgcc in the kernel. */
static unsigned int popcount64(uint64_t x)
{
	unsigned int n = 0;

	for (; x != 0; x &= x - 1)
		n++;
	return n;
}

static bool stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_ACQUIRE) != 0;
}

static void exchange_lock_take(void)
{
	while (__atomic_exchange_n(&exchange_lock, 1, __ATOMIC_ACQUIRE) != 0)
		while (__atomic_load_n(&exchange_lock, __ATOMIC_RELAXED) != 0)
			tt_yield();
}

static void exchange_lock_give(void)
{
	__atomic_store_n(&exchange_lock, 0, __ATOMIC_RELEASE);
}

/* splitmix64 of tests/test_alloc.h: seeded, reproducible. */
static uint64_t rnd(struct worker *w)
{
	return test_rand(&w->rng);
}

static cowtable_frame_t pool_get(struct worker *w)
{
	unsigned int i, j, start = (unsigned int)(rnd(w) % (POOL_FRAMES / 64));
	uint64_t word, bit;

	for (i = 0; i < POOL_FRAMES / 64; i++) {
		j = (start + i) % (POOL_FRAMES / 64);
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

	if (!CHECK(frame != 0 && f < POOL_FRAMES,
	           "invariant 2: %s returned frame %llu, which the pool never gave out", who,
	           (unsigned long long)frame))
		return;
	CHECK((__atomic_fetch_and(&pool[f / 64], ~bit, __ATOMIC_ACQ_REL) & bit) != 0,
	      "invariant 2: frame %llu released twice (%s)", (unsigned long long)frame, who);
}

static unsigned int pick_key(struct worker *w)
{
	uint64_t x = rnd(w);

	if (cfg.hot > 0 && x % 100 < cfg.hot_pct)
		return (unsigned int)((x >> 8) % cfg.hot);
	return (unsigned int)((x >> 8) % cfg.keys);
}

/*
 * Key k's page: --stride pages apart, after --offset pages.  Stride 1
 * (consecutive pages: range operations cover runs of keys, and 64 keys share
 * a leaf) makes marks race releases of other pages of the same leaf; stride
 * 64 gives every key a leaf of its own, born and killed with its page; an
 * offset of 62 puts keys 0 and 1 at the end of one block, 2 and 3 at the
 * start of the next.
 */
static uintptr_t vaddr_of(unsigned int key)
{
	return BASE + ((uintptr_t)cfg.offset + (uintptr_t)key * cfg.stride) * PAGE;
}

/* The key of a page, or cfg.keys if it is none. */
static unsigned int key_of(uintptr_t vaddr)
{
	uintptr_t k;

	if (vaddr < BASE + (uintptr_t)cfg.offset * PAGE)
		return cfg.keys;
	k = ((vaddr - BASE) / PAGE - cfg.offset) / cfg.stride;
	return k < cfg.keys && vaddr_of((unsigned int)k) == vaddr ? (unsigned int)k : cfg.keys;
}

/* A page's frames (anon, lin): --frames of them, so that marks may clash. */
static cowtable_frame_t page_frame(unsigned int key, unsigned int which)
{
	return (cowtable_frame_t)key * 2 + 1 + which;
}

static bool frame_ok(unsigned int key, cowtable_frame_t frame)
{
	return key < cfg.keys && frame >= page_frame(key, 0) && frame < page_frame(key, cfg.frames);
}

static cowtable_frame_t pick_frame(struct worker *w, unsigned int key)
{
	return page_frame(key, cfg.frames > 1 ? (unsigned int)(rnd(w) % cfg.frames) : 0);
}

/*
 * In lin mode results are judged by the linearizability check at the end of
 * each history (invariant 8), which knows every legal result; anon mode's
 * checks of each result stand aside.
 */
static bool lin_mode(void)
{
	return cfg.mode == MODE_LIN;
}

/* A mark's error that anon mode allows. */
static bool mark_error_ok(int r)
{
	return r == COWTABLE_ENOMEM || (r == COWTABLE_EEXIST && cfg.frames > 1) ||
	       (r == COWTABLE_EOVERFLOW && CT_REFS_MAX < COWTABLE_REFS_MAX);
}

/* lin mode: stamps of one global counter, and the call they belong to. */
static uint64_t stamp(void)
{
	return __atomic_fetch_add(&lin_clock, 1, __ATOMIC_SEQ_CST);
}

static struct call *rec_begin(struct worker *w, enum call_kind kind, unsigned int key,
                              unsigned int n)
{
	struct call *c;

	if (cfg.mode != MODE_LIN || w->ncalls == LIN_CALLS) {
		w->rec = NULL;
		return NULL;
	}
	c = &w->calls[w->ncalls++];
	memset(c, 0, sizeof(*c));
	c->kind = (uint8_t)kind;
	c->key = (uint8_t)key;
	c->n = (uint8_t)n;
	w->rec = c;
	c->inv = stamp(); /* last thing before the call */
	return c;
}

static void rec_end(struct call *c)
{
	if (c != NULL)
		c->resp = stamp(); /* first thing after it */
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
	if (!CHECK(r == COWTABLE_SHARED || r == COWTABLE_LAST,
	           "invariant 1: a holder of page %u got %d from release", h.key, r))
		return;
	CHECK(frame == h.frame, "invariant 2: release of page %u returned frame %llu, held %llu",
	      h.key, (unsigned long long)frame, (unsigned long long)h.frame);
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
	if (w->nheld > 0 && (rnd(w) & 1)) {
		/* Fork a page we hold: the entry is alive, the count must grow. */
		i = (unsigned int)(rnd(w) % w->nheld);
		key = w->held[i].key;
		frame = w->held[i].frame;
		r = cowtable_mark(ctx, vaddr_of(key), frame);
		if (!CHECK(r >= 2, "invariant 1: a holder of page %u got %d from mark", key, r))
			return;
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
	CHECK(r == COWTABLE_EEXIST || r == COWTABLE_ENOMEM,
	      "invariant 1: a create of page %u got %d from mark", key, r);
	pool_put(frame, "unused frame");
}

static void holder_lookup(struct worker *w, struct cowtable_ctx *ctx)
{
	cowtable_frame_t frame = 0;
	uint32_t refs = 0;
	unsigned int key, i;
	bool found;

	if (w->nheld > 0 && (rnd(w) & 1)) {
		i = (unsigned int)(rnd(w) % w->nheld);
		key = w->held[i].key;
		found = cowtable_lookup(ctx, vaddr_of(key), &frame, &refs);
		CHECK(found && frame == w->held[i].frame && refs != 0,
		      "invariant 2: a holder of page %u looked it up: found %d, frame %llu refs %u",
		      key, found, (unsigned long long)frame, refs);
		CHECK(cowtable_is_cow(ctx, vaddr_of(key)),
		      "invariant 1: a holder of page %u was told it is not COW", key);
		return;
	}
	key = pick_key(w);
	found = cowtable_lookup(ctx, vaddr_of(key), &frame, &refs);
	CHECK(!found || refs != 0, "invariant 1: lookup of page %u saw a count of 0", key);
}

static void holder_handoff(struct worker *w)
{
	exchange_lock_take();
	if (w->nheld > 0 && nexchange < EXCHANGE_MAX && (rnd(w) & 1))
		exchange[nexchange++] = w->held[--w->nheld];
	else if (nexchange > 0 && w->nheld < HELD_MAX)
		w->held[w->nheld++] = exchange[--nexchange];
	exchange_lock_give();
}

/* mark, release and lookup as anon and lin modes run them: recorded in lin mode. */
static int do_mark(struct worker *w, struct cowtable_ctx *ctx, unsigned int key,
                   cowtable_frame_t frame)
{
	struct call *c = rec_begin(w, CALL_MARK, key, 1);
	int r = cowtable_mark(ctx, vaddr_of(key), frame);

	rec_end(c);
	if (c != NULL) {
		c->r = r;
		c->frame = frame;
	}
	return r;
}

static int do_release(struct worker *w, struct cowtable_ctx *ctx, unsigned int key,
                      cowtable_frame_t *frame)
{
	struct call *c = rec_begin(w, CALL_RELEASE, key, 1);
	uint32_t before = 0;
	int r;

	if (cfg.broken == BROKEN_EARLY_LAST && !cowtable_lookup(ctx, vaddr_of(key), NULL, &before))
		before = 0;
	r = cowtable_release(ctx, vaddr_of(key), frame);
	/* Broken: LAST decided from a count read before the release's CAS. */
	if (cfg.broken == BROKEN_EARLY_LAST && r == COWTABLE_SHARED && before == 2)
		r = COWTABLE_LAST;
	rec_end(c);
	if (c != NULL) {
		c->r = r;
		c->frame = *frame;
	}
	return r;
}

static bool do_lookup(struct worker *w, struct cowtable_ctx *ctx, unsigned int key, bool is_cow,
                      cowtable_frame_t *frame, uint32_t *refs)
{
	struct call *c = rec_begin(w, is_cow ? CALL_IS_COW : CALL_LOOKUP, key, 1);
	struct seen now, *prev;
	bool found;

	if (is_cow)
		found = cowtable_is_cow(ctx, vaddr_of(key));
	else
		found = cowtable_lookup(ctx, vaddr_of(key), frame, refs);
	rec_end(c);
	if (cfg.broken == BROKEN_STALE_LOOKUP && !is_cow) {
		/* Broken: answer with what this thread's previous lookup of the page read. */
		now.valid = true;
		now.found = found;
		now.frame = *frame;
		now.refs = *refs;
		prev = &w->seen[key];
		if (prev->valid) {
			found = prev->found;
			*frame = prev->frame;
			*refs = prev->refs;
		}
		*prev = now;
	}
	if (c != NULL) {
		c->r = found;
		c->frame = found ? *frame : 0;
		c->refs = found ? *refs : 0;
	}
	return found;
}

struct range_arg {
	struct worker *w;
	struct call *c;
	uintptr_t prev;
	bool first;
};

static void range_last(uintptr_t vaddr, cowtable_frame_t frame, void *arg)
{
	struct range_arg *a = arg;
	unsigned int key = key_of(vaddr);

	if (!CHECK(key < cfg.keys && (lin_mode() || frame_ok(key, frame)),
	           "invariant 2: release_range: LAST for %#lx with frame %llu",
	           (unsigned long)vaddr, (unsigned long long)frame))
		return;
	a->w->tally[key].lasts++;
	if (a->c != NULL && key >= a->c->key && key < a->c->key + a->c->n) {
		a->c->pages |= 1ull << (key - a->c->key);
		a->c->frames[key - a->c->key] = frame;
	}
}

static bool range_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	struct range_arg *a = arg;
	unsigned int key = key_of(vaddr);

	if (!CHECK(key < cfg.keys && (lin_mode() || ((a->first || vaddr > a->prev) &&
	                                             frame_ok(key, frame) && refs != 0)),
	           "invariant 2: foreach: %#lx frame %llu refs %u after %#lx", (unsigned long)vaddr,
	           (unsigned long long)frame, refs, (unsigned long)a->prev))
		return true;
	a->prev = vaddr;
	a->first = false;
	if (a->c != NULL && key >= a->c->key && key < a->c->key + a->c->n) {
		a->c->pages |= 1ull << (key - a->c->key);
		a->c->frames[key - a->c->key] = frame;
		a->c->counts[key - a->c->key] = refs;
	}
	return true;
}

/* Ranges over hot and cold pages, racing the single-page traffic (anon, lin). */
static void anon_range(struct worker *w, struct cowtable_ctx *ctx)
{
	cowtable_frame_t frames[64];
	unsigned int key = pick_key(w), n, i, kind;
	uint64_t x = rnd(w);
	struct range_arg a = {w, NULL, 0, true};
	size_t marked, released;
	int r;

	if (cfg.mode == MODE_LIN) {
		n = 1 + (unsigned int)(x % (cfg.keys - key));
	} else {
		n = 1 + (unsigned int)(x % 64);
		if (key + n > cfg.keys)
			n = cfg.keys - key;
	}
	kind = (unsigned int)((x >> 8) % 3);
	/* mark_range marks consecutive pages: one key's page when keys are apart. */
	if (cfg.stride > 1 && kind == 0)
		n = 1;
	/* One release_range per thread and history: the checker's choices stay few. */
	if (kind == 1 && cfg.mode == MODE_LIN && w->range_released)
		kind = 2;
	switch (kind) {
	case 0:
		for (i = 0; i < n; i++)
			frames[i] = pick_frame(w, key + i);
		a.c = rec_begin(w, CALL_MARK_RANGE, key, n);
		r = cowtable_mark_range(ctx, vaddr_of(key), n, frames, &marked);
		rec_end(a.c);
		CHECK(lin_mode() || r == 0 || mark_error_ok(r),
		      "invariant 1: mark_range of %u pages at %u returned %d", n, key, r);
		CHECK(lin_mode() || (r == 0) == (marked == n),
		      "invariant 1: mark_range returned %d having marked %zu of %u", r, marked, n);
		for (i = 0; i < marked; i++)
			w->tally[key + i].marks++;
		if (a.c != NULL) {
			a.c->r = r;
			a.c->count = marked;
			for (i = 0; i < n; i++)
				a.c->frames[i] = frames[i];
		}
		break;
	case 1:
		w->range_released = true;
		a.c = rec_begin(w, CALL_RELEASE_RANGE, key, n);
		released = cowtable_release_range(ctx, vaddr_of(key), vaddr_of(key + n), range_last,
		                                  &a);
		rec_end(a.c);
		w->range_releases += (int64_t)released;
		if (a.c != NULL)
			a.c->count = released;
		break;
	default:
		a.c = rec_begin(w, CALL_FOREACH, key, n);
		cowtable_foreach(ctx, vaddr_of(key), vaddr_of(key + n), range_visit, &a);
		rec_end(a.c);
		break;
	}
}

static void anon_op(struct worker *w, struct cowtable_ctx *ctx, enum op op)
{
	unsigned int key = pick_key(w);
	cowtable_frame_t frame = 0;
	uint32_t refs = 0;
	bool found, is_cow;
	int r;

	switch (op) {
	case OP_RANGE:
		anon_range(w, ctx);
		break;
	case OP_MARK:
		r = do_mark(w, ctx, key, pick_frame(w, key));
		if (r >= 2) {
			w->tally[key].marks++;
		} else if (r == COWTABLE_EEXIST && cfg.frames == 1) {
			CHECK(lin_mode(),
			      "invariant 2: mark of page %u refused (EEXIST): the table "
			      "holds a frame the page never had",
			      key);
		} else {
			CHECK(lin_mode() || mark_error_ok(r),
			      "invariant 1: mark of page %u returned %d", key, r);
		}
		break;
	case OP_RELEASE:
		r = do_release(w, ctx, key, &frame);
		if (r == COWTABLE_SHARED || r == COWTABLE_LAST) {
			w->tally[key].releases++;
			w->tally[key].lasts += r == COWTABLE_LAST;
			CHECK(lin_mode() || frame_ok(key, frame),
			      "invariant 2: release of page %u returned frame %llu", key,
			      (unsigned long long)frame);
		} else {
			CHECK(lin_mode() || r == COWTABLE_NOT_COW,
			      "invariant 1: release of page %u returned %d", key, r);
		}
		break;
	default:
		is_cow = rnd(w) % 4 == 0;
		found = do_lookup(w, ctx, key, is_cow, &frame, &refs);
		CHECK(lin_mode() || !found || is_cow || (refs != 0 && frame_ok(key, frame)),
		      "invariant 2: lookup of page %u: frame %llu refs %u", key,
		      (unsigned long long)frame, refs);
		break;
	}
}

static enum op pick_op(struct worker *w)
{
	const unsigned int *mix = w->id % 2 != 0 ? cfg.mix_odd : cfg.mix;
	unsigned int total = 0, i, x;

	for (i = 0; i < OP_COUNT; i++)
		total += mix[i];
	x = (unsigned int)(rnd(w) % total);
	for (i = 0; i < OP_COUNT; i++) {
		if (x < mix[i])
			return (enum op)i;
		x -= mix[i];
	}
	return OP_LOOKUP;
}

static void maybe_pause(void)
{
	if (!__atomic_load_n(&pause_wanted, __ATOMIC_ACQUIRE))
		return;
	__atomic_fetch_add(&paused, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&pause_wanted, __ATOMIC_ACQUIRE))
		tt_sleep_ms(1);
	__atomic_fetch_sub(&paused, 1, __ATOMIC_ACQ_REL);
}

/*
 * cowtable_barrier() spins while any other context is inside a section, and
 * the stalled section sleeps.  In the kernel a worker spinning on the CPU of
 * the sleeping worker (kthreads are bound, and not preempted in kernel code)
 * would keep it from ever waking, so a barrier is never called during the
 * stall: @skip says whether to give it up then (one every N operations) or
 * to wait for the stall to end (the last one, which must run).
 */
static void worker_barrier(struct cowtable_ctx *ctx, bool skip)
{
	for (;;) {
		/* Either the staller sees us here, or we see it stalling (both seq_cst). */
		__atomic_fetch_add(&in_barrier, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&stalling, __ATOMIC_SEQ_CST))
			break;
		__atomic_fetch_sub(&in_barrier, 1, __ATOMIC_SEQ_CST);
		if (skip)
			return;
		tt_sleep_ms(1);
	}
	cowtable_barrier(ctx);
	__atomic_fetch_sub(&in_barrier, 1, __ATOMIC_SEQ_CST);
}

/* Worker 0: a section that sleeps; reclamation stops for everyone meanwhile. */
static void stall_section(struct cowtable_ctx *ctx)
{
	__atomic_store_n(&stalling, 1, __ATOMIC_SEQ_CST);
	/* Barriers already running end: no section of ours holds them. */
	while (__atomic_load_n(&in_barrier, __ATOMIC_SEQ_CST) != 0)
		tt_sleep_ms(1);
	ct_enter(ctx);
	tt_sleep_ms(cfg.stall_ms);
	ct_exit(ctx);
	__atomic_store_n(&stalling, 0, __ATOMIC_SEQ_CST);
}

/* --barrier-every N: a barrier after every N operations of this worker, outside any section. */
static void maybe_barrier(struct cowtable_ctx *ctx, uint64_t n)
{
	if (cfg.barrier_every != 0 && n % cfg.barrier_every == 0)
		worker_barrier(ctx, true);
}

static struct cowtable_ctx *get_ctx(void)
{
	struct cowtable_ctx *ctx;

	/* Contexts may fail to allocate under --alloc-fail: try again. */
	while ((ctx = cowtable_ctx_get(&table)) == NULL)
		tt_sleep_ms(1);
	return ctx;
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
	static const char *const what[] = {
	        [CT_CHECK_STAMP] = "invariant 3: a leaf or index node seen by a search after its "
	                           "retirement or free",
	        [CT_CHECK_DEAD] = "invariant 3: a retired leaf or index node freed with a hold, a "
	                          "tracked page or an entry",
	        [CT_CHECK_BOUND] = "invariant 6: a context over the reclamation bound after a poll",
	};
	struct ct_table *t = ct_table_of(&table);
	uint32_t check = ct_load_u32(&t->last_check);
	int64_t n = ct_load_stat(&t->violations);

	if (CHECK(n == 0, "%s: %lld library checks failed, the last: %s (%#llx)", when,
	          (long long)n,
	          check < sizeof(what) / sizeof(what[0]) && what[check] ? what[check] : "?",
	          (unsigned long long)ct_load_u64(&t->last_stamp)))
		return;
	ct_store_stat(&t->violations, 0);
}

/*
 * Invariant 5 for the block index (K, N1-N3), quiescent: walked depth first,
 * its nodes are live, of the height and base their place says, with as
 * many holds as non-zero entries; its leaves come in key order, each the
 * next leaf linked at level 0 of its block, and no linked leaf is missing
 * unless an allocation failed (a setter then gives up).  @below walks level
 * 0 alongside.  Depth: the tree's height, at most CT_INDEX_HEIGHT.
 */
static void check_index_node(const char *when, struct ct_node *n, unsigned int h, uintptr_t base,
                             struct ct_leaf **below)
{
	unsigned int i, used = 0;
	uintptr_t b;

	CHECK(n->stamp == CT_STAMP_LIVE && ct_node_height(n) == h && n->base == base,
	      "invariant 5: %s: index node of height %u (%u expected) base %#lx (%#lx expected) "
	      "stamp %#llx",
	      when, ct_node_height(n), h, (unsigned long)n->base, (unsigned long)base,
	      (unsigned long long)n->stamp);
	for (i = 0; i < CT_NODE_ENTRIES; i++) {
		if (n->entry[i] == 0)
			continue;
		used++;
		b = base + ((uintptr_t)i << ((h - 1) * CT_NODE_SHIFT));
		if (h > 1) {
			check_index_node(when, (struct ct_node *)n->entry[i], h - 1, b, below);
			continue;
		}
		/* Leaves the index skipped (an allocation failed) come before this one. */
		while (alloc.failures != 0 && *below != NULL && ct_block_number((*below)->key) < b)
			*below = ct_ptr(*ct_next(*below, 0));
		CHECK((struct ct_leaf *)n->entry[i] == *below && *below != NULL &&
		              ct_block_number((*below)->key) == b,
		      "invariant 5: %s: index entry of block %#lx at leaf %#lx, linked leaf %#lx",
		      when, (unsigned long)b, (unsigned long)((struct ct_leaf *)n->entry[i])->key,
		      *below != NULL ? (unsigned long)(*below)->key : 0ul);
		if (*below != NULL)
			*below = ct_ptr(*ct_next(*below, 0));
	}
	CHECK(n->holds == used && used != 0,
	      "invariant 5: %s: index node of height %u base %#lx has %u holds and %u entries",
	      when, h, (unsigned long)base, n->holds, used);
}

static void check_index(const char *when)
{
	struct ct_table *t = ct_table_of(&table);
	struct ct_leaf *below = ct_ptr(*ct_next(t->head, 0));
	struct ct_node *top = (struct ct_node *)t->index;

	if (top != NULL)
		check_index_node(when, top, ct_node_height(top), 0, &below);
	if (alloc.failures == 0)
		CHECK(below == NULL, "invariant 5: %s: leaf %#lx is linked but not indexed", when,
		      (unsigned long)below->key);
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
			CHECK(!(word & CT_FROZEN),
			      "invariant 5: %s: frozen leaf %#lx reachable at level %d", when,
			      (unsigned long)l->key, i);
			CHECK(l->stamp == CT_STAMP_LIVE,
			      "invariant 5: %s: leaf %#lx at level %d: stamp %#llx", when,
			      (unsigned long)l->key, i, (unsigned long long)l->stamp);
			CHECK((int)ct_leaf_height(l) > i,
			      "invariant 5: %s: leaf %#lx of height %u linked at level %d", when,
			      (unsigned long)l->key, ct_leaf_height(l), i);
			CHECK(ct_ptr(word) == NULL || ct_ptr(word)->key > l->key,
			      "invariant 5: %s: level %d out of order at %#lx", when, i,
			      (unsigned long)l->key);
			CHECK(l->key == ct_block_of(l->key),
			      "invariant 5: %s: leaf key %#lx is not a block's first address", when,
			      (unsigned long)l->key);
			if (i == 0) {
				/* Quiescent: no mark or drop in flight, so holds == tracked slots
				 * (H). */
				for (live = 0, k = 0; k < CT_LEAF_PAGES; k++)
					live += l->slot[k] != 0;
				CHECK(live != 0 && l->holds == live,
				      "invariant 5: %s: leaf %#lx has %u holds and %u tracked "
				      "pages",
				      when, (unsigned long)l->key, l->holds, live);
				tracked += live;
				continue;
			}
			/* Subset of level 0: find l there, walking forward only. */
			while (below != NULL && below != l)
				below = ct_ptr(*ct_next(below, 0));
			CHECK(below != NULL,
			      "invariant 5: %s: leaf %#lx at level %d is not on level 0", when,
			      (unsigned long)l->key, i);
		}
	}
	CHECK(tracked == cowtable_count(&table),
	      "invariant 5: %s: the leaves hold %zu tracked pages, count says %zu", when, tracked,
	      cowtable_count(&table));
	check_index(when);
	library_checks(when);
}

/* lin mode: all threads start each history together. */
static void lin_barrier(unsigned int *sense)
{
	unsigned int s = *sense ^= 1, spins = 0;

	if (__atomic_add_fetch(&lin_arrived, 1, __ATOMIC_ACQ_REL) == cfg.threads) {
		__atomic_store_n(&lin_arrived, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&lin_sense, s, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&lin_sense, __ATOMIC_ACQUIRE) != s) {
		if (++spins % 1024 == 0)
			tt_yield(); /* more threads than CPUs: let the others arrive */
		else
			ct_relax();
	}
}

static struct lin_op *lin_add(unsigned int key, const struct call *c, unsigned int thread,
                              enum lin_kind kind)
{
	struct lin_op *o = &lin_pages[key].ops[lin_pages[key].n++];

	memset(o, 0, sizeof(*o));
	o->kind = (uint8_t)kind;
	o->inv = c->inv;
	o->resp = c->resp;
	o->thread = (uint16_t)thread;
	return o;
}

/* A recorded call as one operation on each page it covers (lin.h says how). */
static void lin_add_call(const struct call *c, unsigned int t, unsigned int *ngroups)
{
	struct lin_op *o;
	unsigned int i, lasts;

	switch (c->kind) {
	case CALL_MARK:
		o = lin_add(c->key, c, t, LIN_MARK);
		o->frame = c->frame;
		o->result = c->r;
		lin_stats.created += c->r == 2;
		lin_stats.shared += c->r > 2;
		lin_stats.eexist += c->r == COWTABLE_EEXIST;
		lin_stats.eoverflow += c->r == COWTABLE_EOVERFLOW;
		lin_stats.enomem += c->r == COWTABLE_ENOMEM;
		break;
	case CALL_RELEASE:
		o = lin_add(c->key, c, t, LIN_RELEASE);
		o->frame = c->frame;
		o->result = c->r;
		lin_stats.released += c->r == COWTABLE_SHARED;
		lin_stats.lasts += c->r == COWTABLE_LAST;
		lin_stats.not_cow += c->r == COWTABLE_NOT_COW;
		break;
	case CALL_LOOKUP:
	case CALL_IS_COW:
		o = lin_add(c->key, c, t, c->kind == CALL_LOOKUP ? LIN_LOOKUP : LIN_IS_COW);
		o->result = c->r;
		o->frame = c->frame;
		o->refs = c->refs;
		lin_stats.found += c->r != 0;
		lin_stats.not_found += c->r == 0;
		break;
	case CALL_MARK_RANGE:
		for (i = 0; i < c->count; i++)
			lin_add(c->key + i, c, t, LIN_MARK_OK)->frame = c->frames[i];
		lin_stats.range_marks += c->count;
		if (c->r < 0 && c->count < c->n) {
			o = lin_add(c->key + (unsigned int)c->count, c, t, LIN_MARK);
			o->frame = c->frames[c->count];
			o->result = c->r;
			lin_stats.eexist += c->r == COWTABLE_EEXIST;
			lin_stats.eoverflow += c->r == COWTABLE_EOVERFLOW;
			lin_stats.enomem += c->r == COWTABLE_ENOMEM;
		}
		break;
	case CALL_RELEASE_RANGE:
		lasts = (unsigned int)popcount64(c->pages);
		for (i = 0; i < c->n; i++) {
			if (c->pages >> i & 1) {
				o = lin_add(c->key + i, c, t, LIN_RELEASE);
				o->result = COWTABLE_LAST;
				o->frame = c->frames[i];
				continue;
			}
			lin_add(c->key + i, c, t, LIN_RELEASE_SOME)->group = (uint8_t)*ngroups;
			lin_stats.some++;
		}
		/* Pages released minus LASTs: the SHAREDs (a wrong total wraps: no choice fits). */
		lin_groups[(*ngroups)++] = (uint32_t)(c->count - lasts);
		lin_stats.lasts += lasts;
		break;
	default: /* CALL_FOREACH */
		for (i = 0; i < c->n; i++) {
			o = lin_add(c->key + i, c, t, LIN_LOOKUP);
			if (c->pages >> i & 1) {
				o->result = 1;
				o->frame = c->frames[i];
				o->refs = c->counts[i];
			}
			lin_stats.found += c->pages >> i & 1;
			lin_stats.not_found += !(c->pages >> i & 1);
		}
		break;
	}
}

static const char *error_name(int r)
{
	return r == COWTABLE_EEXIST      ? "EEXIST"
	       : r == COWTABLE_EOVERFLOW ? "EOVERFLOW"
	       : r == COWTABLE_ENOMEM    ? "ENOMEM"
	       : r == COWTABLE_EINVAL    ? "EINVAL"
	                                 : "an error";
}

/* One operation of a history, as the report shows it. */
static void lin_print_op(const struct lin_op *o)
{
	unsigned long long inv = o->inv, resp = o->resp, f = o->frame;
	unsigned int t = o->thread;

	switch (o->kind) {
	case LIN_MARK:
		if (o->result >= 0)
			tt_print("  [%llu, %llu] thread %u: mark(frame %llu) = %d\n", inv, resp, t,
			         f, o->result);
		else
			tt_print("  [%llu, %llu] thread %u: mark(frame %llu) = %s\n", inv, resp, t,
			         f, error_name(o->result));
		break;
	case LIN_MARK_OK:
		tt_print("  [%llu, %llu] thread %u: mark_range marked it (frame %llu)\n", inv, resp,
		         t, f);
		break;
	case LIN_RELEASE:
		tt_print("  [%llu, %llu] thread %u: release = %s, frame %llu\n", inv, resp, t,
		         o->result == COWTABLE_LAST      ? "LAST"
		         : o->result == COWTABLE_SHARED  ? "SHARED"
		         : o->result == COWTABLE_NOT_COW ? "NOT_COW"
		                                         : "?",
		         f);
		break;
	case LIN_RELEASE_SOME:
		tt_print("  [%llu, %llu] thread %u: release_range call %u: SHARED or NOT_COW\n",
		         inv, resp, t, o->group);
		break;
	case LIN_LOOKUP:
		if (o->result)
			tt_print("  [%llu, %llu] thread %u: lookup = frame %llu, count %u\n", inv,
			         resp, t, f, o->refs);
		else
			tt_print("  [%llu, %llu] thread %u: lookup = not tracked\n", inv, resp, t);
		break;
	default:
		tt_print("  [%llu, %llu] thread %u: is_cow = %s\n", inv, resp, t,
		         o->result ? "true" : "false");
		break;
	}
}

/* The history that failed, page by page in order of invocation, for the report. */
static void lin_report(int verdict, unsigned int ngroups)
{
	const struct lin_page *p;
	unsigned int k, i, j, next;
	uint64_t after;

	for (k = 0; k < cfg.keys; k++) {
		if (verdict >= 0 && (unsigned int)verdict != k)
			continue;
		p = &lin_pages[k];
		if (p->init.refs != 0)
			tt_print("history %llu, page %u (%#lx), from frame %llu count %u "
			         "([invocation, response]):\n",
			         (unsigned long long)lin_stats.histories, k,
			         (unsigned long)vaddr_of(k), (unsigned long long)p->init.frame,
			         p->init.refs);
		else
			tt_print("history %llu, page %u (%#lx), from not tracked "
			         "([invocation, response]):\n",
			         (unsigned long long)lin_stats.histories, k,
			         (unsigned long)vaddr_of(k));
		for (after = 0, i = 0; i < p->n; i++) {
			for (next = p->n, j = 0; j < p->n; j++)
				if (p->ops[j].inv >= after &&
				    (next == p->n || p->ops[j].inv < p->ops[next].inv))
					next = j;
			lin_print_op(&p->ops[next]);
			after = p->ops[next].inv + 1;
		}
	}
	for (i = 0; i < ngroups; i++)
		tt_print("  release_range call %u: %u of its pages SHARED\n", i, lin_groups[i]);
}

/*
 * Worker 0, between histories, with every other worker waiting at the
 * barrier: read each page (the history's last operation, after every other),
 * check the history, bring high counts down, check the structure now and
 * then, decide whether to stop.
 */
static void lin_history_end(struct cowtable_ctx *ctx)
{
	unsigned int k, t, i, j, ngroups = 0;
	const struct lin_page *p;
	cowtable_frame_t frame;
	uint32_t refs, want;
	bool overlap, any;
	int verdict, r;

	for (k = 0; k < cfg.keys; k++) {
		lin_pages[k].init = lin_init[k];
		lin_pages[k].n = 0;
	}
	for (t = 0; t < cfg.threads; t++)
		for (i = 0; i < workers[t].ncalls; i++)
			lin_add_call(&workers[t].calls[i], t, &ngroups);
	for (k = 0; k < cfg.keys; k++) {
		struct call c = {0};
		struct lin_op *o;

		frame = 0;
		refs = 0;
		c.inv = stamp();
		c.r = cowtable_lookup(ctx, vaddr_of(k), &frame, &refs);
		c.resp = stamp();
		o = lin_add(k, &c, 0, LIN_LOOKUP);
		o->result = c.r;
		o->frame = frame;
		o->refs = refs;
		lin_init[k].frame = frame;
		lin_init[k].refs = refs;
	}
	verdict = lin_check(checker, &lin_spec, lin_pages, cfg.keys, lin_groups, ngroups);
	if (verdict != LIN_OK)
		lin_report(verdict, ngroups);
	CHECK(verdict == LIN_OK,
	      "invariant 8: history %llu (seed %llu) is not linearizable (%s %d; printed above)",
	      (unsigned long long)lin_stats.histories, (unsigned long long)cfg.seed,
	      verdict >= 0 ? "page" : "code", verdict);
	/* Worker 0 alone writes it; the progress line reads it. */
	__atomic_store_n(&lin_stats.histories, lin_stats.histories + 1, __ATOMIC_RELAXED);
	for (any = false, k = 0; k < cfg.keys; k++) {
		p = &lin_pages[k];
		lin_stats.pages++;
		lin_stats.ops += p->n;
		/* Whether two operations overlapped (the last, the read after them all, aside). */
		for (overlap = false, i = 0; i + 1 < p->n && !overlap; i++)
			for (j = i + 1; j + 1 < p->n && !overlap; j++)
				overlap = p->ops[i].inv < p->ops[j].resp &&
				          p->ops[j].inv < p->ops[i].resp;
		lin_stats.overlapping += overlap;
		any = any || overlap;
		/* High counts come down, so that LASTs and creations stay frequent. */
		if (lin_init[k].refs > LIN_TRIM) {
			want = (uint32_t)(rnd(&workers[0]) % 4);
			while (lin_init[k].refs > want &&
			       (r = cowtable_release(ctx, vaddr_of(k), &frame)) !=
			               COWTABLE_NOT_COW) {
				lin_init[k].refs--;
				workers[0].tally[k].releases++;
				workers[0].tally[k].lasts += r == COWTABLE_LAST;
			}
			if (lin_init[k].refs == 0)
				lin_init[k].frame = 0;
		}
	}
	lin_stats.overlapped += any;
	if (cfg.check_every_ms > 0 && now_ms() >= lin_next_check) {
		check_structure("between histories");
		lin_next_check = now_ms() + cfg.check_every_ms;
	}
	if (stopping() || (cfg.ops != 0 && lin_stats.histories >= cfg.ops))
		__atomic_store_n(&lin_stop, 1, __ATOMIC_RELEASE);
}

static void lin_work(struct worker *w, struct cowtable_ctx *ctx)
{
	unsigned int sense = 0, i, spins;

	for (;;) {
		lin_barrier(&sense);
		if (__atomic_load_n(&lin_stop, __ATOMIC_ACQUIRE))
			break;
		w->ncalls = 0;
		w->range_released = false;
		/*
		 * Once more, now that everyone is awake: the first crossing woke
		 * the threads one by one (and the one that opened it, worker 0
		 * back from checking, would start last); this one lets them go
		 * within a cache miss of each other, so their operations overlap.
		 */
		lin_barrier(&sense);
		for (i = 0; i < cfg.lin_ops; i++) {
			/* Interleavings differ from one history to the next. */
			for (spins = (unsigned int)(rnd(w) & 15); spins != 0; spins--)
				ct_relax();
			anon_op(w, ctx, pick_op(w));
			__atomic_store_n(&w->ops, w->ops + 1, __ATOMIC_RELAXED);
			maybe_barrier(ctx, w->ops);
		}
		lin_barrier(&sense);
		if (w->id == 0)
			lin_history_end(ctx);
	}
}

void torture_worker(unsigned int id)
{
	struct worker *w = &workers[id];
	struct cowtable_ctx *ctx = get_ctx();
	uint64_t n = 0, next_stall = now_ms() + 1000;
	enum op op;

	if (cfg.mode == MODE_LIN)
		lin_work(w, ctx);
	while (cfg.mode != MODE_LIN && !stopping() && (cfg.ops == 0 || n < cfg.ops)) {
		maybe_pause();
		op = pick_op(w);
		if (cfg.mode == MODE_ANON) {
			anon_op(w, ctx, op);
		} else if (op == OP_MARK) {
			holder_mark(w, ctx);
		} else if (op == OP_RELEASE) {
			if (w->nheld > 0)
				release_held(w, ctx, (unsigned int)(rnd(w) % w->nheld));
		} else if (op == OP_HANDOFF) {
			holder_handoff(w);
		} else {
			holder_lookup(w, ctx);
		}
		__atomic_store_n(&w->ops, ++n, __ATOMIC_RELAXED);
		if ((n & 255) == 0)
			tt_resched(); /* a kernel without preemption: let the coordinator run */
		maybe_barrier(ctx, n);
		if (w->id == 0 && cfg.stall_ms > 0 && (n & 1023) == 0 && now_ms() >= next_stall) {
			stall_section(ctx);
			next_stall = now_ms() + 3 * cfg.stall_ms + 1000;
		}
	}
	if (!__atomic_load_n(&aborted, __ATOMIC_ACQUIRE)) {
		while (w->nheld > 0)
			release_held(w, ctx, w->nheld - 1);
		worker_barrier(ctx, false);
		cowtable_ctx_put(ctx);
	}
	__atomic_fetch_add(&finished, 1, __ATOMIC_ACQ_REL);
}

/* Waits for every worker to stop between operations; a worker stuck in one is a livelock. */
static void pause_all(void)
{
	uint64_t deadline = now_ms() + cfg.watchdog_ms + 1000;
	unsigned int n;

	__atomic_store_n(&pause_wanted, 1, __ATOMIC_RELEASE);
	while ((n = __atomic_load_n(&paused, __ATOMIC_ACQUIRE) +
	            __atomic_load_n(&finished, __ATOMIC_ACQUIRE)) < cfg.threads) {
		if (now_ms() > deadline) {
			__atomic_store_n(&cfg.keep_going, 0, __ATOMIC_RELAXED);
			CHECK(now_ms() <= deadline,
			      "invariant 7: %u of %u workers did not finish an operation within "
			      "%llu s: "
			      "livelock or deadlock",
			      cfg.threads - n, cfg.threads,
			      (unsigned long long)(cfg.watchdog_ms / 1000));
			return;
		}
		tt_sleep_ms(1);
	}
}

static void resume_all(void)
{
	__atomic_store_n(&pause_wanted, 0, __ATOMIC_RELEASE);
	/* Every paused worker leaves before the next pause can count it again. */
	while (__atomic_load_n(&paused, __ATOMIC_ACQUIRE) != 0)
		tt_sleep_ms(1);
}

static uint64_t total_ops(void)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < cfg.threads; i++)
		sum += __atomic_load_n(&workers[i].ops, __ATOMIC_RELAXED);
	return sum;
}

static bool all_done(void)
{
	return __atomic_load_n(&finished, __ATOMIC_ACQUIRE) == cfg.threads;
}

/* The end: drain, conservation per page, the pool, pending leaves. */
static void final_checks(int64_t *lives)
{
	struct cowtable_ctx *ctx = get_ctx();
	int64_t range_releases = 0, unknown, unknown_sum = 0;
	unsigned int k, i;
	struct tally sum;
	int r;

	for (i = 0; i < cfg.threads; i++)
		range_releases += workers[i].range_releases;
	/* References left in the exchange: worker 0 (done, holding nothing) releases them. */
	for (i = 0; i < nexchange; i++) {
		workers[0].held[0] = exchange[i];
		workers[0].nheld = 1;
		release_held(&workers[0], ctx, 0);
	}
	nexchange = 0;
	for (k = 0; k < cfg.keys; k++) {
		memset(&sum, 0, sizeof(sum));
		for (i = 0; i < cfg.threads; i++) {
			sum.marks += workers[i].tally[k].marks;
			sum.releases += workers[i].tally[k].releases;
			sum.lasts += workers[i].tally[k].lasts;
		}
		/* Holder mode leaves nothing to drain; anon and lin modes drain here. */
		while ((r = cowtable_release(ctx, vaddr_of(k), NULL)) != COWTABLE_NOT_COW) {
			if (!CHECK(cfg.mode != MODE_HOLDER && r != COWTABLE_EINVAL,
			           "invariant 1: page %u still tracked after every holder released "
			           "it "
			           "(release: %d)",
			           k, r))
				break;
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
		CHECK(range_releases == 0 ? unknown == 0 : unknown >= 0,
		      "invariant 1: page %u: %lld LAST results, %lld releases - %lld marks", k,
		      (long long)sum.lasts, (long long)sum.releases, (long long)sum.marks);
	}
	CHECK(unknown_sum == range_releases,
	      "invariant 1: %lld releases by release_range, but the pages account for %lld",
	      (long long)range_releases, (long long)unknown_sum);
	cowtable_barrier(ctx);
	check_structure("end");
	CHECK(cowtable_count(&table) == 0, "invariant 1: %zu entries left at the end",
	      cowtable_count(&table));
	CHECK(pending_leaves() == 0,
	      "invariant 6: %lld retired leaves still pending after every barrier",
	      (long long)pending_leaves());
	if (cfg.mode == MODE_HOLDER) {
		uint64_t missing = 0;

		for (i = 0; i < POOL_FRAMES / 64; i++)
			missing += (uint64_t)popcount64(pool[i]);
		CHECK(missing == 0, "invariant 2: %llu frames never released",
		      (unsigned long long)missing);
	}
	cowtable_ctx_put(ctx);
}

/* Command line: no C library here, so a few small parsers. */
static bool streq(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

/* A decimal or 0x hexadecimal number, up to @end (or the string's end). */
static bool parse_u64(const char *s, uint64_t *v)
{
	unsigned int base = 10, d;
	uint64_t x = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9')
			d = (unsigned int)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned int)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned int)(*s - 'A' + 10);
		else
			return false;
		if (x > (UINT64_MAX - d) / base)
			return false;
		x = x * base + d;
	}
	*v = x;
	return true;
}

static bool parse_uint(const char *s, unsigned int *v)
{
	uint64_t x;

	if (!parse_u64(s, &x) || x > 0xffffffffu)
		return false;
	*v = (unsigned int)x;
	return true;
}

/* Seconds, with up to three decimals, as milliseconds. */
static bool parse_ms(const char *s, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0;
	unsigned int digits = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		whole = whole * 10 + (uint64_t)(*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			if (digits++ < 3)
				frac = frac * 10 + (uint64_t)(*s - '0');
	if (*s != '\0' || whole > 1000000000)
		return false;
	for (; digits < 3; digits++)
		frac *= 10;
	*ms = whole * 1000 + frac;
	return true;
}

/* mark:release:lookup:handoff[:range] */
static bool parse_mix(const char *s, unsigned int *mix)
{
	unsigned int i = 0;
	uint64_t x;

	for (i = 0; i < OP_COUNT; i++)
		mix[i] = 0;
	for (i = 0; i < OP_COUNT; i++) {
		for (x = 0; *s >= '0' && *s <= '9'; s++)
			x = x * 10 + (uint64_t)(*s - '0');
		if (x > 1000000)
			return false;
		mix[i] = (unsigned int)x;
		if (*s == '\0')
			return i >= 3;
		if (*s++ != ':')
			return false;
	}
	return false;
}

static void usage(void)
{
	tt_print("usage: cowtable_torture [--threads N] [--seconds S | --ops N | --histories N]\n");
	tt_print("  [--keys K] [--stride P] [--offset P] [--hot H] [--hot-pct P]\n");
	tt_print("  [--mix mark:release:lookup:handoff[:range]] [--mix-odd (odd workers' mix)]\n");
	tt_print("  [--mode holder|anon|lin]\n");
	tt_print("  [--frames 1|2] [--lin-ops N] [--broken none|stale-lookup|early-last]\n");
	tt_print("  [--seed S] [--alloc-fail N] [--stall-ms M] [--check-every S] [--watchdog S]\n");
	tt_print("  [--barrier-every N] [--keep-going 0|1]\n");
	tt_print("(in the kernel: insmod cowtable_torture.ko args=\"--mode anon --seconds 10\")\n");
}

static bool parse_one(const char *a, const char *v)
{
	unsigned int keep;

	if (streq(a, "--threads"))
		return parse_uint(v, &cfg.threads);
	if (streq(a, "--seconds"))
		return parse_ms(v, &cfg.ms);
	if (streq(a, "--ops") || streq(a, "--histories"))
		return parse_u64(v, &cfg.ops);
	if (streq(a, "--keys"))
		return parse_uint(v, &cfg.keys);
	if (streq(a, "--stride"))
		return parse_uint(v, &cfg.stride);
	if (streq(a, "--offset"))
		return parse_uint(v, &cfg.offset);
	if (streq(a, "--hot"))
		return parse_uint(v, &cfg.hot);
	if (streq(a, "--hot-pct"))
		return parse_uint(v, &cfg.hot_pct);
	if (streq(a, "--mix"))
		return parse_mix(v, cfg.mix);
	if (streq(a, "--mix-odd")) {
		cfg.split = true;
		return parse_mix(v, cfg.mix_odd);
	}
	if (streq(a, "--frames"))
		return parse_uint(v, &cfg.frames);
	if (streq(a, "--lin-ops"))
		return parse_uint(v, &cfg.lin_ops);
	if (streq(a, "--seed"))
		return parse_u64(v, &cfg.seed);
	if (streq(a, "--alloc-fail"))
		return parse_u64(v, &cfg.alloc_fail);
	if (streq(a, "--stall-ms"))
		return parse_uint(v, &cfg.stall_ms);
	if (streq(a, "--barrier-every"))
		return parse_u64(v, &cfg.barrier_every);
	if (streq(a, "--check-every"))
		return parse_ms(v, &cfg.check_every_ms);
	if (streq(a, "--watchdog"))
		return parse_ms(v, &cfg.watchdog_ms);
	if (streq(a, "--keep-going")) {
		if (!parse_uint(v, &keep))
			return false;
		cfg.keep_going = keep != 0;
		return true;
	}
	if (streq(a, "--mode")) {
		cfg.mode = streq(v, "holder") ? MODE_HOLDER
		           : streq(v, "anon") ? MODE_ANON
		                              : MODE_LIN;
		return streq(v, "holder") || streq(v, "anon") || streq(v, "lin");
	}
	if (streq(a, "--broken")) {
		cfg.broken = streq(v, "stale-lookup") ? BROKEN_STALE_LOOKUP
		             : streq(v, "early-last") ? BROKEN_EARLY_LAST
		                                      : BROKEN_NONE;
		return cfg.broken != BROKEN_NONE || streq(v, "none");
	}
	return false;
}

int torture_parse(int argc, char **argv, uint64_t default_seed, unsigned int default_threads)
{
	unsigned int total = 0, total_odd = 0;
	int i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.threads = default_threads;
	cfg.ms = 10000;
	cfg.keys = 4096;
	cfg.stride = 1;
	cfg.hot = 4;
	cfg.hot_pct = 50;
	cfg.mix[OP_MARK] = 30;
	cfg.mix[OP_RELEASE] = 30;
	cfg.mix[OP_LOOKUP] = 30;
	cfg.mix[OP_HANDOFF] = 10;
	cfg.mode = MODE_HOLDER;
	cfg.seed = default_seed;
	cfg.frames = 1;
	cfg.lin_ops = 3;
	cfg.check_every_ms = 2000;
	cfg.watchdog_ms = 30000;
	for (i = 1; i < argc; i += 2) {
		if (i + 1 >= argc || !parse_one(argv[i], argv[i + 1])) {
			tt_print("cowtable_torture: bad option %s %s\n", argv[i],
			         i + 1 < argc ? argv[i + 1] : "(no value)");
			usage();
			return -1;
		}
	}
	for (i = 0; i < OP_COUNT; i++) {
		if (!cfg.split)
			cfg.mix_odd[i] = cfg.mix[i];
		total += cfg.mix[i];
		total_odd += cfg.mix_odd[i];
	}
	if (cfg.mode == MODE_LIN) {
		cfg.hot = 0; /* every page of a history is hot */
		if (cfg.threads < 1 || cfg.threads > LIN_THREADS || cfg.keys > LIN_MAX_PAGES ||
		    cfg.lin_ops < 1 || cfg.lin_ops > LIN_CALLS ||
		    cfg.threads * cfg.lin_ops + 1 > LIN_MAX_OPS || cfg.mix[OP_HANDOFF] != 0 ||
		    cfg.mix_odd[OP_HANDOFF] != 0) {
			tt_print("cowtable_torture: lin mode takes 1 to %u threads, at most %u "
			         "keys, "
			         "1 to %u operations a thread, no hand-offs\n",
			         LIN_THREADS, LIN_MAX_PAGES, LIN_CALLS);
			return -1;
		}
	}
	if (cfg.threads < 1 || cfg.keys < 1 || cfg.keys > (1u << 20) || cfg.hot > cfg.keys ||
	    cfg.hot_pct > 100 || cfg.stride < 1 || cfg.stride > 4096 || cfg.offset > 1u << 20 ||
	    total == 0 || total_odd == 0 || cfg.frames < 1 || cfg.frames > 2 ||
	    (cfg.mode == MODE_HOLDER &&
	     (cfg.mix[OP_RANGE] != 0 || cfg.mix_odd[OP_RANGE] != 0 || cfg.frames != 1)) ||
	    (cfg.broken != BROKEN_NONE && cfg.mode != MODE_LIN)) {
		usage();
		return -1;
	}
	return 0;
}

static const char *mode_name(void)
{
	return cfg.mode == MODE_ANON ? "anon" : cfg.mode == MODE_LIN ? "lin" : "holder";
}

static void print_lin_stats(void)
{
	tt_print("linearizable: %llu histories (%llu%% with operations on a page overlapping), "
	         "%llu page histories (%llu%% overlapping), %llu operations\n",
	         (unsigned long long)lin_stats.histories,
	         (unsigned long long)(lin_stats.histories
	                                      ? 100 * lin_stats.overlapped / lin_stats.histories
	                                      : 0),
	         (unsigned long long)lin_stats.pages,
	         (unsigned long long)(lin_stats.pages
	                                      ? 100 * lin_stats.overlapping / lin_stats.pages
	                                      : 0),
	         (unsigned long long)lin_stats.ops);
	tt_print("results seen: mark 2 %llu, mark > 2 %llu, range marks %llu, EEXIST %llu, "
	         "EOVERFLOW %llu, ENOMEM %llu, SHARED %llu, LAST %llu, NOT_COW %llu, range "
	         "releases not LAST %llu, found %llu, not found %llu\n",
	         (unsigned long long)lin_stats.created, (unsigned long long)lin_stats.shared,
	         (unsigned long long)lin_stats.range_marks, (unsigned long long)lin_stats.eexist,
	         (unsigned long long)lin_stats.eoverflow, (unsigned long long)lin_stats.enomem,
	         (unsigned long long)lin_stats.released, (unsigned long long)lin_stats.lasts,
	         (unsigned long long)lin_stats.not_cow, (unsigned long long)lin_stats.some,
	         (unsigned long long)lin_stats.found, (unsigned long long)lin_stats.not_found);
	tt_print("checker: %llu searches, %llu states visited\n",
	         (unsigned long long)checker->searches, (unsigned long long)checker->nodes);
}

int torture_run(void)
{
	struct cowtable_allocator al = test_allocator(&alloc);
	uint64_t start, last_progress, last_print, next_check, t, ops, last_ops = 0, prev_ops = 0;
	int64_t pending, peak_pending = 0, lives = 0;
	unsigned int i;
	bool pass, joined;

	tt_print("cowtable torture: mode %s, %u threads, %s %llu, %u keys %u pages apart from page "
	         "%u (%u hot, %u%%), %u frames a page, mix %u:%u:%u:%u:%u, seed %llu, alloc-fail "
	         "1/%llu, stall %u ms, barrier every %llu ops, max level %d%s%s\n",
	         mode_name(), cfg.threads,
	         cfg.ops ? (cfg.mode == MODE_LIN ? "histories" : "ops/thread") : "run ms",
	         (unsigned long long)(cfg.ops ? cfg.ops : cfg.ms), cfg.keys, cfg.stride, cfg.offset,
	         cfg.hot, cfg.hot_pct, cfg.frames, cfg.mix[0], cfg.mix[1], cfg.mix[2], cfg.mix[3],
	         cfg.mix[4], (unsigned long long)cfg.seed, (unsigned long long)cfg.alloc_fail,
	         cfg.stall_ms, (unsigned long long)cfg.barrier_every, CT_MAX_LEVEL,
#ifdef CT_INJECT_DELAYS
	         ", injected delays",
#else
	         "",
#endif
	         cfg.broken == BROKEN_STALE_LOOKUP ? ", BROKEN: lookups answer stale values"
	         : cfg.broken == BROKEN_EARLY_LAST ? ", BROKEN: LAST from a count read early"
	                                           : "");
	if (cfg.split)
		tt_print("odd workers' mix %u:%u:%u:%u:%u\n", cfg.mix_odd[0], cfg.mix_odd[1],
		         cfg.mix_odd[2], cfg.mix_odd[3], cfg.mix_odd[4]);
	if (cfg.mode == MODE_LIN)
		tt_print("lin mode: %u operations a thread in each history, refs max %u\n",
		         cfg.lin_ops, (unsigned int)CT_REFS_MAX);
	alloc.fail_one_in = cfg.alloc_fail;
	if (!CHECK(cowtable_init(&table, &al) == 0, "set-up: cowtable_init"))
		return 2;
	workers = tt_zalloc(cfg.threads * sizeof(*workers));
	if (!CHECK(workers != NULL, "set-up: memory"))
		return 2;
	for (i = 0; i < cfg.threads; i++) {
		workers[i].id = i;
		workers[i].rng = cfg.seed * 0x9e3779b97f4a7c15ull + i;
		workers[i].tally = tt_zalloc(cfg.keys * sizeof(struct tally));
		if (!CHECK(workers[i].tally != NULL, "set-up: memory"))
			return 2;
	}
	if (cfg.mode == MODE_LIN) {
		checker = tt_zalloc(sizeof(*checker));
		if (!CHECK(checker != NULL, "set-up: memory"))
			return 2;
		lin_spec.refs_max = CT_REFS_MAX;
		lin_spec.enomem = cfg.alloc_fail != 0;
		lin_next_check = now_ms() + cfg.check_every_ms;
	}
	if (!CHECK(tt_start_workers(cfg.threads) == 0, "set-up: threads"))
		return 2;

	start = last_progress = last_print = now_ms();
	next_check = start + cfg.check_every_ms;
	while (!all_done() && !__atomic_load_n(&aborted, __ATOMIC_ACQUIRE)) {
		tt_sleep_ms(50);
		t = now_ms();
		pending = pending_leaves();
		if (pending > peak_pending)
			peak_pending = pending;
		if (cfg.ops == 0 && t - start >= cfg.ms)
			__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		ops = total_ops();
		if (ops != prev_ops) {
			prev_ops = ops;
			last_progress = t;
		} else if (t - last_progress > cfg.watchdog_ms) {
			__atomic_store_n(&cfg.keep_going, 0, __ATOMIC_RELAXED);
			CHECK(t - last_progress <= cfg.watchdog_ms,
			      "invariant 7: no operation completed for %llu s: livelock or "
			      "deadlock",
			      (unsigned long long)(cfg.watchdog_ms / 1000));
			break;
		}
		if (t - last_print >= 1000) {
			last_print = t;
			tt_print("[%4llus] %10llu ops/s, %8zu live entries, %7lld pending leaves "
			         "(peak "
			         "%lld), %lu failures\n",
			         (unsigned long long)((t - start) / 1000),
			         (unsigned long long)(ops - last_ops), cowtable_count(&table),
			         (long long)pending, (long long)peak_pending, check_failures());
			if (cfg.mode == MODE_LIN)
				tt_print("[%4llus] %llu histories linearizable\n",
				         (unsigned long long)((t - start) / 1000),
				         (unsigned long long)__atomic_load_n(&lin_stats.histories,
				                                             __ATOMIC_RELAXED));
			last_ops = ops;
		}
		if (cfg.mode != MODE_LIN && cfg.check_every_ms > 0 && t >= next_check &&
		    !all_done()) {
			pause_all();
			if (__atomic_load_n(&aborted, __ATOMIC_ACQUIRE))
				break;
			check_structure("quiescent point");
			resume_all();
			next_check = now_ms() + cfg.check_every_ms;
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&pause_wanted, 0, __ATOMIC_RELEASE);
	joined = tt_join_workers(cfg.watchdog_ms + 10000);
	if (!joined) {
		__atomic_store_n(&cfg.keep_going, 0, __ATOMIC_RELAXED);
		CHECK(joined, "invariant 7: workers did not finish: livelock or deadlock");
	}
	if (__atomic_load_n(&aborted, __ATOMIC_ACQUIRE)) {
		/* The kernel, after its first failure: the table is left as it is. */
		return 1;
	}
	t = now_ms() - start;
	ops = total_ops();
	alloc.fail_one_in = 0;
	final_checks(&lives);
	cowtable_fini(&table);
	test_alloc_balanced(&alloc, "invariant 4: the torture's table");
	if (cfg.mode == MODE_LIN)
		print_lin_stats();
	for (i = 0; i < cfg.threads; i++)
		tt_free(workers[i].tally);
	tt_free(workers);
	tt_free(checker);
	pass = check_failures() == 0;
	tt_print("VERDICT: %s: %llu ops in %llu.%03llu s (%llu ops/s), %lld entry lifetimes, "
	         "peak %lld pending leaves, %llu allocations failed on purpose, %lu failures, "
	         "seed %llu\n",
	         pass ? "PASS" : "FAIL", (unsigned long long)ops, (unsigned long long)(t / 1000),
	         (unsigned long long)(t % 1000), (unsigned long long)(t ? ops * 1000 / t : 0),
	         (long long)lives, (long long)peak_pending, (unsigned long long)alloc.failures,
	         check_failures(), (unsigned long long)cfg.seed);
	return pass ? 0 : 1;
}
