/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What every GenMC scenario shares (docs/verification.md).
 *
 * The library's own sources are compiled here, in the scenario's one
 * translation unit, with the __atomic mapping of src/ct_atomic.h
 * (COWTABLE_ATOMIC_BUILTINS) and the ck_epoch model of ./ck_epoch.h.  On top
 * of them:
 *
 *  - an allocator that counts, per thread, what it hands out and takes back,
 *    and that poisons a leaf before freeing it: every word of it gets
 *    GM_POISON with a store of the word's own size and kind.  Under RC11
 *    GenMC itself reports an access racing with the free; under IMM, which
 *    has no notion of a race, the poison is what a late reader trips over;
 *  - ct_verify_leaf() and ct_verify_node(), called by every search for every
 *    leaf and index node it touches (CT_VERIFY_HOOKS): neither may be
 *    poisoned;
 *  - tower heights chosen by the scenario (gm_height());
 *  - checks of the quiescent table after the threads are joined: the
 *    structure (sorted levels, nothing frozen reachable, upper levels
 *    inside level 0, live leaves linked at every level of their tower), H
 *    on every linked leaf, every retired leaf dead, unlinked and retired
 *    once, the index sound and holding every linked leaf, and the
 *    allocator balanced against what is linked, indexed, pending or cached.
 *
 * The scripts build without the leaf cache (CT_CACHE_LEAVES=0), so that a
 * freed leaf is freed and poisoned; a scenario about the cache turns it on,
 * and then a leaf reused too early is no poison but another block's leaf,
 * which only its assertions on values can catch under IMM.
 */
#ifndef GM_HARNESS_H
#define GM_HARNESS_H

#ifndef COWTABLE_ATOMIC_BUILTINS
#error "build the scenarios with -DCOWTABLE_ATOMIC_BUILTINS (scripts/genmc.sh)"
#endif
#ifndef CT_VERIFY_HOOKS
#error "build the scenarios with -DCT_VERIFY_HOOKS (scripts/genmc.sh)"
#endif

#include <assert.h>
#include <genmc.h>
#include <pthread.h>
#include <stdlib.h>

#include "../../src/index.c"
#include "../../src/leaf.c"
#include "../../src/range.c"
#include "../../src/reclaim.c"
#include "../../src/skiplist.c"
#include "../../src/table.c"

#define GM_POISON     0xdbdbdbdbdbdbdbdbull
#define GM_POISON32   0xdbdbdbdbu
#define GM_THREADS    4  /* main and up to three threads */
#define GM_SEEN       16 /* retired or cached leaves and nodes, at most */
#define GM_PAGE(b, k) ((uintptr_t)(b)*CT_BLOCK_SIZE + (uintptr_t)(k)*COWTABLE_PAGE_SIZE)

/* Per thread, so that counting adds nothing to explore: summed after joins. */
static long gm_allocs[GM_THREADS], gm_frees[GM_THREADS];

static unsigned int gm_self(void)
{
	long id = (long)pthread_self();

	assert(id >= 0 && id < GM_THREADS);
	return (unsigned int)id;
}

#ifdef GM_STATIC_POOL
/*
 * A scenario may take its memory from a static pool instead of malloc():
 * each thread bumps through its own part, and a free poisons but never
 * reuses.  The pool is zero until written, and no leaf or node has a zero
 * state once initialised, so the verify hooks take a zero state for memory
 * read before its initialisation was visible.
 */
#define GM_POOL_BYTES 4096
static _Alignas(64) unsigned char gm_pool[GM_THREADS][GM_POOL_BYTES];
static size_t gm_pool_used[GM_THREADS];

static void *gm_alloc(size_t size, void *arg)
{
	unsigned int self = gm_self();
	void *p = &gm_pool[self][gm_pool_used[self]];

	(void)arg;
	gm_allocs[self]++;
	gm_pool_used[self] += (size + 15) & ~(size_t)15;
	assert(gm_pool_used[self] <= GM_POOL_BYTES);
	return p;
}
#define gm_release(p) ((void)(p))
#else
static void *gm_alloc(size_t size, void *arg)
{
	(void)arg;
	gm_allocs[gm_self()]++;
	return malloc(size);
}
#define gm_release(p) free(p)
#endif

/* A leaf's size for @height, or 0 if @size is no leaf's (the head, a context). */
static unsigned int gm_leaf_height_of(size_t size)
{
	unsigned int h;

	for (h = 1; h <= CT_MAX_LEVEL; h++)
		if (size == ct_leaf_size(h))
			return h;
	return 0;
}

static void gm_free(void *p, size_t size, void *arg)
{
	unsigned int h = gm_leaf_height_of(size), i;
	struct ct_leaf *l;
	struct ct_node *n;

	(void)arg;
	if (size == sizeof(struct ct_node)) {
		n = (struct ct_node *)p;
		__atomic_store_n(&n->base, (uintptr_t)GM_POISON, __ATOMIC_RELAXED);
		__atomic_store_n(&n->holds, GM_POISON32, __ATOMIC_RELAXED);
		__atomic_store_n(&n->state, GM_POISON32, __ATOMIC_RELAXED);
		for (i = 0; i < CT_NODE_ENTRIES; i++)
			__atomic_store_n(&n->entry[i], (uintptr_t)GM_POISON, __ATOMIC_RELAXED);
	} else if (h != 0) {
		l = (struct ct_leaf *)(void *)((uintptr_t *)p + h);
		/* What a free means to anybody still reading the leaf. */
		for (i = 0; i < h; i++)
			__atomic_store_n(ct_next(l, i), (uintptr_t)GM_POISON, __ATOMIC_RELAXED);
		__atomic_store_n(&l->key, (uintptr_t)GM_POISON, __ATOMIC_RELAXED);
		__atomic_store_n(&l->holds, GM_POISON32, __ATOMIC_RELAXED);
		__atomic_store_n(&l->state, GM_POISON32, __ATOMIC_RELAXED);
		for (i = 0; i < CT_LEAF_PAGES; i++)
			__atomic_store_n(&l->slot[i], GM_POISON, __ATOMIC_RELAXED);
	}
	gm_frees[gm_self()]++;
	gm_release(p);
}

static const struct cowtable_allocator gm_allocator = {
        .alloc = gm_alloc,
        .free = gm_free,
        .arg = NULL,
};

/* CT_VERIFY_HOOKS: every leaf a search touches is still allocated. */
void ct_verify_leaf(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	(void)ctx;
	assert(__atomic_load_n(&l->key, __ATOMIC_RELAXED) != (uintptr_t)GM_POISON);
#ifdef GM_STATIC_POOL
	assert(__atomic_load_n(&l->state, __ATOMIC_RELAXED) != 0);
#endif
}

/* CT_VERIFY_HOOKS: every index node a descent touches is still allocated. */
void ct_verify_node(struct cowtable_ctx *ctx, struct ct_node *n)
{
	(void)ctx;
	assert(__atomic_load_n(&n->base, __ATOMIC_RELAXED) != (uintptr_t)GM_POISON);
#ifdef GM_STATIC_POOL
	assert(__atomic_load_n(&n->state, __ATOMIC_RELAXED) != 0);
#endif
}

/* CT_VERIFY_HOOKS: a retired node about to be freed is dead (N1): no hold, every entry 0. */
void ct_verify_dead_node(struct cowtable_ctx *ctx, struct ct_node *n)
{
	unsigned int i;

	(void)ctx;
	assert(ct_load_u32(&n->holds) == 0);
	for (i = 0; i < CT_NODE_ENTRIES; i++)
		assert(ct_load_word(&n->entry[i]) == 0);
}

/* CT_VERIFY_HOOKS: a retired leaf about to be freed is dead (H): no hold, every slot 0. */
void ct_verify_dead(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	unsigned int k;

	(void)ctx;
	assert(ct_load_u32(&l->holds) == 0);
	for (k = 0; k < CT_LEAF_PAGES; k++)
		assert(ct_load_slot(&l->slot[k]) == 0);
}

/*
 * The next leaf @ctx builds gets a tower of @height, and the four after it
 * towers of 1: a seed of the context's xorshift generator whose next step
 * has 2 * (height - 1) low zero bits and then a non-zero pair (CT_P_SHIFT
 * 2), and whose four steps after that have a non-zero low pair.
 */
static void gm_height(struct cowtable_ctx *ctx, unsigned int height)
{
	static const uint64_t seed[] = {0xcc623af8783354e7ull, 0x78dde6e5fd29f054ull,
	                                0x363068020996f1b3ull, 0xd843d6334b90d7afull,
	                                0x72cf677657a793e7ull};

	unsigned int i;

	assert(CT_P_SHIFT == 2 && height >= 1 && height <= 5 && height <= CT_MAX_LEVEL);
	ctx->rng = seed[height - 1];
	assert(ct_random_height(ctx) == height);
	for (i = 0; i < 4; i++)
		assert(ct_random_height(ctx) == 1);
	ctx->rng = seed[height - 1];
}

static struct cowtable gm_table;
static struct cowtable_ctx *gm_ctx[GM_THREADS];
static unsigned int gm_nctx;

/* The table and @n contexts, set up before any thread starts; towers of 1. */
static void gm_init(unsigned int n)
{
	unsigned int i;

	assert(cowtable_init(&gm_table, &gm_allocator) == 0);
	for (i = 0; i < n; i++) {
		gm_ctx[i] = cowtable_ctx_get(&gm_table);
		assert(gm_ctx[i] != NULL);
	}
	gm_nctx = n;
	for (i = 0; i < n; i++)
		gm_height(gm_ctx[i], 1);
}

/* After the joins: the page's slot as a lookup sees it (0: untracked). */
static uint64_t gm_slot(uintptr_t page)
{
	cowtable_frame_t frame;
	uint32_t refs;

	if (!cowtable_lookup(gm_ctx[0], page, &frame, &refs))
		return 0;
	return ct_slot_make(frame, refs);
}

/*
 * After the joins: the structure is sound and every linked leaf satisfies H
 * with nothing in flight (holds == tracked slots >= 1).  Returns the number
 * of leaves linked at level 0.
 */
static unsigned int gm_check_structure(void)
{
	struct ct_table *t = ct_table_of(&gm_table);
	struct ct_leaf *l, *m;
	unsigned int n = 0, i, k, tracked;
	uintptr_t w;

	for (i = 0; i < CT_MAX_LEVEL; i++) {
		for (l = ct_ptr(ct_load_word(ct_next(t->head, i))); l != NULL; l = m) {
			w = ct_load_word(ct_next(l, i));
			assert((w & CT_FROZEN) == 0); /* nothing frozen stays reachable */
			assert(ct_leaf_height(l) > i);
			m = ct_ptr(w);
			assert(m == NULL || m->key > l->key); /* sorted, one leaf per block */
			if (i == 0) {
				n++;
				tracked = 0;
				for (k = 0; k < CT_LEAF_PAGES; k++)
					tracked += ct_load_slot(&l->slot[k]) != 0;
				assert(tracked >= 1 && ct_load_u32(&l->holds) == tracked); /* H */
				/* A live leaf's linker finished: linked at every level of its
				 * tower. */
				for (k = 1; k < ct_leaf_height(l); k++) {
					for (m = ct_ptr(ct_load_word(ct_next(t->head, k))); m != l;
					     m = ct_ptr(ct_load_word(ct_next(m, k))))
						assert(m != NULL);
				}
				m = ct_ptr(w);
			} else {
				/* Upper levels are sublists of level 0. */
				for (m = ct_ptr(ct_load_word(ct_next(t->head, 0))); m != l;
				     m = ct_ptr(ct_load_word(ct_next(m, 0))))
					assert(m != NULL);
				m = ct_ptr(w);
			}
		}
	}
	return n;
}

/* Whether @l is linked at level 0. */
static bool gm_linked(struct ct_leaf *l)
{
	struct ct_table *t = ct_table_of(&gm_table);
	struct ct_leaf *m;

	for (m = ct_ptr(ct_load_word(ct_next(t->head, 0))); m != NULL;
	     m = ct_ptr(ct_load_word(ct_next(m, 0))))
		if (m == l)
			return true;
	return false;
}

/* The leaf the index holds for @page's block, walked from the root; NULL if none. */
static struct ct_leaf *gm_index_leaf(uintptr_t page)
{
	struct ct_node *n = (struct ct_node *)ct_load_word(&ct_table_of(&gm_table)->index);
	uintptr_t b = ct_block_number(page);
	unsigned int h;

	if (n == NULL || !ct_node_covers(ct_node_height(n), b))
		return NULL;
	for (h = ct_node_height(n); h > 1 && n != NULL; h--)
		n = (struct ct_node *)ct_load_word(&n->entry[ct_node_index(h, b)]);
	return n != NULL ? (struct ct_leaf *)ct_load_word(&n->entry[ct_node_index(1, b)]) : NULL;
}

/*
 * After the joins: the index below @n (height @h, first block @base) is
 * sound (K, N1-N3): every node live with as many holds as non-zero entries,
 * of the height and base its place says, every entry of a bottom node a
 * leaf of its block linked at level 0.  Returns the number of nodes.
 */
static long gm_check_node(struct ct_node *n, unsigned int h, uintptr_t base, long *leaves)
{
	unsigned int i, used = 0;
	long nodes = 1;
	uintptr_t e, b;

	assert(ct_node_height(n) == h && n->base == base);
	for (i = 0; i < CT_NODE_ENTRIES; i++) {
		e = ct_load_word(&n->entry[i]);
		if (e == 0)
			continue;
		used++;
		b = base + ((uintptr_t)i << ((h - 1) * CT_NODE_SHIFT));
		if (h > 1) {
			nodes += gm_check_node((struct ct_node *)e, h - 1, b, leaves);
			continue;
		}
		assert(ct_block_number(((struct ct_leaf *)e)->key) == b);
		assert(gm_linked((struct ct_leaf *)e));
		(*leaves)++;
	}
	assert(used >= 1 && ct_load_u32(&n->holds) == used);
	return nodes;
}

/*
 * After the joins: the index is sound and holds every one of the @linked
 * leaves (no allocation fails here, so no setter gave up).  Returns the
 * number of its nodes.
 */
static long gm_check_index(unsigned int linked)
{
	struct ct_node *top = (struct ct_node *)ct_load_word(&ct_table_of(&gm_table)->index);
	long leaves = 0, nodes = 0;

	if (top != NULL)
		nodes = gm_check_node(top, ct_node_height(top), 0, &leaves);
	assert(leaves == (long)linked);
	return nodes;
}

/* After the joins: the leaves of a batch, each dead (H) and unlinked; returns how many. */
static long gm_check_batch(struct cowtable_ctx *ctx, struct ct_batch *b, struct ct_leaf **seen,
                           long nseen)
{
	struct ct_leaf *l = b->head, *m;
	struct ct_table *t = ct_table_of(&gm_table);
	uint32_t i;
	long j;

	for (i = 0; i < b->n; i++, l = l->link) {
		assert(l != NULL);
		for (j = 0; j < nseen; j++)
			assert(seen[j] != l); /* retired once */
		seen[nseen + (long)i] = l;
		if (ct_load_u32(&l->state) & CT_NODE) {
			/* Unreachable: dead, so no entry of a live node points at it. */
			ct_verify_dead_node(ctx, (struct ct_node *)(void *)l);
			continue;
		}
		ct_verify_dead(ctx, l);
		for (m = ct_ptr(ct_load_word(ct_next(t->head, 0))); m != NULL;
		     m = ct_ptr(ct_load_word(ct_next(m, 0))))
			assert(m != l); /* unreachable */
	}
	assert(l == NULL);
	return (long)b->n;
}

/*
 * After the joins: the leaves in @ctx's cache (CT_CACHE_LEAVES), each of the
 * height it is filed under, unreachable, and neither pending nor cached
 * twice; returns how many.
 */
static long gm_check_cache(struct cowtable_ctx *ctx, struct ct_leaf **seen, long nseen)
{
	struct ct_table *t = ct_table_of(&gm_table);
	struct ct_leaf *l, *m;
	unsigned int h;
	long n = 0, j;

	for (h = 1; h <= CT_CACHE_HEIGHTS; h++) {
		for (l = ctx->cache[h - 1]; l != NULL; l = l->link, n++) {
			assert(ct_leaf_height(l) == h);
			for (j = 0; j < nseen + n; j++)
				assert(seen[j] != l);
			for (m = ct_ptr(ct_load_word(ct_next(t->head, 0))); m != NULL;
			     m = ct_ptr(ct_load_word(ct_next(m, 0))))
				assert(m != l);
			assert(nseen + n < GM_SEEN);
			seen[nseen + n] = l;
		}
	}
	assert(n == (long)ctx->cache_n);
	return n;
}

/*
 * After the joins: the allocator holds exactly the head, the contexts, the
 * linked leaves, the index's nodes, the retired leaves and nodes not yet
 * freed, each of them retired once, dead and unlinked, and the cached
 * leaves.  A leaf never
 * retired, or retired twice, fails.
 */
static void gm_check_memory(unsigned int linked)
{
	struct ct_leaf *seen[GM_SEEN];
	long allocs = 0, frees = 0, retired = 0, pending = 0, cached = 0;
	unsigned int i, k;

	for (i = 0; i < gm_nctx; i++) {
		for (k = 0; k < gm_ctx[i]->nsealed; k++)
			retired += gm_check_batch(gm_ctx[i], &gm_ctx[i]->sealed[k], seen, retired);
		retired += gm_check_batch(gm_ctx[i], &gm_ctx[i]->open, seen, retired);
		pending += gm_ctx[i]->pending;
		assert(retired <= GM_SEEN);
	}
	assert(pending == retired);
	for (i = 0; i < gm_nctx; i++)
		cached += gm_check_cache(gm_ctx[i], seen, retired + cached);
	for (i = 0; i < GM_THREADS; i++) {
		allocs += gm_allocs[i];
		frees += gm_frees[i];
	}
	assert(allocs - frees ==
	       1 + (long)gm_nctx + (long)linked + gm_check_index(linked) + retired + cached);
}

/* The final checks every scenario makes. */
static void gm_check_final(void)
{
#ifndef GM_NO_FINAL
	gm_check_memory(gm_check_structure());
#endif
}

#endif /* GM_HARNESS_H */
