/*
 * Private structures shared by the library's source files.
 *
 *   skiplist.c  the lock-free skip list: search, link, mark, unlink
 *   entry.c     entries and their reference counts: mark, release, lookup
 *   context.c   tables and contexts: init/fini, epoch sections, retire
 *               batches, the node cache, reclaim and barrier
 *   range.c     mark_range, release_range, foreach
 *
 * docs/design.md explains the algorithm and its linearization points.
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
 * Tallest tower.  With p = 1/4 per level, 20 levels index 4^20 entries.  A
 * torture build lowers it to make insert/remove races between towers common.
 */
#ifndef CT_MAX_LEVEL
#define CT_MAX_LEVEL 20
#endif

/* Largest reference count; a build for tests may lower it. */
#ifndef CT_REFS_MAX
#define CT_REFS_MAX COWTABLE_REFS_MAX
#endif

/* Bit 0 of a next word: this node is deleted at this level. */
#define CT_MARK ((uintptr_t)1)

/* node->state: who has finished with the node (see design.md, "retire"). */
#define CT_LINKED       1u /* its inserter has stopped linking levels */
#define CT_DEAD         2u /* its last release has marked it and wants it gone */
#define CT_HEIGHT_SHIFT 8

/*
 * An entry.  32 bytes plus one word per level: 42.7 bytes on average with
 * p = 1/4.  key, frame and height never change while readers can reach the
 * node; refs is the reference count, 0 once the entry is dead.
 */
struct ct_node {
	uintptr_t key;
	cowtable_frame_t frame;
	struct ct_node *link; /* retire batch or node cache; never read by searches */
	uint32_t refs;
	uint32_t state; /* CT_LINKED | CT_DEAD | height << CT_HEIGHT_SHIFT */
#ifdef CT_STRESS_CHECKS
	uint64_t stamp; /* CT_STAMP_*: what the node is, for the torture's checks */
#endif
	uintptr_t next[];
};

static inline unsigned int ct_node_height(const struct ct_node *n)
{
	/* The height bits are written before publication and never change. */
	return (ct_load_u32(&n->state) >> CT_HEIGHT_SHIFT) & 0xffu;
}

static inline size_t ct_node_size(unsigned int height)
{
	return sizeof(struct ct_node) + height * sizeof(uintptr_t);
}

static inline struct ct_node *ct_ptr(uintptr_t word)
{
	return (struct ct_node *)(word & ~CT_MARK);
}

/* The table behind struct cowtable's private words. */
struct ct_table {
	struct cowtable_allocator alloc;
	struct ct_node *head; /* sentinel, CT_MAX_LEVEL tall, key never compared */
	uint32_t level;       /* levels in use, only grows; searches start there */
	void *contexts;       /* struct cowtable_ctx list, push only */
	ck_epoch_t epoch;
#ifdef CT_STRESS_CHECKS
	int64_t violations;  /* nodes seen in a state no search may see them in */
	uint64_t last_stamp; /* the stamp of the latest such node */
#endif
};

/*
 * Retired nodes wait in batches: one ck_epoch callback frees a whole chain,
 * so a node needs one link word instead of a ck_epoch_entry of its own.
 */
#define CT_BATCHES     8    /* batch headers per context */
#define CT_BATCH_NODES 64   /* retired nodes that make a context poll */
#define CT_CACHE_NODES 1024 /* freed nodes a context keeps for reuse */

struct ct_batch {
	ck_epoch_entry_t entry;
	struct cowtable_ctx *ctx;
	struct ct_node *head;
	uint32_t n;
	bool in_flight; /* handed to ck_epoch, callback not yet run */
};

struct cowtable_ctx {
	ck_epoch_record_t record; /* first: cache-line aligned */
	struct ct_table *table;
	struct cowtable_ctx *next; /* table->contexts list */
	void *raw;                 /* what the allocator returned */
	uint32_t in_use;
	uint32_t open;   /* index of the batch collecting retired nodes */
	uint64_t rng;    /* xorshift64 state for tower heights */
	int64_t count;   /* entries created minus entries removed by this context */
	int64_t pending; /* retired, not yet freed */
	uint32_t cache_n;
	struct ct_node *cache[CT_MAX_LEVEL]; /* free nodes by height - 1 */
	struct ct_batch batch[CT_BATCHES];
};

/*
 * What a run of operations inside one epoch section carries from one page to
 * the next: the last search's predecessors (a finger for the next, larger
 * key) and a node allocated for a page that turned out not to need it.
 */
struct ct_cursor {
	struct ct_node *preds[CT_MAX_LEVEL];
	struct ct_node *succs[CT_MAX_LEVEL];
	unsigned int finger; /* levels of preds[] usable as a finger; 0: none */
	struct ct_node *spare;
};

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
 * Torture checks (CT_STRESS_CHECKS): every node carries a stamp.  Searches
 * check each node they touch: it must be live, or retired in an epoch no
 * older than the one the searching section began in (a section that began
 * after a node was retired must never reach it).  A cached or freed
 * (poisoned) node is always a violation.
 */
#define CT_STAMP_LIVE    0x4c49564500000000ull /* "LIVE" */
#define CT_STAMP_RETIRED 0x5245544900000000ull /* "RETI" | epoch of the retire */
#define CT_STAMP_CACHED  0x4341434800000000ull /* "CACH" */
#ifdef CT_STRESS_CHECKS
void ct_check_node(struct cowtable_ctx *ctx, struct ct_node *n);
void ct_stamp(struct ct_node *n, uint64_t stamp);
#define CT_CHECK(ctx, n) ct_check_node(ctx, n)
#define CT_STAMP(n, s)   ct_stamp(n, s)
#else
#define CT_CHECK(ctx, n) ((void)0)
#define CT_STAMP(n, s)   ((void)0)
#endif

/* context.c */
void ct_enter(struct cowtable_ctx *ctx);
void ct_exit(struct cowtable_ctx *ctx);
unsigned int ct_random_height(struct cowtable_ctx *ctx);
struct ct_node *ct_node_alloc(struct cowtable_ctx *ctx, unsigned int height);
void ct_node_free(struct cowtable_ctx *ctx, struct ct_node *n);
void ct_retire(struct cowtable_ctx *ctx, struct ct_node *n);
void ct_count_add(struct cowtable_ctx *ctx, int64_t delta);
void ct_maybe_reclaim(struct cowtable_ctx *ctx);

/* entry.c */
int ct_mark_locked(struct cowtable_ctx *ctx, struct ct_cursor *cur, uintptr_t vaddr,
                   cowtable_frame_t frame);
int ct_release_node(struct cowtable_ctx *ctx, struct ct_node *n, cowtable_frame_t *frame,
                    struct ct_cursor *cur);

/* skiplist.c */
unsigned int ct_find(struct cowtable_ctx *ctx, uintptr_t key, struct ct_node **preds,
                     struct ct_node **succs, unsigned int height, unsigned int finger);
struct ct_node *ct_seek(struct cowtable_ctx *ctx, uintptr_t key);
struct ct_node *ct_search(struct cowtable_ctx *ctx, uintptr_t key);
void ct_raise_level(struct ct_table *t, unsigned int height);
bool ct_link(struct cowtable_ctx *ctx, struct ct_node *n, struct ct_node **preds,
             struct ct_node **succs);
void ct_mark_tower(struct ct_node *n);
unsigned int ct_unlink_dead(struct cowtable_ctx *ctx, struct ct_node *n, struct ct_node **preds,
                            unsigned int finger);

#endif /* CT_INTERNAL_H */
