// SPDX-License-Identifier: BSD-2-Clause
/*
 * The index of leaves: a lock-free skip list (Fraser; Herlihy and Shavit) of
 * sorted singly linked lists, one per level, each a sublist of the one below.
 * A leaf is deleted from a level by freezing its next word there (bit 0),
 * and then unlinked by a CAS on its predecessor.  Freezes go top-down, links
 * bottom-up.  docs/design.md has the invariants this file relies on; the
 * letters below refer to them.  Section: required, for every function here.
 */
#include "ct_internal.h"

#ifdef CT_BROKEN_NO_FREEZE_LEVEL0
/* Broken control: level 0 is never frozen, so a dead leaf stays reachable there. */
#define CT_BROKEN_FREEZE_FROM 1
#else
#define CT_BROKEN_FREEZE_FROM 0
#endif

static uintptr_t ct_load_next(struct ct_leaf *l, unsigned int level)
{
	return ct_load_word(ct_next(l, level));
}

/*
 * Search for @key with help: unlink every frozen leaf met on the way.  On
 * return, for each level i < max(@height, table level): preds[i] is the last
 * leaf seen with a key below @key, succs[i] the first unfrozen leaf with a
 * key at or above it (NULL at the end).  succs[0] is the leaf for @key if
 * its key matches.
 *
 * @finger > 0 says preds[0..finger-1] hold the predecessors of a smaller key
 * found earlier in the same section (a range operation walking up).  If
 * @finger >= @height, only levels below @height are searched, each starting
 * from its finger when that is further right, so a sorted run costs O(1)
 * amortized per key.  A finger is used only while its next word at its level
 * reads unfrozen (it is then still linked there, like any predecessor we
 * descend from: D); otherwise, and after any failed CAS, the search restarts
 * from the head over every level.  Returns how many levels it filled.
 */
unsigned int ct_neighbours(struct cowtable_ctx *ctx, uintptr_t key, struct ct_leaf **preds,
                           struct ct_leaf **succs, unsigned int height, unsigned int finger)
{
	struct ct_table *t = ctx->table;
	unsigned int top = ct_load_u32(&t->level);
	struct ct_leaf *pred, *curr, *f;
	uintptr_t succ;
	int i;

	if (top < height)
		top = height;
	if (finger >= height)
		top = height;
	else
		finger = 0;
retry:
	pred = t->head;
	for (i = (int)top - 1; i >= 0; i--) {
		f = finger ? preds[i] : NULL;
		if (f != NULL && f != t->head && f->key < key &&
		    (pred == t->head || f->key > pred->key)) {
			succ = ct_load_next(f, (unsigned int)i);
			if (succ & CT_FROZEN)
				goto restart;
			pred = f;
			curr = ct_ptr(succ);
		} else {
			curr = ct_ptr(ct_load_next(pred, (unsigned int)i));
		}
		while (curr != NULL) {
			CT_LATE_EPOCH(ctx);
			CT_CHECK(ctx, curr);
			succ = ct_load_next(curr, (unsigned int)i);
			if (succ & CT_FROZEN) {
				/*
				 * Unlink curr at level i (U).  Fails if pred was
				 * frozen or its next changed; the path may then
				 * be stale, so start again from the head.
				 */
				if (!ct_cas_word(ct_next(pred, (unsigned int)i), (uintptr_t)curr,
				                 succ & ~CT_FROZEN))
					goto restart;
				curr = ct_ptr(succ);
				continue;
			}
			if (curr->key >= key)
				break;
			pred = curr;
			curr = ct_ptr(succ);
		}
		preds[i] = pred;
		succs[i] = curr;
	}
	return top;
restart:
	finger = 0;
	top = ct_load_u32(&t->level);
	if (top < height)
		top = height;
	goto retry;
}

/*
 * Descend without writing anything: the first leaf at level 0 with a key at
 * or above @key that was unfrozen when read (it may be dead).  Frozen leaves
 * are stepped over but never become the predecessor we descend from (D), so
 * a leaf relinked late by its linker cannot hide a newer one.
 */
struct ct_leaf *ct_descend(struct cowtable_ctx *ctx, uintptr_t key)
{
	struct ct_table *t = ctx->table;
	struct ct_leaf *pred = t->head, *curr = NULL;
	uintptr_t succ;
	int i;

	for (i = (int)ct_load_u32(&t->level) - 1; i >= 0; i--) {
		curr = ct_ptr(ct_load_next(pred, (unsigned int)i));
		while (curr != NULL) {
			CT_LATE_EPOCH(ctx);
			CT_CHECK(ctx, curr);
			succ = ct_load_next(curr, (unsigned int)i);
			if (succ & CT_FROZEN) {
				curr = ct_ptr(succ);
				continue;
			}
			if (curr->key >= key)
				break;
			pred = curr;
			curr = ct_ptr(succ);
		}
	}
	return curr;
}

/*
 * @l is dead and unlinked from every level: clear its index entry, the last
 * pointer to it (K), then retire it.
 */
static void ct_retire_leaf(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
#ifndef CT_BROKEN_INDEX_KEPT /* broken control: an index entry outlives its leaf */
	ct_index_clear(ctx, l);
#endif
	ct_retire(ctx, l);
}

static void ct_raise_level(struct ct_table *t, unsigned int height)
{
	uint32_t level = ct_load_u32(&t->level);

	/* Fails when another link raised the level first; retry while still lower. */
	while (level < height && !ct_cas_u32(&t->level, level, height))
		level = ct_load_u32(&t->level);
}

/* Freeze every level, top-down, so "unfrozen at i" implies "unfrozen below i" (T). */
void ct_freeze_tower(struct ct_leaf *l)
{
	int i;

	for (i = (int)ct_leaf_height(l) - 1; i >= CT_BROKEN_FREEZE_FROM; i--)
		ct_or_word(ct_next(l, (unsigned int)i), CT_FROZEN);
}

/*
 * Link a published leaf at levels 1 and up, bottom-up, then record that its
 * linker is done with it (its index entry is set by then).  Stops early once
 * the leaf is frozen: its killer is tearing it down.  Whichever of the
 * linker and the killer finishes second retires the leaf (design.md, "who
 * retires a leaf").
 */
static void ct_link_upper(struct cowtable_ctx *ctx, struct ct_leaf *l, struct ct_leaf **preds,
                          struct ct_leaf **succs)
{
	unsigned int height = ct_leaf_height(l);
	unsigned int i;
	uintptr_t next;

	for (i = 1; i < height; i++) {
		for (;;) {
			next = ct_load_next(l, i);
			if (next & CT_FROZEN)
				goto done;
			/*
			 * Never link in front of an older leaf with our key: that
			 * one is dead and frozen (ours could only be published
			 * after it was), and a search for the key stops at the
			 * first unfrozen leaf, so it would never unlink it (O).
			 * succs[i] can be such a leaf when it comes from the
			 * search made before publication.
			 */
			if (succs[i] != NULL && succs[i]->key == l->key)
				goto refresh;
			/*
			 * Point the new level at the current successor.  Only a
			 * freezer writes this word concurrently, so failure means
			 * the leaf is being deleted: stop linking.
			 */
			if (next != (uintptr_t)succs[i] &&
			    !ct_cas_word(ct_next(l, i), next, (uintptr_t)succs[i]))
				goto done;
			CT_DELAY(ctx);
			/*
			 * Link at level i; the leaf is already present through
			 * level 0, so this linearizes nothing.  Fails if preds[i]
			 * changed or was frozen: search again.
			 */
			if (ct_cas_word(ct_next(preds[i], i), (uintptr_t)succs[i], (uintptr_t)l))
				break;
		refresh:
			ct_neighbours(ctx, l->key, preds, succs, height, 0);
			if (succs[0] != l)
				goto done; /* frozen at level 0: being deleted */
		}
	}
done:
	CT_DELAY(ctx);
	if (ct_faa_u32(&l->state, CT_LINK_DONE) & CT_FREEZE_DONE) {
		/* The killer came and went: unlink what we linked, then retire. */
		ct_neighbours(ctx, l->key, preds, succs, height, 0);
		ct_retire_leaf(ctx, l);
	}
}

/*
 * Publish @l at level 0 between preds[0] and succs[0], then index it.
 * Returns false if the CAS lost a race (the caller searches again).
 */
bool ct_link(struct cowtable_ctx *ctx, struct ct_leaf *l, struct ct_leaf **preds,
             struct ct_leaf **succs)
{
	unsigned int height = ct_leaf_height(l);
	unsigned int i;

	for (i = 0; i < height; i++)
		ct_init_word(ct_next(l, i), (uintptr_t)succs[i]);
	/*
	 * Linearization point of every page the leaf was built with: before it
	 * the block had no live leaf (S), after it they are tracked.  Fails when
	 * the neighbourhood changed (a link, an unlink, or preds[0] frozen).
	 */
	if (!ct_cas_word(ct_next(preds[0], 0), (uintptr_t)succs[0], (uintptr_t)l))
		return false;
	/* Before CT_LINK_DONE, so that whoever retires the leaf clears it (K, N4). */
	ct_index_set(ctx, l);
	ct_raise_level(ctx->table, height);
	ct_link_upper(ctx, l, preds, succs);
	return true;
}

/*
 * The caller dropped @l's last hold: @l is dead.  Freeze every level, tell a
 * still-linking linker, unlink, and retire the leaf if the linker is already
 * done (otherwise the linker retires it).  @preds/@finger as for
 * ct_neighbours(); @preds may be NULL when there is no finger.  Returns the
 * levels of @preds the search filled.
 */
unsigned int ct_remove_dead(struct cowtable_ctx *ctx, struct ct_leaf *l, struct ct_leaf **preds,
                            unsigned int finger)
{
	struct ct_leaf *own[CT_MAX_LEVEL], *succs[CT_MAX_LEVEL];
	unsigned int height = ct_leaf_height(l);
	uint32_t state;

	if (preds == NULL) {
		preds = own;
		finger = 0;
	}
	ct_freeze_tower(l);
	CT_DELAY(ctx);
	state = ct_faa_u32(&l->state, CT_FREEZE_DONE);
	CT_DELAY(ctx);
	finger = ct_neighbours(ctx, l->key, preds, succs, height, finger);
	if (state & CT_LINK_DONE)
		ct_retire_leaf(ctx, l);
	return finger;
}
