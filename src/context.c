/*
 * Tables and contexts: set-up and tear-down, epoch sections, the per-context
 * node cache, retire batches and their reclamation through ck_epoch.
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

#define CT_CTX_ALIGN _Alignof(struct cowtable_ctx)

static void *ct_alloc(struct ct_table *t, size_t size)
{
	return t->alloc.alloc(size, t->alloc.arg);
}

static void ct_free(struct ct_table *t, void *p, size_t size)
{
	t->alloc.free(p, size, t->alloc.arg);
}

void ct_enter(struct cowtable_ctx *ctx)
{
	ck_epoch_begin(&ctx->record, NULL);
}

void ct_exit(struct cowtable_ctx *ctx)
{
	/* For ThreadSanitizer: this section's reads happen before any later free. */
	ct_tsan_release(&ctx->record);
	ck_epoch_end(&ctx->record, NULL);
}

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

/* A tower height with P(height > k) = 4^-k. */
unsigned int ct_random_height(struct cowtable_ctx *ctx)
{
	uint64_t x = ct_next_rand(ctx);
	unsigned int height = 1;

	while (height < CT_MAX_LEVEL && (x & 3) == 0) {
		height++;
		x >>= 2;
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
#endif

#ifdef CT_STRESS_CHECKS
void ct_stamp(struct ct_node *n, uint64_t stamp)
{
	ct_store_u64(&n->stamp, stamp);
}

void ct_check_node(struct cowtable_ctx *ctx, struct ct_node *n)
{
	uint64_t stamp = ct_load_u64(&n->stamp);
	struct ct_table *t = ctx->table;

	if (stamp == CT_STAMP_LIVE)
		return;
	/* Retired in epoch e: only a section that began in epoch e or earlier may see it. */
	if ((stamp & 0xffffffff00000000ull) == CT_STAMP_RETIRED &&
	    (int32_t)(ctx->record.epoch - (uint32_t)stamp) <= 0)
		return;
	ct_inc_stat(&t->violations);
	ct_store_u64(&t->last_stamp, stamp);
}
#endif

struct ct_node *ct_node_alloc(struct cowtable_ctx *ctx, unsigned int height)
{
	struct ct_node *n = ctx->cache[height - 1];

	if (n != NULL) {
		ctx->cache[height - 1] = n->link;
		ctx->cache_n--;
	} else {
		n = ct_alloc(ctx->table, ct_node_size(height));
		if (n == NULL)
			return NULL;
	}
	CT_STAMP(n, CT_STAMP_LIVE);
	return n;
}

void ct_node_free(struct cowtable_ctx *ctx, struct ct_node *n)
{
	unsigned int height = ct_node_height(n);

	if (ctx->cache_n < CT_CACHE_NODES) {
		CT_STAMP(n, CT_STAMP_CACHED);
		n->link = ctx->cache[height - 1];
		ctx->cache[height - 1] = n;
		ctx->cache_n++;
		return;
	}
	ct_free(ctx->table, n, ct_node_size(height));
}

void ct_count_add(struct cowtable_ctx *ctx, int64_t delta)
{
	ct_store_stat(&ctx->count, ct_load_stat(&ctx->count) + delta);
}

/* Free a chain of retired nodes whose grace period has passed. */
static void ct_free_chain(struct cowtable_ctx *ctx, struct ct_node *n, uint32_t count)
{
	struct ct_node *next;

#ifdef CT_TSAN
	struct cowtable_ctx *c;

	/* For ThreadSanitizer: every section that could have seen them has ended. */
	for (c = ct_load_ptr(&ctx->table->contexts); c != NULL; c = c->next)
		ct_tsan_acquire(&c->record);
#endif
	for (; n != NULL; n = next) {
		next = n->link;
		ct_node_free(ctx, n);
	}
	ct_store_stat(&ctx->pending, ct_load_stat(&ctx->pending) - count);
}

/* ck_epoch callback: a batch's grace period has passed. */
static void ct_batch_done(ck_epoch_entry_t *entry)
{
	struct ct_batch *b =
	        (struct ct_batch *)(void *)((char *)entry - offsetof(struct ct_batch, entry));

	ct_free_chain(b->ctx, b->head, b->n);
	b->head = NULL;
	b->n = 0;
	b->in_flight = false;
}

/*
 * The last reference to @n is gone and @n is unreachable: free it after a
 * grace period.
 */
void ct_retire(struct cowtable_ctx *ctx, struct ct_node *n)
{
	struct ct_batch *b = &ctx->batch[ctx->open];

#ifdef CT_BROKEN_NO_GRACE
	/* Broken control: free at once, while readers may still hold the node. */
	(void)b;
	ct_free(ctx->table, n, ct_node_size(ct_node_height(n)));
	return;
#endif
	CT_STAMP(n, CT_STAMP_RETIRED | ct_load_u32(&ctx->table->epoch.epoch));
	n->link = b->head;
	b->head = n;
	b->n++;
	ct_store_stat(&ctx->pending, ct_load_stat(&ctx->pending) + 1);
}

/*
 * Hand the open batch to ck_epoch if a free header can take its place, then
 * poll.  A batch collects nodes for as long as every header is in flight, so
 * retiring never needs memory.
 */
void cowtable_reclaim(struct cowtable_ctx *ctx)
{
	struct ct_batch *b = &ctx->batch[ctx->open];
	uint32_t i, j;

	if (b->n > 0) {
		for (i = 1; i < CT_BATCHES; i++) {
			j = (ctx->open + i) % CT_BATCHES;
			if (!ctx->batch[j].in_flight) {
				b->in_flight = true;
				/*
				 * ck_epoch_call() reads the global epoch with a
				 * plain load; the unlinks of the batch's nodes
				 * must be visible before it, or a weakly ordered
				 * CPU could file the batch under an epoch that a
				 * reader holding one of them has already left.
				 */
				ct_fence_full();
				ck_epoch_call(&ctx->record, &b->entry, ct_batch_done);
				ctx->open = j;
				break;
			}
		}
	}
	ck_epoch_poll(&ctx->record);
}

void ct_maybe_reclaim(struct cowtable_ctx *ctx)
{
	if (ctx->batch[ctx->open].n >= CT_BATCH_NODES)
		cowtable_reclaim(ctx);
}

void cowtable_barrier(struct cowtable_ctx *ctx)
{
	struct ct_batch *b = &ctx->batch[ctx->open];

	/* A full grace period, then every batch handed to ck_epoch is freed... */
	ck_epoch_barrier(&ctx->record);
	/* ...and the open batch too: its nodes were retired before the grace period began. */
	ct_free_chain(ctx, b->head, b->n);
	b->head = NULL;
	b->n = 0;
}

int cowtable_init(struct cowtable *table, const struct cowtable_allocator *allocator)
{
	struct ct_table *t;
	struct ct_node *head;

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

	head = allocator->alloc(ct_node_size(CT_MAX_LEVEL), allocator->arg);
	if (head == NULL)
		return COWTABLE_ENOMEM;
	memset(head, 0, ct_node_size(CT_MAX_LEVEL));
	head->state = (uint32_t)CT_MAX_LEVEL << CT_HEIGHT_SHIFT;

	memset(table, 0, sizeof(*table));
	t = ct_table_of(table);
	t->alloc = *allocator;
	t->head = head;
	t->level = 1;
	t->contexts = NULL;
	ck_epoch_init(&t->epoch);
	return 0;
}

static void ct_ctx_destroy(struct ct_table *t, struct cowtable_ctx *ctx)
{
	struct ct_batch *b = &ctx->batch[ctx->open];
	struct ct_node *n;
	unsigned int i;

	/* No context is in use: every retired node may go now. */
	ck_epoch_reclaim(&ctx->record);
	ct_free_chain(ctx, b->head, b->n);
	for (i = 0; i < CT_MAX_LEVEL; i++) {
		while ((n = ctx->cache[i]) != NULL) {
			ctx->cache[i] = n->link;
			ct_free(t, n, ct_node_size(i + 1));
		}
	}
	ct_free(t, ctx->raw, sizeof(*ctx) + CT_CTX_ALIGN - 1);
}

void cowtable_fini(struct cowtable *table)
{
	struct ct_table *t = ct_table_of(table);
	struct cowtable_ctx *ctx, *next_ctx;
	struct ct_node *n, *next;

	for (ctx = t->contexts; ctx != NULL; ctx = next_ctx) {
		next_ctx = ctx->next;
		t->contexts = next_ctx; /* the list holds only contexts not yet freed */
		ct_ctx_destroy(t, ctx);
	}
	for (n = ct_ptr(t->head->next[0]); n != NULL; n = next) {
		next = ct_ptr(n->next[0]);
		ct_free(t, n, ct_node_size(ct_node_height(n)));
	}
	ct_free(t, t->head, ct_node_size(CT_MAX_LEVEL));
	memset(table, 0, sizeof(*table));
}

struct cowtable_ctx *cowtable_ctx_get(struct cowtable *table)
{
	struct ct_table *t = ct_table_of(table);
	struct cowtable_ctx *ctx, *head;
	void *raw;
	unsigned int i;

	for (ctx = ct_load_ptr(&t->contexts); ctx != NULL; ctx = ctx->next) {
		/* Claims a parked context; fails if another thread claimed it first: look on. */
		if (ct_load_u32(&ctx->in_use) == 0 && ct_cas_u32(&ctx->in_use, 0, 1))
			return ctx;
	}

	raw = ct_alloc(t, sizeof(*ctx) + CT_CTX_ALIGN - 1);
	if (raw == NULL)
		return NULL;
	ctx = (struct cowtable_ctx *)(((uintptr_t)raw + CT_CTX_ALIGN - 1) &
	                              ~(uintptr_t)(CT_CTX_ALIGN - 1));
	memset(ctx, 0, sizeof(*ctx));
	ctx->table = t;
	ctx->raw = raw;
	ctx->in_use = 1;
	/* Any non-zero seed will do; the address differs between contexts. */
	ctx->rng = ((uint64_t)(uintptr_t)ctx * 0x9e3779b97f4a7c15ull) | 1;
	for (i = 0; i < CT_BATCHES; i++)
		ctx->batch[i].ctx = ctx;
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
	/* Everything done through ctx happens before the next claim of it. */
	ct_store_u32(&ctx->in_use, 0);
}

size_t cowtable_count(const struct cowtable *table)
{
	const struct ct_table *t = ct_table_of_const(table);
	struct cowtable_ctx *ctx;
	int64_t sum = 0;

	for (ctx = ct_load_ptr(&t->contexts); ctx != NULL; ctx = ctx->next)
		sum += ct_load_stat(&ctx->count);
	return sum > 0 ? (size_t)sum : 0;
}
