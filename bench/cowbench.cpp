// SPDX-License-Identifier: BSD-2-Clause
// cowbench: fork-heavy workloads on cowtable and its peers, side by side in
// one run (Google Benchmark).  Every workload runs unchanged on every adapter
// of peers.hpp; the table at the end gives each peer's cost per page (or per
// operation) and cowtable's speed relative to it.
//
//   cowbench [--long] [Google Benchmark flags, e.g. --benchmark_out=x.json]
//
// The default set is the headline (a few minutes); --long adds every size,
// mix and thread count.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "latency.hpp"
#include "peers.hpp"

using namespace peers;

namespace
{

bool g_long = false;

uint64_t next_rand(uint64_t &s)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

// The table a benchmark runs on, built before its threads start.
template <class T> struct Shared {
	static std::unique_ptr<T> table;
	static size_t populated;
};
template <class T> std::unique_ptr<T> Shared<T>::table;
template <class T> size_t Shared<T>::populated;

// Keys of a populated table: pages spread over a 4 GiB-aligned window per
// thread, far from the fork windows.
uintptr_t pop_key(size_t i)
{
	return (uintptr_t(1) << 40) + i * 3 * kPage;
}

template <class T> void teardown(const benchmark::State &)
{
	Shared<T>::table.reset();
}

// The flat array must cover every page a workload touches, so populated keys
// are mapped into its window too (every other page, so that the page beside a
// key is free for misses and new entries).
template <class T> uintptr_t key_at(size_t i)
{
	if constexpr (std::is_same_v<T, FlatArray>)
		return (uintptr_t(1) << 30) + i * 2 * kPage;
	return pop_key(i);
}

size_t flat_capacity(size_t populate)
{
	return (size_t(1) << 30) / kPage + 2 * populate + 16;
}

template <class T> void setup_pages(size_t capacity, size_t populate)
{
	if constexpr (std::is_same_v<T, FlatArray>)
		capacity = flat_capacity(populate) + 4 * 65536;
	Shared<T>::table.reset(new T(capacity));
	typename T::Ctx c(*Shared<T>::table);
	for (size_t i = 0; i < populate; i++)
		Shared<T>::table->mark(c, key_at<T>(i), i);
	Shared<T>::populated = populate;
}

// ------------------------------------------------------------ fork storm
// Each thread runs its own process of `pages` pages in a window of its own.
// One iteration is one fork: mark every page (a range operation where the
// structure has one), the child writes 25% of its pages (COW fault: lookup
// + release), the child exits (releases the pages it still shares), and the
// parent writes every page, each now its last reference (release -> LAST ->
// reuse in place).  With `timed` (the oversubscribed rows), the latency of
// one COW fault (lookup + release) is sampled.
template <class T> void fork_storm(benchmark::State &st, size_t pages, bool timed = false)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	latency::Recorder lat(st, timed);
	uintptr_t base = uintptr_t(st.thread_index()) * pages * kPage;
	std::vector<cowtable_frame_t> frames(pages);
	std::vector<char> wrote(pages);
	uint64_t rng = 0x9e3779b97f4a7c15ull * (st.thread_index() + 1), bad = 0;
	struct Count {
		size_t lasts = 0;
	} lasts;
	auto on_last = [](uintptr_t, cowtable_frame_t, void *arg) {
		static_cast<Count *>(arg)->lasts++;
	};

	for (size_t i = 0; i < pages; i++)
		frames[i] = base / kPage + i;
	for (auto _ : st) {
		if (t.mark_range(c, base, pages, frames.data()) != 0)
			bad++;
		for (size_t i = 0; i < pages; i++) {
			wrote[i] = (next_rand(rng) & 3) == 0;
			if (!wrote[i])
				continue;
			uintptr_t va = base + i * kPage;
			if (!lat([&] {
				    cowtable_frame_t f;
				    uint32_t refs;
				    return t.lookup(c, va, &f, &refs) &&
				           t.release(c, va, &f) == COWTABLE_SHARED;
			    }))
				bad++;
		}
		for (size_t i = 0; i < pages;) {
			size_t j = i;
			while (j < pages && !wrote[j])
				j++;
			if (j > i && t.release_range(c, base + i * kPage, base + j * kPage, nullptr,
			                             nullptr) != j - i)
				bad++;
			i = j + 1;
		}
		lasts.lasts = 0;
		t.release_range(c, base, base + pages * kPage, +on_last, &lasts);
		if (lasts.lasts != pages)
			bad++;
	}
	lat.report(st);
	if (bad)
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations() * pages));
}

// ----------------------------------------------------------------- zygote
// Every thread forks the same parent: the same pages, so the threads contend
// on the counts of shared entries (Android's zygote, a prefork server).
template <class T> void zygote(benchmark::State &st, size_t pages)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	const uintptr_t base = 0;
	std::vector<cowtable_frame_t> frames(pages);
	uint64_t rng = 0x9e3779b97f4a7c15ull * (st.thread_index() + 1), bad = 0;

	for (size_t i = 0; i < pages; i++)
		frames[i] = i;
	for (auto _ : st) {
		if (t.mark_range(c, base, pages, frames.data()) != 0)
			bad++;
		for (size_t i = 0; i < pages; i++) {
			cowtable_frame_t f;
			// The child writes a quarter, then exits: either way one release.
			if ((next_rand(rng) & 3) == 0) {
				uint32_t refs;
				t.lookup(c, base + i * kPage, &f, &refs);
			}
			if (t.release(c, base + i * kPage, &f) != COWTABLE_SHARED)
				bad++;
		}
	}
	if (bad)
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations() * pages));
}

// ----------------------------------------------------------- 1 GiB range
// Fork and exit of a 1 GiB region (262144 pages) in one process: mark the
// range, then release it twice (child exit: SHARED; parent exit: LAST).
template <class T> void range_1g(benchmark::State &st)
{
	constexpr size_t pages = 262144;
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	std::vector<cowtable_frame_t> frames(pages);
	uint64_t bad = 0;

	for (size_t i = 0; i < pages; i++)
		frames[i] = i;
	for (auto _ : st) {
		bad += t.mark_range(c, 0, pages, frames.data()) != 0;
		bad += t.release_range(c, 0, pages * kPage, nullptr, nullptr) != pages;
		bad += t.release_range(c, 0, pages * kPage, nullptr, nullptr) != pages;
	}
	if (bad)
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations() * pages));
}

// ------------------------------------------------ linux-fork (reference)
// The real thing on this kernel, as context for fork_storm and range_1G: a
// small process of its own (cowfork, built beside cowbench) whose pages are
// all written forks; the child writes `percent` % of them and exits; the
// parent writes every page.  cowfork times each round itself, from fork() to
// the parent's last write (manual time); each benchmark thread drives its own
// process.  It includes the page-table copy, the faults and the page copies
// that cowtable does not do: what the kernel itself pays per page.
class ForkWorker
{
	pid_t pid_ = -1;
	int to_ = -1, from_ = -1;

      public:
	ForkWorker(size_t pages, unsigned percent)
	{
		char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return;
		exe[n] = 0;
		std::string path(exe);
		path = path.substr(0, path.rfind('/') + 1) + "cowfork";
		std::string a1 = std::to_string(pages), a2 = std::to_string(percent);
		char *argv[] = {path.data(), a1.data(), a2.data(), nullptr};
		int in[2], out[2];
		if (pipe2(in, O_CLOEXEC) != 0)
			return;
		if (pipe2(out, O_CLOEXEC) != 0) {
			close(in[0]);
			close(in[1]);
			return;
		}
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		posix_spawn_file_actions_adddup2(&fa, out[1], 1);
		if (posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv, environ) != 0)
			pid_ = -1;
		posix_spawn_file_actions_destroy(&fa);
		close(in[0]);
		close(out[1]);
		to_ = in[1];
		from_ = out[0];
	}
	~ForkWorker()
	{
		if (to_ >= 0)
			close(to_); // end of input: cowfork exits
		if (from_ >= 0)
			close(from_);
		if (pid_ > 0)
			waitpid(pid_, nullptr, 0);
	}
	// One round: its nanoseconds, or UINT64_MAX if it failed.
	uint64_t round()
	{
		char go = 1;
		uint64_t ns;
		if (pid_ <= 0 || write(to_, &go, 1) != 1)
			return UINT64_MAX;
		for (size_t got = 0; got < sizeof(ns);) {
			ssize_t r = read(from_, reinterpret_cast<char *>(&ns) + got, sizeof(ns) - got);
			if (r <= 0)
				return UINT64_MAX;
			got += size_t(r);
		}
		return ns;
	}
};

void linux_fork(benchmark::State &st, size_t pages, unsigned percent)
{
	ForkWorker w(pages, percent);
	bool bad = false;
	for (auto _ : st) {
		uint64_t ns = w.round();
		bad |= ns == UINT64_MAX;
		st.SetIterationTime(bad ? 1e-3 : double(ns) * 1e-9);
	}
	if (bad)
		st.SkipWithError("fork round failed (cowfork missing, or the parent saw the "
		                 "child's writes)");
	st.SetItemsProcessed(int64_t(st.iterations() * pages));
}

// ------------------------------------------------------- dense lookups
// The lookup of a COW fault after a big fork: a random page of a 1 GiB region
// (262144 pages) marked by one range operation.
constexpr size_t kDensePages = 262144;

template <class T> void setup_dense(const benchmark::State &)
{
	Shared<T>::table.reset(new T(kDensePages));
	typename T::Ctx c(*Shared<T>::table);
	std::vector<cowtable_frame_t> frames(kDensePages);
	for (size_t i = 0; i < kDensePages; i++)
		frames[i] = i;
	if (Shared<T>::table->mark_range(c, 0, kDensePages, frames.data()) != 0)
		Shared<T>::populated = 0; // the benchmark reports the adapter as wrong
	else
		Shared<T>::populated = kDensePages;
}

template <class T> void is_cow_dense(benchmark::State &st)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	uint64_t rng = 0x2545f4914f6cdd1dull * (st.thread_index() + 3), bad = 0;
	cowtable_frame_t f;
	uint32_t refs;

	for (auto _ : st) {
		size_t i = next_rand(rng) % kDensePages;
		if (!t.lookup(c, uintptr_t(i) * kPage, &f, &refs) || f != i || refs != 2)
			bad++;
	}
	if (bad || Shared<T>::populated != kDensePages)
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations()));
}

// ------------------------------------------------------------------ micro
enum Micro { LOOKUP_HIT, LOOKUP_MISS, SHARE_RELEASE, NEW_LAST };

template <class T> void micro(benchmark::State &st, Micro m)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	size_t n = Shared<T>::populated;
	uint64_t rng = 0x2545f4914f6cdd1dull * (st.thread_index() + 1), found = 0;
	cowtable_frame_t f;
	uint32_t refs;

	for (auto _ : st) {
		size_t i = next_rand(rng) % n;
		switch (m) {
		case LOOKUP_HIT:
			found += t.lookup(c, key_at<T>(i), &f, &refs);
			break;
		case LOOKUP_MISS:
			found += t.lookup(c, key_at<T>(i) + kPage, &f, &refs);
			break;
		case SHARE_RELEASE: // mark share + release shared: 2 operations
			found += t.mark(c, key_at<T>(i), i) > 2;
			found += t.release(c, key_at<T>(i), &f) == COWTABLE_SHARED;
			break;
		case NEW_LAST: // a page beside a live one: new entry (2), then both releases
			found += t.mark(c, key_at<T>(i) + kPage, i) == 2;
			found += t.release(c, key_at<T>(i) + kPage, &f) == COWTABLE_SHARED;
			found += t.release(c, key_at<T>(i) + kPage, &f) == COWTABLE_LAST;
			break;
		}
	}
	benchmark::DoNotOptimize(found);
	uint64_t ops = m == NEW_LAST ? 3 : m == SHARE_RELEASE ? 2 : 1;
	if (found != (m == LOOKUP_MISS ? 0 : uint64_t(st.iterations()) * ops))
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations() * ops));
}

// ------------------------------------------------------------------ mixed
// With `timed` (the oversubscribed rows), the latency of one operation is
// sampled.
template <class T> void mixed(benchmark::State &st, int lookup_pct, bool zipf, bool timed = false)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	latency::Recorder lat(st, timed);
	size_t n = Shared<T>::populated;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (st.thread_index() + 7), sink = 0;
	int other = (100 - lookup_pct) / 2;
	cowtable_frame_t f;
	uint32_t refs;

	for (auto _ : st) {
		uint64_t x = next_rand(rng);
		size_t i;
		if (zipf) // approximately Zipf(1): heavy head, long tail
			i = size_t(std::pow(double(n), double(x >> 11) * 0x1.0p-53)) - 1;
		else
			i = (x >> 8) % n;
		int op = int(x % 100);
		sink += lat([&]() -> uint64_t {
			if (op < lookup_pct)
				return t.lookup(c, key_at<T>(i), &f, &refs);
			if (op < lookup_pct + other)
				return t.mark(c, key_at<T>(i), i) > 0;
			return uint64_t(t.release(c, key_at<T>(i), &f));
		});
	}
	lat.report(st);
	benchmark::DoNotOptimize(sink);
	st.SetItemsProcessed(int64_t(st.iterations()));
}

// ----------------------------------------------------------------- memory
// Bytes the C library's allocator holds per tracked page (mallinfo2: the
// same accounting for everyone), for a table built from scratch: n pages one
// every `stride` pages, marked one by one; or, with `ranged`, n consecutive
// pages marked by one range operation (page by page where the structure has
// none).
// Heap chunks in use plus mmap'ed blocks (big arrays bypass the heap).
size_t held_bytes()
{
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}

template <class T> void memory(benchmark::State &st, size_t n, size_t stride, bool ranged)
{
	double per_page = 0;
	std::vector<cowtable_frame_t> frames(ranged ? n : 0);
	for (size_t i = 0; i < frames.size(); i++)
		frames[i] = i;
	for (auto _ : st) {
		size_t before = held_bytes();
		{
			T t(n * stride);
			typename T::Ctx c(t);
			bool bad = false;
			if (ranged)
				bad = t.mark_range(c, 0, n, frames.data()) != 0;
			for (size_t i = 0; i < n && !ranged; i++)
				bad |= t.mark(c, uintptr_t(i) * stride * kPage, i) != 2;
			per_page = double(held_bytes() - before) / double(n);
			if (bad)
				st.SkipWithError("unexpected results: the adapter is wrong");
		}
	}
	st.counters["bytes_per_page"] = per_page;
}

// -------------------------------------------------------------- reporting
struct Row {
	std::map<std::string, double> value; // peer -> ns per item, or bytes
	std::map<std::string, std::string> error;
};

class TableReporter : public benchmark::ConsoleReporter
{
      public:
	// Colours only on a terminal: results/bench.txt stays plain text.
	TableReporter() : ConsoleReporter(isatty(1) ? OO_Defaults : OO_Tabular)
	{
	}
	std::vector<std::string> order; // workloads in run order
	std::map<std::string, Row> rows;
	std::vector<std::string> peers;

	void ReportRuns(const std::vector<Run> &runs) override
	{
		ConsoleReporter::ReportRuns(runs);
		for (const Run &r : runs) {
			std::string name = r.benchmark_name();
			size_t bar = name.find('|');
			if (bar == std::string::npos)
				continue;
			std::string work = name.substr(0, bar), rest = name.substr(bar + 1);
			std::string peer = rest.substr(0, rest.find('/'));
			size_t th = rest.find("threads:");
			if (th != std::string::npos)
				work += " x" + rest.substr(th + 8);
			if (!rows.count(work))
				order.push_back(work);
			if (std::find(peers.begin(), peers.end(), peer) == peers.end())
				peers.push_back(peer);
			Row &row = rows[work];
			if (r.error_occurred) {
				row.error[peer] = r.error_message;
				continue;
			}
			auto b = r.counters.find("bytes_per_page");
			if (b != r.counters.end()) {
				row.value[peer] = b->second.value;
				continue;
			}
			// Aggregate throughput over all threads: wall-clock ns per page/op.
			auto it = r.counters.find("items_per_second");
			if (it != r.counters.end() && it->second.value > 0)
				row.value[peer] = 1e9 / it->second.value;
			// Oversubscribed rows: latency of one operation, rows of their own.
			for (const char *p : {"p50", "p99", "p99.9"}) {
				auto l = r.counters.find(std::string(p) + "_ns");
				if (l == r.counters.end())
					continue;
				std::string lw = work + " " + p;
				if (!rows.count(lw))
					order.push_back(lw);
				rows[lw].value[peer] = l->second.value;
			}
		}
	}

	void Finalize() override
	{
		ConsoleReporter::Finalize();
		FILE *o = stdout;
		fprintf(o, "\nns per page (fork/zygote) or per operation; memory in bytes per "
		           "tracked page; p50/p99/p99.9: ns of one operation (x8 rows; in the fork "
		           "storm, a COW fault). Lower is better.\n");
		fprintf(o, "%-28s", "workload");
		for (auto &p : peers)
			fprintf(o, " %20s", p.c_str());
		fprintf(o, "\n");
		for (auto &w : order) {
			Row &row = rows[w];
			fprintf(o, "%-28s", w.c_str());
			for (auto &p : peers) {
				if (row.error.count(p))
					fprintf(o, " %20s", "FAILED");
				else if (row.value.count(p))
					fprintf(o, " %20.2f", row.value[p]);
				else
					fprintf(o, " %20s", "n/a");
			}
			fprintf(o, "\n");
		}
		fprintf(o, "\ncowtable's speed relative to each peer (peer cost / cowtable cost: "
		           "above 1 cowtable is faster, below 1 it is slower).\n");
		fprintf(o, "%-28s", "workload");
		for (auto &p : peers)
			if (p != "cowtable")
				fprintf(o, " %20s", p.c_str());
		fprintf(o, "\n");
		for (auto &w : order) {
			Row &row = rows[w];
			if (!row.value.count("cowtable"))
				continue;
			fprintf(o, "%-28s", w.c_str());
			for (auto &p : peers) {
				if (p == "cowtable")
					continue;
				if (row.value.count(p) && row.value["cowtable"] > 0) {
					double r = row.value[p] / row.value["cowtable"];
					fprintf(o, r < 0.1 ? " %19.4fx" : " %19.2fx", r);
				}
				else
					fprintf(o, " %20s", "n/a");
			}
			fprintf(o, "\n");
		}
		for (auto &p : notes)
			fprintf(o, "  %-22s %s\n", p.first.c_str(), p.second.c_str());
		fflush(o);
	}
	std::vector<std::pair<std::string, std::string>> notes;
};

// ----------------------------------------------------------- registration
template <class T> void register_range(TableReporter &rep, bool note)
{
	std::string peer = T::name;
	if (note)
		rep.notes.push_back({peer, T::note});
	// The capacity hint is the range's size, which a forking kernel knows.
	benchmark::RegisterBenchmark(("range_1G_empty|" + peer).c_str(), range_1g<T>)
	        ->Setup([](const benchmark::State &) { setup_pages<T>(262144, 0); })
	        ->Teardown(teardown<T>)
	        ->UseRealTime()
	        ->Unit(benchmark::kMillisecond);
	// Other processes' ranges already in the table: 4 x 65536 pages.
	benchmark::RegisterBenchmark(("range_1G_populated|" + peer).c_str(), range_1g<T>)
	        ->Setup([](const benchmark::State &) { setup_pages<T>(262144, 262144); })
	        ->Teardown(teardown<T>)
	        ->UseRealTime()
	        ->Unit(benchmark::kMillisecond);
}

template <class T> void register_peer(TableReporter &rep)
{
	using benchmark::RegisterBenchmark;
	std::string peer = T::name;
	auto reg = [&](const std::string &work, auto fn) {
		return RegisterBenchmark((work + "|" + peer).c_str(), fn)
		        ->Teardown(teardown<T>)
		        ->UseRealTime();
	};
	rep.notes.push_back({peer, T::note});

	std::vector<size_t> fork_pages = {4096};
	if (g_long)
		fork_pages.push_back(65536);
	for (size_t pages : fork_pages) {
		std::string w = "fork_storm_" + std::to_string(pages);
		auto b = reg(w, [pages](benchmark::State &st) { fork_storm<T>(st, pages); });
		b->Setup([](const benchmark::State &) { setup_pages<T>(0, 0); })
		        ->Threads(1)
		        ->Threads(2);
		if (g_long)
			b->Threads(4);
		if (pages == 4096) // oversubscribed: 8 threads on 2 CPUs, fault latency
			reg(w, [pages](benchmark::State &st) { fork_storm<T>(st, pages, true); })
			        ->Setup([](const benchmark::State &) { setup_pages<T>(0, 0); })
			        ->Threads(8);
		auto z = reg("zygote_" + std::to_string(pages),
		             [pages](benchmark::State &st) { zygote<T>(st, pages); });
		z->Setup([](const benchmark::State &) { setup_pages<T>(0, 0); })->Threads(2);
	}

	std::vector<size_t> sizes = g_long ? std::vector<size_t>{1000, 65536, 1000000, 16000000}
	                                   : std::vector<size_t>{1000000};
	for (size_t n : sizes) {
		std::string sz = n >= 1000000 ? std::to_string(n / 1000000) + "M"
		                              : std::to_string(n >= 1000 ? n / 1000 : n) + "K";
		struct {
			const char *name;
			Micro m;
		} ms[] = {{"is_cow_hit_", LOOKUP_HIT},
		          {"is_cow_miss_", LOOKUP_MISS},
		          {"mark+release_shared_", SHARE_RELEASE},
		          {"mark_new+release_last_", NEW_LAST}};
		for (auto &m : ms) {
			if (!g_long && m.m != LOOKUP_HIT && m.m != NEW_LAST)
				continue;
			Micro mm = m.m;
			auto b = reg(std::string(m.name) + sz,
			             [mm](benchmark::State &st) { micro<T>(st, mm); });
			if (n == 1000)
				b->Setup([](const benchmark::State &) {
					setup_pages<T>(1000, 1000);
				});
			else if (n == 65536)
				b->Setup([](const benchmark::State &) {
					setup_pages<T>(65536, 65536);
				});
			else if (n == 1000000)
				b->Setup([](const benchmark::State &) {
					setup_pages<T>(1000000, 1000000);
				});
			else
				b->Setup([](const benchmark::State &) {
					setup_pages<T>(16000000, 16000000);
				});
			b->Threads(1);
		}
	}

	struct Mix {
		int lookup;
		bool zipf;
		const char *name;
	};
	std::vector<Mix> mixes = {{90, false, "mixed_90_5_5_uniform"}};
	if (g_long) {
		mixes.push_back({90, true, "mixed_90_5_5_zipf"});
		mixes.push_back({50, false, "mixed_50_25_25_uniform"});
		mixes.push_back({50, true, "mixed_50_25_25_zipf"});
	}
	for (auto &mx : mixes) {
		int l = mx.lookup;
		bool z = mx.zipf;
		auto b = reg(std::string(mx.name) + "_64K",
		             [l, z](benchmark::State &st) { mixed<T>(st, l, z); });
		b->Setup([](const benchmark::State &) { setup_pages<T>(65536, 65536); })
		        ->Threads(1)
		        ->Threads(2);
		if (g_long)
			b->Threads(4);
		if (l == 90 && !z) // oversubscribed: 8 threads on 2 CPUs, op latency
			reg(std::string(mx.name) + "_64K",
			    [l, z](benchmark::State &st) { mixed<T>(st, l, z, true); })
			        ->Setup([](const benchmark::State &) {
				        setup_pages<T>(65536, 65536);
			        })
			        ->Threads(8);
	}

	benchmark::RegisterBenchmark(("is_cow_dense_1G|" + peer).c_str(), is_cow_dense<T>)
	        ->Setup(setup_dense<T>)
	        ->Teardown(teardown<T>)
	        ->UseRealTime()
	        ->Threads(1);

	// Memory: one page in three (as the populated tables), 1 GiB dense, and
	// the worst case for a structure of 64-page blocks, one page in 64.
	size_t mem_n = g_long ? 1000000 : 262144;
	RegisterBenchmark((std::string("memory_") + (g_long ? "1M" : "256K") + "|" + peer).c_str(),
	                  [mem_n](benchmark::State &st) { memory<T>(st, mem_n, 3, false); })
	        ->Iterations(1);
	RegisterBenchmark(("memory_dense_1G|" + peer).c_str(),
	                  [](benchmark::State &st) { memory<T>(st, kDensePages, 1, true); })
	        ->Iterations(1);
	RegisterBenchmark(("memory_sparse_64|" + peer).c_str(),
	                  [](benchmark::State &st) { memory<T>(st, 16384, 64, false); })
	        ->Iterations(1);
}

// The linux-fork reference row: fork_storm (1 and 2 processes) and range_1G.
void register_linux_fork(TableReporter &rep)
{
	rep.notes.push_back({"linux-fork", "this kernel's fork(): page tables, faults, copies, "
	                                   "exit (a reference, not a peer)"});
	std::vector<size_t> fork_pages = {4096};
	if (g_long)
		fork_pages.push_back(65536);
	for (size_t pages : fork_pages) {
		auto b = benchmark::RegisterBenchmark(
		        ("fork_storm_" + std::to_string(pages) + "|linux-fork").c_str(),
		        [pages](benchmark::State &st) { linux_fork(st, pages, 25); });
		b->UseManualTime()->Threads(1)->Threads(2);
		if (g_long)
			b->Threads(4);
	}
	benchmark::RegisterBenchmark("range_1G_empty|linux-fork",
	                             [](benchmark::State &st) { linux_fork(st, 262144, 0); })
	        ->UseManualTime()
	        ->Unit(benchmark::kMillisecond);
}

} // namespace

int main(int argc, char **argv)
{
	std::vector<char *> args;
	for (int i = 0; i < argc; i++) {
		if (std::string(argv[i]) == "--long")
			g_long = true;
		else
			args.push_back(argv[i]);
	}
	int n = int(args.size());
	benchmark::Initialize(&n, args.data());
	if (benchmark::ReportUnrecognizedArguments(n, args.data()))
		return 1;

	TableReporter rep;
	register_peer<Cowtable>(rep);
	register_peer<SeedTree>(rep);
	register_peer<RwTree>(rep);
	register_peer<CdsSkipRcu>(rep);
	register_peer<CdsSkipHp>(rep);
	register_peer<TbbMap>(rep);
	register_peer<UrcuLfht>(rep);
	register_peer<JudySpin>(rep);
	register_peer<LinuxXarray>(rep);
	register_peer<FlatArray>(rep);
	register_range<Cowtable>(rep, false);
	register_range<CowtablePerPage>(rep, true);
	register_range<SeedTree>(rep, false);
	register_range<RwTree>(rep, false);
	register_range<CdsSkipRcu>(rep, false);
	register_range<CdsSkipHp>(rep, false);
	register_range<TbbMap>(rep, false);
	register_range<UrcuLfht>(rep, false);
	register_range<JudySpin>(rep, false);
	register_range<LinuxXarray>(rep, false);
	register_range<FlatArray>(rep, false);
	register_linux_fork(rep);
	benchmark::RunSpecifiedBenchmarks(&rep);
	benchmark::Shutdown();
	return 0;
}
