// SPDX-License-Identifier: BSD-2-Clause
/*
 * Leaf and node memory: epoch sections, allocation and the per-context leaf
 * cache, retire batches (leaves and index nodes), and their reclamation
 * three epoch advances after they were sealed.  cowtable files no ck_epoch
 * callbacks: it uses ck_epoch for sections, for advancing the global epoch
 * and for grace periods, and keeps its own sealed batches so that it can
 * state, and check, the bound in docs/design.md ("Reclamation").
 */
#include "ct_internal.h"

void ct_enter(struct cowtable_ctx *ctx)
{
	ck_epoch_begin(&ctx->record, NULL);
#ifdef CT_STRESS_CHECKS
	ctx->entered = ctx->record.epoch; /* our own record: CT_LATE_EPOCH may move it */
#endif
#ifdef CT_INJECT_DELAYS
	ctx->late_epoch_armed = 1;
#endif
}

void ct_exit(struct cowtable_ctx *ctx)
{
	/* For ThreadSanitizer: this section's reads happen before any later free. */
	ct_tsan_release(&ctx->record);
	ck_epoch_end(&ctx->record, NULL);
}

static void *ct_alloc(struct ct_table *t, size_t size)
{
	return t->alloc.alloc(size, t->alloc.arg);
}

static void ct_free(struct ct_table *t, void *p, size_t size)
{
	t->alloc.free(p, size, t->alloc.arg);
}

/* Epochs from @then to @now; the counter wraps, and a seal may read a later one. */
static int32_t ct_epochs_since(uint32_t then, uint32_t now)
{
	return (int32_t)(now - then);
}

#ifdef CT_STRESS_CHECKS
void ct_stamp(struct ct_leaf *l, uint64_t stamp)
{
	ct_store_u64(&l->stamp, stamp);
}

void ct_violation(struct ct_table *t, uint32_t check, uint64_t stamp)
{
	ct_inc_stat(&t->violations);
	ct_store_u64(&t->last_stamp, stamp);
	ct_store_u32(&t->last_check, check);
}

void ct_check_leaf(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	uint64_t stamp = ct_load_u64(&l->stamp);

	if (stamp == CT_STAMP_LIVE)
		return;
	/* Retired in epoch e: only a section that began in epoch e or earlier may see it. */
	if ((stamp & 0xffffffff00000000ull) == CT_STAMP_RETIRED &&
	    (int32_t)(ctx->entered - (uint32_t)stamp) <= 0)
		return;
	ct_violation(ctx->table, CT_CHECK_STAMP, stamp);
}

/* A retired leaf about to be freed must be dead: no hold, every slot 0 (H). */
static void ct_check_dead(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	unsigned int k;
	bool dead = ct_load_u32(&l->holds) == 0;

	for (k = 0; k < CT_LEAF_PAGES; k++)
		dead = dead && ct_load_slot(&l->slot[k]) == 0;
	if (!dead)
		ct_violation(ctx->table, CT_CHECK_DEAD, l->key);
}

/*
 * The bound, after a poll that read epoch @e: every sealed batch is from
 * epoch e - 2, e - 1 or e, and the open batch is small unless every slot is
 * sealed.
 */
static void ct_check_bound(struct cowtable_ctx *ctx, uint32_t e)
{
	uint32_t i;

	for (i = 0; i < ctx->nsealed; i++)
		if (ct_epochs_since(ctx->sealed[i].epoch, e) >= 3)
			ct_violation(ctx->table, CT_CHECK_BOUND, ctx->sealed[i].epoch);
	if (ctx->open.n >= CT_BATCH_LEAVES && ctx->nsealed < CT_SEALED_BATCHES)
		ct_violation(ctx->table, CT_CHECK_BOUND, ctx->open.n);
}
#define CT_CHECK_DEAD(ctx, l)  ct_check_dead(ctx, l)
#define CT_CHECK_BOUND(ctx, e) ct_check_bound(ctx, e)
#elif defined(CT_VERIFY_HOOKS)
#define CT_CHECK_DEAD(ctx, l)  ct_verify_dead(ctx, l)
#define CT_CHECK_BOUND(ctx, e) ((void)0)
#else
#define CT_CHECK_DEAD(ctx, l)  ((void)0)
#define CT_CHECK_BOUND(ctx, e) ((void)0)
#endif

/* A leaf of @height from the context's cache or the allocator; NULL if that failed. */
struct ct_leaf *ct_leaf_alloc(struct cowtable_ctx *ctx, unsigned int height)
{
	struct ct_leaf *l = height <= CT_CACHE_HEIGHTS ? ctx->cache[height - 1] : NULL;
	char *raw;

	if (l != NULL) {
		ctx->cache[height - 1] = l->link;
		ctx->cache_n--;
	} else {
		raw = ct_alloc(ctx->table, ct_leaf_size(height));
		if (raw == NULL)
			return NULL;
		l = (struct ct_leaf *)(void *)(raw + height * sizeof(uintptr_t));
	}
	CT_STAMP(l, CT_STAMP_LIVE);
	return l;
}

/* Give a leaf nobody can reach any more to the cache, or back to the allocator. */
void ct_leaf_free(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	/* A variable: -Wtype-limits rejects "< 0" in a build without a cache. */
	static const uint32_t cache_leaves = CT_CACHE_LEAVES;
	unsigned int height = ct_leaf_height(l);

	if (height <= CT_CACHE_HEIGHTS && ctx->cache_n < cache_leaves) {
		CT_STAMP(l, CT_STAMP_CACHED);
		l->link = ctx->cache[height - 1];
		ctx->cache[height - 1] = l;
		ctx->cache_n++;
		return;
	}
	ct_free(ctx->table, (uintptr_t *)(void *)l - height, ct_leaf_size(height));
}

/* A node from the allocator (nodes are not cached); NULL if that failed. */
struct ct_node *ct_node_alloc(struct cowtable_ctx *ctx)
{
	struct ct_node *n = ct_alloc(ctx->table, sizeof(struct ct_node));

	if (n != NULL)
		CT_STAMP_NODE(n, CT_STAMP_LIVE);
	return n;
}

/* Give a node nobody can reach any more back to the allocator. */
void ct_node_free(struct ct_table *t, struct ct_node *n)
{
	ct_free(t, n, sizeof(*n));
}

#ifdef CT_STRESS_CHECKS
/* A retired node about to be freed must be dead: no hold, every entry 0 (N1). */
static void ct_check_dead_node(struct cowtable_ctx *ctx, struct ct_node *n)
{
	unsigned int i;
	bool dead = ct_load_u32(&n->holds) == 0;

	for (i = 0; i < CT_NODE_ENTRIES; i++)
		dead = dead && ct_load_word(&n->entry[i]) == 0;
	if (!dead)
		ct_violation(ctx->table, CT_CHECK_DEAD, n->base);
}
#define CT_CHECK_DEAD_NODE(ctx, n) ct_check_dead_node(ctx, n)
#elif defined(CT_VERIFY_HOOKS)
#define CT_CHECK_DEAD_NODE(ctx, n) ct_verify_dead_node(ctx, n)
#else
#define CT_CHECK_DEAD_NODE(ctx, n) ((void)0)
#endif

/* Free a batch of retired leaves and nodes whose grace period has passed. */
static void ct_free_batch(struct cowtable_ctx *ctx, struct ct_batch *b)
{
	struct ct_leaf *l, *next;

#ifdef CT_TSAN
	struct cowtable_ctx *c;

	/* For ThreadSanitizer: every section that could have seen them has ended. */
	for (c = ct_load_ptr(&ctx->table->contexts); c != NULL; c = c->next)
		ct_tsan_acquire(&c->record);
#endif
	for (l = b->head; l != NULL; l = next) {
		next = l->link;
		if (ct_load_u32(&l->state) & CT_NODE) {
			CT_CHECK_DEAD_NODE(ctx, (struct ct_node *)(void *)l);
			ct_node_free(ctx->table, (struct ct_node *)(void *)l);
			continue;
		}
		CT_CHECK_DEAD(ctx, l);
		ct_leaf_free(ctx, l);
	}
	ct_store_stat(&ctx->pending, ct_load_stat(&ctx->pending) - b->n);
	b->head = NULL;
	b->n = 0;
}

/*
 * @l is dead and unreachable, at every level of the list (R) and from the
 * index (K): free it after a grace period.  Section: required (the caller
 * just unlinked it).
 */
void ct_retire(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
#ifdef CT_BROKEN_NO_GRACE
	/* Broken control: free at once, while readers may still hold the leaf. */
	ct_free(ctx->table, (uintptr_t *)(void *)l - ct_leaf_height(l),
	        ct_leaf_size(ct_leaf_height(l)));
	return;
#endif
	CT_STAMP(l, CT_STAMP_RETIRED | ct_load_u32(&ctx->table->epoch.epoch));
	l->link = ctx->open.head;
	ctx->open.head = l;
	ctx->open.n++;
	ct_store_stat(&ctx->pending, ct_load_stat(&ctx->pending) + 1);
}

/*
 * @n is dead and unlinked from the index (N2): free it after a grace period,
 * in the batch that takes leaves.  Section: required.
 */
void ct_retire_node(struct cowtable_ctx *ctx, struct ct_node *n)
{
	struct ct_leaf *as_leaf = (struct ct_leaf *)(void *)n; /* the same header words */

	CT_STAMP_NODE(n, CT_STAMP_RETIRED | ct_load_u32(&ctx->table->epoch.epoch));
	as_leaf->link = ctx->open.head;
	ctx->open.head = as_leaf;
	ctx->open.n++;
	ct_store_stat(&ctx->pending, ct_load_stat(&ctx->pending) + 1);
}

#ifdef CT_BROKEN_LATE_FREE
/* Broken control: sealed batches wait one epoch longer than the bound says. */
#define CT_GRACE_EPOCHS 4
#elif defined(CT_BROKEN_TWO_EPOCHS)
/*
 * Broken control (verify/genmc, grace_poller): the rule ck_epoch's own
 * deferral uses, two advances; on weakly ordered CPUs a section may load a
 * leaf before it reads the epoch it records, so two are not enough.
 */
#define CT_GRACE_EPOCHS 2
#elif defined(CT_BROKEN_EARLY_FREE)
/* Broken control (verify/genmc): sealed batches are freed after one advance. */
#define CT_GRACE_EPOCHS 1
#elif !defined(CT_GRACE_EPOCHS)
/* Epoch advances after its seal before a batch is freed (design.md, "Reclamation"). */
#define CT_GRACE_EPOCHS 3
#endif

/*
 * The one rule (design.md, "Reclamation", rule G): a sealed batch is freed,
 * or its leaves recycled through the cache, only when @e, an epoch read
 * after its seal, is CT_GRACE_EPOCHS or more past the epoch it was sealed
 * at, or when @grace says that no section could have begun before its seal
 * and still be running.  Every retired leaf leaves through here.
 */
static void ct_free_expired(struct cowtable_ctx *ctx, uint32_t e, bool grace)
{
	uint32_t i, kept = 0;

	for (i = 0; i < ctx->nsealed; i++) {
		if (grace || ct_epochs_since(ctx->sealed[i].epoch, e) >= CT_GRACE_EPOCHS) {
			ct_free_batch(ctx, &ctx->sealed[i]);
			continue;
		}
		/* Field by field: no struct copies, which model checkers reject. */
		ctx->sealed[kept].head = ctx->sealed[i].head;
		ctx->sealed[kept].n = ctx->sealed[i].n;
		ctx->sealed[kept].epoch = ctx->sealed[i].epoch;
		kept++;
	}
	ctx->nsealed = kept;
}

/*
 * Let the global epoch advance, then free the sealed batches that rule G
 * allows.  Returns the epoch it read.
 */
static uint32_t ct_poll(struct cowtable_ctx *ctx)
{
	ck_epoch_t *epoch = &ctx->table->epoch;
	uint32_t before = ck_epoch_value(epoch), e;
	bool grace;

	/*
	 * True when the epoch advanced or, without an advance, when no section
	 * was running (we file no callbacks, so it never reclaims anything).
	 * Only the second is a grace period for every batch sealed before it.
	 */
	grace = ck_epoch_poll(&ctx->record);
	e = ck_epoch_value(epoch);
	ct_free_expired(ctx, e, grace && e == before);
	return e;
}

/* Stamp the open batch with the global epoch and move it to a sealed slot. */
static void ct_seal(struct cowtable_ctx *ctx)
{
	struct ct_batch *b = &ctx->sealed[ctx->nsealed++];

	/*
	 * The unlinks of the batch's leaves must be visible before the epoch
	 * is read, or a weakly ordered CPU could stamp it with an epoch that a
	 * reader holding one of them has already left.
	 */
#ifndef CT_BROKEN_SEAL_NO_FENCE /* broken control (verify/genmc): no fence */
	ct_fence_full();
#endif
	b->head = ctx->open.head;
	b->n = ctx->open.n;
	b->epoch = ck_epoch_value(&ctx->table->epoch);
	ctx->open.head = NULL;
	ctx->open.n = 0;
}

/*
 * Poll, then seal the open batch if a slot is free.  The open batch keeps
 * growing while all CT_SEALED_BATCHES are in use: retiring never needs
 * memory and never waits.
 */
void cowtable_reclaim(struct cowtable_ctx *ctx)
{
	uint32_t e = ct_poll(ctx);

	if (ctx->open.n > 0 && ctx->nsealed < CT_SEALED_BATCHES)
		ct_seal(ctx);
	CT_CHECK_BOUND(ctx, e);
	(void)e;
	ctx->reclaim_at = ctx->open.n + CT_BATCH_LEAVES;
	ctx->poll_in = CT_POLL_CALLS;
}

/*
 * After each mark, release and range section: poll and seal every
 * CT_BATCH_LEAVES retired leaves, and every CT_POLL_CALLS calls while leaves
 * are pending, so that a context that stops retiring still frees its
 * backlog (design.md, "The bound the code gives").
 */
void ct_maybe_reclaim(struct cowtable_ctx *ctx)
{
	if (ctx->open.n >= ctx->reclaim_at)
		cowtable_reclaim(ctx);
#ifndef CT_BROKEN_NO_IDLE_POLL /* broken control (tests/test_reclaim.c): a backlog stays */
	else if ((ctx->nsealed > 0 || ctx->open.n > 0) && --ctx->poll_in == 0)
		cowtable_reclaim(ctx);
#endif
}

#ifndef CT_BROKEN_BARRIER_TWO_ADVANCES
/*
 * Wait, reading only, until a poll can make progress: the global epoch is
 * no longer @e, or no context is inside a section at an epoch other than @e
 * (the next poll then advances it).  Every record of the table's epoch is a
 * context's, so the context list is the list of records.
 */
static void ct_wait_for_progress(struct cowtable_ctx *ctx, uint32_t e)
{
	ck_epoch_t *epoch = &ctx->table->epoch;
	struct cowtable_ctx *c;

	for (c = ct_load_ptr(&ctx->table->contexts); c != NULL; c = c->next)
		while (ct_load_u32(&c->record.active) != 0 && ct_load_u32(&c->record.epoch) != e &&
		       ck_epoch_value(epoch) == e)
			ct_relax();
}

void cowtable_barrier(struct cowtable_ctx *ctx)
{
	/*
	 * Seal what is open and poll until rule G has freed every batch.  Only
	 * ck_epoch_poll() advances the epoch here: it fences between its load
	 * of the epoch and its scan, which ck_epoch_synchronize() does not, so
	 * on a weakly ordered CPU a synchronize can advance past a section it
	 * read as inactive too early, breaking the e + 3 argument.  Each pass
	 * frees, advances, or waits for a section to move.
	 */
	for (;;) {
		cowtable_reclaim(ctx);
		if (ctx->nsealed == 0 && ctx->open.n == 0)
			break;
		ct_wait_for_progress(ctx, ck_epoch_value(&ctx->table->epoch));
	}
}
#else
/*
 * Broken control (verify/genmc, barrier; the torture's barrier mode): one
 * synchronize, two advances, then everything freed, as the barrier once
 * did; a section that loaded a leaf before it read the epoch may still
 * hold it.
 */
void cowtable_barrier(struct cowtable_ctx *ctx)
{
	uint32_t i;

	ck_epoch_synchronize(&ctx->record);
	for (i = 0; i < ctx->nsealed; i++)
		ct_free_batch(ctx, &ctx->sealed[i]);
	ctx->nsealed = 0;
	ct_free_batch(ctx, &ctx->open);
	ctx->reclaim_at = CT_BATCH_LEAVES;
}
#endif

/*
 * cowtable_fini(): no context is in use, so no section runs, which is a
 * grace period for everything retired (rule G); the cache goes too.
 */
void ct_ctx_release_memory(struct cowtable_ctx *ctx)
{
	struct ct_leaf *l;
	unsigned int h;

	ct_free_expired(ctx, 0, true);
	if (ctx->open.n > 0) {
		ct_seal(ctx); /* into slot 0, free now */
		ct_free_expired(ctx, 0, true);
	}
	for (h = 1; h <= CT_CACHE_HEIGHTS; h++) {
		while ((l = ctx->cache[h - 1]) != NULL) {
			ctx->cache[h - 1] = l->link;
			ct_free(ctx->table, (uintptr_t *)(void *)l - h, ct_leaf_size(h));
		}
	}
	ctx->cache_n = 0;
}
