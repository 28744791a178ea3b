/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario index_stale: the block index still holds a dead leaf of a block
 * whose newer leaf is linked but not indexed yet (docs/verification.md).  A
 * lookup that meets the dead leaf must not take its empty slot for an
 * answer: only a live leaf's zero says the page is untracked (S), so it
 * descends and finds the newer leaf.
 *
 *   main    mark P0 and release it: P0 at 1 in leaf A of block 1, indexed
 *   killer  release P0: LAST (A dies, its entry is cleared at its retire),
 *           or SHARED after the linker's mark
 *   linker  mark P0: a new leaf B for block 1 if A is dead, indexed last
 *   marker  mark P1 (block 1), then look it up: tracked, whichever leaf
 *           the index holds meanwhile
 */
/*
 * GenMC 0.10.3 with instruction caching hands this scenario's linker one
 * address for two live allocations (its leaf, then an index node, no free
 * between), and reports the overlap as a race: the harness's static pool
 * gives every allocation an address of the program's own.
 */
#define GM_STATIC_POOL 1
#include "harness.h"

#define P0 GM_PAGE(1, 0)
#define P1 GM_PAGE(1, 1)
#define F0 7
#define F1 9

static int killed; /* the killer's release was LAST: plain, read after the joins */

static void *killer(void *arg)
{
	int r;

	(void)arg;
	r = cowtable_release(gm_ctx[0], P0, NULL);
	assert(r == COWTABLE_LAST || r == COWTABLE_SHARED);
	killed = r == COWTABLE_LAST;
	return NULL;
}

static void *linker(void *arg)
{
	(void)arg;
	/* A new entry (2), or the last reference shared before the release (2). */
	assert(cowtable_mark(gm_ctx[1], P0, F0) == 2);
	return NULL;
}

static void *marker(void *arg)
{
	cowtable_frame_t f = 0;
	uint32_t refs = 0;

	(void)arg;
	assert(cowtable_mark(gm_ctx[2], P1, F1) == 2);
	assert(cowtable_lookup(gm_ctx[2], P1, &f, &refs) && f == F1 && refs == 2);
	return NULL;
}

int main(void)
{
	pthread_t a, b, c;

	gm_init(3);
	assert(cowtable_mark(gm_ctx[0], P0, F0) == 2);
	assert(cowtable_release(gm_ctx[0], P0, NULL) == COWTABLE_SHARED);
	pthread_create(&a, NULL, killer, NULL);
	pthread_create(&b, NULL, linker, NULL);
	pthread_create(&c, NULL, marker, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_join(c, NULL);
	assert(gm_slot(P1) == ct_slot_make(F1, 2));
	assert(gm_slot(P0) == ct_slot_make(F0, killed ? 2 : 1));
	gm_check_final();
	return 0;
}
