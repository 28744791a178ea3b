/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario index_publish: a lookup that may reach a leaf through the block
 * index while the leaf, and the index node that holds it, are being
 * published (docs/verification.md).  Entries and nodes are published by
 * release CASes after the level-0 link, so a leaf met through the index is
 * initialised, with its prefilled slots.  The death of a leaf reached
 * through the index is covered by mark_last, mark_kill_lookup and grace,
 * and the death of nodes by index_nodes.
 *
 *   main    mark R, a page of block 3: an index of two levels (two entries
 *           a node), R's leaf in the bottom node of blocks 2 and 3
 *   mark    write the new frame's contents, mark P (block 1): a new leaf,
 *           in a new bottom node grafted beside R's
 *   lookup  look up P: absent, or the frame with 2 and its contents
 */
#include "harness.h"

#define P  GM_PAGE(1, 0)
#define R  GM_PAGE(3, 0)
#define FP 7
#define FR 9

static int frame_data; /* the contents of frame FP: plain accesses */

static void *mark(void *arg)
{
	(void)arg;
	frame_data = 42;
	assert(cowtable_mark(gm_ctx[0], P, FP) == 2);
	return NULL;
}

static void *lookup(void *arg)
{
	cowtable_frame_t f;
	uint32_t refs;

	(void)arg;
	if (cowtable_lookup(gm_ctx[1], P, &f, &refs))
		assert(f == FP && refs == 2 && frame_data == 42);
	return NULL;
}

int main(void)
{
	pthread_t a, b;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], R, FR) == 2);
	pthread_create(&a, NULL, mark, NULL);
	pthread_create(&b, NULL, lookup, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert(gm_slot(P) == ct_slot_make(FP, 2));
	assert(gm_slot(R) == ct_slot_make(FR, 2));
	gm_check_final();
	return 0;
}
