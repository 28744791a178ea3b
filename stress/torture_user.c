// SPDX-License-Identifier: BSD-2-Clause
/*
 * The torture's user-space front end: cowtable_torture, with one pthread per
 * worker.  Everything else is in torture.c, which the kernel module shares.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "torture.h"

static pthread_t *threads;
static unsigned int nthreads;

void tt_print(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

uint64_t tt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

void tt_sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void tt_yield(void)
{
	sched_yield();
}

void tt_resched(void)
{
	/* Threads are preempted anywhere, mid-operation too: that is the point. */
}

void *tt_zalloc(size_t size)
{
	return calloc(1, size);
}

void tt_free(void *ptr)
{
	free(ptr);
}

static void *run(void *arg)
{
	torture_worker((unsigned int)(uintptr_t)arg);
	return NULL;
}

/*
 * Worker i runs on the i-th CPU this process may use, in turn, as the kernel
 * module binds its kthreads: left to itself, a scheduler that shares the
 * CPUs with other work may put two workers on one CPU for a whole run, and
 * then no two of their operations ever overlap.
 */
static void pin(pthread_t thread, unsigned int i)
{
	cpu_set_t allowed, one;
	int cpu, k = 0, n;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return;
	n = CPU_COUNT(&allowed);
	for (cpu = 0; cpu < CPU_SETSIZE && n > 0; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || k++ != (int)(i % (unsigned int)n))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pthread_setaffinity_np(thread, sizeof(one), &one);
		return;
	}
}

int tt_start_workers(unsigned int n)
{
	unsigned int i;

	threads = calloc(n, sizeof(*threads));
	if (threads == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (pthread_create(&threads[i], NULL, run, (void *)(uintptr_t)i) != 0) {
			printf("cowtable_torture: cannot start thread %u\n", i);
			exit(2);
		}
		pin(threads[i], i);
	}
	nthreads = n;
	return 0;
}

bool tt_join_workers(uint64_t timeout_ms)
{
	unsigned int i;

	/* The coordinator's watchdog has already judged them: wait. */
	(void)timeout_ms;
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	return true;
}

void tt_stop_here(void)
{
	/* The table may be corrupt: leave before the harness crashes on it. */
	fflush(stdout);
	_exit(1);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TT_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TT_SANITIZER 1
#endif
#endif

#define TT_STR2(x) #x
#define TT_STR(x)  TT_STR2(x)

#ifndef TT_SANITIZER
/*
 * A worker that faults has read memory that was freed (and unmapped) or
 * reused under it: a use after reclaim, invariant 3, caught by the MMU
 * rather than by a check.  Report it as the checks do, and leave.
 */
static void tt_on_fault(int sig)
{
	static const char msg[] = "FAIL torture_user.c:" TT_STR(
	        __LINE__) ": memory fault: invariant 3: a worker "
	                  "faulted (SIGSEGV or SIGBUS): memory freed or reused under a reader\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

#endif

/* Sanitizers report faults themselves, with more to say: leave them theirs. */
static void tt_catch_faults(void)
{
#ifndef TT_SANITIZER
	struct sigaction sa = {0};

	sa.sa_handler = tt_on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
#endif
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	tt_catch_faults();
	if (torture_parse(argc, argv, (uint64_t)time(NULL), 4) != 0)
		return 2;
	return torture_run();
}
