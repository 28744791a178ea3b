/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario mark_kill_lookup: a mark of an empty page races the release that
 * empties the same leaf through another page, while a lookup reads the
 * page being marked (docs/verification.md).  The mark either fills the slot in the live leaf
 * (its hold keeps the leaf alive) or finds the leaf dead, helps freeze it
 * and links a new one; the killer unlinks and retires the old leaf.
 *
 *   main    mark Q (2), release Q (SHARED): Q at 1, the leaf's one hold
 *   kill    release Q: LAST
 *   mark    write the new frame's contents, mark P: 2; then a lookup of P
 *           must find it (a holder never misses)
 *   lookup  look up P: absent, or the mark's frame with 2 and its
 *           contents visible (the acquire of the slot load)
 *
 * All towers are of 1, so that the three threads stay within seconds.
 */
#include "harness.h"

#define P  GM_PAGE(1, 0)
#define Q  GM_PAGE(1, 1)
#define FP 7
#define FQ 9

static int frame_data; /* the contents of frame FP: plain accesses */

static void *kill(void *arg)
{
	cowtable_frame_t f = 0;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], Q, &f) == COWTABLE_LAST && f == FQ);
	return NULL;
}

static void *mark(void *arg)
{
	cowtable_frame_t f;
	uint32_t refs;

	(void)arg;
	frame_data = 42;
	assert(cowtable_mark(gm_ctx[1], P, FP) == 2);
	assert(cowtable_lookup(gm_ctx[1], P, &f, &refs) && f == FP && refs == 2);
	return NULL;
}

static void *lookup(void *arg)
{
	cowtable_frame_t f;
	uint32_t refs;

	(void)arg;
	if (cowtable_lookup(gm_ctx[2], P, &f, &refs))
		assert(f == FP && refs == 2 && frame_data == 42);
	return NULL;
}

int main(void)
{
	pthread_t a, b, c;
	cowtable_frame_t f;

	gm_init(3);
	assert(cowtable_mark(gm_ctx[0], Q, FQ) == 2);
	assert(cowtable_release(gm_ctx[0], Q, &f) == COWTABLE_SHARED);
	pthread_create(&a, NULL, kill, NULL);
	pthread_create(&b, NULL, mark, NULL);
	pthread_create(&c, NULL, lookup, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_join(c, NULL);
	assert(gm_slot(P) == ct_slot_make(FP, 2));
	assert(gm_slot(Q) == 0);
	gm_check_final();
	return 0;
}
