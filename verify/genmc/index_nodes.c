/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario index_nodes: a bottom node of the block index dies while a new
 * leaf is being put in it (docs/verification.md).  Blocks 0 and 1 share a
 * bottom node (two entries a node).  The node holds block 0's leaf A; the
 * release that kills A clears A's entry, which may take the node's holds to
 * 0, unlinking and retiring it, while the mark of a page of block 1 takes a
 * hold on the node to fill its entry (or finds it dead, unlinks it if
 * nobody has yet, and plants a new one), and a lookup reads through it.
 * Whatever the order: the new leaf is indexed, every node reachable is live
 * with as many holds as entries (the final checks), and every retired node
 * is freed dead.
 *
 *   main    mark P0 (block 0): A, the index one bottom node
 *   killer  release P0: LAST; A dies, its entry is cleared, the node may die
 *   setter  mark P1 (block 1): a new leaf B, indexed in the node or a new one
 *   reader  look up P1: absent or (F1, 2); look up P0: absent or (F0, 1)
 */
#include "harness.h"

#define P0 GM_PAGE(0, 0)
#define P1 GM_PAGE(1, 0)
#define F0 7
#define F1 9

static void *killer(void *arg)
{
	cowtable_frame_t f = 0;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], P0, &f) == COWTABLE_LAST && f == F0);
	return NULL;
}

static void *setter(void *arg)
{
	(void)arg;
	assert(cowtable_mark(gm_ctx[1], P1, F1) == 2);
	return NULL;
}

static void *reader(void *arg)
{
	cowtable_frame_t f = 0;
	uint32_t refs = 0;

	(void)arg;
	if (cowtable_lookup(gm_ctx[2], P1, &f, &refs))
		assert(f == F1 && refs == 2);
	if (cowtable_lookup(gm_ctx[2], P0, &f, &refs))
		assert(f == F0 && refs == 1);
	return NULL;
}

int main(void)
{
	pthread_t a, b, c;

	gm_init(3);
	assert(cowtable_mark(gm_ctx[0], P0, F0) == 2);
	assert(cowtable_release(gm_ctx[0], P0, NULL) == COWTABLE_SHARED);
	assert(gm_index_leaf(P0) != NULL);
	pthread_create(&a, NULL, killer, NULL);
	pthread_create(&b, NULL, setter, NULL);
	pthread_create(&c, NULL, reader, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_join(c, NULL);
	assert(gm_slot(P0) == 0 && gm_slot(P1) == ct_slot_make(F1, 2));
	assert(gm_index_leaf(P0) == NULL && gm_index_leaf(P1) != NULL);
	gm_check_final();
	return 0;
}
