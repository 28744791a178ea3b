/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario cache_reuse: a leaf freed into its context's leaf cache is built
 * again for another block while a reader may still hold it
 * (docs/verification.md).  The reader may have loaded block 1's leaf A
 * from the block index, and the writer kills A, lets cowtable_barrier()
 * free it into the cache, and builds block 3's leaf in the same memory,
 * which the index then holds for block 3.  Nothing is poisoned on
 * the way (the leaf is not freed), so a reader that still held A would read
 * block 3's key, slots and holds as if they were A's: its results say so.
 * The reader's record holds the epoch of an earlier section, as in barrier.
 *
 *   main    mark P (block 1) and release it: P at 1, in A; the reader's
 *           context looks P up
 *   writer  release P: LAST, kills and retires A; cowtable_barrier(): A in
 *           the cache; mark_range Q0, Q1 (block 3): 2 each, in A's memory
 *   reader  (READER bit 0) look up P: absent, or (frame, 1), never Q0's;
 *           (bit 1) release P1, never tracked: NOT_COW, never a release
 *           of Q1 (the same slot of the block 3 leaf)
 */
/* The cache is the point here: two leaves per context (the scripts say 0). */
#undef CT_CACHE_LEAVES
#define CT_CACHE_LEAVES 2

#include "harness.h"

#define P  GM_PAGE(1, 0)
#define P1 GM_PAGE(1, 1)
#define Q0 GM_PAGE(3, 0)
#define Q1 GM_PAGE(3, 1)
#define F  7
#define FQ 9
#ifndef READER
#define READER 3 /* bit 0: look P up; bit 1: release P1 */
#endif

static struct ct_leaf *leaf_a;

static void *writer(void *arg)
{
	static const cowtable_frame_t frames[2] = {FQ, FQ + 1};
	cowtable_frame_t f = 0;
	size_t n = 0;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_LAST && f == F);
	cowtable_barrier(gm_ctx[0]);
	/* A went to the cache; only its index node, which died with it, was freed. */
	assert(gm_ctx[0]->cache_n == 1 && gm_ctx[0]->cache[0] == leaf_a &&
	       gm_frees[gm_self()] == 1);
	assert(cowtable_mark_range(gm_ctx[0], Q0, 2, frames, &n) == 0 && n == 2);
	assert(gm_ctx[0]->cache_n == 0);
	return NULL;
}

static void *reader(void *arg)
{
	cowtable_frame_t f = 0;
	uint32_t refs = 0;

	(void)arg;
	if ((READER & 1) && cowtable_lookup(gm_ctx[1], P, &f, &refs))
		assert(f == F && refs == 1);
	if (READER & 2)
		assert(cowtable_release(gm_ctx[1], P1, &f) == COWTABLE_NOT_COW);
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;
	uint32_t refs;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_SHARED);
	/* A is the leaf the index holds for block 1. */
	leaf_a = gm_index_leaf(P);
	assert(leaf_a != NULL && leaf_a->key == P);
	/* An earlier section of the reader's context: its record says epoch 1. */
	assert(cowtable_lookup(gm_ctx[1], P, &f, &refs) && f == F && refs == 1);
	pthread_create(&a, NULL, writer, NULL);
	pthread_create(&b, NULL, reader, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	/* Block 3's leaf is A's memory, and the index holds it for block 3. */
	assert(gm_index_leaf(Q0) == leaf_a && leaf_a->key == Q0 && gm_index_leaf(P) == NULL);
	assert(gm_slot(P) == 0 && gm_slot(P1) == 0);
	assert(gm_slot(Q0) == ct_slot_make(FQ, 2) && gm_slot(Q1) == ct_slot_make(FQ + 1, 2));
	gm_check_final();
	return 0;
}
