/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario ctx_reuse: a context parked with a leaf still pending is claimed
 * by another thread, which frees that leaf (docs/verification.md).  The
 * leaver kills and retires a leaf, then parks its context; the claimant
 * takes a context while that happens: the parked one (then everything the
 * leaver did through it happens before the claim: its batches as the
 * leaver left them, the page released) or, if it is not parked yet, a new
 * one, registered while the leaver polls.  The claimant looks the page up
 * and calls cowtable_barrier(), which frees the leaf if it claimed it.
 *
 *   main      mark P and release it: P at 1
 *   leaver    release P: LAST, kills and retires the leaf; cowtable_ctx_put()
 *             (its reclaim seals the batch)
 *   claimant  cowtable_ctx_get(): the leaver's context, with one sealed
 *             batch of the leaf and its index node, nothing open, or a new
 *             one; look P up:
 *             absent (the parked context), or absent or the frame with 1;
 *             cowtable_barrier(): nothing left pending
 */
#include "harness.h"

#define P GM_PAGE(1, 0)
#define F 7

static struct cowtable_ctx *claimed;

static void *leaver(void *arg)
{
	cowtable_frame_t f = 0;

	(void)arg;
	assert(cowtable_release(gm_ctx[1], P, &f) == COWTABLE_LAST && f == F);
	cowtable_ctx_put(gm_ctx[1]);
	return NULL;
}

static void *claimant(void *arg)
{
	struct cowtable_ctx *c = cowtable_ctx_get(&gm_table);
	cowtable_frame_t f;
	uint32_t refs;
	bool parked;

	(void)arg;
	assert(c != NULL);
	parked = c == gm_ctx[1];
	if (parked)
		/*
		 * The batch as the leaver's put sealed it (not a stale copy):
		 * the leaf and its index node, which died with it.
		 */
		assert(c->nsealed == 1 && c->sealed[0].n == 2 && c->sealed[0].head != NULL &&
		       c->open.n == 0 && c->open.head == NULL && ct_load_stat(&c->pending) == 2);
	if (cowtable_lookup(c, P, &f, &refs))
		assert(!parked && f == F && refs == 1);
	cowtable_barrier(c);
	assert(c->nsealed == 0 && c->open.n == 0 && ct_load_stat(&c->pending) == 0);
	assert(gm_frees[gm_self()] == (parked ? 2 : 0));
	claimed = c;
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_SHARED);
	pthread_create(&a, NULL, leaver, NULL);
	pthread_create(&b, NULL, claimant, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	if (claimed != gm_ctx[1])
		gm_ctx[gm_nctx++] = claimed; /* a new context: the final checks count it */
	assert(gm_slot(P) == 0);
	gm_check_final();
	return 0;
}
