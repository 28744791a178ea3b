// SPDX-License-Identifier: BSD-2-Clause
/*
 * The torture's kernel front end: the cowtable_torture module, one kthread
 * per worker (bound to the online CPUs in turn), the test allocator over
 * kmalloc(GFP_ATOMIC).  The operations and every check are stress/torture.c,
 * the same source as user space's cowtable_torture; this file gives it
 * threads, time, printing and memory.  Options come as one parameter in the
 * user-space syntax:
 *
 *   insmod cowtable_torture.ko args="--mode lin --seconds 10 --keys 4"
 *
 * The run happens inside module_init; the module stays loaded (rmmod it to
 * run again) and the log gets "cowtable_torture: VERDICT: PASS" or FAIL.
 */
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>

#include "torture.h"

static char *args = "";
module_param(args, charp, 0444);
MODULE_PARM_DESC(args, "options, as on cowtable_torture's command line");

#define MAX_ARGS 64

struct kworker {
	struct task_struct *task;
	struct completion done;
	unsigned int id;
};

static struct kworker *kworkers;
static unsigned int nkworkers;

void tt_print(const char *fmt, ...)
{
	struct va_format vaf;
	va_list ap;

	va_start(ap, fmt);
	vaf.fmt = fmt;
	vaf.va = &ap;
	pr_info("cowtable_torture: %pV", &vaf);
	va_end(ap);
}

uint64_t tt_now_ns(void)
{
	return ktime_get_ns();
}

void tt_sleep_ms(unsigned int ms)
{
	msleep(ms);
}

void tt_yield(void)
{
	/*
	 * Called after a long spin (waiting at lin mode's barrier, or for the
	 * hand-off lock): sleep a moment, so that a virtual CPU that waits lets
	 * its host run the one it waits for.
	 */
	usleep_range(1, 5);
}

void tt_resched(void)
{
	cond_resched();
}

void *tt_zalloc(size_t size)
{
	return kvzalloc(size, GFP_KERNEL);
}

void tt_free(void *ptr)
{
	kvfree(ptr);
}

static int kworker_fn(void *arg)
{
	struct kworker *kw = arg;

	torture_worker(kw->id);
	/* Signals and exits without running another instruction of the module. */
	kthread_complete_and_exit(&kw->done, 0);
}

int tt_start_workers(unsigned int n)
{
	unsigned int i, cpu = nr_cpu_ids;

	kworkers = kcalloc(n, sizeof(*kworkers), GFP_KERNEL);
	if (kworkers == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct kworker *kw = &kworkers[i];

		/* The online CPUs in turn: worker i on the (i mod CPUs)-th. */
		cpu = cpumask_next(cpu, cpu_online_mask);
		if (cpu >= nr_cpu_ids)
			cpu = cpumask_first(cpu_online_mask);
		kw->id = i;
		init_completion(&kw->done);
		kw->task = kthread_create(kworker_fn, kw, "cowtable_torture/%u", i);
		if (IS_ERR(kw->task))
			return PTR_ERR(kw->task); /* none started yet */
		kthread_bind(kw->task, cpu);
	}
	for (i = 0; i < n; i++)
		wake_up_process(kworkers[i].task);
	nkworkers = n;
	return 0;
}

bool tt_join_workers(uint64_t timeout_ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(timeout_ms);
	unsigned int i;

	for (i = 0; i < nkworkers; i++) {
		long left = (long)(deadline - jiffies);

		if (left <= 0 || !wait_for_completion_timeout(&kworkers[i].done, left))
			return false; /* they keep the module's memory: never freed */
	}
	kfree(kworkers);
	kworkers = NULL;
	return true;
}

void tt_stop_here(void)
{
	/* The kernel cannot exit: torture.c stops its workers and skips the end. */
}

static int __init torture_init(void)
{
	char *argv[MAX_ARGS], *buf, *p, *tok;
	int argc = 0;

	buf = kstrdup(args, GFP_KERNEL);
	if (buf == NULL)
		return -ENOMEM;
	argv[argc++] = "cowtable_torture";
	for (p = buf; (tok = strsep(&p, " \t")) != NULL;)
		if (*tok != '\0' && argc < MAX_ARGS)
			argv[argc++] = tok;
	if (torture_parse(argc, argv, get_random_u64(), num_online_cpus()) != 0) {
		kfree(buf);
		return -EINVAL;
	}
	kfree(buf);
	/* PASS or FAIL, the verdict is in the log; the module stays for rmmod. */
	torture_run();
	return 0;
}

static void __exit torture_exit(void)
{
}

module_init(torture_init);
module_exit(torture_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_DESCRIPTION("cowtable torture: lock-free COW frame table under kthreads");
