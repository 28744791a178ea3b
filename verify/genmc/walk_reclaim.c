/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario walk_reclaim: range walks go from leaf to leaf through next
 * words, past a leaf that dies and is freed meanwhile
 * (docs/verification.md).  The killer releases the only page of A's leaf,
 * which kills and retires it, and reclaims twice: the seal, then a poll,
 * which frees A if the walker is outside its sections (rule G: no section
 * running), or, under a broken rule, one advance after the seal.  The
 * walker's foreach and release_range reach A by a descent and step from A
 * to B by A's next word.  A freed leaf is poisoned: a walk that touched it
 * would race with the free (RC11) or read poison (IMM), in the descent's
 * check or in what it copies out of the leaf.
 *
 *   main    mark A (block 1) and B (block 2) and release each: both at 1
 *   killer  release A: LAST, kills and retires the leaf; reclaim x KILLER_POLLS
 *   walker  (WALKS bit 0) foreach over blocks 1-2: B (frame, 1), and A
 *           (frame, 1) or not; (bit 1) release_range from A's second page,
 *           untracked, to the end of block 2: B's LAST only
 */
#include "harness.h"

#define A  GM_PAGE(1, 0)
#define B  GM_PAGE(2, 0)
#define FA 7
#define FB 9
#ifndef KILLER_POLLS
#define KILLER_POLLS 2
#endif
#ifndef WALKS
#define WALKS 3 /* bit 0: foreach; bit 1: release_range */
#endif

static unsigned int seen;  /* pages foreach visited: bit 0 A, bit 1 B */
static unsigned int lasts; /* LASTs handed to release_range's callback */

static bool visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	(void)arg;
	assert(refs == 1);
	assert((vaddr == A && frame == FA) || (vaddr == B && frame == FB));
	seen |= vaddr == A ? 1u : 2u;
	return true;
}

static void last(uintptr_t vaddr, cowtable_frame_t frame, void *arg)
{
	(void)arg;
	assert(vaddr == B && frame == FB);
	lasts++;
}

static void *killer(void *arg)
{
	cowtable_frame_t f = 0;
	int i;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], A, &f) == COWTABLE_LAST && f == FA);
	for (i = 0; i < KILLER_POLLS; i++)
		cowtable_reclaim(gm_ctx[0]);
#ifdef GM_REACH_FREE
	assert(gm_frees[gm_self()] == 0);
#endif
	return NULL;
}

static void *walker(void *arg)
{
	size_t n;

	(void)arg;
	if (WALKS & 1) {
		n = cowtable_foreach(gm_ctx[1], A, GM_PAGE(3, 0), visit, NULL);
		assert(n == (seen & 1) + 1 && (seen & 2) != 0);
	}
	if (WALKS & 2) {
		n = cowtable_release_range(gm_ctx[1], GM_PAGE(1, 1), GM_PAGE(3, 0), last, NULL);
		assert(n == 1 && lasts == 1);
	}
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], A, FA) == 2);
	assert(cowtable_release(gm_ctx[0], A, &f) == COWTABLE_SHARED);
	assert(cowtable_mark(gm_ctx[0], B, FB) == 2);
	assert(cowtable_release(gm_ctx[0], B, &f) == COWTABLE_SHARED);
	pthread_create(&a, NULL, killer, NULL);
	pthread_create(&b, NULL, walker, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert(gm_slot(A) == 0 && gm_slot(B) == ((WALKS & 2) ? 0 : ct_slot_make(FB, 1)));
	gm_check_final();
	return 0;
}
