/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario mark_last: a mark of a page races the last release of the same
 * page (docs/verification.md).  The leaf the mark may build has a tower of
 * 2 (H1), so its upper link races the killer's unlink of the old leaf; with
 * -DH0=2 the old leaf is as tall, and the two meet at level 1 with the same
 * key (invariant O), in about eight times as many executions.
 *
 *   main     mark P (2), release P (SHARED): P at 1, its leaf's one hold
 *   release  release P: LAST, which kills the leaf, or SHARED if the mark
 *            came first
 *   mark     mark P with the same frame: 2 either way (shares the entry,
 *            or creates a fresh one after the LAST)
 */
#include "harness.h"

#define P GM_PAGE(1, 0)
#define F 7
#ifndef H0
#define H0 1 /* tower of the page's leaf */
#endif
#ifndef H1
#define H1 2 /* tower of the leaf the mark builds */
#endif

static int released;

static void *release(void *arg)
{
	cowtable_frame_t f = 0;

	(void)arg;
	released = cowtable_release(gm_ctx[0], P, &f);
	assert(released == COWTABLE_LAST || released == COWTABLE_SHARED);
	assert(f == F);
	return NULL;
}

static void *mark(void *arg)
{
	(void)arg;
	assert(cowtable_mark(gm_ctx[1], P, F) == 2);
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;

	gm_init(2);
	gm_height(gm_ctx[0], H0);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_SHARED);
	gm_height(gm_ctx[1], H1);
	pthread_create(&a, NULL, release, NULL);
	pthread_create(&b, NULL, mark, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	/* The mark shared the entry (2, then SHARED leaves 1) or made a fresh one. */
	assert(gm_slot(P) == ct_slot_make(F, released == COWTABLE_SHARED ? 1 : 2));
	gm_check_final();
	return 0;
}
