// SPDX-License-Identifier: BSD-2-Clause
/*
 * The block index: a radix tree from block number to the leaf linked for the
 * block, beside the skip list, which stays the ordered and authoritative
 * index.  Single-page operations find a leaf here in a few loads at any
 * size; what they find is only a hint (K, N5), trusted through a non-zero
 * slot or a hold of the leaf, and everything else falls back to the list.
 *
 * Nodes are built privately and published by one CAS from 0 (N3).  A node's
 * holds count its non-zero entries and the setters about to fill one (N1);
 * the drop that takes them to 0 kills it, and whoever then unlinks it from
 * its parent (or the root) retires it and drops the parent's hold.  A live
 * node's parent entry never changes (N2).  The tree grows at the top when a
 * block number does not fit, and empties to nothing.  docs/design.md, "The
 * block index".  Section: required, for every function here but
 * ct_index_fini().
 */
#include "ct_internal.h"

/* The first block number of the node of height @h that covers @b. */
static uintptr_t ct_node_base(unsigned int h, uintptr_t b)
{
	return h * CT_NODE_SHIFT >= CT_BLOCK_BITS ? 0
	                                          : b >> (h * CT_NODE_SHIFT) << (h * CT_NODE_SHIFT);
}

/* The lowest height that covers @b. */
static unsigned int ct_height_for(uintptr_t b)
{
	unsigned int h = 1;

	while (!ct_node_covers(h, b))
		h++;
	return h;
}

static struct ct_node *ct_node_at(uintptr_t word)
{
	return (struct ct_node *)word;
}

/* Take a hold on @n.  Returns false if @n is dead (N1: nothing takes one from 0). */
static bool ct_node_take(struct ct_node *n)
{
	uint32_t holds = ct_load_u32(&n->holds);

	while (holds != 0) {
		/*
		 * Keeps a live node live for the entry we are about to fill.
		 * Fails when another context took or dropped a hold: try again
		 * with the count seen, which may be 0 (dead).
		 */
		if (ct_cas_u32(&n->holds, holds, holds + 1))
			return true;
		holds = ct_load_u32(&n->holds);
	}
	return false;
}

/*
 * The word that points at the dead node @n (the root or an entry of its
 * parent), with the parent in *@parent (NULL for the root); NULL if no word
 * does: another context unlinked it (N3).
 */
static uintptr_t *ct_node_where(struct ct_table *t, struct ct_node *n, struct ct_node **parent)
{
	unsigned int h = ct_node_height(n);
	uintptr_t *w = &t->index;
	struct ct_node *c;

	*parent = NULL;
	for (;;) {
		c = ct_node_at(ct_load_word(w));
		if (c == n)
			return w;
		if (c == NULL || ct_node_height(c) <= h)
			return NULL;
		*parent = c;
		w = &c->entry[ct_node_index(ct_node_height(c), n->base)];
	}
}

/*
 * @n is dead: unlink it from its parent (or the root), retire it, and drop
 * the parent's hold for that entry; a parent that dies of it goes the same
 * way, up the tree (a loop).
 */
static void ct_node_unlink(struct cowtable_ctx *ctx, struct ct_node *n)
{
	struct ct_node *parent;
	uintptr_t *w;

	while (n != NULL) {
		w = ct_node_where(ctx->table, n, &parent);
		if (w == NULL)
			return;
		CT_DELAY(ctx);
		/*
		 * Unlinks the dead node (N2: only a dead node's parent entry is
		 * cleared).  Fails when another context that saw it dead
		 * unlinked it first, or the root grew above it: look again.
		 */
		if (!ct_cas_word(w, (uintptr_t)n, 0))
			continue;
		ct_retire_node(ctx, n);
		n = parent != NULL && ct_fsub_u32(&parent->holds, 1) == 1 ? parent : NULL;
	}
}

/* Drop a hold of @n; the drop to 0 kills it. */
static void ct_node_drop(struct cowtable_ctx *ctx, struct ct_node *n)
{
#ifdef CT_BROKEN_NODE_UNLINK_LIVE
	/* Broken control: a node is unlinked when one hold is left, not none. */
	if (ct_fsub_u32(&n->holds, 1) == 2) {
		ct_node_unlink(ctx, n);
		return;
	}
	return;
#endif
	if (ct_fsub_u32(&n->holds, 1) == 1)
		ct_node_unlink(ctx, n);
}

/* A private node of height @h covering @b, with @child (if any) at @b's entry. */
static struct ct_node *ct_node_new(struct cowtable_ctx *ctx, unsigned int h, uintptr_t b,
                                   uintptr_t child)
{
	struct ct_node *n = ct_node_alloc(ctx);
	unsigned int i;

	if (n == NULL)
		return NULL;
	n->base = ct_node_base(h, b);
	ct_init_u32(&n->holds, child != 0);
	ct_init_u32(&n->state, CT_NODE | h << CT_HEIGHT_SHIFT);
	for (i = 0; i < CT_NODE_ENTRIES; i++)
		ct_init_word(&n->entry[i], 0);
	if (child != 0)
		ct_init_word(&n->entry[ct_node_index(h, b)], child);
	return n;
}

/* Free a private path built by ct_path_new(), never published. */
static void ct_path_free(struct cowtable_ctx *ctx, struct ct_node *n, uintptr_t b)
{
	struct ct_node *below;

	while (n != NULL) {
		below = ct_node_height(n) > 1
		                ? ct_node_at(n->entry[ct_node_index(ct_node_height(n), b)])
		                : NULL;
		ct_node_free(ctx->table, n);
		n = below;
	}
}

/* A private path of nodes from height @h down to the bottom, which holds @l. */
static struct ct_node *ct_path_new(struct cowtable_ctx *ctx, unsigned int h, uintptr_t b,
                                   struct ct_leaf *l)
{
	struct ct_node *n, *below = NULL;
	unsigned int k;

	for (k = 1; k <= h; k++) {
		n = ct_node_new(ctx, k, b, below != NULL ? (uintptr_t)below : (uintptr_t)l);
		if (n == NULL) {
			ct_path_free(ctx, below, b);
			return NULL;
		}
		below = n;
	}
	return below;
}

/*
 * Put @l at its entry of the bottom node @n, unless a live leaf of the block
 * is there (then @l is dead, S).  Returns false if @n is dead: the caller
 * starts again from the root.
 */
static bool ct_index_fill(struct cowtable_ctx *ctx, struct ct_node *n, uintptr_t b,
                          struct ct_leaf *l)
{
	uintptr_t *e = &n->entry[ct_node_index(1, b)];
	struct ct_leaf *old;

#ifndef CT_BROKEN_SET_NO_HOLD /* broken control: an entry is filled without a hold */
	if (!ct_node_take(n)) {
		ct_node_unlink(ctx, n);
		return false;
	}
#endif
	old = (struct ct_leaf *)ct_load_word(e);
	for (;;) {
		/*
		 * A leaf in an entry is not retired while our section runs (K,
		 * R), and a dead leaf stays dead (H): what is decided here still
		 * holds when the CAS below succeeds.
		 */
		if (old != NULL && ct_load_u32(&old->holds) != 0)
			break;
		CT_DELAY(ctx);
		/*
		 * Publishes @l to single-page operations (K).  Fails when
		 * another link or a retire changed the entry (to another leaf
		 * of the block, or to 0): decide again on what is there now.
		 */
		if (ct_publish_word(e, (uintptr_t)old, (uintptr_t)l)) {
			if (old == NULL)
				return true; /* our hold now counts the entry (N1) */
			break;               /* the entry was already counted */
		}
		old = (struct ct_leaf *)ct_load_word(e);
	}
#ifndef CT_BROKEN_SET_NO_HOLD
	ct_node_drop(ctx, n);
#endif
	return true;
}

/*
 * Add a private path for @l below the live-or-dead node @n of height @h,
 * whose entry for @b is 0.  Returns false if the caller must look again
 * from the root; true when done (or given up: the index is only a hint).
 */
static bool ct_index_graft(struct cowtable_ctx *ctx, struct ct_node *n, unsigned int h, uintptr_t b,
                           struct ct_leaf *l)
{
	struct ct_node *path;

	if (!ct_node_take(n)) {
		ct_node_unlink(ctx, n);
		return false;
	}
	path = ct_path_new(ctx, h - 1, b, l);
	if (path == NULL) {
		ct_node_drop(ctx, n);
		return true;
	}
	CT_DELAY(ctx);
	/*
	 * Publishes the path, and @l with it (N3: from 0 only).  Fails when
	 * another setter grafted there first: free ours and look again.
	 */
	if (ct_publish_word(&n->entry[ct_node_index(h, b)], 0, (uintptr_t)path))
		return true; /* our hold now counts the entry (N1) */
	ct_path_free(ctx, path, b);
	ct_node_drop(ctx, n);
	return false;
}

/*
 * The root read, @top, is 0 or does not cover @b: plant a whole path for @l
 * where there is no tree, or grow the tree by one level (a new top whose
 * entry 0 is the old top).  Returns true when @l is indexed or given up
 * (the allocator failed: the list alone finds it), false when the caller
 * must look again.
 */
static bool ct_index_root(struct cowtable_ctx *ctx, struct ct_node *top, uintptr_t b,
                          struct ct_leaf *l)
{
	struct ct_table *t = ctx->table;
	struct ct_node *n;

	if (top == NULL) {
		n = ct_path_new(ctx, ct_height_for(b), b, l);
		if (n == NULL)
			return true;
		/* Plants the tree (N3).  Fails when another setter planted one first. */
		if (ct_publish_word(&t->index, 0, (uintptr_t)n))
			return true;
		ct_path_free(ctx, n, b);
		return false;
	}
	n = ct_node_new(ctx, ct_node_height(top) + 1, 0, (uintptr_t)top);
	if (n == NULL)
		return true;
	/*
	 * Grows the tree: the old top, live or dead, becomes entry 0 of the new
	 * one, which holds it (N1).  Fails when the root changed: look again.
	 */
	if (!ct_publish_word(&t->index, (uintptr_t)top, (uintptr_t)n))
		ct_node_free(t, n);
	return false;
}

/*
 * Index @l, just linked at level 0 by the caller, before its CT_LINK_DONE
 * (N4), unless a live leaf of its block is indexed (then @l is dead, S).
 * Gives up, leaving @l to the list, when the allocator fails.  Section:
 * required.
 */
void ct_index_set(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	uintptr_t b = ct_block_number(l->key);
	struct ct_node *n, *c;
	unsigned int h;

	for (;;) {
		n = ct_node_at(ct_load_word(&ctx->table->index));
		if (n == NULL || !ct_node_covers(ct_node_height(n), b)) {
			if (ct_index_root(ctx, n, b, l))
				return;
			continue;
		}
		for (h = ct_node_height(n); h > 1; h--) {
			c = ct_node_at(ct_load_word(&n->entry[ct_node_index(h, b)]));
			if (c == NULL)
				break;
			n = c;
		}
		if (h > 1 ? ct_index_graft(ctx, n, h, b, l) : ct_index_fill(ctx, n, b, l))
			return;
	}
}

/*
 * @l, dead and unlinked, is about to be retired: make sure no entry points
 * at it (K, N4).  Its linker set the entry before CT_LINK_DONE, which the
 * retirer has seen, so the descent reads that path or a later one.
 * Section: required.
 */
void ct_index_clear(struct cowtable_ctx *ctx, struct ct_leaf *l)
{
	uintptr_t b = ct_block_number(l->key), *e;
	struct ct_node *n = ct_node_at(ct_load_word(&ctx->table->index));
	unsigned int h;

	if (n == NULL || !ct_node_covers(ct_node_height(n), b))
		return;
	for (h = ct_node_height(n); h > 1; h--) {
		n = ct_node_at(ct_load_word(&n->entry[ct_node_index(h, b)]));
		if (n == NULL)
			return;
	}
	e = &n->entry[ct_node_index(1, b)];
	/*
	 * Unlinks @l from the index.  Fails when a link of a newer leaf of the
	 * block replaced it: then no entry points at @l either.
	 */
	if (ct_load_word(e) == (uintptr_t)l && ct_cas_word(e, (uintptr_t)l, 0))
		ct_node_drop(ctx, n);
}

/*
 * The bottom node that covers block number @b, or NULL.  Section: required.
 */
static struct ct_node *ct_index_bottom(struct cowtable_ctx *ctx, uintptr_t b)
{
	struct ct_node *n = ct_node_at(ct_load_word(&ctx->table->index));
	unsigned int h;

	if (n == NULL)
		return NULL;
	h = ct_node_height(n);
	if (!ct_node_covers(h, b))
		return NULL;
	for (; n != NULL && h > 1; h--) {
		CT_CHECK_NODE(ctx, n);
		n = ct_node_at(ct_load_word(&n->entry[ct_node_index(h, b)]));
	}
	return n;
}

/*
 * The leaf the index holds for @key's block, or NULL.  It may be dead, or
 * a dead one whose block has a newer leaf in the list: only a non-zero slot
 * or a hold taken on it says it is live (K).  An entry holds only leaves of
 * its block, so the leaf's key need not be read.  Section: required.
 */
struct ct_leaf *ct_index_get(struct cowtable_ctx *ctx, uintptr_t key)
{
	uintptr_t b = ct_block_number(key);
	struct ct_node *n = ct_index_bottom(ctx, b);
	struct ct_leaf *l;

	if (n == NULL)
		return NULL;
	CT_CHECK_NODE(ctx, n);
	l = (struct ct_leaf *)ct_load_word(&n->entry[ct_node_index(1, b)]);
	if (l != NULL) {
		CT_LATE_EPOCH(ctx);
		CT_CHECK(ctx, l);
	}
	return l;
}

/*
 * The nearest leaf the index holds below @key's block in the same bottom
 * node, or NULL: a level-0 finger for linking a leaf of @key's block, once
 * its next word reads unfrozen (D).  Section: required.
 */
struct ct_leaf *ct_index_before(struct cowtable_ctx *ctx, uintptr_t key)
{
	uintptr_t b = ct_block_number(key);
	struct ct_node *n = ct_index_bottom(ctx, b);
	struct ct_leaf *l;
	unsigned int i;

	if (n == NULL)
		return NULL;
	for (i = ct_node_index(1, b); i > 0; i--) {
		l = (struct ct_leaf *)ct_load_word(&n->entry[i - 1]);
		if (l != NULL) {
			CT_LATE_EPOCH(ctx);
			CT_CHECK(ctx, l);
			return l;
		}
	}
	return NULL;
}

/*
 * cowtable_fini(): free every node still in the tree, depth first with an
 * explicit stack (no recursion).  Nothing else runs; retired nodes are in
 * the contexts' batches, freed with them.
 */
void ct_index_fini(struct ct_table *t)
{
	struct ct_node *stack[CT_INDEX_HEIGHT + 1], *n;
	unsigned int next[CT_INDEX_HEIGHT + 1], depth = 0;

	if (t->index == 0)
		return;
	stack[0] = ct_node_at(t->index);
	next[0] = 0;
	for (;;) {
		n = stack[depth];
		if (ct_node_height(n) > 1 && next[depth] < CT_NODE_ENTRIES) {
			if (n->entry[next[depth]++] != 0) {
				stack[depth + 1] = ct_node_at(n->entry[next[depth] - 1]);
				next[++depth] = 0;
			}
			continue;
		}
		ct_node_free(t, n);
		if (depth == 0)
			break;
		depth--;
	}
	t->index = 0;
}
