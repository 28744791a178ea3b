/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cowtable's core: the structures and conventions every file of src/ shares.
 *
 * Conventions
 *
 * Terms are docs/design.md's ("Terms"), one word per concept: a *page* is
 * an address, a *block* 64 aligned pages, a *leaf* the skip-list node of a
 * block, a *slot* a page's word in its leaf.  To *mark* is to add a sharer
 * (nothing else); to *freeze* is to set the deletion bit of a leaf's next
 * word at one level.  A *hold* keeps a leaf alive; a leaf whose holds reach
 * zero is *dead*; its *killer* is whoever dropped the last hold.  Leaves are
 * *linked* and *unlinked* per level, *retired* once unreachable, and freed
 * after three epoch advances.  The *index* is a table's radix tree from
 * block number to the leaf linked for that block; its *nodes* have holds,
 * die and are retired like leaves, and an *entry* of the index is only a
 * hint, trusted through a slot or a hold of its leaf.  Invariants are cited
 * by their letters in design.md: H (holds), S (one live leaf per block), F
 * (freeze), T (top-down), U (unlink), D (descend), O (order of same-key
 * leaves), R (retire), K (index entries), N1-N5 (index nodes).
 *
 * Sections.  Whatever reads a leaf that other threads can retire runs inside
 * an epoch section, between ct_enter() and ct_exit() on its context: every
 * function of skiplist.c and index.c (but ct_index_fini()), the ct_leaf_*()
 * and ct_*_block() functions of leaf.c, ct_retire() and ct_retire_node().
 * Their comments say "Section: required".  The
 * public cowtable_*() functions open and close their sections themselves and
 * are called outside one.  Callbacks of range operations run outside.
 *
 * Every atomic goes through ct_atomic.h; every CAS says what it linearizes
 * or why it may fail and what happens then.  No locks, no waiting for
 * another thread (cowtable_barrier() waits, by contract), no recursion, no
 * libc but memset/memcpy and the default allocator.
 *
 * Files, each calling only the ones below it (and table.c's helpers):
 *   range.c     mark_range, release_range, foreach
 *   leaf.c      slots and holds, a leaf's life; the single-page API
 *   skiplist.c  the ordered list of leaves: search, descend, link, freeze, unlink
 *   index.c     the block index: block number to leaf, its nodes' life
 *   reclaim.c   sections, leaf and node memory, retire, seal, poll, barrier
 *   table.c     tables and contexts, count, heights
 */
#ifndef CT_INTERNAL_H
#define CT_INTERNAL_H

#include <ck_epoch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowtable.h"
#include "ct_atomic.h"

/*
 * A leaf reaches level k + 1 with probability p = 2^-CT_P_SHIFT once it
 * reaches level k (design.md, "The cost of the path to a leaf").
 */
#ifndef CT_P_SHIFT
#define CT_P_SHIFT 2
#endif

/*
 * Tallest tower.  With p = 1/4 per level, 16 levels index 4^16 leaves (a
 * quarter of an EiB of 4 KiB pages); the block index, not the list, is the
 * path of single-page operations.  A torture build lowers it to make
 * link/unlink races between towers common.
 */
#ifndef CT_MAX_LEVEL
#define CT_MAX_LEVEL 16
#endif

/* Largest reference count; a build for tests may lower it. */
#ifndef CT_REFS_MAX
#define CT_REFS_MAX COWTABLE_REFS_MAX
#endif

/*
 * A leaf covers one block of 64 pages.  Model checking (verify/genmc) builds
 * leaves of 4 pages: nothing in the protocol depends on the number.
 */
#ifndef CT_LEAF_SHIFT
#define CT_LEAF_SHIFT 6
#endif
#define CT_LEAF_PAGES  (1u << CT_LEAF_SHIFT)
#define CT_BLOCK_SHIFT (COWTABLE_PAGE_SHIFT + CT_LEAF_SHIFT)
#define CT_BLOCK_SIZE  ((uintptr_t)1 << CT_BLOCK_SHIFT)

static inline uintptr_t ct_block_of(uintptr_t vaddr)
{
	return vaddr & ~(CT_BLOCK_SIZE - 1);
}

/* A block's number: its first address >> CT_BLOCK_SHIFT. */
static inline uintptr_t ct_block_number(uintptr_t vaddr)
{
	return vaddr >> CT_BLOCK_SHIFT;
}

static inline unsigned int ct_slot_index(uintptr_t vaddr)
{
	return (unsigned int)(vaddr >> COWTABLE_PAGE_SHIFT) & (CT_LEAF_PAGES - 1);
}

/* A slot: frame number << 24 | reference count; 0 means untracked. */
#define CT_REFS_BITS 24
#define CT_REFS_MASK ((1ull << CT_REFS_BITS) - 1)

static inline uint64_t ct_slot_make(cowtable_frame_t frame, uint32_t refs)
{
	return (uint64_t)frame << CT_REFS_BITS | refs;
}

static inline uint32_t ct_slot_refs(uint64_t slot)
{
	return (uint32_t)(slot & CT_REFS_MASK);
}

static inline cowtable_frame_t ct_slot_frame(uint64_t slot)
{
	return slot >> CT_REFS_BITS;
}

/* Bit 0 of a next word: the leaf is frozen (being deleted) at this level. */
#define CT_FROZEN ((uintptr_t)1)

/* leaf->state: who has finished with the leaf (design.md, "who retires"). */
#define CT_LINK_DONE    1u /* its linker has stopped linking levels */
#define CT_FREEZE_DONE  2u /* its killer has frozen every level */
#define CT_HEIGHT_SHIFT 8

/*
 * A leaf: the header below, the slots after it, and the tower of next words
 * just before it in memory (next word i at ((uintptr_t *)leaf)[-1 - i]), so
 * that a search reads the key and the low levels from one cache line and the
 * slots sit at a fixed offset.  The head of the list is a header with a
 * CT_MAX_LEVEL tower and no slots.
 */
struct ct_leaf {
	uintptr_t key;        /* the block's first address; immutable while reachable */
	uint32_t holds;       /* invariant H; 0: dead, and stays 0 */
	uint32_t state;       /* CT_LINK_DONE | CT_FREEZE_DONE | height << CT_HEIGHT_SHIFT */
	struct ct_leaf *link; /* retire batch or leaf cache; never read by a search */
#ifdef CT_STRESS_CHECKS
	uint64_t stamp; /* CT_STAMP_*: what the leaf is, for the torture's checks */
#endif
	uint64_t slot[CT_LEAF_PAGES];
};

static inline uintptr_t *ct_next(struct ct_leaf *l, unsigned int level)
{
	return (uintptr_t *)(void *)l - 1 - level;
}

static inline unsigned int ct_leaf_height(const struct ct_leaf *l)
{
	/* The height bits are written before publication and never change. */
	return (ct_load_u32(&l->state) >> CT_HEIGHT_SHIFT) & 0xffu;
}

/* Bytes of a leaf with a tower of @height, and of the head (no slots). */
static inline size_t ct_leaf_size(unsigned int height)
{
	return height * sizeof(uintptr_t) + sizeof(struct ct_leaf);
}

static inline size_t ct_head_size(void)
{
	return CT_MAX_LEVEL * sizeof(uintptr_t) + offsetof(struct ct_leaf, slot);
}

static inline struct ct_leaf *ct_ptr(uintptr_t word)
{
	return (struct ct_leaf *)(word & ~CT_FROZEN);
}

/*
 * The block index (design.md, "The block index"): a radix tree from block
 * number to leaf, CT_NODE_SHIFT bits of the block number per level.  A node
 * of height 1 (the bottom) holds leaves, one of height h > 1 nodes of
 * height h - 1.  Model checking builds nodes of two entries.
 */
#ifndef CT_NODE_SHIFT
#define CT_NODE_SHIFT 6
#endif
#define CT_NODE_ENTRIES (1u << CT_NODE_SHIFT)
#define CT_BLOCK_BITS   ((unsigned int)(sizeof(uintptr_t) * 8) - CT_BLOCK_SHIFT)
/* The tallest tree: enough levels for every block number. */
#define CT_INDEX_HEIGHT ((CT_BLOCK_BITS + CT_NODE_SHIFT - 1) / CT_NODE_SHIFT)

/* leaf->state or node->state: an index node, not a leaf. */
#define CT_NODE 4u

/*
 * An index node.  Its first fields sit where a leaf's do (table.c checks),
 * so that retired nodes wait in the same batches as leaves, chained through
 * link, and CT_NODE in state tells them apart when a batch is freed.
 */
struct ct_node {
	uintptr_t base;       /* the first block number it covers; immutable */
	uint32_t holds;       /* invariant N1; 0: dead, and stays 0 */
	uint32_t state;       /* CT_NODE | height << CT_HEIGHT_SHIFT; immutable */
	struct ct_leaf *link; /* retire batch */
#ifdef CT_STRESS_CHECKS
	uint64_t stamp; /* CT_STAMP_*, as a leaf's */
#endif
	uintptr_t entry[CT_NODE_ENTRIES]; /* 0, a leaf (height 1) or a node */
};

static inline unsigned int ct_node_height(const struct ct_node *n)
{
	return (ct_load_u32(&n->state) >> CT_HEIGHT_SHIFT) & 0xffu;
}

/* Whether a node of height @h (or the root at that height) covers block number @b. */
static inline bool ct_node_covers(unsigned int h, uintptr_t b)
{
	return h * CT_NODE_SHIFT >= CT_BLOCK_BITS || (b >> (h * CT_NODE_SHIFT)) == 0;
}

/* The entry of block number @b in a node of height @h. */
static inline unsigned int ct_node_index(unsigned int h, uintptr_t b)
{
	return (unsigned int)(b >> ((h - 1) * CT_NODE_SHIFT)) & (CT_NODE_ENTRIES - 1);
}

/* The table behind struct cowtable's private words. */
struct ct_table {
	struct cowtable_allocator alloc;
	struct ct_leaf *head; /* sentinel, CT_MAX_LEVEL tall, key never compared */
	uint32_t level;       /* levels in use, only grows; searches start there */
	uintptr_t index;      /* the index's top node, or 0: no index memory (N2) */
	void *contexts;       /* struct cowtable_ctx list, push only */
	ck_epoch_t epoch;
#ifdef CT_STRESS_CHECKS
	int64_t violations;  /* what a check below found wrong */
	uint64_t last_stamp; /* the stamp of the latest leaf seen where it must not be */
	uint32_t last_check; /* which check: CT_CHECK_* */
#endif
};

/*
 * Retired leaves wait in batches chained through their link word, so a leaf
 * needs no ck_epoch_entry of its own.  A context seals its open batch (stamps
 * it with the global epoch) once it holds CT_BATCH_LEAVES leaves and one of
 * CT_SEALED_BATCHES slots is free; a sealed batch is freed three epochs later.
 */
#define CT_BATCH_LEAVES   16
#define CT_SEALED_BATCHES 8
#define CT_POLL_CALLS     64 /* a context with leaves pending polls every 64 calls */
#ifndef CT_CACHE_LEAVES
#define CT_CACHE_LEAVES 128 /* freed leaves a context keeps for reuse; 0 in model checking */
#endif
/* Heights the cache keeps (one leaf in 256 is taller): a context stays small. */
#define CT_CACHE_HEIGHTS (CT_MAX_LEVEL < 4 ? CT_MAX_LEVEL : 4)

struct ct_batch {
	struct ct_leaf *head;
	uint32_t n;
	uint32_t epoch; /* sealed batches: the global epoch read at the seal */
};

struct cowtable_ctx {
	ck_epoch_record_t record; /* first: cache-line aligned */
	struct ct_table *table;
	struct cowtable_ctx *next; /* table->contexts list */
	void *raw;                 /* what the allocator returned */
	uint32_t in_use;
	uint64_t rng;    /* xorshift64 state for tower heights */
	int64_t count;   /* pages this context started tracking minus those it stopped */
	int64_t pending; /* retired leaves, not yet freed */
	struct ct_batch open;
	struct ct_batch sealed[CT_SEALED_BATCHES]; /* [0, nsealed), oldest first */
	uint32_t nsealed;
	uint32_t reclaim_at; /* open.n at which the next seal is attempted */
	uint32_t poll_in;    /* calls to the next poll while leaves are pending */
	uint32_t cache_n;
	struct ct_leaf *cache[CT_CACHE_HEIGHTS]; /* free leaves by height - 1 */
#ifdef CT_STRESS_CHECKS
	uint32_t entered; /* the epoch the current section began in, as ck_epoch_begin() read it */
#endif
#ifdef CT_INJECT_DELAYS
	uint32_t late_epoch_armed; /* CT_LATE_EPOCH may still act in this section */
#endif
};

/*
 * What a run of blocks inside one section carries from one block to the
 * next: the last search's predecessors (a finger for the next, larger key)
 * and a private leaf that was built but not published.
 */
struct ct_cursor {
	struct ct_leaf *preds[CT_MAX_LEVEL];
	struct ct_leaf *succs[CT_MAX_LEVEL];
	unsigned int finger; /* levels of preds[] usable as a finger; 0: none */
	struct ct_leaf *spare;
};

static inline void ct_cursor_init(struct ct_cursor *cur)
{
	cur->finger = 0;
	cur->spare = NULL;
}

static inline struct ct_table *ct_table_of(struct cowtable *t)
{
	return (struct ct_table *)(void *)t->private_.words;
}

static inline const struct ct_table *ct_table_of_const(const struct cowtable *t)
{
	return (const struct ct_table *)(const void *)t->private_.words;
}

/*
 * Fault injection for the torture tests: a build with CT_INJECT_DELAYS spins
 * for a random while at the points between the steps of CAS sequences, which
 * widens every race window the design has to survive.
 */
#ifdef CT_INJECT_DELAYS
void ct_inject_delay(struct cowtable_ctx *ctx);
#define CT_DELAY(ctx) ct_inject_delay(ctx)
#else
#define CT_DELAY(ctx) ((void)(ctx))
#endif

/*
 * CT_LATE_EPOCH(ctx) follows a section's loads of a leaf pointer, before
 * the leaf is read.  ck_epoch_begin() does not order a section's loads after
 * its load of the global epoch, so on arm64, POWER and RISC-V the first
 * such load may be satisfied before the epoch is read (design.md, "Why
 * e + 3").  An x86 build with CT_INJECT_DELAYS plays that out: once per
 * section, now and then, it waits, then records the global epoch as it is
 * now, as if the epoch load had only just been satisfied.
 */
#ifdef CT_INJECT_DELAYS
void ct_inject_late_epoch(struct cowtable_ctx *ctx);
#define CT_LATE_EPOCH(ctx) ct_inject_late_epoch(ctx)
#else
#define CT_LATE_EPOCH(ctx) ((void)(ctx))
#endif

/*
 * Torture checks (CT_STRESS_CHECKS): every leaf carries a stamp.  Searches
 * check each leaf they touch: it must be live, or retired in an epoch no
 * older than the one the searching section began in (a section that began
 * after a leaf was retired must never reach it).  A cached or freed
 * (poisoned) leaf is always a violation.  Freeing a retired leaf checks that
 * it is dead (H), and every poll checks the reclamation bound.
 */
#define CT_STAMP_LIVE    0x4c49564500000000ull /* "LIVE" */
#define CT_STAMP_RETIRED 0x5245544900000000ull /* "RETI" | epoch of the retire */
#define CT_STAMP_CACHED  0x4341434800000000ull /* "CACH" */
enum { CT_CHECK_STAMP = 1, CT_CHECK_DEAD = 2, CT_CHECK_BOUND = 3 };
#ifdef CT_STRESS_CHECKS
void ct_check_leaf(struct cowtable_ctx *ctx, struct ct_leaf *l);
void ct_stamp(struct ct_leaf *l, uint64_t stamp);
void ct_violation(struct ct_table *t, uint32_t check, uint64_t stamp);
#define CT_CHECK(ctx, l) ct_check_leaf(ctx, l)
#define CT_STAMP(l, s)   ct_stamp(l, s)
/* A node's stamp sits where a leaf's does. */
#define CT_CHECK_NODE(ctx, n) ct_check_leaf(ctx, (struct ct_leaf *)(void *)(n))
#define CT_STAMP_NODE(n, s)   ct_stamp((struct ct_leaf *)(void *)(n), s)
#elif defined(CT_VERIFY_HOOKS)
/*
 * Model checking (verify/genmc): the harness checks every leaf and index
 * node a search touches, and every retired leaf and node it frees
 * (ct_verify_dead(), ct_verify_dead_node(), reclaim.c).
 */
void ct_verify_leaf(struct cowtable_ctx *ctx, struct ct_leaf *l);
void ct_verify_dead(struct cowtable_ctx *ctx, struct ct_leaf *l);
void ct_verify_node(struct cowtable_ctx *ctx, struct ct_node *n);
void ct_verify_dead_node(struct cowtable_ctx *ctx, struct ct_node *n);
#define CT_CHECK(ctx, l)      ct_verify_leaf(ctx, l)
#define CT_STAMP(l, s)        ((void)0)
#define CT_CHECK_NODE(ctx, n) ct_verify_node(ctx, n)
#define CT_STAMP_NODE(n, s)   ((void)0)
#else
#define CT_CHECK(ctx, l)      ((void)0)
#define CT_STAMP(l, s)        ((void)0)
#define CT_CHECK_NODE(ctx, n) ((void)0)
#define CT_STAMP_NODE(n, s)   ((void)0)
#endif

/* table.c */
unsigned int ct_random_height(struct cowtable_ctx *ctx);
void ct_count_add(struct cowtable_ctx *ctx, int64_t delta);

/* reclaim.c */
void ct_enter(struct cowtable_ctx *ctx);
void ct_exit(struct cowtable_ctx *ctx);
struct ct_leaf *ct_leaf_alloc(struct cowtable_ctx *ctx, unsigned int height);
void ct_leaf_free(struct cowtable_ctx *ctx, struct ct_leaf *l);
void ct_retire(struct cowtable_ctx *ctx, struct ct_leaf *l);
struct ct_node *ct_node_alloc(struct cowtable_ctx *ctx);
void ct_node_free(struct ct_table *t, struct ct_node *n);
void ct_retire_node(struct cowtable_ctx *ctx, struct ct_node *n);
void ct_maybe_reclaim(struct cowtable_ctx *ctx);
void ct_ctx_release_memory(struct cowtable_ctx *ctx);

/* index.c */
struct ct_leaf *ct_index_get(struct cowtable_ctx *ctx, uintptr_t key);
struct ct_leaf *ct_index_before(struct cowtable_ctx *ctx, uintptr_t key);
void ct_index_set(struct cowtable_ctx *ctx, struct ct_leaf *l);
void ct_index_clear(struct cowtable_ctx *ctx, struct ct_leaf *l);
void ct_index_fini(struct ct_table *t);

/* leaf.c */
int ct_mark_block(struct cowtable_ctx *ctx, struct ct_cursor *cur, uintptr_t start,
                  const cowtable_frame_t *frames, size_t *i, size_t n);
unsigned int ct_release_slots(struct cowtable_ctx *ctx, struct ct_cursor *cur, struct ct_leaf *l,
                              unsigned int lo, unsigned int hi, uint64_t *seen, uint64_t *released);
void ct_leaf_drop(struct cowtable_ctx *ctx, struct ct_leaf *l, uint32_t holds,
                  struct ct_cursor *cur);

/* skiplist.c */
unsigned int ct_neighbours(struct cowtable_ctx *ctx, uintptr_t key, struct ct_leaf **preds,
                           struct ct_leaf **succs, unsigned int height, unsigned int finger);
struct ct_leaf *ct_descend(struct cowtable_ctx *ctx, uintptr_t key);
bool ct_link(struct cowtable_ctx *ctx, struct ct_leaf *l, struct ct_leaf **preds,
             struct ct_leaf **succs);
void ct_freeze_tower(struct ct_leaf *l);
unsigned int ct_remove_dead(struct cowtable_ctx *ctx, struct ct_leaf *l, struct ct_leaf **preds,
                            unsigned int finger);

#endif /* CT_INTERNAL_H */
