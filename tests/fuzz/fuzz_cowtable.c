// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer target: the whole API against the reference model (tests/model.h).
 *
 * The input is decoded into a sequence of calls on one table through up to
 * four contexts (README.md in this directory has the byte format): marks,
 * releases, lookups, ranges, walks, contexts taken and put back, reclaim and
 * barrier, allocation failure at a chosen allocator call or at random, and
 * callbacks that call back into the table.  Every result is compared with the
 * model, and so is every page a call may have changed; an allocation failure
 * must leave the whole table as it was.  At the end the whole table is
 * compared, everything is released, cowtable_fini() runs and the allocator
 * must have every byte back.  A difference prints a FAIL line (tests/check.h) and
 * aborts, which libFuzzer reports as a crash and saves the input.
 *
 * COWTABLE_FUZZ_TRACE=1 prints each call as it is made (to read a crash).
 * Built with FUZZ_REFS_MAX=n against a library whose counts stop at n.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

/* tests/check.h's CHECK, which stops the run at its first failure. */
static void fuzz_failed(void);
#define CHECK_ON_FAIL() fuzz_failed()
#define CHECK_NO_PASS_COUNT

#include "cowtable.h"
#include "model.h"
#include "test_alloc.h"

#ifndef FUZZ_REFS_MAX
#define FUZZ_REFS_MAX COWTABLE_REFS_MAX
#endif

_Static_assert(sizeof(uintptr_t) == 8, "the anchors below are 64-bit addresses");

#define PAGE  COWTABLE_PAGE_SIZE
#define BLOCK MODEL_BLOCK
#define SLOTS 4 /* context slots */
/*
 * The block index's nodes a new leaf may add: a path below the tree's top
 * and a top grown above it, one node a level each (8 levels for 64-bit
 * addresses and 4 KiB pages); a node the allocator cannot give is done
 * without, and the mark succeeds.
 */
#define INDEX_NODES 16
#define MAX_DEPTH   2 /* callbacks call in; their callbacks once more; theirs not */

/* Outputs the calls must leave alone when they say so. */
#define NO_FRAME ((cowtable_frame_t)0x5eed5eed5eedull)
#define NO_REFS  0x5eedu

enum {
	OP_MARK,
	OP_RELEASE,
	OP_LOOKUP,
	OP_MARK_RANGE,
	OP_RELEASE_RANGE,
	OP_FOREACH,
	OP_MARK_AGAIN,    /* a second code for mark, the commonest call */
	OP_RELEASE_AGAIN, /* and for release */
	OP_MARK_REPEAT,
	OP_CTX_GET,
	OP_CTX_PUT,
	OP_RECLAIM,
	OP_BARRIER,
	OP_FAIL_AT,
	OP_FAIL_RATE,
	OP_CHECK,
};

static struct {
	const uint8_t *data;
	size_t size, pos;
	bool eof;
	int trace;
	uint64_t op; /* calls decoded so far, for messages */

	struct test_alloc alloc;
	struct cowtable table;
	struct model model;
	struct cowtable_ctx *slot[SLOTS];   /* contexts in use; NULL: the calls get NULL */
	struct cowtable_ctx *parked[SLOTS]; /* contexts put back */
	size_t nparked;

	int depth; /* of the call being made: 0 at the top, 1 + in a callback */
	struct cowtable_ctx *busy[MAX_DEPTH + 1]; /* the walking context at each depth */
	struct {
		uintptr_t lo, hi;
	} forbid[MAX_DEPTH + 1]; /* pages a callback must not touch (below) */
	int nforbid;
	uintptr_t here; /* the page the innermost callback was called for */
	uint64_t child_calls[MAX_DEPTH + 2], child_fails[MAX_DEPTH + 2];
	bool recheck; /* compare the whole table after this top-level call */
	bool keep;    /* leave the pages tracked for cowtable_fini() */
} F;

/* After CHECK's "FAIL file:line: ..." line: where in the input, then a crash. */
static void fuzz_failed(void)
{
	printf("FAIL at op #%" PRIu64 ", callback depth %d\n", F.op, F.depth);
	fflush(stdout);
	abort();
}

#define TRACE(...)                                                                                 \
	do {                                                                                       \
		if (F.trace) {                                                                     \
			fprintf(stderr, "%*s#%" PRIu64 " ", 2 * F.depth, "", F.op);                \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
		}                                                                                  \
	} while (0)

#define X(v) ((uintmax_t)(v))

/*
 * The allocator: tests/test_alloc.h's counting and failure rules (fail the
 * Nth call, or about one call in N; every free must give the size asked
 * for; new memory filled with 0xa5, freed memory with 0xdb), over an arena
 * at a fixed address that starts afresh with every input.  Fixed addresses
 * make a run repeatable: a context's tower heights are seeded from its
 * address.  Nothing is reused within an input, and under AddressSanitizer
 * headers, red zones and freed blocks are poisoned, so any access to freed
 * memory or past a block is reported.
 */
#define ARENA_HINT ((uintptr_t)0x3f0000000000ull)
#define ARENA_SIZE ((size_t)1 << 30)
#define RED_ZONE   32

static struct {
	char *base;
	size_t used, touched;
} arena;

static void arena_setup(void)
{
	void *p;

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
	p = mmap((void *)ARENA_HINT, ARENA_SIZE, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		p = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
		         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("fuzz: arena");
		abort();
	}
	if ((uintptr_t)p != ARENA_HINT)
		fprintf(stderr, "fuzz: arena at %p, not %#jx: runs may not repeat exactly\n", p,
		        X(ARENA_HINT));
	arena.base = (char *)p;
}

/* Every block is back (checked before): start the next input at the same addresses. */
static void arena_reset(void)
{
	if (arena.used > arena.touched)
		arena.touched = arena.used;
	if (arena.touched > ((size_t)16 << 20)) {
		madvise(arena.base, arena.touched, MADV_DONTNEED);
		arena.touched = 0;
	}
	arena.used = 0;
}

static void *fuzz_alloc(size_t size, void *arg)
{
	struct test_alloc *a = (struct test_alloc *)arg;
	uint64_t call = ++a->calls;
	size_t span = sizeof(struct test_alloc_hdr) + ((size + 15) & ~(size_t)15) + RED_ZONE;
	struct test_alloc_hdr *h;

	if (call == a->fail_at ||
	    (a->fail_one_in != 0 && (call * 0x9e3779b97f4a7c15ull >> 40) % a->fail_one_in == 0)) {
		a->failures++;
		return NULL;
	}
	if (arena.used + span > ARENA_SIZE) {
		fprintf(stderr, "fuzz: arena exhausted\n");
		abort();
	}
	h = (struct test_alloc_hdr *)(void *)(arena.base + arena.used);
	arena.used += span;
	ASAN_UNPOISON_MEMORY_REGION(h, span);
	h->magic = TEST_ALLOC_MAGIC;
	h->size = size;
	memset(h + 1, 0xa5, size);
	ASAN_POISON_MEMORY_REGION(h, sizeof(*h));
	ASAN_POISON_MEMORY_REGION((char *)(h + 1) + size, span - sizeof(*h) - size);
	a->bytes += (int64_t)size;
	a->blocks++;
	if (a->bytes > a->peak)
		a->peak = a->bytes;
	return h + 1;
}

static void fuzz_free(void *ptr, size_t size, void *arg)
{
	struct test_alloc *a = (struct test_alloc *)arg;
	struct test_alloc_hdr *h = (struct test_alloc_hdr *)ptr - 1;

	if (ptr == NULL || (char *)h < arena.base || (char *)ptr >= arena.base + arena.used) {
		a->bad_frees++;
		return;
	}
	ASAN_UNPOISON_MEMORY_REGION(h, sizeof(*h));
	if (h->magic != TEST_ALLOC_MAGIC || h->size != size) {
		ASAN_POISON_MEMORY_REGION(h, sizeof(*h));
		a->bad_frees++;
		return;
	}
	h->magic = 0;
	memset(ptr, TEST_ALLOC_POISON, size);
	ASAN_POISON_MEMORY_REGION(h, sizeof(*h) + size);
	a->bytes -= (int64_t)size;
	a->blocks--;
}

/* The input, one byte at a time; zeros once it is used up. */
static uint8_t u8(void)
{
	if (F.pos < F.size)
		return F.data[F.pos++];
	F.eof = true;
	return 0;
}

/*
 * Addresses: an anchor, a signed page offset of up to 128 pages either way
 * (so every anchor reaches the blocks on both sides), and sometimes a
 * misalignment.
 */
static const uintptr_t anchors[8] = {
        0,                                 /* page 0; below it, the top pages */
        (uintptr_t)5 * BLOCK,              /* an ordinary block edge */
        (uintptr_t)0x40000000 + 32 * PAGE, /* the middle of a block */
        (uintptr_t)1 << 32,                /* 4 GiB: truncation to 32 bits */
        ((uintptr_t)1 << 47) - 2 * BLOCK,  /* the top of x86-64 user space */
        (uintptr_t)1 << 52,                /* page number 2^40 */
        (uintptr_t)1 << 63,                /* the sign bit: signed comparisons */
        (uintptr_t)0 - 2 * BLOCK,          /* the top blocks; past them, page 0 */
};
static const uintptr_t misalign[4] = {1, 8, PAGE / 2, PAGE - 1};

static uintptr_t decode_addr(void)
{
	uint8_t a = u8(), d = u8();
	uintptr_t v = anchors[a & 7] + (uintptr_t)(int8_t)d * PAGE;

	if ((a >> 3) >= 28)
		v += misalign[(a >> 3) - 28];
	return v;
}

/* Frames: a few small ones (so marks share and clash), the page's own, the limits. */
static const cowtable_frame_t special_frames[16] = {
        COWTABLE_FRAME_MAX,
        COWTABLE_FRAME_MAX - 1,
        COWTABLE_FRAME_MAX + 1,
        UINT64_MAX,
        0,
        1,
        (cowtable_frame_t)1 << 39,
        0xffffffffu,
        (cowtable_frame_t)1 << 32,
        (cowtable_frame_t)1 << 63,
        COWTABLE_FRAME_MAX >> 1,
        0x123456789aull,
        (cowtable_frame_t)1 << 40,
        (cowtable_frame_t)COWTABLE_REFS_MAX,
        ((cowtable_frame_t)1 << 40) - 2,
        0xdbdbdbdbdbull,
};

static cowtable_frame_t decode_frame(uint8_t b, uintptr_t vaddr)
{
	const struct model_page *p;

	if (b >= 0xf0)
		return special_frames[b & 15];
	if (b >= 0x80 && (p = model_find(&F.model, vaddr)) != NULL)
		return p->frame;
	return b & 7;
}

static struct cowtable_ctx *ctx_of(uint8_t code)
{
	return F.slot[(code >> 4) & 3];
}

static int slot_index(struct cowtable_ctx *c)
{
	int i;

	for (i = 0; i < SLOTS; i++)
		if (c != NULL && F.slot[i] == c)
			return i;
	return -1;
}

/* Whether @c is walking a range at a shallower depth (a callback runs inside it). */
static bool busy(struct cowtable_ctx *c)
{
	int d;

	for (d = 0; d < F.depth; d++)
		if (F.busy[d] == c)
			return true;
	return false;
}

/*
 * What a callback may touch.  When release_range's callback or foreach's
 * visitor runs for page v of [start, end), the walk has handled every page
 * up to v and none after v's block, but where in between it stands is the
 * library's business: the contract says only that a page is handled when the
 * walk reaches it.  The model has already applied the whole call, so a
 * callback works on pages whose fate does not depend on that: anything but
 * [v + PAGE, end).  Addresses decoded there are moved to v, and ranges are
 * cut short before it.
 */
static bool forbidden(uintptr_t vaddr)
{
	uintptr_t page = vaddr & ~(PAGE - 1);
	int i;

	for (i = 0; i < F.nforbid; i++)
		if (page >= F.forbid[i].lo && page < F.forbid[i].hi)
			return true;
	return false;
}

static uintptr_t allowed_addr(uintptr_t vaddr)
{
	return forbidden(vaddr) ? F.here + (vaddr & (PAGE - 1)) : vaddr;
}

/* The first forbidden page above @vaddr, or 0 if there is none. */
static uintptr_t forbidden_above(uintptr_t vaddr)
{
	uintptr_t lo = 0;
	int i;

	for (i = 0; i < F.nforbid; i++)
		if (F.forbid[i].lo > vaddr && (lo == 0 || F.forbid[i].lo < lo))
			lo = F.forbid[i].lo;
	return lo;
}

/* A context to compare with: any in use (NULL if none is). */
static struct cowtable_ctx *checker(void)
{
	int i;

	for (i = 0; i < SLOTS; i++)
		if (F.slot[i] != NULL)
			return F.slot[i];
	return NULL;
}

/* One page against the model (outside the pages a callback may not look at). */
static void check_page(uintptr_t vaddr)
{
	struct cowtable_ctx *c = checker();
	cowtable_frame_t f = NO_FRAME, mf = NO_FRAME;
	uint32_t r = NO_REFS, mr = NO_REFS;
	bool got, want;

	if (c == NULL || forbidden(vaddr))
		return;
	got = cowtable_lookup(c, vaddr, &f, &r);
	want = model_lookup(&F.model, true, vaddr, &mf, &mr);
	CHECK(got == want && f == mf && r == mr,
	      "page %#jx: lookup %d frame %#jx refs %u; model %d frame %#jx refs %u", X(vaddr), got,
	      X(f), r, want, X(mf), mr);
	CHECK(cowtable_is_cow(c, vaddr) == want, "page %#jx: is_cow %d, model %d", X(vaddr), !want,
	      want);
}

/*
 * The pages of [@lo, @hi) against the model, by one foreach walk (cut short
 * before any page a callback may not look at): exactly the model's pages, in
 * order, with their frames and counts.
 */
struct range_check {
	size_t i, end;
};

static bool check_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	struct range_check *rc = (struct range_check *)arg;
	const struct model_page *p = rc->i < rc->end ? &F.model.page[rc->i] : NULL;

	CHECK(p != NULL && p->vaddr == vaddr && p->frame == frame && p->refs == refs,
	      "page %#jx frame %#jx refs %u; model: %s %#jx frame %#jx refs %u", X(vaddr), X(frame),
	      refs, p ? "page" : "nothing", X(p ? p->vaddr : 0), X(p ? p->frame : 0),
	      p ? p->refs : 0);
	rc->i++;
	return true;
}

static void check_range(uintptr_t lo, uintptr_t hi)
{
	struct cowtable_ctx *c = checker();
	struct range_check rc;
	uintptr_t f;
	size_t n, visited;

	if (c == NULL || forbidden(lo))
		return;
	f = forbidden_above(lo);
	if (f != 0 && hi > f)
		hi = f;
	if (hi <= lo)
		return;
	rc.i = model_lower_bound(&F.model, lo);
	rc.end = model_lower_bound(&F.model, hi);
	n = rc.end - rc.i;
	visited = cowtable_foreach(c, lo, hi, check_visit, &rc);
	CHECK(visited == n && rc.i == rc.end, "[%#jx, %#jx): foreach visited %zu pages, model %zu",
	      X(lo), X(hi), visited, n);
}

/* The whole table (only at the top: nothing may be half done). */
static void check_all(const char *when)
{
	struct cowtable_ctx *c = checker();
	char why[256];

	if (c == NULL || F.depth != 0)
		return;
	CHECK(model_compare(&F.model, &F.table, c, why, sizeof(why)), "%s: %s", when, why);
	F.recheck = false;
}

/*
 * What the allocator did for one call, the calls its callbacks made apart:
 * each call adds its totals to child_calls[its depth] for its parent.
 */
struct acct {
	uint64_t calls, fails;
};

static void acct_start(struct acct *a)
{
	a->calls = F.alloc.calls;
	a->fails = F.alloc.failures;
	F.child_calls[F.depth + 1] = 0;
	F.child_fails[F.depth + 1] = 0;
}

static void acct_end(struct acct *a)
{
	uint64_t calls = F.alloc.calls - a->calls, fails = F.alloc.failures - a->fails;

	F.child_calls[F.depth] += calls;
	F.child_fails[F.depth] += fails;
	a->calls = calls - F.child_calls[F.depth + 1];
	a->fails = fails - F.child_fails[F.depth + 1];
}

static bool failure_armed(void)
{
	return F.alloc.fail_at > F.alloc.calls || F.alloc.fail_one_in != 0;
}

static void do_mark(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t frame)
{
	bool leaf = model_mark_needs_leaf(&F.model, ctx != NULL, vaddr, frame);
	struct acct a;
	int r, want;

	acct_start(&a);
	r = cowtable_mark(ctx, vaddr, frame);
	acct_end(&a);
	TRACE("mark ctx%d %#jx frame %#jx -> %d", slot_index(ctx), X(vaddr), X(frame), r);
	CHECK(a.calls <= (leaf ? 1u + INDEX_NODES : 0u),
	      "mark %#jx: %" PRIu64 " allocations (new leaf: %d)", X(vaddr), a.calls, leaf);
	if (a.fails != 0)
		F.recheck = true;
	if (r == COWTABLE_ENOMEM) {
		/* The new leaf's allocation failed, the first and only one: nothing changed. */
		CHECK(leaf && a.fails == 1 && a.calls == 1,
		      "mark %#jx: ENOMEM after %" PRIu64 " failed allocations of %" PRIu64,
		      X(vaddr), a.fails, a.calls);
		check_page(vaddr);
		return;
	}
	want = model_mark(&F.model, ctx != NULL, vaddr, frame);
	CHECK(r == want, "mark %#jx frame %#jx: returned %d, model %d", X(vaddr), X(frame), r,
	      want);
	check_page(vaddr);
}

static void op_mark(uint8_t code)
{
	uintptr_t vaddr = allowed_addr(decode_addr());

	do_mark(ctx_of(code), vaddr, decode_frame(u8(), vaddr));
}

static void op_mark_repeat(uint8_t code)
{
	uintptr_t vaddr = allowed_addr(decode_addr());
	cowtable_frame_t frame = decode_frame(u8(), vaddr);
	int i, n = 1 + (u8() & 7);

	for (i = 0; i < n; i++)
		do_mark(ctx_of(code), vaddr, frame);
}

static void op_release(uint8_t code)
{
	struct cowtable_ctx *ctx = ctx_of(code);
	uintptr_t vaddr = allowed_addr(decode_addr());
	bool null_frame = code & 0x40;
	cowtable_frame_t f = NO_FRAME, mf = NO_FRAME;
	struct acct a;
	int r, want;

	acct_start(&a);
	r = cowtable_release(ctx, vaddr, null_frame ? NULL : &f);
	acct_end(&a);
	TRACE("release ctx%d %#jx -> %d frame %#jx", slot_index(ctx), X(vaddr), r, X(f));
	want = model_release(&F.model, ctx != NULL, vaddr, &mf);
	CHECK(r == want, "release %#jx: returned %d, model %d", X(vaddr), r, want);
	CHECK(null_frame || f == mf, "release %#jx: frame %#jx, model %#jx", X(vaddr), X(f), X(mf));
	CHECK(a.calls == 0, "release %#jx called the allocator", X(vaddr));
	check_page(vaddr);
}

static void op_lookup(uint8_t code)
{
	struct cowtable_ctx *ctx = ctx_of(code);
	uintptr_t vaddr = allowed_addr(decode_addr());
	bool null_frame = code & 0x40, null_refs = code & 0x80;
	cowtable_frame_t f = NO_FRAME, mf = NO_FRAME;
	uint32_t r = NO_REFS, mr = NO_REFS;
	struct acct a;
	bool got, want, cow;

	acct_start(&a);
	got = cowtable_lookup(ctx, vaddr, null_frame ? NULL : &f, null_refs ? NULL : &r);
	cow = cowtable_is_cow(ctx, vaddr);
	acct_end(&a);
	TRACE("lookup ctx%d %#jx -> %d frame %#jx refs %u, is_cow %d", slot_index(ctx), X(vaddr),
	      got, X(f), r, cow);
	want = model_lookup(&F.model, ctx != NULL, vaddr, &mf, &mr);
	CHECK(got == want && (null_frame || f == mf) && (null_refs || r == mr),
	      "lookup %#jx: %d frame %#jx refs %u; model %d frame %#jx refs %u", X(vaddr), got,
	      X(f), r, want, X(mf), mr);
	CHECK(cow == want, "is_cow %#jx: %d, model %d", X(vaddr), cow, want);
	CHECK(a.calls == 0, "lookup called the allocator");
}

/* Blocks among pages [0, @n) of a range that have no tracked page: leaves it may allocate. */
static size_t empty_blocks(uintptr_t start, size_t n)
{
	size_t i, blocks = 0;
	uintptr_t v;

	for (i = 0; i < n; i++) {
		v = start + i * PAGE;
		if ((i == 0 || (v & (BLOCK - 1)) == 0) && !model_block_tracked(&F.model, v))
			blocks++;
	}
	return blocks;
}

static void op_mark_range(uint8_t code)
{
	struct cowtable_ctx *ctx = ctx_of(code);
	uintptr_t start = allowed_addr(decode_addr()), lo, v;
	uint8_t nb = u8(), sb = u8(), pb = u8(), bb = u8(), qb = u8(), rb = (qb & 1) ? u8() : 0;
	/* Pages: 0-255, 256-511 (more leaves than one section handles), or up to 4095. */
	size_t n = (sb & 3) < 2 ? nb : (sb & 3) == 2 ? 256 + nb : nb | (size_t)(sb >> 2 & 15) << 8;
	size_t i, marked = 77, want_marked, at, allowed;
	bool null_frames = sb & 0x40, null_marked = (sb & 0x80) && !failure_armed(), invalid;
	cowtable_frame_t *frames, base = bb >= 0xf0 ? special_frames[bb & 15] : bb & 15;
	const struct model_page *p;
	struct acct a;
	int r, want;

	/* In a callback: stop before the first page it may not touch. */
	lo = forbidden_above(start);
	if (lo != 0 && n > (lo - start) / PAGE)
		n = (lo - start) / PAGE;
	/* Exactly n frames on the heap, so reading past them is caught. */
	frames = (cowtable_frame_t *)malloc((n ? n : 1) * sizeof(*frames));
	if (frames == NULL)
		abort();
	for (i = 0; i < n; i++) {
		v = start + i * PAGE;
		p = (pb & 1) ? model_find(&F.model, v) : NULL;
		frames[i] = p != NULL ? p->frame : (pb & 2) ? base + i : base;
	}
	if ((qb & 1) && n > 0) /* one page with another frame: a clash, or a frame too large */
		frames[(qb >> 1) % n] = decode_frame(rb, start + ((qb >> 1) % n) * PAGE);

	acct_start(&a);
	r = cowtable_mark_range(ctx, start, n, null_frames ? NULL : frames,
	                        null_marked ? NULL : &marked);
	acct_end(&a);
	TRACE("mark_range ctx%d %#jx + %zu pages, frames %s%#jx.. -> %d, marked %zu",
	      slot_index(ctx), X(start), n, null_frames ? "NULL " : "", X(n ? frames[0] : 0), r,
	      marked);
	if (a.fails != 0)
		F.recheck = true;
	if (r == COWTABLE_ENOMEM) {
		/*
		 * ENOMEM at the first page of a block with nothing tracked; those
		 * before marked.  Only a leaf's allocation fails a range (an index
		 * node's is done without), and it was the last call.
		 */
		at = marked;
		CHECK(a.fails >= 1 && !null_frames,
		      "mark_range: returned ENOMEM after %" PRIu64 " failed allocations", a.fails);
		CHECK(model_range_enomem_ok(&F.model, start, n, frames, at),
		      "mark_range %#jx + %zu: ENOMEM at page %zu is not where a new leaf begins",
		      X(start), n, at);
		CHECK(a.calls <= empty_blocks(start, at + 1) * (1u + INDEX_NODES),
		      "mark_range: %" PRIu64 " allocations", a.calls);
		if (at > 0)
			model_mark_range(&F.model, true, start, at, frames, &want_marked);
	} else {
		invalid = model_range_invalid(ctx != NULL, start, n, null_frames ? NULL : frames);
		/* It may allocate for blocks with nothing tracked, up to the first error. */
		for (at = 0; !invalid && at < n; at++) {
			p = model_find(&F.model, start + at * PAGE);
			if (p != NULL && (p->frame != frames[at] || p->refs >= F.model.refs_max))
				break;
		}
		allowed =
		        invalid ? 0 : empty_blocks(start, at < n ? at + 1 : n) * (1u + INDEX_NODES);
		CHECK(a.calls <= allowed,
		      "mark_range %#jx + %zu: %" PRIu64 " allocations, at most %zu", X(start), n,
		      a.calls, allowed);
		want = model_mark_range(&F.model, ctx != NULL, start, n,
		                        null_frames ? NULL : frames, &want_marked);
		CHECK(r == want && (null_marked || marked == want_marked),
		      "mark_range %#jx + %zu: returned %d marked %zu; model %d marked %zu",
		      X(start), n, r, marked, want, want_marked);
	}
	/* The range and a page on either side: one walk, and lookups at its ends. */
	v = start + (n ? n : 1) * PAGE; /* past the last page; 0 at the top */
	check_range(start >= PAGE ? start - PAGE : 0,
	            v > start && v + PAGE > v ? v + PAGE : UINTPTR_MAX);
	check_page(start - PAGE);
	check_page(start);
	check_page(v - PAGE);
	check_page(v);
	free(frames);
}

/*
 * Bounds of a walk: from a decoded address to one a length away (whole
 * pages, or into a page), to another decoded address (maybe below), or to
 * the top of the address space.
 */
static const uintptr_t end_offset[4] = {0, 1, PAGE / 2, PAGE - 1};

static void decode_bounds(uintptr_t *start, uintptr_t *end)
{
	uint8_t eb = u8(), lb = u8();

	*start = decode_addr();
	switch (eb & 3) {
	case 0:
		*end = *start + ((uintptr_t)lb << (2 * ((eb >> 2) & 3))) * PAGE +
		       end_offset[(eb >> 4) & 3];
		break;
	case 1:
		*end = decode_addr();
		break;
	case 2:
		*end = UINTPTR_MAX;
		break;
	default:
		*start = (eb & 4) ? 0 : *start;
		*end = UINTPTR_MAX;
		break;
	}
	if (F.nforbid != 0 && *end > *start) {
		/* In a callback: start where it may, end before what it may not touch. */
		uintptr_t lo;

		*start = allowed_addr(*start);
		lo = forbidden_above(*start);
		if (lo != 0 && *end > lo)
			*end = lo;
	}
}

/* Run one decoded call from inside a callback for page @vaddr of a walk ending at @end. */
static void run_op(void);

static void call_in(uintptr_t vaddr, uintptr_t end)
{
	uintptr_t saved = F.here;
	bool fence = vaddr + PAGE > vaddr && vaddr + PAGE < end;

	if (F.depth >= MAX_DEPTH || F.pos >= F.size)
		return;
	if (fence) {
		F.forbid[F.nforbid].lo = vaddr + PAGE;
		F.forbid[F.nforbid].hi = end;
		F.nforbid++;
	}
	F.here = vaddr;
	F.depth++;
	run_op();
	F.depth--;
	F.here = saved;
	F.nforbid -= fence;
}

/* A list of pages the model expects a walk to hand over, in order. */
struct expect {
	struct model_page *page;
	size_t n, cap, got, stop;
	uintptr_t end;
	bool call_in;
};

static void expect_add(struct expect *e, uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 16;
		e->page = (struct model_page *)realloc(e->page, e->cap * sizeof(*e->page));
		if (e->page == NULL)
			abort();
	}
	e->page[e->n].vaddr = vaddr;
	e->page[e->n].frame = frame;
	e->page[e->n].refs = refs;
	e->n++;
}

static void model_on_last(uintptr_t vaddr, cowtable_frame_t frame, void *arg)
{
	expect_add((struct expect *)arg, vaddr, frame, 0);
}

static void on_last(uintptr_t vaddr, cowtable_frame_t frame, void *arg)
{
	struct expect *e = (struct expect *)arg;

	TRACE("  last %#jx frame %#jx", X(vaddr), X(frame));
	CHECK(e->got < e->n, "release_range: LAST #%zu for %#jx, the model has %zu", e->got,
	      X(vaddr), e->n);
	CHECK(e->page[e->got].vaddr == vaddr && e->page[e->got].frame == frame,
	      "release_range: LAST #%zu %#jx frame %#jx; model %#jx frame %#jx", e->got, X(vaddr),
	      X(frame), X(e->page[e->got].vaddr), X(e->page[e->got].frame));
	e->got++;
	if (e->call_in)
		call_in(vaddr, e->end);
}

static void op_release_range(uint8_t code)
{
	struct cowtable_ctx *ctx = ctx_of(code);
	struct expect e = {0};
	uintptr_t start, end;
	size_t got, want;
	uint8_t cb;
	struct acct a;

	decode_bounds(&start, &end);
	cb = u8();
	e.end = end;
	e.call_in = (cb & 3) == 2;
	want = model_release_range(&F.model, ctx != NULL, start, end, model_on_last, &e);
	F.busy[F.depth] = ctx;
	acct_start(&a);
	got = cowtable_release_range(ctx, start, end, (cb & 3) ? on_last : NULL, &e);
	acct_end(&a);
	F.busy[F.depth] = NULL;
	TRACE("release_range ctx%d [%#jx, %#jx) -> %zu (model %zu, %zu last)", slot_index(ctx),
	      X(start), X(end), got, want, e.n);
	CHECK(got == want, "release_range [%#jx, %#jx): %zu released, model %zu", X(start), X(end),
	      got, want);
	CHECK((cb & 3) == 0 || e.got == e.n, "release_range [%#jx, %#jx): %zu LASTs, model %zu",
	      X(start), X(end), e.got, e.n);
	CHECK(a.calls == 0, "release_range called the allocator");
	check_range(start, end);
	check_page(start);
	check_page(end - 1);
	free(e.page);
}

static bool model_on_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	struct expect *e = (struct expect *)arg;

	expect_add(e, vaddr, frame, refs);
	return e->n != e->stop;
}

static bool on_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	struct expect *e = (struct expect *)arg;
	const struct model_page *p = e->got < e->n ? &e->page[e->got] : NULL;

	TRACE("  visit %#jx frame %#jx refs %u", X(vaddr), X(frame), refs);
	CHECK(p != NULL, "foreach: visit #%zu of %#jx, the model has %zu", e->got, X(vaddr), e->n);
	CHECK(p->vaddr == vaddr && p->frame == frame && p->refs == refs,
	      "foreach: visit #%zu %#jx frame %#jx refs %u; model %#jx frame %#jx refs %u", e->got,
	      X(vaddr), X(frame), refs, X(p->vaddr), X(p->frame), p->refs);
	e->got++;
	if (e->call_in)
		call_in(vaddr, e->end);
	return e->got != e->stop;
}

static void op_foreach(uint8_t code)
{
	struct cowtable_ctx *ctx = ctx_of(code);
	struct expect e = {0};
	uintptr_t start, end;
	size_t got, want;
	uint8_t cb;
	struct acct a;

	decode_bounds(&start, &end);
	cb = u8();
	e.end = end;
	e.call_in = (cb & 3) == 2;
	e.stop = cb >> 2; /* 0: never stop */
	want = model_foreach(&F.model, ctx != NULL, start, end, (cb & 3) ? model_on_visit : NULL,
	                     &e);
	F.busy[F.depth] = ctx;
	acct_start(&a);
	got = cowtable_foreach(ctx, start, end, (cb & 3) ? on_visit : NULL, &e);
	acct_end(&a);
	F.busy[F.depth] = NULL;
	TRACE("foreach ctx%d [%#jx, %#jx) stop %zu -> %zu (model %zu)", slot_index(ctx), X(start),
	      X(end), e.stop, got, want);
	CHECK(got == want && e.got == e.n && ((cb & 3) == 0 || got == e.n),
	      "foreach [%#jx, %#jx): %zu visited (%zu seen), model %zu", X(start), X(end), got,
	      e.got, want);
	CHECK(a.calls == 0, "foreach called the allocator");
	free(e.page);
}

static bool known_ctx(struct cowtable_ctx *c)
{
	size_t i;

	for (i = 0; i < F.nparked; i++)
		if (F.parked[i] == c)
			return true;
	return slot_index(c) >= 0;
}

static void op_ctx_get(uint8_t code)
{
	int s = (code >> 4) & 3;
	struct cowtable_ctx *c;
	size_t i, parked = F.nparked;
	struct acct a;

	if (F.slot[s] != NULL)
		return;
	acct_start(&a);
	c = cowtable_ctx_get(&F.table);
	acct_end(&a);
	TRACE("ctx_get -> ctx%d %p (%zu parked)", s, (void *)c, parked);
	if (parked != 0) {
		/* One put back is reused, without allocating. */
		for (i = 0; i < F.nparked && F.parked[i] != c; i++)
			;
		CHECK(i < F.nparked && a.calls == 0,
		      "ctx_get returned %p, not one of the %zu put back (%" PRIu64 " allocations)",
		      (void *)c, parked, a.calls);
		F.parked[i] = F.parked[--F.nparked];
	} else {
		CHECK(a.calls == 1, "ctx_get: %" PRIu64 " allocations for a new context", a.calls);
		CHECK((c == NULL) == (a.fails != 0),
		      "ctx_get returned %p after %" PRIu64 " failures", (void *)c, a.fails);
		CHECK(c == NULL || !known_ctx(c), "ctx_get returned %p, a context in use",
		      (void *)c);
	}
	F.slot[s] = c;
}

static void op_ctx_put(uint8_t code)
{
	int s = (code >> 4) & 3;
	struct cowtable_ctx *c = F.slot[s];
	struct acct a;

	if (c == NULL || busy(c))
		return;
	acct_start(&a);
	cowtable_ctx_put(c);
	acct_end(&a);
	TRACE("ctx_put ctx%d", s);
	CHECK(a.calls == 0, "ctx_put called the allocator");
	F.slot[s] = NULL;
	F.parked[F.nparked++] = c;
}

static void op_reclaim(uint8_t code, bool barrier)
{
	struct cowtable_ctx *c = ctx_of(code);
	struct acct a;

	if (c == NULL || busy(c))
		return;
	acct_start(&a);
	if (barrier)
		cowtable_barrier(c);
	else
		cowtable_reclaim(c);
	acct_end(&a);
	TRACE("%s ctx%d", barrier ? "barrier" : "reclaim", slot_index(c));
	CHECK(a.calls == 0, "reclaim or barrier called the allocator");
	if (barrier)
		F.recheck = true;
}

static void run_op(void)
{
	uint8_t code = u8(), b;

	F.op++;
	switch (code & 15) {
	case OP_MARK:
	case OP_MARK_AGAIN:
		op_mark(code);
		break;
	case OP_RELEASE:
	case OP_RELEASE_AGAIN:
		op_release(code);
		break;
	case OP_LOOKUP:
		op_lookup(code);
		break;
	case OP_MARK_RANGE:
		op_mark_range(code);
		break;
	case OP_RELEASE_RANGE:
		op_release_range(code);
		break;
	case OP_FOREACH:
		op_foreach(code);
		break;
	case OP_MARK_REPEAT:
		op_mark_repeat(code);
		break;
	case OP_CTX_GET:
		op_ctx_get(code);
		break;
	case OP_CTX_PUT:
		op_ctx_put(code);
		break;
	case OP_RECLAIM:
		op_reclaim(code, false);
		break;
	case OP_BARRIER:
		op_reclaim(code, true);
		break;
	case OP_FAIL_AT:
		/* Fail the allocator's call 1 to 16 from now; 0xff disarms. */
		b = u8();
		F.alloc.fail_at = b == 0xff ? 0 : F.alloc.calls + 1 + (b & 15);
		TRACE("fail allocation #%" PRIu64, F.alloc.fail_at);
		break;
	case OP_FAIL_RATE:
		/* Fail about one call in (b & 15); 0 stops. */
		b = u8();
		F.alloc.fail_one_in = b & 15;
		TRACE("fail one allocation in %" PRIu64, F.alloc.fail_one_in);
		break;
	default:
		/* Compare everything; with flag 0x40, end the sequence here. */
		TRACE("check%s", (code & 0x40) ? ", then the end without releasing" : "");
		F.recheck = true;
		if ((code & 0x40) && F.depth == 0) {
			F.keep = true;
			F.pos = F.size;
		}
		break;
	}
	if (F.depth == 0) {
		CHECK(F.alloc.bad_frees == 0 && F.alloc.bytes >= 0,
		      "allocator: %" PRIu64 " bad frees, %lld bytes", F.alloc.bad_frees,
		      (long long)F.alloc.bytes);
		CHECK(cowtable_count(&F.table) == model_count(&F.model), "count %zu, model %zu",
		      cowtable_count(&F.table), model_count(&F.model));
		if (F.recheck)
			check_all("after the call");
	}
}

static void reset(const uint8_t *data, size_t size)
{
	int trace = F.trace;

	memset(&F, 0, sizeof(F));
	F.trace = trace;
	F.data = data;
	F.size = size;
}

/* init's errors: EINVAL asks nothing of the allocator; ENOMEM leaves nothing to undo. */
static void start_table(struct cowtable_allocator *al)
{
	struct cowtable_allocator no_alloc = {NULL, fuzz_free, &F.alloc};
	struct cowtable_allocator no_free = {fuzz_alloc, NULL, &F.alloc};

	CHECK(cowtable_init(NULL, al) == COWTABLE_EINVAL, "init(NULL)");
	CHECK(cowtable_init(&F.table, &no_alloc) == COWTABLE_EINVAL, "init without alloc");
	CHECK(cowtable_init(&F.table, &no_free) == COWTABLE_EINVAL, "init without free");
	CHECK(F.alloc.calls == 0, "init's EINVAL called the allocator");
	/* Init allocates once (the head): fail it. */
	F.alloc.fail_at = 1;
	CHECK(cowtable_init(&F.table, al) == COWTABLE_ENOMEM && F.alloc.calls == 1 &&
	              F.alloc.bytes == 0,
	      "init with a failing allocator");
	F.alloc.fail_at = 0;
	CHECK(cowtable_init(&F.table, al) == 0 && F.alloc.calls == 2, "init");
	F.slot[0] = cowtable_ctx_get(&F.table);
	CHECK(F.slot[0] != NULL && F.alloc.calls == 3, "the first context");
	model_init(&F.model, FUZZ_REFS_MAX);
}

/* The default allocator (malloc and free: LeakSanitizer checks that fini returns it all). */
static void default_allocator(void)
{
	struct cowtable t;
	struct cowtable_ctx *c;

	CHECK(cowtable_init(&t, NULL) == 0, "init with the default allocator");
	c = cowtable_ctx_get(&t);
	CHECK(c != NULL && cowtable_mark(c, 0, 1) == 2 && cowtable_count(&t) == 1,
	      "a mark with the default allocator");
	cowtable_ctx_put(c);
	cowtable_fini(&t);
}

/*
 * The end: the whole table compared, then released in passes over the whole
 * address space, each compared with the model; the table empty; every
 * context put back; fini; the allocator balanced.
 */
static void finish(void)
{
	struct cowtable_ctx *c;
	struct expect e = {0};
	size_t got, want, passes = 0;
	int i;

	F.alloc.fail_at = 0;
	F.alloc.fail_one_in = 0;
	if (checker() == NULL)
		op_ctx_get(0); /* slot 0, checked as any other get */
	c = checker();
	CHECK(c != NULL, "no context at the end");
	check_all("at the end");
	/* fini frees live leaves too (without F.keep, everything is released first). */
	while (!F.keep && model_count(&F.model) != 0) {
		e.n = e.got = 0;
		want = model_release_range(&F.model, true, 0, UINTPTR_MAX, model_on_last, &e);
		got = cowtable_release_range(c, 0, UINTPTR_MAX, on_last, &e);
		passes++;
		CHECK(got == want && e.got == e.n,
		      "release pass %zu: %zu released, %zu LASTs; model %zu, %zu", passes, got,
		      e.got, want, e.n);
		CHECK(cowtable_count(&F.table) == model_count(&F.model), "count %zu, model %zu",
		      cowtable_count(&F.table), model_count(&F.model));
	}
	free(e.page);
	if (!F.keep)
		check_all("after releasing everything");
	for (i = 0; i < SLOTS; i++)
		if (F.slot[i] != NULL)
			cowtable_ctx_put(F.slot[i]);
	cowtable_fini(&F.table);
	CHECK(F.alloc.bytes == 0 && F.alloc.blocks == 0 && F.alloc.bad_frees == 0,
	      "after fini: %lld bytes in %lld blocks outstanding, %" PRIu64 " bad frees",
	      (long long)F.alloc.bytes, (long long)F.alloc.blocks, F.alloc.bad_frees);
	model_fini(&F.model);
	arena_reset();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("COWTABLE_FUZZ_TRACE");

	(void)argc;
	(void)argv;
	F.trace = t != NULL && *t != 0 && *t != '0';
	arena_setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cowtable_allocator al = {fuzz_alloc, fuzz_free, NULL};

	reset(data, size);
	memset(&F.alloc, 0, sizeof(F.alloc));
	al.arg = &F.alloc;
	if (size == 0)
		default_allocator();
	start_table(&al);
	while (F.pos < F.size)
		run_op();
	finish();
	return 0;
}
