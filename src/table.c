// SPDX-License-Identifier: BSD-2-Clause
/*
 * Tables and contexts: set-up and tear-down, contexts taken and parked, the
 * count of tracked pages, and the random tower heights.
 */
#include <string.h>

#include "ct_internal.h"

#ifndef COWTABLE_NO_DEFAULT_ALLOCATOR
#include <stdlib.h>

static void *ct_default_alloc(size_t size, void *arg)
{
	(void)arg;
	return malloc(size);
}

static void ct_default_free(void *ptr, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	free(ptr);
}

static const struct cowtable_allocator ct_default_allocator = {
        .alloc = ct_default_alloc,
        .free = ct_default_free,
        .arg = NULL,
};
#endif

_Static_assert(sizeof(struct ct_table) <= sizeof(struct cowtable),
               "struct cowtable is too small for struct ct_table");
_Static_assert(_Alignof(struct ct_table) <= _Alignof(struct cowtable),
               "struct cowtable is under-aligned for struct ct_table");
_Static_assert(COWTABLE_REFS_MAX == CT_REFS_MASK, "a slot's count has 24 bits");
_Static_assert(CT_NODE_SHIFT >= 1 && CT_NODE_SHIFT <= 8, "CT_NODE_SHIFT: 1 to 8");
_Static_assert(sizeof(struct ct_node) <= 4096, "an index node is one small allocation");
/* Retired nodes wait in the batches of leaves: the words a batch reads sit alike. */
_Static_assert(offsetof(struct ct_node, holds) == offsetof(struct ct_leaf, holds) &&
                       offsetof(struct ct_node, state) == offsetof(struct ct_leaf, state) &&
                       offsetof(struct ct_node, link) == offsetof(struct ct_leaf, link),
               "struct ct_node's header is struct ct_leaf's");
#ifdef CT_STRESS_CHECKS
_Static_assert(offsetof(struct ct_node, stamp) == offsetof(struct ct_leaf, stamp),
               "a node's stamp sits where a leaf's does");
#endif
_Static_assert(COWTABLE_FRAME_MAX == ~0ull >> CT_REFS_BITS, "a slot's frame has 40 bits");

#define CT_CTX_ALIGN _Alignof(struct cowtable_ctx)

/* The context's xorshift64 generator: one step. */
static uint64_t ct_next_rand(struct cowtable_ctx *ctx)
{
	uint64_t x = ctx->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	ctx->rng = x;
	return x;
}

/* A tower height with P(height > k) = p^k, p = 2^-CT_P_SHIFT (design.md). */
unsigned int ct_random_height(struct cowtable_ctx *ctx)
{
	uint64_t x = ct_next_rand(ctx);
	unsigned int height = 1;

	while (height < CT_MAX_LEVEL && (x & ((1u << CT_P_SHIFT) - 1)) == 0) {
		height++;
		x >>= CT_P_SHIFT;
	}
	return height;
}

#ifdef CT_INJECT_DELAYS
void ct_inject_delay(struct cowtable_ctx *ctx)
{
	uint64_t x = ct_next_rand(ctx);
	unsigned int spins;

	/* One point in four waits, up to 255 pause instructions. */
	if ((x & 3) != 0)
		return;
	for (spins = (unsigned int)(x >> 56); spins != 0; spins--)
		ct_relax();
}

void ct_inject_late_epoch(struct cowtable_ctx *ctx)
{
	uint64_t x;
	unsigned int spins;

	if (!ctx->late_epoch_armed)
		return;
	ctx->late_epoch_armed = 0;
	x = ct_next_rand(ctx);
	/* One section in four, after up to 4095 pause instructions. */
	if ((x & 3) != 0)
		return;
	for (spins = (unsigned int)(x >> 52); spins != 0; spins--)
		ct_relax();
	ct_store_u32(&ctx->record.epoch, ck_epoch_value(&ctx->table->epoch));
}
#endif

void ct_count_add(struct cowtable_ctx *ctx, int64_t delta)
{
	ct_store_stat(&ctx->count, ct_load_stat(&ctx->count) + delta);
}

int cowtable_init(struct cowtable *table, const struct cowtable_allocator *allocator)
{
	struct ct_table *t;
	struct ct_leaf *head;
	char *raw;
	unsigned int i;

	if (table == NULL)
		return COWTABLE_EINVAL;
	if (allocator == NULL) {
#ifdef COWTABLE_NO_DEFAULT_ALLOCATOR
		return COWTABLE_EINVAL;
#else
		allocator = &ct_default_allocator;
#endif
	}
	if (allocator->alloc == NULL || allocator->free == NULL)
		return COWTABLE_EINVAL;

	raw = allocator->alloc(ct_head_size(), allocator->arg);
	if (raw == NULL)
		return COWTABLE_ENOMEM;
	head = (struct ct_leaf *)(void *)(raw + CT_MAX_LEVEL * sizeof(uintptr_t));
	for (i = 0; i < CT_MAX_LEVEL; i++)
		ct_init_word(ct_next(head, i), 0);
	head->key = 0;
	head->holds = 0;
	head->state = (uint32_t)CT_MAX_LEVEL << CT_HEIGHT_SHIFT;
	head->link = NULL;

	/*
	 * Field by field, without memset or a struct copy, which the model
	 * checker rejects (docs/verification.md); the rest of @table is unused.
	 */
	t = ct_table_of(table);
	t->alloc.alloc = allocator->alloc;
	t->alloc.free = allocator->free;
	t->alloc.arg = allocator->arg;
	t->head = head;
	t->level = 1;
	t->index = 0;
	t->contexts = NULL;
#ifdef CT_STRESS_CHECKS
	t->violations = 0;
	t->last_stamp = 0;
	t->last_check = 0;
#endif
	ck_epoch_init(&t->epoch);
	return 0;
}

static void ct_ctx_destroy(struct ct_table *t, struct cowtable_ctx *ctx)
{
	ct_ctx_release_memory(ctx);
	t->alloc.free(ctx->raw, sizeof(*ctx) + CT_CTX_ALIGN - 1, t->alloc.arg);
}

void cowtable_fini(struct cowtable *table)
{
	struct ct_table *t = ct_table_of(table);
	struct cowtable_ctx *ctx, *next_ctx;
	struct ct_leaf *l, *next;
	unsigned int h;

	for (ctx = t->contexts; ctx != NULL; ctx = next_ctx) {
		next_ctx = ctx->next;
		t->contexts = next_ctx; /* the list holds only contexts not yet freed */
		ct_ctx_destroy(t, ctx);
	}
	/* No context is left: what is still linked at level 0 is every live leaf. */
	for (l = ct_ptr(*ct_next(t->head, 0)); l != NULL; l = next) {
		next = ct_ptr(*ct_next(l, 0));
		h = ct_leaf_height(l);
		t->alloc.free((uintptr_t *)(void *)l - h, ct_leaf_size(h), t->alloc.arg);
	}
	t->alloc.free((uintptr_t *)(void *)t->head - CT_MAX_LEVEL, ct_head_size(), t->alloc.arg);
	ct_index_fini(t);
	memset(table, 0, sizeof(*table));
}

/*
 * Every field of a new context but its ck_epoch record, which
 * ck_epoch_register() sets up.  Field by field, without memset, which the
 * model checker rejects (docs/verification.md): a new field is set here.
 */
static void ct_ctx_init(struct cowtable_ctx *ctx, struct ct_table *t, void *raw)
{
	unsigned int i;

	ctx->table = t;
	ctx->next = NULL;
	ctx->raw = raw;
	ctx->in_use = 1;
	/* Any non-zero seed will do; the address differs between contexts. */
	ctx->rng = ((uint64_t)(uintptr_t)ctx * 0x9e3779b97f4a7c15ull) | 1;
	ctx->count = 0;
	ctx->pending = 0;
	ctx->open.head = NULL;
	ctx->open.n = 0;
	ctx->open.epoch = 0;
	for (i = 0; i < CT_SEALED_BATCHES; i++) {
		ctx->sealed[i].head = NULL;
		ctx->sealed[i].n = 0;
		ctx->sealed[i].epoch = 0;
	}
	ctx->nsealed = 0;
	ctx->reclaim_at = CT_BATCH_LEAVES;
	ctx->poll_in = CT_POLL_CALLS;
	ctx->cache_n = 0;
	for (i = 0; i < CT_CACHE_HEIGHTS; i++)
		ctx->cache[i] = NULL;
}

struct cowtable_ctx *cowtable_ctx_get(struct cowtable *table)
{
	struct ct_table *t = ct_table_of(table);
	struct cowtable_ctx *ctx, *head;
	void *raw;

	for (ctx = ct_load_ptr(&t->contexts); ctx != NULL; ctx = ctx->next) {
		/* Claims a parked context; fails if another thread claimed it first: look on. */
		if (ct_load_u32(&ctx->in_use) == 0 && ct_cas_u32(&ctx->in_use, 0, 1))
			return ctx;
	}

	raw = t->alloc.alloc(sizeof(*ctx) + CT_CTX_ALIGN - 1, t->alloc.arg);
	if (raw == NULL)
		return NULL;
	ctx = (struct cowtable_ctx *)(((uintptr_t)raw + CT_CTX_ALIGN - 1) &
	                              ~(uintptr_t)(CT_CTX_ALIGN - 1));
	ct_ctx_init(ctx, t, raw);
	ck_epoch_register(&t->epoch, &ctx->record, ctx);
	do {
		head = ct_load_ptr(&t->contexts);
		ctx->next = head;
		/* Publishes the context; fails if another was pushed first: retry. */
	} while (!ct_cas_ptr(&t->contexts, head, ctx));
	return ctx;
}

void cowtable_ctx_put(struct cowtable_ctx *ctx)
{
	cowtable_reclaim(ctx);
#ifndef CT_BROKEN_CTX_PUT_RELAXED
	/* Everything done through ctx happens before the next claim of it. */
	ct_store_u32(&ctx->in_use, 0);
#else
	/* Broken control (verify/genmc, ctx_reuse): a relaxed store hands nothing over. */
	ct_init_u32(&ctx->in_use, 0);
#endif
}

size_t cowtable_count(const struct cowtable *table)
{
	const struct ct_table *t = ct_table_of_const(table);
	struct cowtable_ctx *ctx;
	int64_t sum = 0;

	/* One counter after another: exact only when nothing runs (cowtable.h). */
	for (ctx = ct_load_ptr(&t->contexts); ctx != NULL; ctx = ctx->next)
		sum += ct_load_stat(&ctx->count);
	return sum > 0 ? (size_t)sum : 0;
}
