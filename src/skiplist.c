/*
 * The lock-free skip list (Fraser; Herlihy and Shavit): sorted singly linked
 * lists, one per level, each a sublist of the one below.  A node is deleted
 * from a level by setting bit 0 of its next word there (the mark), which
 * freezes that word, and then unlinked by a CAS on its predecessor.  Marks go
 * top-down, links bottom-up.  docs/design.md has the invariants this file
 * relies on; the names below refer to them.
 */
#include "ct_internal.h"

#ifdef CT_BROKEN_NO_MARK_LEVEL0
/* Broken control: level 0 is never marked, so a dead node stays reachable there. */
#define CT_BROKEN_MARK_FROM 1
#else
#define CT_BROKEN_MARK_FROM 0
#endif

/*
 * Search for @key with help: unlink every marked node met on the way.  On
 * return, for each level i < max(@height, table level): preds[i] is the last
 * node seen with a key below @key, succs[i] the first unmarked node with a
 * key at or above it (NULL at the end).  succs[0] is the entry for @key if
 * its key matches.
 *
 * @finger > 0 says preds[0..finger-1] hold the predecessors of a smaller key
 * found earlier in the same epoch section (a range operation walking up).
 * If @finger >= @height, only levels below @height are searched, each
 * starting from its finger when that is further right, so a sorted run costs
 * O(1) amortized per key.  A finger is used only while its next word at its
 * level reads unmarked (it is then still linked there, like any predecessor
 * we descend from); otherwise, and after any failed CAS, the search restarts
 * from the head over every level.  Returns how many levels it filled.
 */
unsigned int ct_find(struct cowtable_ctx *ctx, uintptr_t key, struct ct_node **preds,
                     struct ct_node **succs, unsigned int height, unsigned int finger)
{
	struct ct_table *t = ctx->table;
	unsigned int top = ct_load_u32(&t->level);
	struct ct_node *pred, *curr, *f;
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
			succ = ct_load_word(&f->next[i]);
			if (succ & CT_MARK)
				goto restart;
			pred = f;
			curr = ct_ptr(succ);
		} else {
			curr = ct_ptr(ct_load_word(&pred->next[i]));
		}
		while (curr != NULL) {
			CT_CHECK(ctx, curr);
			succ = ct_load_word(&curr->next[i]);
			if (succ & CT_MARK) {
				/*
				 * Unlink curr at level i.  Fails if pred was
				 * marked or its next changed; the path may then
				 * be stale, so start again from the head.
				 */
				if (!ct_cas_word(&pred->next[i], (uintptr_t)curr, succ & ~CT_MARK))
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
 * Search without writing anything: the first node at level 0 with a key at or
 * above @key that was unmarked when read (its count may be 0).  Marked nodes
 * are stepped over but never become the predecessor we descend from
 * (invariant D), so a node relinked late by its inserter cannot hide a newer
 * entry.
 */
struct ct_node *ct_seek(struct cowtable_ctx *ctx, uintptr_t key)
{
	struct ct_table *t = ctx->table;
	struct ct_node *pred = t->head, *curr = NULL;
	uintptr_t succ;
	int i;

	for (i = (int)ct_load_u32(&t->level) - 1; i >= 0; i--) {
		curr = ct_ptr(ct_load_word(&pred->next[i]));
		while (curr != NULL) {
			CT_CHECK(ctx, curr);
			succ = ct_load_word(&curr->next[i]);
			if (succ & CT_MARK) {
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

/* The node for @key, as ct_seek() finds it, or NULL. */
struct ct_node *ct_search(struct cowtable_ctx *ctx, uintptr_t key)
{
	struct ct_node *n = ct_seek(ctx, key);

	return n != NULL && n->key == key ? n : NULL;
}

void ct_raise_level(struct ct_table *t, unsigned int height)
{
	uint32_t level = ct_load_u32(&t->level);

	/* Fails when another insert raised the level first; retry while still lower. */
	while (level < height && !ct_cas_u32(&t->level, level, height))
		level = ct_load_u32(&t->level);
}

/* Set the mark at every level, top-down, so "unmarked at i" implies "unmarked below i". */
void ct_mark_tower(struct ct_node *n)
{
	int i;

	for (i = (int)ct_node_height(n) - 1; i >= CT_BROKEN_MARK_FROM; i--)
		ct_or_word(&n->next[i], CT_MARK);
}

/*
 * Link a published node at levels 1 and up, bottom-up, then record that its
 * inserter is done with it.  Stops early once the node is marked: a release
 * that dropped its last reference is tearing it down.  Whichever of the
 * inserter and that release finishes second retires the node (design.md,
 * "retire").
 */
static void ct_link_upper(struct cowtable_ctx *ctx, struct ct_node *n, struct ct_node **preds,
                          struct ct_node **succs)
{
	unsigned int height = ct_node_height(n);
	unsigned int i;
	uintptr_t next;

	for (i = 1; i < height; i++) {
		for (;;) {
			next = ct_load_word(&n->next[i]);
			if (next & CT_MARK)
				goto done;
			/*
			 * Never link in front of an older node with our key: that
			 * one is dead and marked (ours could only be published
			 * after it was), and a search for the key stops at the
			 * first unmarked node, so it would never unlink it
			 * (invariant O).  succs[i] can be such a node when it
			 * comes from the search made before publication.
			 */
			if (succs[i] != NULL && succs[i]->key == n->key)
				goto refresh;
			/*
			 * Point the new level at the current successor.  Only a
			 * marker writes this word concurrently, so failure means
			 * the node is being deleted: stop linking.
			 */
			if (next != (uintptr_t)succs[i] &&
			    !ct_cas_word(&n->next[i], next, (uintptr_t)succs[i]))
				goto done;
			CT_DELAY(ctx);
			/*
			 * Link at level i; the entry is already present through
			 * level 0, so this linearizes nothing.  Fails if preds[i]
			 * changed or was marked: search again.
			 */
			if (ct_cas_word(&preds[i]->next[i], (uintptr_t)succs[i], (uintptr_t)n))
				break;
		refresh:
			ct_find(ctx, n->key, preds, succs, height, 0);
			if (succs[0] != n)
				goto done; /* marked at level 0: deleted */
		}
	}
done:
	CT_DELAY(ctx);
	if (height > 1 && (ct_faa_u32(&n->state, CT_LINKED) & CT_DEAD)) {
		/* The last release came and went: unlink what we linked, then retire. */
		ct_find(ctx, n->key, preds, succs, height, 0);
		ct_retire(ctx, n);
	}
}

/*
 * Publish @n at level 0 between preds[0] and succs[0], then index it.
 * Returns false if the CAS lost a race (the caller searches again).
 */
bool ct_link(struct cowtable_ctx *ctx, struct ct_node *n, struct ct_node **preds,
             struct ct_node **succs)
{
	unsigned int height = ct_node_height(n);
	unsigned int i;

	for (i = 0; i < height; i++)
		ct_init_word(&n->next[i], (uintptr_t)succs[i]);
	/*
	 * Linearization point of a mark that creates an entry.  Fails when the
	 * neighbourhood changed (an insert, an unlink, or preds[0] marked).
	 */
	if (!ct_cas_word(&preds[0]->next[0], (uintptr_t)succs[0], (uintptr_t)n))
		return false;
	ct_raise_level(ctx->table, height);
	ct_link_upper(ctx, n, preds, succs);
	return true;
}

/*
 * The caller's release dropped @n's count to zero.  Mark every level, tell a
 * still-linking inserter, unlink, and retire the node if the inserter is
 * already done (otherwise the inserter retires it).  @preds/@finger as for
 * ct_find(); @preds may be NULL when there is no finger.  Returns the levels
 * of @preds the search filled.
 */
unsigned int ct_unlink_dead(struct cowtable_ctx *ctx, struct ct_node *n, struct ct_node **preds,
                            unsigned int finger)
{
	struct ct_node *own[CT_MAX_LEVEL], *succs[CT_MAX_LEVEL];
	unsigned int height = ct_node_height(n);
	uint32_t state;

	if (preds == NULL) {
		preds = own;
		finger = 0;
	}
	ct_mark_tower(n);
	CT_DELAY(ctx);
	state = ct_faa_u32(&n->state, CT_DEAD);
	CT_DELAY(ctx);
	finger = ct_find(ctx, n->key, preds, succs, height, finger);
	if (state & CT_LINKED)
		ct_retire(ctx, n);
	return finger;
}
