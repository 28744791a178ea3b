/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cowfork: the linux-fork reference row of cowbench, the real thing on the
 * running kernel.  It maps PAGES private anonymous pages (4 KiB pages: no
 * transparent huge pages) and writes them all.  Then, for every byte it reads
 * on standard input, it runs one fork storm round:
 *
 *   fork(); the child writes PERCENT % of the pages (picked at random, each a
 *   COW fault that copies the page) and exits; the parent waits for it, then
 *   writes every page (each a write fault on a page it alone maps again:
 *   reused in place);
 *
 * and answers with the nanoseconds from just before fork() to the parent's
 * last write, as a uint64_t on standard output (UINT64_MAX if a check
 * failed: the parent must never see the child's writes).  This includes the
 * page-table copy, the faults and the child's exit, which cowtable does not
 * do: it is what the kernel itself pays per page, a reference and not a peer.
 *
 *   cowfork PAGES PERCENT
 *
 * cowbench starts it beside itself so that the process that forks is small:
 * forking cowbench would copy the page tables of its own tables too.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One round; every page holds `round` on entry and round + 1 on return. */
static uint64_t fork_round(volatile unsigned char *mem, size_t pages, unsigned percent,
                           unsigned char round, uint64_t seed)
{
	uint64_t start = now_ns();
	pid_t child = fork();
	int status;
	size_t i;
	int bad = 0;

	if (child < 0)
		return UINT64_MAX;
	if (child == 0) {
		for (i = 0; i < pages; i++)
			if (next_rand(&seed) % 100 < percent)
				mem[i * PAGE] = (unsigned char)(round + 1);
		_exit(0);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		return UINT64_MAX;
	for (i = 0; i < pages; i++) {
		bad |= mem[i * PAGE] != round;
		mem[i * PAGE] = (unsigned char)(round + 1);
	}
	if (bad)
		return UINT64_MAX;
	return now_ns() - start;
}

int main(int argc, char **argv)
{
	size_t pages, i;
	unsigned percent;
	unsigned char round = 0, cmd;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	volatile unsigned char *mem;

	if (argc != 3 || (pages = strtoul(argv[1], NULL, 0)) == 0 ||
	    (percent = (unsigned)strtoul(argv[2], NULL, 0)) > 100) {
		fprintf(stderr, "usage: cowfork PAGES PERCENT\n");
		return 2;
	}
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("cowfork: mmap");
		return 1;
	}
	madvise((void *)mem, pages * PAGE, MADV_NOHUGEPAGE);
	for (i = 0; i < pages; i++)
		mem[i * PAGE] = round;
	while (read(0, &cmd, 1) == 1) {
		uint64_t ns = fork_round(mem, pages, percent, round++, next_rand(&seed));

		if (write(1, &ns, sizeof(ns)) != sizeof(ns))
			return 1;
	}
	return 0;
}
