// SPDX-License-Identifier: BSD-2-Clause
/*
 * Pages and leaves: the slot of a page and the holds of its leaf.  A slot
 * moves only by CAS and never from 0 to 1, so a released entry is never
 * brought back; a leaf is kept alive by holds (one per tracked slot, one per
 * mark about to fill a slot), and dies when they reach 0, after which its
 * slots stay 0 (invariant H).  docs/design.md, "Pages and leaves".
 */
#include "ct_internal.h"

#ifdef CT_BROKEN_RELEASE_NO_ZERO_CHECK
/* Broken control, the seed's bug: a release decrements an empty slot and wraps. */
#define CT_BROKEN_RELEASE_FROM_ZERO 1
#else
#define CT_BROKEN_RELEASE_FROM_ZERO 0
#endif
#ifdef CT_BROKEN_HOLD_FROM_ZERO
/* Broken control: a mark takes a hold on a dead leaf and fills a slot of it. */
#define CT_BROKEN_TAKE_FROM_ZERO 1
#else
#define CT_BROKEN_TAKE_FROM_ZERO 0
#endif

/* A mark met a dead leaf: search again (ct_mark_page()); never returned to users. */
#define CT_LEAF_DEAD (-1000)

/*
 * Take @k holds on @l.  Returns false if @l is dead.  Section: required.
 */
static bool ct_leaf_take(struct ct_leaf *l, uint32_t k)
{
	uint32_t holds = ct_load_u32(&l->holds);

	while (holds != 0 || CT_BROKEN_TAKE_FROM_ZERO) {
		/*
		 * Keeps a live leaf live (H).  Fails when another context took
		 * or dropped holds meanwhile: try again with the count seen,
		 * which may be 0 (dead: nothing takes a hold from 0).
		 */
		if (ct_cas_u32(&l->holds, holds, holds + k))
			return true;
		holds = ct_load_u32(&l->holds);
	}
	return false;
}

/*
 * Drop @k holds of @l.  The drop that takes them to 0 kills the leaf: it
 * freezes, unlinks and retires it (ct_remove_dead()).  @cur, if given, lends
 * its predecessors as a finger for that search.  Section: required.
 */
void ct_leaf_drop(struct cowtable_ctx *ctx, struct ct_leaf *l, uint32_t k, struct ct_cursor *cur)
{
	unsigned int filled;

#ifdef CT_BROKEN_DROP_ALL
	/* Broken control: the drop takes every hold, killing a leaf with live slots. */
	k = ct_load_u32(&l->holds);
#endif
	if (ct_fsub_u32(&l->holds, k) != k)
		return;
	CT_DELAY(ctx);
	filled = ct_remove_dead(ctx, l, cur != NULL ? cur->preds : NULL,
	                        cur != NULL ? cur->finger : 0);
	if (cur != NULL && filled > cur->finger)
		cur->finger = filled;
}

/*
 * Mark one page, whose slot is @slot in @l.  *@spare counts holds the caller
 * took for empty slots and has not used: an empty slot uses one (or takes one
 * if there are none).  Returns the new count, an error, or CT_LEAF_DEAD if @l
 * died before the page could be filled.  Section: required.
 */
static int ct_mark_slot(struct cowtable_ctx *ctx, struct ct_leaf *l, uint64_t *slot,
                        cowtable_frame_t frame, uint32_t *spare)
{
	uint64_t s = ct_load_slot(slot);

	for (;;) {
		if (s == 0) {
#ifdef CT_BROKEN_INC_FROM_ZERO
			/* Broken control: an empty slot is counted up like any other. */
			if (ct_cas_slot(slot, &s, ct_slot_make(frame, 1)))
				return 1;
			continue;
#endif
			if (*spare == 0) {
				if (!ct_leaf_take(l, 1))
					return CT_LEAF_DEAD;
				*spare = 1;
			}
			CT_DELAY(ctx);
			/*
			 * Linearization point of a mark that creates an entry in
			 * a live leaf (our hold keeps it live).  Fails when
			 * another mark filled the slot first: share that entry,
			 * keeping the hold for now.
			 */
			if (ct_cas_slot(slot, &s, ct_slot_make(frame, 2))) {
				(*spare)--;
				ct_count_add(ctx, 1);
				return 2;
			}
			continue;
		}
		/* Linearization point of EEXIST and EOVERFLOW: the load that read s. */
		if (ct_slot_frame(s) != frame)
			return COWTABLE_EEXIST;
		if (ct_slot_refs(s) >= CT_REFS_MAX)
			return COWTABLE_EOVERFLOW;
		CT_DELAY(ctx);
#ifdef CT_BROKEN_MARK_OVERWRITE
		/* Broken control, the seed's bug: a mark resets a tracked page to 2. */
		if (ct_cas_slot(slot, &s, ct_slot_make(frame, 2)))
			return 2;
		continue;
#endif
		/*
		 * Linearization point of a mark that shares a tracked page.
		 * Fails when a concurrent mark or release changed the slot:
		 * decide again on the value seen, which may now be 0.
		 */
		if (ct_cas_slot(slot, &s, s + 1))
			return (int)ct_slot_refs(s) + 1;
	}
}

/*
 * Mark pages [*@i, @end) of the range in the live-or-dead leaf @l, in place:
 * one hold for every slot seen empty is taken at once, unused ones are
 * dropped at the end.  Returns the last page's count, the first error (*@i
 * at that page), or CT_LEAF_DEAD (*@i at the first page not marked).
 * Section: required.
 */
static int ct_mark_in_leaf(struct cowtable_ctx *ctx, struct ct_cursor *cur, struct ct_leaf *l,
                           uintptr_t start, const cowtable_frame_t *frames, size_t *i, size_t end)
{
	unsigned int idx = ct_slot_index(start + *i * COWTABLE_PAGE_SIZE);
	uint32_t spare = 0, empty = 0;
	size_t k;
	int r = 0;

	for (k = *i; k < end; k++)
		empty += ct_load_slot(&l->slot[idx + (k - *i)]) == 0;
	if (empty != 0) {
		if (!ct_leaf_take(l, empty))
			return CT_LEAF_DEAD;
		spare = empty;
	}
	for (; *i < end; (*i)++, idx++) {
		r = ct_mark_slot(ctx, l, &l->slot[idx], frames[*i], &spare);
		if (r < 0)
			break;
	}
	if (spare != 0)
		ct_leaf_drop(ctx, l, spare, cur);
	return r;
}

/*
 * A private leaf for @key holding pages [@i, @end) of the range, with as many
 * holds; every other slot 0.  Uses the cursor's spare leaf if it has one.
 * NULL if the allocator failed.
 */
static struct ct_leaf *ct_leaf_build(struct cowtable_ctx *ctx, struct ct_cursor *cur,
                                     unsigned int height, uintptr_t key, uintptr_t start,
                                     const cowtable_frame_t *frames, size_t i, size_t end)
{
	unsigned int first = ct_slot_index(start + i * COWTABLE_PAGE_SIZE);
	unsigned int last = first + (unsigned int)(end - i), k;
	struct ct_leaf *l = cur->spare;

	if (l == NULL) {
		l = ct_leaf_alloc(ctx, height);
		if (l == NULL)
			return NULL;
	}
	cur->spare = NULL;
	l->key = key;
	ct_init_u32(&l->holds, last - first);
	ct_init_u32(&l->state, height << CT_HEIGHT_SHIFT);
	for (k = 0; k < CT_LEAF_PAGES; k++)
		ct_init_slot(&l->slot[k],
		             k >= first && k < last ? ct_slot_make(frames[i + (k - first)], 2) : 0);
	return l;
}

/*
 * Mark the pages of the range (page k at @start + k * COWTABLE_PAGE_SIZE,
 * frame @frames[k]) from *@i up to @n or the end of page *@i's block,
 * whichever comes first.  A block without a live leaf gets a private leaf
 * with all those pages, published by one link; a live leaf is marked in
 * place.  Returns the count of the last page marked, with *@i past them, or
 * the first error, with *@i at the page that failed (the pages before it are
 * marked).  @cur carries the finger and the spare leaf from block to block.
 * Section: required.
 */
int ct_mark_block(struct cowtable_ctx *ctx, struct ct_cursor *cur, uintptr_t start,
                  const cowtable_frame_t *frames, size_t *i, size_t n)
{
	uintptr_t vaddr = start + *i * COWTABLE_PAGE_SIZE, key = ct_block_of(vaddr);
	size_t end = *i + (CT_LEAF_PAGES - ct_slot_index(vaddr));
	unsigned int height, finger = cur->finger, filled, k;
	struct ct_leaf *l;
	int r;

	if (end > n)
		end = n;
	height = cur->spare != NULL ? ct_leaf_height(cur->spare) : ct_random_height(ctx);
	if (finger == 0 && height == 1) {
		/* A leaf before ours in the index is a level-0 finger (D, checked there). */
		cur->preds[0] = ct_index_before(ctx, key);
		finger = cur->preds[0] != NULL;
	}
	for (;;) {
		filled = ct_neighbours(ctx, key, cur->preds, cur->succs, height, finger);
		if (filled > cur->finger)
			cur->finger = filled;
		finger = 0; /* a retry starts from the head */
		l = cur->succs[0];
		if (l != NULL && l->key == key) {
			r = ct_mark_in_leaf(ctx, cur, l, start, frames, i, end);
			if (r != CT_LEAF_DEAD)
				return r;
			/* Dead but still linked: freeze it so the next search unlinks it. */
			ct_freeze_tower(l);
			continue;
		}
		l = ct_leaf_build(ctx, cur, height, key, start, frames, *i, end);
		if (l == NULL)
			return COWTABLE_ENOMEM;
		CT_DELAY(ctx);
		if (ct_link(ctx, l, cur->preds, cur->succs)) {
			ct_count_add(ctx, (int64_t)(end - *i));
			*i = end;
			/* The next, larger key starts from the new leaf where it is linked. */
			for (k = 0; k < height; k++)
				cur->preds[k] = l;
			return 2;
		}
		cur->spare = l; /* never published: build it again after the search */
	}
}

/*
 * Drop one reference of every tracked page among slots [@lo, @hi) of @l.
 * For each page released, seen[k - @lo] gets the slot's value before the
 * release (its frame, and its count: 1 means this call took the last
 * reference).  The holds of the slots emptied are dropped at once at the end
 * (the last drop kills the leaf; @cur, if given, lends a finger).  Returns
 * how many pages it released; *@released gets them, bit k for slot k.
 * Section: required.
 */
unsigned int ct_release_slots(struct cowtable_ctx *ctx, struct ct_cursor *cur, struct ct_leaf *l,
                              unsigned int lo, unsigned int hi, uint64_t *seen, uint64_t *released)
{
	unsigned int k, n = 0;
	uint32_t lasts = 0;
	uint64_t s, next;

	*released = 0;

	for (k = lo; k < hi; k++) {
		s = ct_load_slot(&l->slot[k]);
		while (s != 0 || CT_BROKEN_RELEASE_FROM_ZERO) {
			next = ct_slot_refs(s) == 1 ? 0 : s - 1;
			/*
			 * Linearization point of a release: SHARED, or LAST when
			 * it takes the count from 1 to 0.  Fails when a concurrent
			 * mark or release changed the slot: decide again on the
			 * value seen.  An empty slot is never decremented: that
			 * page is untracked.
			 */
			if (ct_cas_slot(&l->slot[k], &s, next)) {
				seen[k - lo] = s;
				*released |= 1ull << k;
				n++;
				lasts += next == 0;
				break;
			}
		}
	}
	if (lasts != 0) {
		ct_count_add(ctx, -(int64_t)lasts);
		ct_leaf_drop(ctx, l, lasts, cur);
	}
	return n;
}

static bool ct_aligned(uintptr_t vaddr)
{
	return (vaddr & (COWTABLE_PAGE_SIZE - 1)) == 0;
}

/* The leaf of @vaddr's block as a descent finds it, or NULL.  Section: required. */
static struct ct_leaf *ct_leaf_of(struct cowtable_ctx *ctx, uintptr_t vaddr)
{
	struct ct_leaf *l = ct_descend(ctx, ct_block_of(vaddr));

	return l != NULL && l->key == ct_block_of(vaddr) ? l : NULL;
}

int cowtable_mark(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t frame)
{
	struct ct_cursor cur;
	struct ct_leaf *l;
	size_t i = 0;
	int r;

	if (ctx == NULL || !ct_aligned(vaddr) || frame > COWTABLE_FRAME_MAX)
		return COWTABLE_EINVAL;
	ct_cursor_init(&cur);
	ct_enter(ctx);
	/* A live leaf met through the index is the block's leaf (S, K). */
	l = ct_index_get(ctx, vaddr);
	CT_DELAY(ctx);
	r = l != NULL ? ct_mark_in_leaf(ctx, &cur, l, vaddr, &frame, &i, 1) : CT_LEAF_DEAD;
	if (r == CT_LEAF_DEAD)
		r = ct_mark_block(ctx, &cur, vaddr, &frame, &i, 1);
	ct_exit(ctx);
	if (cur.spare != NULL)
		ct_leaf_free(ctx, cur.spare); /* never published: no grace period needed */
	ct_maybe_reclaim(ctx);
	return r;
}

int cowtable_release(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame)
{
	unsigned int k = ct_slot_index(vaddr), n;
	uint64_t seen = 0, released;
	struct ct_leaf *l;
	int r = COWTABLE_NOT_COW;

	if (ctx == NULL || !ct_aligned(vaddr))
		return COWTABLE_EINVAL;
	ct_enter(ctx);
	/* Through the index, a release changes only a non-zero slot (S, K). */
	l = ct_index_get(ctx, vaddr);
	CT_DELAY(ctx);
	n = l != NULL ? ct_release_slots(ctx, NULL, l, k, k + 1, &seen, &released) : 0;
	if (n == 0) {
		l = ct_leaf_of(ctx, vaddr);
		CT_DELAY(ctx);
		n = l != NULL ? ct_release_slots(ctx, NULL, l, k, k + 1, &seen, &released) : 0;
	}
	if (n != 0) {
		r = ct_slot_refs(seen) == 1 ? COWTABLE_LAST : COWTABLE_SHARED;
		if (frame != NULL)
			*frame = ct_slot_frame(seen);
	}
	ct_exit(ctx);
	ct_maybe_reclaim(ctx);
	return r;
}

bool cowtable_lookup(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame,
                     uint32_t *refs)
{
	struct ct_leaf *l;
	uint64_t s = 0;

	if (ctx == NULL || !ct_aligned(vaddr))
		return false;
	ct_enter(ctx);
	/*
	 * Linearization point of a lookup that finds the page: a non-zero slot
	 * (H), whichever way its leaf was reached.  Through the index, a zero
	 * proves the page untracked only if the leaf is still live after it
	 * was read: it was then the block's one live leaf (S) when the zero was
	 * read, the linearization point.  Otherwise descend (K).
	 */
	l = ct_index_get(ctx, vaddr);
	CT_DELAY(ctx);
	if (l != NULL) {
		s = ct_load_slot(&l->slot[ct_slot_index(vaddr)]);
#ifndef CT_BROKEN_INDEX_ZERO_TRUSTED /* broken control: a dead leaf's zero is trusted */
		if (s == 0 && ct_load_u32(&l->holds) != 0)
			goto out;
#else
		if (s == 0)
			goto out;
#endif
	}
	if (s == 0) {
		l = ct_leaf_of(ctx, vaddr);
		CT_DELAY(ctx);
		if (l != NULL)
			s = ct_load_slot(&l->slot[ct_slot_index(vaddr)]);
	}
out:
	ct_exit(ctx);
	if (s == 0)
		return false;
	if (frame != NULL)
		*frame = ct_slot_frame(s);
	if (refs != NULL)
		*refs = ct_slot_refs(s);
	return true;
}

bool cowtable_is_cow(struct cowtable_ctx *ctx, uintptr_t vaddr)
{
	return cowtable_lookup(ctx, vaddr, NULL, NULL);
}
