/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The torture's two halves.  torture.c is the operations and the invariants,
 * compiled both in user space and in the kernel; a front end gives it
 * threads and the few services below, nothing else: torture_user.c with
 * pthreads (cowtable_torture) and kernel/linux/torture_mod.c with kthreads
 * (the cowtable_torture module).  Like the XArray's lib/test_xarray.c, one
 * source runs in both worlds.
 */
#ifndef TORTURE_H
#define TORTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What the front end calls, in this order: torture_parse() with the command
 * line (the kernel splits its "args" parameter into one), then torture_run(),
 * which starts the workers through tt_start_workers(); each worker thread
 * runs torture_worker(id) and returns.
 */
int torture_parse(int argc, char **argv, uint64_t default_seed, unsigned int default_threads);
int torture_run(void); /* 0: every check passed (VERDICT: PASS) */
void torture_worker(unsigned int id);

/* What the front end gives. */
__attribute__((format(printf, 1, 2))) void tt_print(const char *fmt, ...); /* whole lines */
uint64_t tt_now_ns(void);                                                  /* a monotonic clock */
void tt_sleep_ms(unsigned int ms); /* sleeps (never inside an operation) */
void tt_yield(void);               /* lets another thread run on this CPU */
void tt_resched(void); /* a point where a kernel thread may be preempted; user space: nothing */
void *tt_zalloc(size_t size);              /* zeroed memory for the harness; may sleep */
void tt_free(void *ptr);                   /* memory from tt_zalloc() */
int tt_start_workers(unsigned int n);      /* 0, or an error: nothing started */
bool tt_join_workers(uint64_t timeout_ms); /* false: some are still running */
void tt_stop_here(void); /* the first failure: user space exits 1; the kernel returns */

#endif /* TORTURE_H */
