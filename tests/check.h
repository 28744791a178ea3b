/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one check of every test, in user space and in the kernel.
 *
 *   CHECK(cond)
 *   CHECK(cond, "format", args...)
 *
 * evaluates @cond once and returns it (so `if (!CHECK(...)) return 0;` stops
 * a test that cannot go on).  A failed check prints one line, the same way
 * in every test and in the kernel's log:
 *
 *   FAIL file.c:123: cond: message
 *
 * and counts it; check_exit() prints the totals and gives the exit status.
 * The broken controls match their failure on that line, so a check that can
 * no longer fire shows up as a control that passes no more.
 *
 * A file may define, before including this header:
 *   CHECK_ON_FAIL()        called after each failure is printed (the torture
 *                          stops at its first failure there)
 *   CHECK_PRINT_LIMIT n    print only the first n failures (0: all)
 *   CHECK_NO_PASS_COUNT    do not count passed checks (hot loops of many
 *                          threads, where a shared counter would serialise them)
 */
#ifndef CHECK_H
#define CHECK_H

#ifdef __KERNEL__
#include <linux/kernel.h>
#include <linux/printk.h>
#include <linux/types.h>
#define CHECK_PREFIX KBUILD_MODNAME ": "
#else
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#define CHECK_PREFIX ""
#endif

#ifndef CHECK_PRINT_LIMIT
#define CHECK_PRINT_LIMIT 0
#endif

/* Totals of this file's checks; updated atomically, so threads may check. */
__attribute__((unused)) static unsigned long check_passed, check_failed;

static inline bool check_pass(void)
{
#ifndef CHECK_NO_PASS_COUNT
	__atomic_fetch_add(&check_passed, 1, __ATOMIC_RELAXED);
#endif
	return true;
}

/* The file name without its directories: builds pass absolute paths. */
static inline const char *check_basename(const char *file)
{
	const char *p, *base = file;

	for (p = file; *p != '\0'; p++)
		if (*p == '/')
			base = p + 1;
	return base;
}

__attribute__((format(printf, 4, 5))) static inline bool
check_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	unsigned long n = __atomic_add_fetch(&check_failed, 1, __ATOMIC_RELAXED);
	va_list ap;

	if (CHECK_PRINT_LIMIT == 0 || n <= (unsigned long)CHECK_PRINT_LIMIT) {
		va_start(ap, fmt);
#ifdef __KERNEL__
		if (fmt[0] != '\0') {
			struct va_format vaf = {.fmt = fmt, .va = &ap};

			pr_err(CHECK_PREFIX "FAIL %s:%d: %s:%pV\n", check_basename(file), line,
			       cond, &vaf);
		} else {
			pr_err(CHECK_PREFIX "FAIL %s:%d: %s\n", check_basename(file), line, cond);
		}
#else
		{
			/* One write per line: threads may fail at the same time. */
			char buf[1024];
			int len =
			        snprintf(buf, sizeof(buf), "FAIL %s:%d: %s%s", check_basename(file),
			                 line, cond, fmt[1] != '\0' ? ":" : "");

			if (len >= 0 && (size_t)len < sizeof(buf))
				vsnprintf(buf + len, sizeof(buf) - (size_t)len, fmt, ap);
			printf("%s\n", buf);
			fflush(stdout);
		}
#endif
		va_end(ap);
	}
#ifdef CHECK_ON_FAIL
	CHECK_ON_FAIL();
#endif
	return false;
}

/*
 * The check: true if @cond holds; otherwise reported and counted, false.  The
 * message, if any, must begin with a string literal; check_fail() gets it
 * after one space (which is never an empty format).
 */
#define CHECK(cond, ...)                                                                           \
	((cond) ? check_pass() : check_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__))

/* Failures so far in this file. */
static inline unsigned long check_failures(void)
{
	return __atomic_load_n(&check_failed, __ATOMIC_RELAXED);
}

#ifndef __KERNEL__
/* The last line of a test: its totals; the exit status (0: every check passed). */
static inline int check_exit(const char *test)
{
	printf("%s: %lu checks passed, %lu failed\n", test,
	       __atomic_load_n(&check_passed, __ATOMIC_RELAXED), check_failures());
	return check_failures() == 0 ? 0 : 1;
}
#endif

#endif /* CHECK_H */
