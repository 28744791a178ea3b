/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario towers: links and unlinks of tall towers at adjacent keys
 * (docs/verification.md), with CT_MAX_LEVEL 3.
 *
 *   main    leaf B (block 2, tower of HB = 2) holding page B0 at 1
 *   insert  mark A0 (block 1, tower of HA = 3): links A in front of B at
 *           levels 0 and 1 and above it at level 2, bottom-up, while B is
 *           being unlinked; with -DHC=h, then marks C0 (block 3, tower of
 *           h), linking it behind B
 *   kill    release B0: LAST; freezes B top-down and unlinks it everywhere
 */
#include "harness.h"

#define A0 GM_PAGE(1, 0)
#define B0 GM_PAGE(2, 0)
#define C0 GM_PAGE(3, 0)
#define F  7
#ifndef HA
#define HA 3
#endif
#ifndef HB
#define HB 2
#endif

static void *insert(void *arg)
{
	(void)arg;
	assert(cowtable_mark(gm_ctx[1], A0, F) == 2);
#ifdef HC
	gm_height(gm_ctx[1], HC);
	assert(cowtable_mark(gm_ctx[1], C0, F) == 2);
#endif
	return NULL;
}

static void *kill(void *arg)
{
	cowtable_frame_t f = 0;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], B0, &f) == COWTABLE_LAST && f == F);
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;

	gm_init(2);
	gm_height(gm_ctx[0], HB);
	assert(cowtable_mark(gm_ctx[0], B0, F) == 2);
	assert(cowtable_release(gm_ctx[0], B0, &f) == COWTABLE_SHARED);
	gm_height(gm_ctx[1], HA);
	pthread_create(&a, NULL, insert, NULL);
	pthread_create(&b, NULL, kill, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert(gm_slot(A0) == ct_slot_make(F, 2) && gm_slot(B0) == 0);
#ifdef HC
	assert(gm_slot(C0) == ct_slot_make(F, 2));
#endif
	gm_check_final();
	return 0;
}
