/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario link_kill: a tall leaf is killed while its linker may still be
 * linking its upper levels (docs/verification.md; design.md, "Who retires
 * a leaf").  Whichever of the linker and the killer comes second in the
 * order of their fetch-adds on the leaf's state retires it, after a search
 * of its own that must unlink every level the other side linked.
 *
 *   main     leaf B (block 2, tower of 2) holding page B0 at 2, so that
 *            A's upper level has a successor
 *   insert   mark A0 (block 1, tower of 2): 2
 *   release  release A0 twice: NOT_COW while A is not linked yet, SHARED,
 *            then LAST, which kills A
 */
#include "harness.h"

#define A0 GM_PAGE(1, 0)
#define B0 GM_PAGE(2, 0)
#define F  7

static int results[2];

static void *insert(void *arg)
{
	(void)arg;
	assert(cowtable_mark(gm_ctx[1], A0, F) == 2);
	return NULL;
}

static void *release(void *arg)
{
	cowtable_frame_t f;

	(void)arg;
	results[0] = cowtable_release(gm_ctx[0], A0, &f);
	results[1] = cowtable_release(gm_ctx[0], A0, &f);
	return NULL;
}

int main(void)
{
	pthread_t a, b;

	gm_init(2);
	gm_height(gm_ctx[0], 2);
	assert(cowtable_mark(gm_ctx[0], B0, F) == 2);
	gm_height(gm_ctx[1], 2);
	pthread_create(&a, NULL, insert, NULL);
	pthread_create(&b, NULL, release, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	/* Each release found A0 (SHARED, then LAST) or not yet (NOT_COW). */
	if (results[1] == COWTABLE_LAST)
		assert(results[0] == COWTABLE_SHARED && gm_slot(A0) == 0);
	else if (results[1] == COWTABLE_SHARED)
		assert(results[0] == COWTABLE_NOT_COW && gm_slot(A0) == ct_slot_make(F, 1));
	else
		assert(results[0] == COWTABLE_NOT_COW && results[1] == COWTABLE_NOT_COW &&
		       gm_slot(A0) == ct_slot_make(F, 2));
	assert(gm_slot(B0) == ct_slot_make(F, 2));
	gm_check_final();
	return 0;
}
