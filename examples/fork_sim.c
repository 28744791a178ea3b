// SPDX-License-Identifier: BSD-2-Clause
/*
 * A simulated kernel using cowtable: each thread is a CPU running its own
 * process of PAGES pages.  Each round the process forks (every page marked),
 * the child writes a quarter of its pages (COW faults: release, then a
 * private frame), the child exits (releases the rest), and the parent writes
 * every page (a page whose release returns LAST is reused in place, with no
 * copy).  At the end every frame must be back in the parent's hands and the
 * table empty.
 *
 * Usage: fork_sim [threads] [rounds] [pages]
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cowtable.h"

struct cpu {
	pthread_t tid;
	struct cowtable *table;
	unsigned int id, rounds, pages;
	uint64_t forks, child_faults, parent_reuses, parent_copies, errors;
};

static void *run(void *arg)
{
	struct cpu *c = arg;
	struct cowtable_ctx *ctx = cowtable_ctx_get(c->table);
	uintptr_t base = ((uintptr_t)c->id + 1) << 32; /* this process's window */
	unsigned char *child_wrote = calloc(c->pages, 1);
	unsigned int r, p;
	uint64_t rng = c->id * 2654435761u + 1;

	if (ctx == NULL || child_wrote == NULL) {
		c->errors++;
		free(child_wrote);
		return NULL;
	}
	for (r = 0; r < c->rounds; r++) {
		/* fork(): every page is now shared by parent and child. */
		for (p = 0; p < c->pages; p++)
			if (cowtable_mark(ctx, base + (uintptr_t)p * COWTABLE_PAGE_SIZE, p) != 2)
				c->errors++;
		c->forks++;
		/* The child writes 25% of its pages: a COW fault each. */
		for (p = 0; p < c->pages; p++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			child_wrote[p] = (rng & 3) == 0;
			if (!child_wrote[p])
				continue;
			if (cowtable_release(ctx, base + (uintptr_t)p * COWTABLE_PAGE_SIZE, NULL) !=
			    COWTABLE_SHARED)
				c->errors++;
			c->child_faults++;
		}
		/* exit(): the child drops the pages it still shares. */
		for (p = 0; p < c->pages; p++)
			if (!child_wrote[p] &&
			    cowtable_release(ctx, base + (uintptr_t)p * COWTABLE_PAGE_SIZE, NULL) !=
			            COWTABLE_SHARED)
				c->errors++;
		/* The parent writes every page: it is the last sharer, so no copy. */
		for (p = 0; p < c->pages; p++) {
			cowtable_frame_t frame = ~(cowtable_frame_t)0;
			int ret = cowtable_release(ctx, base + (uintptr_t)p * COWTABLE_PAGE_SIZE,
			                           &frame);

			if (ret == COWTABLE_LAST && frame == p)
				c->parent_reuses++;
			else
				c->parent_copies++, c->errors++;
		}
	}
	free(child_wrote);
	cowtable_ctx_put(ctx);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int threads = argc > 1 ? (unsigned int)atoi(argv[1]) : 4;
	unsigned int rounds = argc > 2 ? (unsigned int)atoi(argv[2]) : 50;
	unsigned int pages = argc > 3 ? (unsigned int)atoi(argv[3]) : 4096;
	struct cowtable table;
	struct cpu *cpus = calloc(threads, sizeof(*cpus));
	uint64_t errors = 0;
	unsigned int i;

	if (cpus == NULL || cowtable_init(&table, NULL) != 0)
		return 1;
	for (i = 0; i < threads; i++) {
		cpus[i] = (struct cpu){.table = &table, .id = i, .rounds = rounds, .pages = pages};
		pthread_create(&cpus[i].tid, NULL, run, &cpus[i]);
	}
	printf("%-4s %8s %14s %14s %14s\n", "cpu", "forks", "child faults", "parent reuses",
	       "parent copies");
	for (i = 0; i < threads; i++) {
		pthread_join(cpus[i].tid, NULL);
		printf("%-4u %8" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", i,
		       cpus[i].forks, cpus[i].child_faults, cpus[i].parent_reuses,
		       cpus[i].parent_copies);
		errors += cpus[i].errors;
	}
	printf("entries left: %zu, unexpected results: %" PRIu64 "\n", cowtable_count(&table),
	       errors);
	errors += cowtable_count(&table);
	cowtable_fini(&table);
	free(cpus);
	return errors == 0 ? 0 : 1;
}
