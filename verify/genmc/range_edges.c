/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario range_edges: a mark_range across a block edge races single-page
 * operations on both of its edges, taken in the opposite order
 * (docs/verification.md).  The range's first page is the last page of a
 * leaf that a release may kill; its second page is the first of a block
 * without a leaf, which the range builds prefilled and publishes with one
 * link, unless the single-page mark links one first.
 *
 *   main   mark A (last page of block 1) and release it: A at 1
 *   range  mark_range A, B (first page of block 2): both marked
 *   edges  mark B: 2 or 3; then release A: LAST (the range then creates a
 *          fresh entry for A) or SHARED
 */
#include "harness.h"

#define A  GM_PAGE(1, CT_LEAF_PAGES - 1)
#define B  GM_PAGE(2, 0)
#define FA 7
#define FB 9

static int released;

static void *range(void *arg)
{
	static const cowtable_frame_t frames[2] = {FA, FB};
	size_t n = 0;

	(void)arg;
	assert(cowtable_mark_range(gm_ctx[1], A, 2, frames, &n) == 0 && n == 2);
	return NULL;
}

static void *edges(void *arg)
{
	cowtable_frame_t f = 0;
	int marked;

	(void)arg;
	marked = cowtable_mark(gm_ctx[0], B, FB);
	assert(marked == 2 || marked == 3);
	released = cowtable_release(gm_ctx[0], A, &f);
	assert((released == COWTABLE_LAST || released == COWTABLE_SHARED) && f == FA);
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], A, FA) == 2);
	assert(cowtable_release(gm_ctx[0], A, &f) == COWTABLE_SHARED);
	pthread_create(&a, NULL, range, NULL);
	pthread_create(&b, NULL, edges, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert(gm_slot(A) == ct_slot_make(FA, released == COWTABLE_SHARED ? 1 : 2));
	assert(gm_slot(B) == ct_slot_make(FB, 3));
	gm_check_final();
	return 0;
}
