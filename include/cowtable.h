/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cowtable: copy-on-write shared frames, tracked by virtual page address.
 *
 * A table maps a page-aligned virtual address to the physical frame it shares
 * and to the number of address spaces that share it.  fork() marks each page
 * (one more sharer), a write fault or unmap releases it (one sharer fewer),
 * and the release that drops the last reference hands the frame back to the
 * caller.  The table is a lock-free skip list of leaves, each holding the
 * entries of one aligned block of 64 pages in one word per page: lookups
 * never block and never write shared memory, updates never take a lock, and
 * emptied leaves are reclaimed after a grace period (Concurrency Kit's
 * ck_epoch).
 *
 * Every operation runs on a context (struct cowtable_ctx): one per thread, or
 * one per CPU in a kernel.  A context is used by one thread at a time; the
 * table itself may be used by any number of contexts at once.
 *
 * Terms used below:
 *   tracked   the address has an entry; its reference count is at least 1.
 *   entry lifetime
 *             from the mark that creates an entry (count 2) to the release
 *             that drops its count to 0 and removes it.
 *   frame     a physical frame number, at most COWTABLE_FRAME_MAX.
 *   section   an epoch section: every operation runs inside one (or, for a
 *             range, a few in turn) on its context; while a context is
 *             inside a section, no leaf that section could still reach is
 *             freed or reused, by anyone.
 *   may sleep no function of this header sleeps, takes a lock or calls the
 *             allocator except where it says so; cowtable_barrier() spins.
 *   reclamation
 *             a context frees the leaves it retired itself, in its own calls,
 *             once no section that could still read them runs: every 16
 *             leaves it retires, every 64 marks, releases and range
 *             sections while any are pending, and in cowtable_reclaim(), cowtable_barrier(),
 *             cowtable_ctx_put() and cowtable_fini().  Those are the calls
 *             that may call the allocator's free (docs/design.md,
 *             "Reclamation").
 *
 * Error codes are negative Linux errno values, so a kernel can return them
 * as they are.
 */
#ifndef COWTABLE_H
#define COWTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef COWTABLE_PAGE_SHIFT
#define COWTABLE_PAGE_SHIFT 12
#endif
/* Bytes in a page; every address given to the table is a multiple of it. */
#define COWTABLE_PAGE_SIZE ((uintptr_t)1 << COWTABLE_PAGE_SHIFT)
/*
 * The largest frame number the table stores (2^40 - 1).  A frame is a
 * physical frame number (physical address >> page shift): x86-64 and arm64
 * physical addresses have at most 52 bits, so every real frame number fits.
 * A mark with a larger frame returns COWTABLE_EINVAL and changes nothing.
 */
#define COWTABLE_FRAME_MAX ((uint64_t)0xffffffffffull)
/*
 * The largest reference count (2^24 - 1); a mark beyond it returns
 * COWTABLE_EOVERFLOW.  A page cannot have more sharers than there are
 * address spaces, and Linux's pid_max is at most 2^22.
 */
#define COWTABLE_REFS_MAX ((uint32_t)0xffffff)

typedef uint64_t cowtable_frame_t;

enum { /* errors: negative, Linux errno values */
       COWTABLE_ENOMEM = -12,
       COWTABLE_EEXIST = -17,
       COWTABLE_EINVAL = -22,
       COWTABLE_EOVERFLOW = -75,
};

enum { /* release results */
       COWTABLE_NOT_COW = 0,
       COWTABLE_SHARED = 1,
       COWTABLE_LAST = 2,
};

/*
 * A result the caller must look at, as the kernel's __must_check: a mark
 * may fail, and a release that returns COWTABLE_LAST hands over a frame.
 */
#if defined(__GNUC__) || defined(__clang__)
#define COWTABLE_MUST_CHECK __attribute__((__warn_unused_result__))
#else
#define COWTABLE_MUST_CHECK
#endif

/**
 * struct cowtable_allocator - where the table gets its memory.
 * @alloc: returns @size bytes aligned for any object, or NULL; the operation
 *         that asked then fails with COWTABLE_ENOMEM and changes nothing.
 * @free:  takes back a block with the same size that @alloc was asked for.
 * @arg:   passed to both as their last argument.
 *
 * Both are called from inside cowtable operations, on the calling thread,
 * possibly inside the table's epoch section: in a kernel they must not sleep
 * (GFP_ATOMIC or a per-CPU pool).  They must be safe to call from several
 * threads at once.  No request is larger than 4 KiB: a leaf is 544 to 664
 * bytes, an index node 536, a context 511, the list's head 152.
 */
struct cowtable_allocator {
	void *(*alloc)(size_t size, void *arg);
	void (*free)(void *ptr, size_t size, void *arg);
	void *arg;
};

/*
 * A table.  Complete here so that it can be embedded in a larger object (a
 * hypervisor's VM, a kernel's mm); the fields are private to the library.
 */
#define COWTABLE_PRIVATE_WORDS 32
struct cowtable {
	union {
		uint64_t words[COWTABLE_PRIVATE_WORDS];
		void *align;
	} private_;
};

/* A context: opaque, owned by the table. */
struct cowtable_ctx;

/**
 * cowtable_init() - make @table an empty table.
 * @table:     the table to set up; its previous contents are ignored.
 * @allocator: where memory comes from; copied, so it may live on the stack.
 *             NULL means the C library's malloc/free (hosted builds only).
 *
 * Context: any; calls the allocator once, for the list's head (152 bytes):
 * an empty table holds no other memory, and its block index grows with the
 * leaves.  Nothing else may touch @table until this returns 0.
 *
 * Return: 0; COWTABLE_EINVAL if @table is NULL, @allocator lacks alloc or
 * free, or @allocator is NULL in a build without a default allocator;
 * COWTABLE_ENOMEM if the allocator failed (nothing to undo: @table is left
 * unusable and needs no cowtable_fini()).
 */
int cowtable_init(struct cowtable *table, const struct cowtable_allocator *allocator);

/**
 * cowtable_fini() - free every leaf, index node and context, and everything retired.
 * @table: a table set up by cowtable_init().
 *
 * Frames of pages still tracked are not returned to anyone: release them
 * first if they must be freed.  Afterwards the allocator has received back
 * every byte it handed out for @table.
 *
 * Context: any; calls the allocator's free only.  No context of @table may be
 * in use (every cowtable_ctx_get() matched by cowtable_ctx_put()), and no
 * other thread may touch @table.
 */
void cowtable_fini(struct cowtable *table);

/**
 * cowtable_ctx_get() - take a context for the calling thread.
 * @table: the table the context will work on.
 *
 * Reuses a context that was put back, or allocates a new one.  Contexts
 * stay with the table until cowtable_fini(), because the epoch record inside
 * them can never be freed while the table lives; so take one per thread (or
 * per CPU) and keep it, rather than one per operation.
 *
 * Context: any; may call the allocator.  Safe against every other function
 * on the same table except cowtable_init() and cowtable_fini(); lock-free.
 *
 * Return: the context, which the caller alone may use until it calls
 * cowtable_ctx_put(); NULL if the allocator failed.
 */
struct cowtable_ctx *cowtable_ctx_get(struct cowtable *table);

/**
 * cowtable_ctx_put() - give a context back to its table.
 * @ctx: a context taken with cowtable_ctx_get(), outside any operation.
 *
 * Polls reclamation once (as cowtable_reclaim()).  Leaves the context
 * retired that are still waiting for their grace period stay with it: the
 * next user of the context frees them in its own calls, or cowtable_fini()
 * does.  Everything the thread did through @ctx happens before the
 * next cowtable_ctx_get() that returns the same context (release, then
 * acquire, on the context's claim word).
 *
 * Context: any; never blocks; may call the allocator's free.
 */
void cowtable_ctx_put(struct cowtable_ctx *ctx);

/**
 * cowtable_mark() - the page at @vaddr gains one sharer (a fork).
 * @ctx:   the calling thread's context.
 * @vaddr: the page's virtual address, a multiple of COWTABLE_PAGE_SIZE.
 * @frame: the frame number the page maps, at most COWTABLE_FRAME_MAX.
 *
 * An untracked page belongs to one address space alone, so marking it
 * creates an entry with two references (parent and child).  Marking a
 * tracked page with the same frame adds one reference; with another frame
 * it is refused.  An entry whose last reference is being dropped at the same
 * moment is never brought back: the mark then creates a fresh entry.
 *
 * Context: inside no other cowtable call on @ctx; one epoch section; may call
 * the allocator's alloc when the page's block of 64 pages has no leaf yet (a
 * per-context cache serves most), and then for the block index's nodes where
 * the leaf's part of the index is missing (a node the allocator cannot give
 * is done without: the page is marked, and found by a slower search); its
 * free, after the section, for memory it built but did not need and for
 * reclamation (see "reclamation" above); lock-free.
 * Ordering: a mark that returns a count >= 2 happens before any release that
 * observes the reference it added (acquire-release on the page's word).
 *
 * Return: the new reference count: 2 for a new entry, and also for a tracked
 * page that had one sharer left; never 1.  COWTABLE_EINVAL if @ctx is NULL,
 * @vaddr is not page aligned or @frame is above COWTABLE_FRAME_MAX;
 * COWTABLE_EEXIST if the page is tracked with another frame;
 * COWTABLE_EOVERFLOW if its count is already COWTABLE_REFS_MAX;
 * COWTABLE_ENOMEM if a new leaf was needed and the allocator failed.  Every
 * error changes nothing.
 */
COWTABLE_MUST_CHECK int cowtable_mark(struct cowtable_ctx *ctx, uintptr_t vaddr,
                                      cowtable_frame_t frame);

/**
 * cowtable_release() - the page at @vaddr loses one sharer.
 * @ctx:   the calling thread's context.
 * @vaddr: the page's virtual address, a multiple of COWTABLE_PAGE_SIZE.
 * @frame: where to store the entry's frame on SHARED and LAST; may be NULL.
 *
 * The count never goes below zero and exactly one release per entry
 * lifetime returns COWTABLE_LAST.  The caller that gets LAST owns the frame:
 * the entry is gone from the table, and the frame may be freed or, on a
 * write fault, reused in place.  A thread that holds a reference (it marked
 * the page, or was handed a reference) never gets COWTABLE_NOT_COW.
 *
 * Context: inside no other cowtable call on @ctx; one epoch section; never
 * calls the allocator's alloc; may call its free, after the section, for
 * reclamation (see "reclamation" above); lock-free.
 * Ordering: like kref_put(): the caller's earlier accesses to the frame
 * happen before its decrement, and the caller that gets LAST observes every
 * other sharer's accesses made before their releases.
 *
 * Return: COWTABLE_SHARED (one reference dropped, at least one remains);
 * COWTABLE_LAST (this call dropped the last one); COWTABLE_NOT_COW (not
 * tracked, nothing changed); COWTABLE_EINVAL (@ctx NULL or @vaddr not page
 * aligned, nothing changed).
 */
COWTABLE_MUST_CHECK int cowtable_release(struct cowtable_ctx *ctx, uintptr_t vaddr,
                                         cowtable_frame_t *frame);

/**
 * cowtable_is_cow() - whether the page at @vaddr is tracked.
 * @ctx:   the calling thread's context.
 * @vaddr: the page's virtual address.
 *
 * Context: any, including with interrupts off; one epoch section; never
 * blocks, never calls the allocator, writes nothing but @ctx's own epoch
 * record; lock-free (a search may pass leaves being removed).
 *
 * Return: true if tracked at some moment during the call; false for an
 * untracked or unaligned address or a NULL @ctx.
 */
bool cowtable_is_cow(struct cowtable_ctx *ctx, uintptr_t vaddr);

/**
 * cowtable_lookup() - the frame and reference count of the page at @vaddr.
 * @ctx:   the calling thread's context.
 * @vaddr: the page's virtual address.
 * @frame: set to the page's frame when it is tracked; may be NULL.
 * @refs:  set to its reference count when it is tracked; may be NULL.
 *
 * The two values come from one read of the page's word: they belong to one
 * entry and were true together at that moment.
 *
 * Context: as cowtable_is_cow().
 * Ordering: the page's word is read with acquire.
 *
 * Return: true if tracked; false (outputs untouched) otherwise.
 */
bool cowtable_lookup(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame,
                     uint32_t *refs);

/**
 * cowtable_count() - the number of tracked pages.
 * @table: the table.
 *
 * Each context counts the entries it created and removed; this adds up every
 * context's counter, one after another.
 *
 * Context: any; reads every context's counter once.
 *
 * Return: exact when no operation runs concurrently; while operations run,
 * an estimate only (it may be a value the table never held).
 */
size_t cowtable_count(const struct cowtable *table);

/**
 * cowtable_reclaim() - free what @ctx retired, as far as grace periods allow.
 * @ctx: the calling thread's context.
 *
 * Lets ck_epoch advance the global epoch if every context inside a section
 * has seen the current one, frees every batch of retired leaves whose grace
 * period has passed (three epoch advances after its seal, or no section
 * running), then seals the context's open batch (docs/design.md,
 * "Reclamation", states the bound).  mark and release do this on their own
 * every 16 leaves they retire and every 64 calls while leaves are pending,
 * so a context's backlog is freed by its own later calls without this; a
 * context that makes no more calls keeps it.  Call it where a kernel has
 * idle time (a timer, return to user) to keep the backlog short.
 *
 * Context: outside any cowtable call on @ctx; never blocks; may call the
 * allocator's free.
 */
void cowtable_reclaim(struct cowtable_ctx *ctx);

/**
 * cowtable_barrier() - wait until everything @ctx retired is freed.
 * @ctx: the calling thread's context.
 *
 * Seals what @ctx retired and waits, letting the global epoch advance,
 * until each of its batches is three epoch advances past its seal (or no
 * section runs at all), then frees them: every leaf @ctx retired before the
 * call is returned to the allocator, or kept in @ctx's cache of free leaves
 * (returned at cowtable_fini()), when it returns, and no section that could
 * still read one of them runs, on any CPU, whatever its memory ordering.
 *
 * Context: outside any cowtable call on @ctx; spins (never sleeps) while
 * another context is inside a section; must not be called by a thread that
 * holds another context of the same table inside a section; may call the
 * allocator's free.
 */
void cowtable_barrier(struct cowtable_ctx *ctx);

/*
 * Range operations.  Each walks its pages in ascending address order, one
 * leaf (an aligned block of 64 pages) at a time, and leaves its epoch section
 * after at most COWTABLE_RANGE_SECTION_LEAVES leaves (fewer when it has
 * results to hand to a callback), so a range of any length holds back other
 * contexts' reclamation for at most the time it takes to handle 4 leaves:
 * 256 pages.  Concurrent single-page operations on the same pages keep every
 * rule above (one LAST per entry lifetime, no resurrection).
 */
#define COWTABLE_RANGE_SECTION_LEAVES 4

/**
 * cowtable_mark_range() - cowtable_mark() for @npages consecutive pages.
 * @ctx:    the calling thread's context.
 * @start:  the first page; page i is @start + i * COWTABLE_PAGE_SIZE.
 * @npages: how many pages, at least 1.
 * @frames: the frame of each page, @npages of them, each at most
 *          COWTABLE_FRAME_MAX.
 * @marked: set to the number of pages marked before the first error (all
 *          of them on success); may be NULL.
 *
 * Each page gets cowtable_mark()'s semantics, in ascending order.  A block of
 * 64 pages without a leaf gets a leaf filled privately and published with
 * one link (its pages become tracked at that instant); on an existing leaf
 * the pages are marked one by one in place.  On an error, pages before it
 * stay marked (undo them with cowtable_release_range()), the page that failed
 * and those after it are unchanged.
 *
 * Context: as cowtable_mark(); may call the allocator's alloc once per new
 * leaf and per new index node, and its free between sections (reclamation).
 *
 * Return: 0; or the first error of cowtable_mark() (COWTABLE_EEXIST,
 * COWTABLE_EOVERFLOW, COWTABLE_ENOMEM); COWTABLE_EINVAL, with nothing done,
 * if @ctx is NULL, @start is not page aligned, @npages is 0, @frames is NULL,
 * any frame is above COWTABLE_FRAME_MAX or the range wraps past the top of
 * the address space.
 */
COWTABLE_MUST_CHECK int cowtable_mark_range(struct cowtable_ctx *ctx, uintptr_t start,
                                            size_t npages, const cowtable_frame_t *frames,
                                            size_t *marked);

/**
 * typedef cowtable_last_fn - called with each page whose last reference
 * cowtable_release_range() dropped.
 * @vaddr: the page.
 * @frame: its frame, which the caller now owns (free it or reuse it).
 * @arg:   the argument given to cowtable_release_range().
 */
typedef void cowtable_last_fn(uintptr_t vaddr, cowtable_frame_t frame, void *arg);

/**
 * cowtable_release_range() - cowtable_release() for every tracked page in
 * [@start, @end).
 * @ctx:   the calling thread's context.
 * @start: the first address of the range (a page counts if its address is
 *         at or above @start).
 * @end:   the first address past the range.
 * @last:  called, outside any epoch section and in ascending order, for each
 *         page whose last reference this call dropped; may be NULL.
 * @arg:   passed to @last.
 *
 * Drops one reference of every page tracked in the range when the walk
 * reaches it, in ascending order.  A page marked or released concurrently is
 * handled as if the two calls ran in some order; a page first tracked after
 * the walk passed its address is left alone.  @last may call cowtable
 * functions, with this context too.
 *
 * Context: as cowtable_release(), one section per few leaves; never calls the
 * allocator's alloc; may call its free between sections (reclamation).
 *
 * Return: the number of pages it released (SHARED or LAST); 0 if @end <=
 * @start or @ctx is NULL.
 */
size_t cowtable_release_range(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                              cowtable_last_fn *last, void *arg);

/**
 * typedef cowtable_visit_fn - called by cowtable_foreach() for each tracked
 * page.
 * @vaddr: the page.
 * @frame: its frame.
 * @refs:  its reference count when it was read.
 * @arg:   the argument given to cowtable_foreach().
 *
 * Return: true to go on, false to stop the walk.
 */
typedef bool cowtable_visit_fn(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg);

/**
 * cowtable_foreach() - visit the tracked pages in [@start, @end) in
 * ascending order.
 * @ctx:   the calling thread's context.
 * @start: the first address of the range.
 * @end:   the first address past the range.
 * @visit: called for each tracked page.
 * @arg:   passed to @visit.
 *
 * Weakly consistent: every page tracked for the whole call is visited once;
 * pages marked or removed during the call may or may not be.  @visit gets
 * copies (address, frame, count at the moment it was read), never a pointer
 * into the table, and runs outside any epoch section: it may block or call
 * cowtable functions, with this context too.
 *
 * Context: as cowtable_lookup(), one section per few leaves (never calls the
 * allocator), plus whatever @visit does.
 *
 * Return: the number of pages visited (including the one whose visit
 * returned false); 0 if @end <= @start, @visit is NULL or @ctx is NULL.
 */
size_t cowtable_foreach(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                        cowtable_visit_fn *visit, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* COWTABLE_H */
