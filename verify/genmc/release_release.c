/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario release_release: the two sharers of a page release it at once
 * (docs/verification.md).  Exactly one gets LAST, with the frame, and kills
 * the leaf; the other gets SHARED.  Each sharer writes to the frame before
 * its release, and the LAST caller then reads both writes: the kref_put
 * order of the slot CAS (design.md, "Memory ordering"), whose release half
 * publishes a sharer's use of the frame and whose acquire half gives it to
 * whoever frees the frame.
 *
 *   main   mark P (2)
 *   t0     write frame word 0, release P
 *   t1     write frame word 1, release P
 */
#include "harness.h"

#define P GM_PAGE(1, 0)
#define F 7

static int result[2];
static int frame_data[2]; /* the frame's contents: plain accesses */

static void *sharer(void *arg)
{
	unsigned int me = (unsigned int)(uintptr_t)arg;
	cowtable_frame_t f = 0;

	frame_data[me] = 1;
	result[me] = cowtable_release(gm_ctx[me], P, &f);
	assert(f == F);
	if (result[me] == COWTABLE_LAST)
		assert(frame_data[0] == 1 && frame_data[1] == 1);
	else
		assert(result[me] == COWTABLE_SHARED);
	return NULL;
}

int main(void)
{
	pthread_t a, b;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	pthread_create(&a, NULL, sharer, (void *)0);
	pthread_create(&b, NULL, sharer, (void *)1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert(result[0] + result[1] == COWTABLE_LAST + COWTABLE_SHARED);
	assert(gm_slot(P) == 0);
	gm_check_final();
	return 0;
}
