/*
 * cowtable: copy-on-write shared frames, tracked by virtual page address.
 *
 * A table maps a page-aligned virtual address to the physical frame it shares
 * and to the number of address spaces that share it.  fork() marks each page
 * (one more sharer), a write fault or unmap releases it (one sharer fewer),
 * and the release that drops the last reference hands the frame back to the
 * caller.  The table is a lock-free skip list: lookups never block and never
 * write shared memory, updates never take a lock, and removed entries are
 * reclaimed after a grace period (Concurrency Kit's ck_epoch).
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
 *   may sleep no function of this header sleeps, takes a lock or calls the
 *             allocator except where it says so; cowtable_barrier() spins.
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
 * The largest reference count; a mark beyond it returns COWTABLE_EOVERFLOW.
 * INT32_MAX so that cowtable_mark() can return every count as a positive int.
 */
#define COWTABLE_REFS_MAX ((uint32_t)INT32_MAX)

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
 * Where the table gets its memory.  alloc may return NULL; the operation that
 * asked then fails with COWTABLE_ENOMEM and changes nothing.  free receives
 * the same size that alloc was asked for.  Both are called from inside
 * cowtable operations, on the calling thread, possibly inside the table's
 * epoch section: in a kernel they must not sleep (GFP_ATOMIC or a per-CPU
 * pool).  They must be safe to call from several threads at once.
 */
struct cowtable_allocator {
	void *(*alloc)(size_t size, void *arg); /* may return NULL */
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
 * @allocator: where memory comes from; copied, so it may live on the stack.
 *             NULL means the C library's malloc/free (hosted builds only).
 *
 * Context: any; calls the allocator once.
 * Concurrency: nothing else may touch @table until this returns 0.
 * Return: 0; COWTABLE_EINVAL if @table is NULL, @allocator lacks alloc or
 * free, or @allocator is NULL in a build without a default allocator;
 * COWTABLE_ENOMEM if the allocator failed (nothing to undo: @table is left
 * unusable and needs no cowtable_fini()).
 */
int cowtable_init(struct cowtable *table, const struct cowtable_allocator *allocator);

/**
 * cowtable_fini() - free every entry, every context and every retired entry.
 *
 * Context: any; calls the allocator's free only.
 * Concurrency: no context of @table may be in use (every cowtable_ctx_get()
 * matched by cowtable_ctx_put()), and no other thread may touch @table.
 * Frames of entries still tracked are not returned to anyone: release them
 * first if they must be freed.  Afterwards the allocator has received back
 * every byte it handed out for @table.
 */
void cowtable_fini(struct cowtable *table);

/**
 * cowtable_ctx_get() - take a context for the calling thread.
 *
 * Reuses a context that was put back, or allocates a new one.  Contexts
 * stay with the table until cowtable_fini(), because the epoch record inside
 * them can never be freed while the table lives; so take one per thread (or
 * per CPU) and keep it, rather than one per operation.
 *
 * Context: any; may call the allocator.
 * Concurrency: safe against every other function on the same table except
 * cowtable_init() and cowtable_fini(); lock-free.
 * Return: the context, which the caller alone may use until it calls
 * cowtable_ctx_put(); NULL if the allocator failed.
 */
struct cowtable_ctx *cowtable_ctx_get(struct cowtable *table);

/**
 * cowtable_ctx_put() - give a context back to its table.
 *
 * Entries the context retired and that are still waiting for their grace
 * period stay with it; the next user of the context, or cowtable_fini(),
 * frees them.  Ordering: everything the thread did through @ctx happens
 * before the next cowtable_ctx_get() that returns the same context.
 *
 * Context: any; never blocks; may call the allocator's free.
 */
void cowtable_ctx_put(struct cowtable_ctx *ctx);

/**
 * cowtable_mark() - the page at @vaddr gains one sharer (a fork).
 * @frame: the physical frame the page maps.
 *
 * An untracked page belongs to one address space alone, so marking it
 * creates an entry with two references (parent and child).  Marking a
 * tracked page with the same frame adds one reference; with another frame
 * it is refused.  An entry whose last reference is being dropped at the same
 * moment is never brought back: the mark then creates a fresh entry.
 *
 * Context: inside no other cowtable call on @ctx; may call the allocator
 * (a per-context cache serves most new entries); lock-free.
 * Ordering: a mark that returns a count >= 2 happens before any release that
 * observes the reference it added (acquire-release on the count).
 * Return: the new reference count: 2 for a new entry, and also for a tracked
 * page that had one sharer left; never 1;
 * COWTABLE_EINVAL if @vaddr is not page aligned; COWTABLE_EEXIST if the page
 * is tracked with another frame; COWTABLE_EOVERFLOW if its count is already
 * COWTABLE_REFS_MAX; COWTABLE_ENOMEM if a new entry was needed and the
 * allocator failed.  Every error changes nothing.
 */
int cowtable_mark(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t frame);

/**
 * cowtable_release() - the page at @vaddr loses one sharer.
 * @frame: where to store the entry's frame on SHARED and LAST; may be NULL.
 *
 * The count never goes below zero and exactly one release per entry
 * lifetime returns COWTABLE_LAST.  The caller that gets LAST owns the frame:
 * the entry is gone from the table, and the frame may be freed or, on a
 * write fault, reused in place.  A thread that holds a reference (it marked
 * the page, or was handed a reference) never gets COWTABLE_NOT_COW.
 *
 * Context: inside no other cowtable call on @ctx; never calls the allocator's
 * alloc; lock-free.
 * Ordering: like kref_put(): the caller's earlier accesses to the frame
 * happen before its decrement, and the caller that gets LAST observes every
 * other sharer's accesses made before their releases.
 * Return: COWTABLE_SHARED (one reference dropped, at least one remains);
 * COWTABLE_LAST (this call dropped the last one); COWTABLE_NOT_COW (not
 * tracked, nothing changed); COWTABLE_EINVAL (@vaddr not page aligned).
 */
int cowtable_release(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame);

/**
 * cowtable_is_cow() - whether the page at @vaddr is tracked.
 *
 * Context: any, including with interrupts off; never blocks, never calls the
 * allocator, writes nothing but @ctx's own epoch record; wait-free apart from
 * the skip list walk.
 * Return: true if tracked at some moment during the call; false for an
 * untracked or unaligned address.
 */
bool cowtable_is_cow(struct cowtable_ctx *ctx, uintptr_t vaddr);

/**
 * cowtable_lookup() - the frame and reference count of the page at @vaddr.
 * @frame, @refs: filled when the page is tracked; either may be NULL.
 *
 * Context and concurrency as cowtable_is_cow().  The two values belong to one
 * entry and were true together at one moment during the call.
 * Ordering: the count is read with acquire.
 * Return: true if tracked; false (outputs untouched) otherwise.
 */
bool cowtable_lookup(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame,
                     uint32_t *refs);

/**
 * cowtable_count() - the number of tracked pages.
 *
 * Context: any; reads every context's counter once.
 * Return: exact when no operation runs concurrently; otherwise a value the
 * count had, or was passing through, during the call.
 */
size_t cowtable_count(const struct cowtable *table);

/**
 * cowtable_reclaim() - free what @ctx retired, as far as grace periods allow.
 *
 * Hands the context's retired entries to ck_epoch and polls it: entries
 * whose grace period has passed are freed, the global epoch advances if it
 * can.  mark and release do this on their own every few dozen removals, so
 * memory stays bounded without it; call it where a kernel has idle time (a
 * timer, return to user) to keep the retired backlog short.
 *
 * Context: outside any cowtable call on @ctx; never blocks; may call the
 * allocator's free.
 */
void cowtable_reclaim(struct cowtable_ctx *ctx);

/**
 * cowtable_barrier() - wait until everything @ctx retired is freed.
 *
 * Waits for a full grace period (every context that is inside an operation
 * leaves it), then frees every entry @ctx retired before the call.
 *
 * Context: outside any cowtable call on @ctx; spins (never sleeps) while
 * another context is inside an operation; must not be called with a context
 * of the same table held inside an operation by the same thread.
 */
void cowtable_barrier(struct cowtable_ctx *ctx);

/*
 * Range operations.  Each walks its pages in ascending address order and
 * works in batches of 64 pages per epoch section, so a long range does not
 * hold back reclamation for other contexts: the most another context waits
 * for is one batch.  Concurrent single-page operations on the same pages keep
 * every rule above (one LAST per entry lifetime, no resurrection).
 */

/**
 * cowtable_mark_range() - cowtable_mark() for @npages consecutive pages.
 * @start: the first page; page i is @start + i * COWTABLE_PAGE_SIZE.
 * @frames: the frame of each page, @npages of them.
 * @marked: set to the number of pages marked before the first error (all
 *          of them on success); may be NULL.
 *
 * Each page gets cowtable_mark()'s semantics, in ascending order; the search
 * for page i + 1 starts where page i was found or linked (a finger), so a run
 * costs O(1) amortized per page rather than O(log n).  On an error, pages
 * before it stay marked (undo them with cowtable_release_range()), the page
 * that failed and those after it are unchanged.
 *
 * Context: as cowtable_mark(); may call the allocator once per new entry.
 * Return: 0; or the first error of cowtable_mark() (COWTABLE_EEXIST,
 * COWTABLE_EOVERFLOW, COWTABLE_ENOMEM); COWTABLE_EINVAL, with nothing done,
 * if @start is not page aligned, @npages is 0, @frames is NULL or the range
 * wraps past the top of the address space.
 */
int cowtable_mark_range(struct cowtable_ctx *ctx, uintptr_t start, size_t npages,
                        const cowtable_frame_t *frames, size_t *marked);

/* Called for each page whose last reference cowtable_release_range() dropped. */
typedef void cowtable_last_fn(uintptr_t vaddr, cowtable_frame_t frame, void *arg);

/**
 * cowtable_release_range() - cowtable_release() for every tracked page in
 * [@start, @end).
 * @last: called, outside any epoch section and in ascending order, with each
 *        page whose last reference this call dropped and its frame, which the
 *        caller now owns (free it or reuse it); may be NULL.
 *
 * Drops one reference of every page tracked in the range when the walk
 * reaches it, in ascending order.  A page marked or released concurrently is
 * handled as if the two calls ran in some order; a page first tracked after
 * the walk passed its address is left alone.  @last may call cowtable
 * functions, with this context too.
 *
 * Context: as cowtable_release(); never calls the allocator's alloc.
 * Return: the number of pages it released (SHARED or LAST); 0 if @end <=
 * @start or @ctx is NULL.
 */
size_t cowtable_release_range(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                              cowtable_last_fn *last, void *arg);

/* Visitor for cowtable_foreach(); return false to stop. */
typedef bool cowtable_visit_fn(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg);

/**
 * cowtable_foreach() - visit the tracked pages in [@start, @end) in
 * ascending order.
 *
 * Weakly consistent: every entry present for the whole call is visited once;
 * entries created or removed during the call may or may not be.  @visit gets
 * copies (address, frame, count at the moment it was read), never a pointer
 * into the table, and runs outside any epoch section: it may block or call
 * cowtable functions, with this context too.
 *
 * Context: as cowtable_lookup(), plus whatever @visit does.
 * Return: the number of entries visited (including the one whose visit
 * returned false); 0 if @end <= @start, @visit is NULL or @ctx is NULL.
 */
size_t cowtable_foreach(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                        cowtable_visit_fn *visit, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* COWTABLE_H */
