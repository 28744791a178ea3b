// SPDX-License-Identifier: BSD-2-Clause
/*
 * Range operations: fork (mark a run of pages), munmap and exit (release a
 * run), and ordered iteration.  They go one leaf at a time in key order,
 * COWTABLE_RANGE_SECTION_LEAVES leaves per epoch section at most, so a long
 * range never holds back reclamation for everyone else; results for
 * callbacks are copied out of one leaf at a time and handed over outside the
 * section.  docs/design.md, "Range operations".
 */
#include "ct_internal.h"

/* Results copied out of one leaf: the pages set in @used, in slot order. */
struct ct_copy {
	uintptr_t key;
	uint64_t used;
	unsigned int next; /* the first slot ct_copy_take() has not looked at */
	uint64_t slot[CT_LEAF_PAGES];
};

/* Start a copy of @key's leaf; nothing in it yet. */
static void ct_copy_start(struct ct_copy *c, uintptr_t key)
{
	c->key = key;
	c->used = 0;
	c->next = 0;
}

/* The lowest page of the copy, removed from it; false when it is empty. */
static bool ct_copy_take(struct ct_copy *c, uintptr_t *vaddr, uint64_t *slot)
{
	unsigned int k;

	if (c->used == 0)
		return false;
	for (k = c->next; !(c->used >> k & 1); k++)
		;
	c->used &= ~(1ull << k);
	c->next = k + 1;
	*vaddr = c->key + (uintptr_t)k * COWTABLE_PAGE_SIZE;
	*slot = c->slot[k];
	return true;
}

/*
 * A walk over the leaves of [from, end): where it stands between sections.
 * from is page aligned: the first page not handled yet.
 */
struct ct_walk {
	uintptr_t from, end;
	bool done;
};

/* The slots of @l in the walk: [*lo, *hi). */
static void ct_walk_slots(const struct ct_walk *w, const struct ct_leaf *l, unsigned int *lo,
                          unsigned int *hi)
{
	uintptr_t span = w->end - l->key; /* l->key < end */

	*lo = w->from > l->key ? ct_slot_index(w->from) : 0;
	*hi = span >= CT_BLOCK_SIZE ? CT_LEAF_PAGES
	                            : (unsigned int)((span - 1) >> COWTABLE_PAGE_SHIFT) + 1;
}

/* The walk has handled @l: go on after its block, or stop at the top of memory. */
static void ct_walk_past(struct ct_walk *w, const struct ct_leaf *l)
{
	if (l->key > UINTPTR_MAX - CT_BLOCK_SIZE || l->key + CT_BLOCK_SIZE >= w->end)
		w->done = true;
	else
		w->from = l->key + CT_BLOCK_SIZE;
}

/* A walk over the pages at or above @start and below @end; done if there are none. */
static void ct_walk_init(struct ct_walk *w, uintptr_t start, uintptr_t end)
{
	w->end = end;
	w->done = false;
	w->from = start;
	if ((start & (COWTABLE_PAGE_SIZE - 1)) != 0) {
		/* A page counts if its address is at or above start. */
		w->done = start > UINTPTR_MAX - COWTABLE_PAGE_SIZE + 1;
		w->from = (start | (COWTABLE_PAGE_SIZE - 1)) + 1;
	}
	if (w->from >= end)
		w->done = true;
}

/*
 * The next leaf of the walk, starting from @l (NULL: descend to the walk's
 * position).  NULL when the walk is over.  Section: required.
 */
static struct ct_leaf *ct_walk_leaf(struct cowtable_ctx *ctx, struct ct_walk *w, struct ct_leaf *l)
{
	/*
	 * A leaf met frozen or dead has only empty slots; its frozen next can
	 * only skip leaves linked after it died (design.md).
	 */
	l = l == NULL ? ct_descend(ctx, ct_block_of(w->from)) : ct_ptr(ct_load_word(ct_next(l, 0)));
	if (l == NULL || l->key >= w->end)
		w->done = true;
	return w->done ? NULL : l;
}

int cowtable_mark_range(struct cowtable_ctx *ctx, uintptr_t start, size_t npages,
                        const cowtable_frame_t *frames, size_t *marked)
{
	struct ct_cursor cur;
	unsigned int leaves;
	size_t i = 0;
	int r = 0;

	if (marked != NULL)
		*marked = 0;
	if (ctx == NULL || (start & (COWTABLE_PAGE_SIZE - 1)) != 0 || npages == 0 ||
	    frames == NULL || npages - 1 > (UINTPTR_MAX - start) >> COWTABLE_PAGE_SHIFT)
		return COWTABLE_EINVAL;
	for (i = 0; i < npages; i++)
		if (frames[i] > COWTABLE_FRAME_MAX)
			return COWTABLE_EINVAL;

	ct_cursor_init(&cur);
	i = 0;
	while (i < npages && r >= 0) {
		cur.finger = 0; /* fingers do not outlive their section */
		ct_enter(ctx);
		for (leaves = 0; leaves < COWTABLE_RANGE_SECTION_LEAVES && i < npages && r >= 0;
		     leaves++)
			r = ct_mark_block(ctx, &cur, start, frames, &i, npages);
		ct_exit(ctx);
		ct_maybe_reclaim(ctx);
	}
	if (cur.spare != NULL)
		ct_leaf_free(ctx, cur.spare); /* never published */
	if (marked != NULL)
		*marked = i;
	return r < 0 ? r : 0;
}

/*
 * Release the walk's pages of @l; with @keep, the LASTs stay in @copy for
 * the callback.  Returns how many pages it released.  Section: required.
 */
static size_t ct_release_leaf(struct cowtable_ctx *ctx, struct ct_cursor *cur,
                              const struct ct_walk *w, struct ct_leaf *l, struct ct_copy *copy,
                              bool keep)
{
	unsigned int lo, hi, k, n;
	uint64_t released;

	ct_walk_slots(w, l, &lo, &hi);
	n = ct_release_slots(ctx, cur, l, lo, hi, copy->slot + lo, &released);
	ct_copy_start(copy, l->key);
	for (k = lo; keep && k < hi; k++)
		if ((released >> k & 1) && ct_slot_refs(copy->slot[k]) == 1)
			copy->used |= 1ull << k;
	return n;
}

/* Copy the walk's tracked pages of @l.  Section: required. */
static void ct_copy_leaf(const struct ct_walk *w, struct ct_leaf *l, struct ct_copy *copy)
{
	unsigned int k, hi;
	uint64_t s;

	ct_walk_slots(w, l, &k, &hi);
	ct_copy_start(copy, l->key);
	for (; k < hi; k++) {
		s = ct_load_slot(&l->slot[k]);
		copy->slot[k] = s;
		if (s != 0)
			copy->used |= 1ull << k;
	}
}

/*
 * One section of a walk: up to COWTABLE_RANGE_SECTION_LEAVES leaves, released
 * (@cur given; LASTs kept in @copy if @keep) or copied (@cur NULL), ending
 * early after a leaf that left pages in @copy for a callback.  Returns the
 * pages released.
 */
static size_t ct_walk_section(struct cowtable_ctx *ctx, struct ct_walk *w, struct ct_cursor *cur,
                              struct ct_copy *copy, bool keep)
{
	struct ct_leaf *l = NULL;
	unsigned int leaves;
	size_t released = 0;

	ct_enter(ctx);
	for (leaves = 0; leaves < COWTABLE_RANGE_SECTION_LEAVES && copy->used == 0; leaves++) {
		l = ct_walk_leaf(ctx, w, l);
		if (l == NULL)
			break;
		if (cur != NULL)
			released += ct_release_leaf(ctx, cur, w, l, copy, keep);
		else
			ct_copy_leaf(w, l, copy);
		ct_walk_past(w, l);
		if (w->done)
			break;
	}
	ct_exit(ctx);
	return released;
}

size_t cowtable_release_range(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                              cowtable_last_fn *last, void *arg)
{
	struct ct_copy copy;
	struct ct_cursor cur;
	struct ct_walk w;
	size_t released = 0;
	uintptr_t vaddr;
	uint64_t slot;

	if (ctx == NULL || end <= start)
		return 0;
	ct_walk_init(&w, start, end);
	ct_copy_start(&copy, 0);
	ct_cursor_init(&cur);
	while (!w.done) {
		cur.finger = 0; /* fingers do not outlive their section */
		released += ct_walk_section(ctx, &w, &cur, &copy, last != NULL);
		/* Outside the section: the callback may block or call cowtable itself. */
		while (ct_copy_take(&copy, &vaddr, &slot))
			last(vaddr, ct_slot_frame(slot), arg);
		ct_maybe_reclaim(ctx);
	}
	return released;
}

size_t cowtable_foreach(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                        cowtable_visit_fn *visit, void *arg)
{
	struct ct_copy copy;
	struct ct_walk w;
	size_t visited = 0;
	uintptr_t vaddr;
	uint64_t slot;

	if (ctx == NULL || visit == NULL || end <= start)
		return 0;
	ct_walk_init(&w, start, end);
	ct_copy_start(&copy, 0);
	while (!w.done) {
		ct_walk_section(ctx, &w, NULL, &copy, true);
		/* Outside the section, on copies: the visitor sees no leaf and may block. */
		while (ct_copy_take(&copy, &vaddr, &slot)) {
			visited++;
			if (!visit(vaddr, ct_slot_frame(slot), ct_slot_refs(slot), arg))
				return visited;
		}
	}
	return visited;
}
