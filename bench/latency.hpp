// SPDX-License-Identifier: BSD-2-Clause
// Latency of one operation in the oversubscribed rows (more threads than
// CPUs), where a preempted lock holder shows.
//
// Every 8th operation of a workload's hot loop is timed with the steady
// clock (two reads; timing them all would add the clock's ~30 ns to every
// operation and lower the throughput the same row reports).  The sample is
// unbiased: which operation a preemption hits does not depend on the stride.
// Each thread fills a log-linear histogram of its own (16 buckets per power
// of two: within 6%); after the run every thread merges it into one, and
// thread 0 reports the 50th, 99th and 99.9th percentiles as the counters
// p50_ns, p99_ns and p99.9_ns (a lock holder preempted for a time slice
// stalls few operations, but for milliseconds: the far tail and the
// throughput show it more than the 99th percentile does).  The threads are pinned to two CPUs for the run, so that "x8" means
// four threads per CPU on any machine.
#pragma once

#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

namespace latency
{

class Histogram
{
	static constexpr int kSub = 16; // buckets per power of two
	std::array<uint64_t, 64 * kSub> count_{};
	uint64_t total_ = 0;

	static size_t bucket(uint64_t ns)
	{
		if (ns < kSub)
			return size_t(ns);
		int msb = 63 - __builtin_clzll(ns); // >= 4
		return size_t(msb - 3) * kSub + ((ns >> (msb - 4)) & (kSub - 1));
	}
	// The middle of a bucket's range of nanoseconds.
	static double middle(size_t b)
	{
		if (b < size_t(kSub))
			return double(b);
		int msb = int(b / kSub) + 3;
		double low = double((kSub + b % kSub) << (msb - 4));
		return low + double(uint64_t(1) << (msb - 4)) / 2;
	}

      public:
	void add(uint64_t ns)
	{
		count_[bucket(ns)]++;
		total_++;
	}
	void merge(const Histogram &o)
	{
		for (size_t i = 0; i < count_.size(); i++)
			count_[i] += o.count_[i];
		total_ += o.total_;
	}
	void clear()
	{
		count_.fill(0);
		total_ = 0;
	}
	uint64_t total() const
	{
		return total_;
	}
	double percentile(double q) const
	{
		uint64_t want = uint64_t(q * double(total_)), seen = 0;
		for (size_t i = 0; i < count_.size(); i++) {
			seen += count_[i];
			if (seen > want)
				return middle(i);
		}
		return 0;
	}
};

// The merged histogram of the run in progress.
struct Shared {
	std::mutex lock;
	Histogram all;
	std::atomic<int> merged{0};
};
inline Shared shared;

// The first two CPUs this process may run on.
inline cpu_set_t two_cpus()
{
	static cpu_set_t two = [] {
		cpu_set_t all, two;
		CPU_ZERO(&two);
		sched_getaffinity(0, sizeof(all), &all);
		for (int cpu = 0, n = 0; cpu < CPU_SETSIZE && n < 2; cpu++)
			if (CPU_ISSET(cpu, &all)) {
				CPU_SET(cpu, &two);
				n++;
			}
		return two;
	}();
	return two;
}

// One per benchmark thread; does nothing unless `on`.
class Recorder
{
	using clock = std::chrono::steady_clock;
	bool on_;
	unsigned n_ = 0;
	Histogram mine_;
	cpu_set_t saved_;

      public:
	Recorder(const benchmark::State &st, bool on) : on_(on)
	{
		if (!on_)
			return;
		// Before the run's start barrier: no thread has merged yet.
		if (st.thread_index() == 0) {
			shared.all.clear();
			shared.merged = 0;
		}
		cpu_set_t two = two_cpus();
		pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_);
		pthread_setaffinity_np(pthread_self(), sizeof(two), &two);
	}

	// Runs op(), timing it if it is a sampled one.
	template <class Op> auto operator()(Op &&op)
	{
		if (!on_ || (++n_ & 7) != 0)
			return op();
		auto t0 = clock::now();
		auto r = op();
		mine_.add(uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
		                           clock::now() - t0)
		                           .count()));
		return r;
	}

	// After the timed loop (all threads are past its end barrier).
	void report(benchmark::State &st)
	{
		if (!on_)
			return;
		pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
		{
			std::lock_guard<std::mutex> g(shared.lock);
			shared.all.merge(mine_);
		}
		shared.merged++;
		if (st.thread_index() != 0)
			return;
		while (shared.merged.load() < st.threads())
			std::this_thread::yield();
		// Counters add up over threads: only thread 0 sets these.
		st.counters["p50_ns"] = shared.all.percentile(0.50);
		st.counters["p99_ns"] = shared.all.percentile(0.99);
		st.counters["p99.9_ns"] = shared.all.percentile(0.999);
		st.counters["samples"] = double(shared.all.total());
	}
};

} // namespace latency
