/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Linearizability of recorded histories, page by page.
 *
 * A history is what a few threads did to a few pages: every operation with
 * the stamps of its invocation and its response, taken from one global
 * counter, and its result.  It is linearizable if each operation can be given
 * a point between its stamps at which the sequential specification below,
 * applied in the order of the points, gives every recorded result.
 * Linearizability is local (Herlihy and Wing), so each page is checked on
 * its own: a Wing-Gong search with Lowe's memo of (operations done, state)
 * pairs already tried.  A range operation is one per-page operation on each
 * page it covers, at some point inside the range call (include/cowtable.h).
 *
 * The sequential specification of one page: untracked, or a frame and a
 * count of at least 1.
 *   mark(f)     untracked: count 2 with frame f (or ENOMEM, nothing changed,
 *               when allocations may fail); frame other than f: EEXIST;
 *               count at the maximum: EOVERFLOW; else count + 1, returned.
 *   release     untracked: NOT_COW; count 1: LAST with the frame, untracked
 *               after; else SHARED with the frame, count - 1.
 *   lookup      untracked: not found; else the frame and the count.
 *   is_cow      whether tracked.
 *
 * What range operations tell, and how it is recorded:
 *   mark_range  pages before the one it stopped at: LIN_MARK_OK (a mark that
 *               succeeded; its count is not reported); the page it stopped
 *               at: LIN_MARK with the error; pages after it: nothing.
 *   release_range
 *               pages handed to its callback: LIN_RELEASE, LAST with the
 *               frame; every other page of the range: LIN_RELEASE_SOME,
 *               SHARED or NOT_COW, in a group (the call) whose number of
 *               SHARED results is known: pages released minus LASTs.  The
 *               checker tries every assignment of SHARED and NOT_COW that a
 *               page's history allows, and accepts only if some choice, page
 *               by page, gives every call its count.
 *   foreach     each page visited: LIN_LOOKUP found with the frame and count
 *               it reported; each page of the range not visited: LIN_LOOKUP
 *               not found (a page tracked for the whole call is visited).
 *
 * No C library: the torture runs it in the kernel too.
 */
#ifndef LIN_H
#define LIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIN_MAX_OPS    32 /* operations on one page in one history (one bit each) */
#define LIN_MAX_SOME   6  /* LIN_RELEASE_SOME operations on one page */
#define LIN_MAX_PAGES  8
#define LIN_MAX_GROUPS 32
#define LIN_MEMO_SIZE  (1u << 14) /* memo entries (16 bytes each) */

enum lin_kind {
	LIN_MARK,         /* frame: the argument; result: the count, or an error */
	LIN_MARK_OK,      /* frame: the argument; a success whose count is unknown */
	LIN_RELEASE,      /* result: NOT_COW, SHARED or LAST; frame: the frame returned */
	LIN_RELEASE_SOME, /* SHARED or NOT_COW, counted in @group */
	LIN_LOOKUP,       /* result: found (1) or not (0); frame, refs: what it returned */
	LIN_IS_COW,       /* result: 1 or 0 */
};

struct lin_op {
	uint64_t inv, resp; /* stamps: invocation before the call, response after it */
	uint64_t frame;
	int32_t result;
	uint32_t refs;
	uint8_t kind;    /* enum lin_kind */
	uint8_t group;   /* LIN_RELEASE_SOME: which release_range call */
	uint16_t thread; /* who ran it (reports only) */
};

/* A page: untracked when refs is 0 (frame then 0), else a frame and a count. */
struct lin_state {
	uint64_t frame;
	uint32_t refs;
};

/* One page's share of a history: its state before, and its operations. */
struct lin_page {
	struct lin_state init;
	unsigned int n;
	struct lin_op ops[LIN_MAX_OPS];
};

struct lin_spec {
	uint32_t refs_max; /* the library's count limit */
	bool enomem;       /* allocations may fail: a mark of an untracked page may give ENOMEM */
};

/* What lin_check() returns besides a page number (the first page that fails). */
#define LIN_OK         (-1) /* linearizable */
#define LIN_BAD_COUNTS (-2) /* every page is, but no choice gives release_range its counts */
#define LIN_TOO_HARD   (-3) /* the history is larger than the limits above */

/* Scratch space of the checker; large (LIN_MEMO_SIZE entries): allocate it once. */
struct lin_memo_entry {
	uint64_t state;
	uint32_t done;
	uint32_t gen;
};

struct lin_checker {
	uint32_t gen;
	uint64_t searches, nodes; /* statistics: searches run, states visited */
	struct lin_memo_entry memo[LIN_MEMO_SIZE];
};

/* The specification: apply @op to @s; false if its result is impossible from @s. */
bool lin_step(const struct lin_spec *spec, const struct lin_op *op, bool shared,
              struct lin_state *s);

/*
 * Whether the history is linearizable: LIN_OK, or the index of the first
 * page that is not, LIN_BAD_COUNTS, LIN_TOO_HARD.  @group_shared[g] is the
 * number of SHARED results of release_range call g.  @c must be zeroed
 * before its first use.
 */
int lin_check(struct lin_checker *c, const struct lin_spec *spec, const struct lin_page *pages,
              unsigned int npages, const uint32_t *group_shared, unsigned int ngroups);

#endif /* LIN_H */
