// SPDX-License-Identifier: BSD-2-Clause
/*
 * When retired leaves go back to the allocator (docs/design.md, "The bound
 * the code gives"), seen from the allocator alone, against a library built
 * without the leaf cache (CT_CACHE_LEAVES=0), so that a freed leaf is a
 * block the allocator gets back:
 *
 *  - a context that retired a few leaves and then only marks and releases
 *    pages that stay tracked (it retires nothing more, never calls
 *    cowtable_reclaim()) frees its backlog within a few CT_POLL_CALLS of
 *    its own calls;
 *  - the same after the context was put and taken again;
 *  - cowtable_barrier() frees everything at once.
 *
 * Single-threaded: no section runs while a context polls, so each poll is a
 * grace period, and what is checked is only who polls, and when.
 */
#include "check.h"
#include "cowtable.h"
#include "test_alloc.h"

#define RETIRED 5    /* leaves retired: fewer than a batch, so nothing seals */
#define IDLE    1000 /* mark/release pairs afterwards: many times CT_POLL_CALLS */

static uintptr_t page_of_block(unsigned int block)
{
	return (uintptr_t)block * 64 * COWTABLE_PAGE_SIZE;
}

/* Retire RETIRED leaves: one page each, marked and released twice. */
static int retire_some(struct cowtable_ctx *ctx, unsigned int first_block)
{
	cowtable_frame_t f;
	unsigned int i;
	int ok = 1;

	for (i = 0; i < RETIRED && ok; i++) {
		uintptr_t p = page_of_block(first_block + i);

		ok = CHECK(cowtable_mark(ctx, p, 7) == 2, "mark of block %u", first_block + i) &&
		     CHECK(cowtable_release(ctx, p, &f) == COWTABLE_SHARED) &&
		     CHECK(cowtable_release(ctx, p, &f) == COWTABLE_LAST && f == 7);
	}
	return ok;
}

/* Marks and releases of a page that stays tracked: nothing is retired. */
static int idle(struct cowtable_ctx *ctx, uintptr_t q)
{
	int i, ok = 1;

	for (i = 0; i < IDLE && ok; i++)
		ok = CHECK(cowtable_mark(ctx, q, 1) == 3) &&
		     CHECK(cowtable_release(ctx, q, NULL) == COWTABLE_SHARED);
	return ok;
}

int main(void)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	struct cowtable t;
	struct cowtable_ctx *ctx;
	uintptr_t q = page_of_block(1000);
	int64_t base;

	if (!CHECK(cowtable_init(&t, &al) == 0 && (ctx = cowtable_ctx_get(&t)) != NULL, "set-up"))
		return check_exit("reclaim");
	CHECK(cowtable_mark(ctx, q, 1) == 2);
	base = a.blocks; /* head, context, Q's leaf, the index's two nodes for Q */

	/*
	 * A backlog, then only calls that retire nothing.  Blocks 1 to 5 share
	 * a bottom node of the index, which dies and is retired with each of
	 * their leaves.
	 */
	retire_some(ctx, 1);
	CHECK(a.blocks == base + 2 * RETIRED,
	      "%lld blocks outstanding after retiring %d leaves and their index nodes, want %lld",
	      (long long)a.blocks, RETIRED, (long long)(base + 2 * RETIRED));
	idle(ctx, q);
	CHECK(a.blocks == base,
	      "backlog kept: %lld leaves and index nodes still pending after %d idle "
	      "mark/release pairs",
	      (long long)(a.blocks - base), IDLE);

	/* The same backlog left in a parked context, drained by its next user. */
	retire_some(ctx, 100);
	cowtable_ctx_put(ctx);
	ctx = cowtable_ctx_get(&t);
	if (CHECK(ctx != NULL)) {
		idle(ctx, q);
		CHECK(a.blocks == base,
		      "backlog kept across put and get: %lld leaves still pending after %d idle "
		      "pairs",
		      (long long)(a.blocks - base), IDLE);

		/* The barrier: nothing pending when it returns. */
		retire_some(ctx, 200);
		cowtable_barrier(ctx);
		CHECK(a.blocks == base, "%lld leaves still pending after the barrier",
		      (long long)(a.blocks - base));
		CHECK(cowtable_release(ctx, q, NULL) == COWTABLE_SHARED);
		CHECK(cowtable_release(ctx, q, NULL) == COWTABLE_LAST);
		cowtable_ctx_put(ctx);
	}
	cowtable_fini(&t);
	test_alloc_balanced(&a, "reclaim");
	return check_exit("reclaim");
}
