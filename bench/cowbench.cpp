// SPDX-License-Identifier: BSD-2-Clause
// cowbench: fork-heavy workloads on cowtable and its peers, side by side in
// one run (Google Benchmark).  Every workload runs unchanged on every adapter
// of peers.hpp; the table at the end gives each peer's cost per page (or per
// operation) and cowtable's speed relative to it.
//
//   cowbench [--long] [Google Benchmark flags, e.g. --benchmark_out=x.json]
//
// The default set is the headline (a few minutes); --long adds every size,
// mix and thread count.  Unless the flags say otherwise, every benchmark runs
// three times, interleaved with the others in random order, and the table
// gives the median with the spread of the three beside it: one slow moment
// of a shared machine then moves one repetition, not a whole row.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
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

// Google Benchmark calls a benchmark's Setup before every batch it times, up
// to ten times while it sizes the first repetition's batch.  A benchmark that
// leaves its table as it found it (lookups; a release and the mark that undoes
// it) keeps the table between those batches instead of building it again,
// which for a peer that inserts page by page takes seconds.  One table is kept
// at a time: any other benchmark's setup frees it.
struct Kept {
	const void *tag = nullptr; // which benchmark's table
	void (*drop)() = nullptr;
};
Kept g_kept;

void forget_kept()
{
	if (g_kept.drop)
		g_kept.drop();
	g_kept = Kept{};
}

// A tag per peer, size and workload: only the same benchmark reuses a table.
template <class T, size_t N, int Workload> char kept_tag;

// True if the benchmark's table is still there; otherwise frees the kept one
// and makes this benchmark's the kept table once the caller has built it.
template <class T, size_t N, int Workload> bool reuse_kept()
{
	if (g_kept.tag == &kept_tag<T, N, Workload> && Shared<T>::table)
		return true;
	forget_kept();
	g_kept = {&kept_tag<T, N, Workload>, [] { Shared<T>::table.reset(); }};
	return false;
}

template <class T> void build_pages(size_t capacity, size_t populate)
{
	if constexpr (std::is_same_v<T, FlatArray>)
		capacity = flat_capacity(populate) + 4 * 65536;
	Shared<T>::table.reset(new T(capacity));
	typename T::Ctx c(*Shared<T>::table);
	for (size_t i = 0; i < populate; i++)
		Shared<T>::table->mark(c, key_at<T>(i), i);
	Shared<T>::populated = populate;
}

template <class T> void setup_pages(size_t capacity, size_t populate)
{
	forget_kept();
	build_pages<T>(capacity, populate);
}

// setup_pages(n, n) for a benchmark that leaves the table as it found it.
template <class T, size_t N, int Workload> void setup_kept(const benchmark::State &)
{
	if (!reuse_kept<T, N, Workload>())
		build_pages<T>(N, N);
}

// Teardown of a benchmark with a kept table: nothing (the next setup decides).
void keep(const benchmark::State &)
{
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

// ------------------------------------------------------- real layouts
// Address-space layouts recorded from real processes on the benchmark's
// machine (bench/layouts/*.layout, written by bench/layouts/record.py): the
// present pages of every mapping, as runs at their real addresses.
struct Layout {
	std::string name;
	std::vector<std::pair<uintptr_t, size_t>> runs; // first page's address, pages
	size_t pages = 0;
};

#ifndef COWBENCH_LAYOUTS
#define COWBENCH_LAYOUTS "bench/layouts"
#endif

// One line per mapping: first page (hex), pages, permissions, name, then
// <gap>+<run> pairs of present pages.  An unreadable file is a failed run,
// not a silently missing row.
Layout load_layout(const std::filesystem::path &file)
{
	Layout l;
	l.name = file.stem().string();
	std::ifstream in(file);
	std::string line;
	while (std::getline(in, line)) {
		if (line.empty() || line[0] == '#')
			continue;
		std::istringstream f(line);
		std::string first, perms, name, run;
		size_t npages;
		if (!(f >> first >> npages >> perms >> name)) {
			fprintf(stderr, "cowbench: %s: bad line: %s\n", file.c_str(), line.c_str());
			exit(1);
		}
		uintptr_t va = uintptr_t(std::stoull(first, nullptr, 16)) * kPage;
		while (f >> run) {
			size_t plus = run.find('+'), gap = std::stoul(run.substr(0, plus)),
			       n = std::stoul(run.substr(plus + 1));
			va += gap * kPage;
			l.runs.push_back({va, n});
			l.pages += n;
			va += n * kPage;
		}
	}
	if (l.pages == 0) {
		fprintf(stderr, "cowbench: %s: no present page\n", file.c_str());
		exit(1);
	}
	return l;
}

const std::vector<Layout> &layouts()
{
	static std::vector<Layout> all = [] {
		std::vector<Layout> v;
		for (auto &e : std::filesystem::directory_iterator(COWBENCH_LAYOUTS))
			if (e.path().extension() == ".layout")
				v.push_back(load_layout(e.path()));
		std::sort(v.begin(), v.end(),
		          [](const Layout &a, const Layout &b) { return a.pages < b.pages; });
		return v;
	}();
	return all;
}

// A fork of a recorded layout, as fork_storm forks its block: mark every
// present page (one range operation per run), the child writes a quarter
// (lookup + release: SHARED), the child exits (releases the rest by runs),
// the parent writes every page (release by runs: LAST).  Thread i forks its
// own copy of the layout, i * 2^47 above the recorded addresses.
template <class T> void fork_layout(benchmark::State &st, const Layout &l)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	uintptr_t off = uintptr_t(st.thread_index()) << 47;
	std::vector<cowtable_frame_t> frames(l.pages);
	std::vector<char> wrote(l.pages);
	uint64_t rng = 0x9e3779b97f4a7c15ull * (st.thread_index() + 1), bad = 0;
	struct Count {
		size_t lasts = 0;
	} lasts;
	auto on_last = [](uintptr_t, cowtable_frame_t, void *arg) {
		static_cast<Count *>(arg)->lasts++;
	};

	size_t k = 0;
	for (auto &r : l.runs)
		for (size_t i = 0; i < r.second; i++)
			frames[k++] = (r.first + off) / kPage + i;
	for (auto _ : st) {
		k = 0;
		for (auto &r : l.runs) {
			if (t.mark_range(c, r.first + off, r.second, frames.data() + k) != 0)
				bad++;
			k += r.second;
		}
		k = 0;
		for (auto &r : l.runs)
			for (size_t i = 0; i < r.second; i++, k++) {
				wrote[k] = (next_rand(rng) & 3) == 0;
				if (!wrote[k])
					continue;
				uintptr_t va = r.first + off + i * kPage;
				cowtable_frame_t f;
				uint32_t refs;
				if (!t.lookup(c, va, &f, &refs) ||
				    t.release(c, va, &f) != COWTABLE_SHARED)
					bad++;
			}
		k = 0;
		for (auto &r : l.runs) {
			uintptr_t base = r.first + off;
			for (size_t i = 0; i < r.second;) {
				size_t j = i;
				while (j < r.second && !wrote[k + j])
					j++;
				if (j > i && t.release_range(c, base + i * kPage, base + j * kPage,
				                             nullptr, nullptr) != j - i)
					bad++;
				i = j + 1;
			}
			k += r.second;
		}
		lasts.lasts = 0;
		for (auto &r : l.runs)
			t.release_range(c, r.first + off, r.first + off + r.second * kPage,
			                +on_last, &lasts);
		if (lasts.lasts != l.pages)
			bad++;
	}
	if (bad)
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations() * l.pages));
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
			ssize_t r =
			        read(from_, reinterpret_cast<char *>(&ns) + got, sizeof(ns) - got);
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

// ------------------------------------------------------- dense regions
// The COW fault after a big fork: a region of `Pages` pages (256 MiB to
// 64 GiB) marked by range operations, one per GiB as a fork's copy walks it,
// then single-page operations on random pages of it.  The series of sizes
// shows where each structure falls off: out of the caches, and for cowtable
// out of its 4096 shortcuts, which cover 1 GiB.
constexpr size_t kDensePages = 262144; // 1 GiB

enum DenseWork { DENSE_LOOKUP = 100, DENSE_FAULT }; // apart from Micro's values

template <class T> void build_dense(size_t pages)
{
	Shared<T>::table.reset(new T(pages));
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	std::vector<cowtable_frame_t> frames(std::min(pages, kDensePages));
	bool bad = false;
	for (size_t s = 0; s < pages; s += frames.size()) {
		size_t n = std::min(frames.size(), pages - s);
		for (size_t i = 0; i < n; i++)
			frames[i] = s + i;
		bad |= t.mark_range(c, uintptr_t(s) * kPage, n, frames.data()) != 0;
	}
	Shared<T>::populated = bad ? 0 : pages; // 0: the benchmark reports the adapter
}

// Both workloads leave the region as they found it (every count back at 2).
template <class T, size_t Pages, int Work> void setup_dense(const benchmark::State &)
{
	if (!reuse_kept<T, Pages, Work>())
		build_dense<T>(Pages);
}

// The lookup of a COW fault: is the page shared, and with which frame.
template <class T, size_t Pages> void is_cow_dense(benchmark::State &st)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	uint64_t rng = 0x2545f4914f6cdd1dull * (st.thread_index() + 3), bad = 0;
	cowtable_frame_t f;
	uint32_t refs;

	for (auto _ : st) {
		size_t i = next_rand(rng) % Pages;
		if (!t.lookup(c, uintptr_t(i) * kPage, &f, &refs) || f != i || refs != 2)
			bad++;
	}
	if (bad || Shared<T>::populated != Pages)
		st.SkipWithError("unexpected results: the adapter is wrong");
	st.SetItemsProcessed(int64_t(st.iterations()));
}

// The COW fault of a page that another process still shares: the writer
// drops its share (SHARED), then the page is marked back, so that the next
// fault on it finds it shared again.  ns per pair.
template <class T, size_t Pages> void cow_fault_dense(benchmark::State &st)
{
	T &t = *Shared<T>::table;
	typename T::Ctx c(t);
	uint64_t rng = 0x9e3779b97f4a7c15ull * (st.thread_index() + 5), bad = 0;
	cowtable_frame_t f;

	for (auto _ : st) {
		size_t i = next_rand(rng) % Pages;
		uintptr_t va = uintptr_t(i) * kPage;
		if (t.release(c, va, &f) != COWTABLE_SHARED || f != i)
			bad++;
		if (t.mark(c, va, i) != 2)
			bad++;
	}
	if (bad || Shared<T>::populated != Pages)
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
	// No other table alive: libcds's collectors are one per process.
	forget_kept();
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

// Bytes per present page of a recorded layout, marked by runs (range
// operations where the structure has them).
template <class T> void memory_layout(benchmark::State &st, const Layout &l)
{
	forget_kept();
	double per_page = 0;
	std::vector<cowtable_frame_t> frames(l.pages);
	size_t k = 0;
	for (auto &r : l.runs)
		for (size_t i = 0; i < r.second; i++)
			frames[k++] = r.first / kPage + i;
	for (auto _ : st) {
		size_t before = held_bytes();
		{
			T t(l.pages);
			typename T::Ctx c(t);
			bool bad = false;
			k = 0;
			for (auto &r : l.runs) {
				bad |= t.mark_range(c, r.first, r.second, frames.data() + k) != 0;
				k += r.second;
			}
			per_page = double(held_bytes() - before) / double(l.pages);
			if (bad)
				st.SkipWithError("unexpected results: the adapter is wrong");
		}
	}
	st.counters["bytes_per_page"] = per_page;
}

// What a table and one context take before any mark (the table object itself
// included, allocated like the rest): what every process pays, tracked pages
// or not.  The capacity hint is 1 GiB's pages, as for memory_dense_1G; only
// flat-array and urcu-lfht use it.  Counted in a process of its own, cowbench
// started again with glibc's per-thread malloc cache (tcache) off: mallinfo2
// counts the chunks in that cache as in use, so a small allocation served from
// it would not show, and one that refills it would count its neighbours.  A
// first table is built and freed before the one counted, so that a library's
// one-time set-up is left out.  What a library keeps in thread-local storage
// (liburcu's reader registration, libcds's thread data) is not an allocation
// and is not counted.
template <class T> bool empty_table_bytes(const std::string &peer)
{
	if (peer != T::name)
		return false;
	{
		T first(kDensePages);
		typename T::Ctx c(first);
	}
	size_t before = held_bytes();
	auto t = std::make_unique<T>(kDensePages);
	auto c = std::make_unique<typename T::Ctx>(*t);
	printf("%.0f\n", double(held_bytes()) - double(before));
	return true;
}

// Runs `cowbench --empty-table=<peer>` with tcache off; its bytes, or -1.
double spawn_empty_table(const char *peer)
{
	// This very binary, even if a rebuild has replaced the file since.
	char exe[] = "/proc/self/exe";
	std::string arg = std::string("--empty-table=") + peer;
	char *argv[] = {exe, arg.data(), nullptr};
	std::vector<std::string> env;
	std::string tunables = "GLIBC_TUNABLES=glibc.malloc.tcache_count=0";
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "GLIBC_TUNABLES=", 15) == 0)
			tunables = std::string(*e) + ":glibc.malloc.tcache_count=0";
		else
			env.push_back(*e);
	}
	env.push_back(tunables);
	std::vector<char *> envp;
	for (auto &e : env)
		envp.push_back(e.data());
	envp.push_back(nullptr);
	int out[2];
	if (pipe2(out, O_CLOEXEC) != 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	pid_t pid;
	int r = posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	std::string text;
	char buf[256];
	for (ssize_t got; r == 0 && (got = read(out[0], buf, sizeof(buf))) > 0;)
		text.append(buf, size_t(got));
	close(out[0]);
	int status = 0;
	if (r != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0 || text.empty())
		return -1;
	return atof(text.c_str());
}

template <class T> void memory_empty(benchmark::State &st)
{
	double bytes = 0;
	for (auto _ : st)
		bytes = spawn_empty_table(T::name);
	if (bytes < 0)
		st.SkipWithError("could not count: cowbench --empty-table failed");
	st.counters["bytes"] = bytes;
}

// -------------------------------------------------------------- reporting
// Rows and columns in registration order, whatever order the interleaved
// repetitions finish in.
std::vector<std::string> g_workloads, g_peers;

void add_once(std::vector<std::string> &v, const std::string &s)
{
	if (std::find(v.begin(), v.end(), s) == v.end())
		v.push_back(s);
}

struct Cell {
	std::vector<double> reps; // one value per repetition: ns, or bytes
	std::string error;
	std::string skipped; // why the peer does not run this workload here
};

// The median of the repetitions and their range.
struct Stat {
	double median = 0, lo = 0, hi = 0;
	size_t n = 0;
};

Stat stat(std::vector<double> v)
{
	Stat s;
	s.n = v.size();
	if (v.empty())
		return s;
	std::sort(v.begin(), v.end());
	size_t h = v.size() / 2;
	s.median = v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
	s.lo = v.front();
	s.hi = v.back();
	return s;
}

// printf("%*s") pads bytes; "±" is two of them and one column.
void print_cell(FILE *o, const std::string &text, int width)
{
	int cols = 0;
	for (unsigned char ch : text)
		cols += (ch & 0xc0) != 0x80;
	fprintf(o, "%*s%s", std::max(0, width - cols), "", text.c_str());
}

class TableReporter : public benchmark::ConsoleReporter
{
      public:
	// Colours only on a terminal: results/bench.txt stays plain text.
	// Counters inline (not tabular), or every change of counters between
	// interleaved benchmarks would print a new header.
	TableReporter() : ConsoleReporter(isatty(1) ? OO_Color : OO_None)
	{
	}
	std::map<std::string, std::map<std::string, Cell>> rows; // workload -> peer -> cell
	std::vector<std::pair<std::string, std::string>> notes;

	void skip(const std::string &work, const std::string &peer, const std::string &why)
	{
		rows[work][peer].skipped = why;
	}

	// The console shows one line per benchmark, the median of its
	// repetitions (every repetition goes to --benchmark_out); the table
	// is built from the repetitions themselves.
	void ReportRuns(const std::vector<Run> &runs) override
	{
		std::vector<Run> shown;
		for (const Run &r : runs) {
			bool agg = r.run_type == Run::RT_Aggregate;
			if (agg ? r.aggregate_name == "median"
			        : r.repetitions <= 1 || r.error_occurred)
				shown.push_back(r);
			if (!agg)
				record(r);
		}
		if (!shown.empty())
			ConsoleReporter::ReportRuns(shown);
	}

	void record(const Run &r)
	{
		std::string name = r.benchmark_name();
		size_t bar = name.find('|');
		if (bar == std::string::npos)
			return;
		std::string work = name.substr(0, bar), rest = name.substr(bar + 1);
		std::string peer = rest.substr(0, rest.find('/'));
		size_t th = rest.find("threads:");
		if (th != std::string::npos)
			work += " x" + rest.substr(th + 8, rest.find('/', th) - th - 8);
		add_once(g_peers, peer);
		Cell &cell = rows[work][peer];
		if (r.error_occurred) {
			cell.error = r.error_message;
			return;
		}
		for (const char *bytes : {"bytes_per_page", "bytes"}) {
			auto b = r.counters.find(bytes);
			if (b != r.counters.end()) {
				cell.reps.push_back(b->second.value);
				return;
			}
		}
		// Aggregate throughput over all threads: wall-clock ns per page/op.
		auto it = r.counters.find("items_per_second");
		if (it != r.counters.end() && it->second.value > 0)
			cell.reps.push_back(1e9 / it->second.value);
		// Oversubscribed rows: latency of one operation, rows of their own.
		for (const char *p : {"p50", "p99", "p99.9"}) {
			auto l = r.counters.find(std::string(p) + "_ns");
			if (l != r.counters.end())
				rows[work + " " + p][peer].reps.push_back(l->second.value);
		}
	}

	// Rows by workload as registered, then threads, then percentile.
	std::vector<std::string> order() const
	{
		struct Key {
			size_t work;
			long threads;
			int pct;
			std::string name;
		};
		std::vector<Key> keys;
		for (auto &row : rows) {
			const std::string &n = row.first;
			std::string base = n.substr(0, n.find(' '));
			auto w = std::find(g_workloads.begin(), g_workloads.end(), base);
			size_t x = n.find(" x");
			long threads = x == std::string::npos ? 0 : std::atol(n.c_str() + x + 2);
			int pct = n.find(" p50") != std::string::npos     ? 1
			          : n.find(" p99.9") != std::string::npos ? 3
			          : n.find(" p99") != std::string::npos   ? 2
			                                                  : 0;
			keys.push_back({size_t(w - g_workloads.begin()), threads, pct, n});
		}
		std::sort(keys.begin(), keys.end(), [](const Key &a, const Key &b) {
			return std::tie(a.work, a.threads, a.pct, a.name) <
			       std::tie(b.work, b.threads, b.pct, b.name);
		});
		std::vector<std::string> out;
		for (auto &k : keys)
			out.push_back(k.name);
		return out;
	}

	void Finalize() override
	{
		ConsoleReporter::Finalize();
		FILE *o = stdout;
		const int width = 20;
		size_t reps = 0;
		for (auto &row : rows)
			for (auto &c : row.second)
				reps = std::max(reps, c.second.reps.size());
		// Rows with a figure (a filter may leave some empty).
		std::vector<std::string> order;
		for (auto &w : this->order()) {
			bool any = false;
			for (auto &c : rows[w])
				any |= !c.second.reps.empty() || !c.second.error.empty();
			if (any)
				order.push_back(w);
		}

		if (reps > 1)
			fprintf(o,
			        "\nEach figure is the median of %zu repetitions, run interleaved "
			        "with "
			        "the others in random order; beside it, ±: half the range of the "
			        "repetitions, relative to the median.",
			        reps);
		fprintf(o, "\nns per page (fork/zygote), per operation, or per release+mark pair "
		           "(cow_fault); memory in bytes per tracked page (memory_empty: bytes); "
		           "p50/p99/p99.9: ns of one operation (x8 rows; in the fork storm, a COW "
		           "fault). Lower is better.\n");
		fprintf(o, "%-28s", "workload");
		for (auto &p : g_peers)
			fprintf(o, " %*s", width, p.c_str());
		fprintf(o, "\n");
		for (auto &w : order) {
			fprintf(o, "%-28s", w.c_str());
			for (auto &p : g_peers) {
				auto c = rows[w].find(p);
				std::string text = "n/a";
				if (c != rows[w].end() && !c->second.error.empty())
					text = "FAILED";
				else if (c != rows[w].end() && !c->second.skipped.empty())
					text = "skipped";
				else if (c != rows[w].end() && !c->second.reps.empty()) {
					Stat s = stat(c->second.reps);
					char buf[64];
					int n = snprintf(buf, sizeof(buf), "%.2f", s.median);
					double half =
					        s.median > 0 ? 50 * (s.hi - s.lo) / s.median : 0;
					if (s.n > 1)
						snprintf(buf + n, sizeof(buf) - size_t(n),
						         half < 10 ? " ±%.1f%%" : " ±%.0f%%", half);
					text = buf;
				}
				fputc(' ', o);
				print_cell(o, text, width);
			}
			fprintf(o, "\n");
		}

		fprintf(o, "\ncowtable's speed relative to each peer (peer cost / cowtable cost, "
		           "of the medians: above 1 cowtable is faster, below 1 it is slower).\n");
		fprintf(o, "%-28s", "workload");
		for (auto &p : g_peers)
			if (p != "cowtable")
				fprintf(o, " %*s", width, p.c_str());
		fprintf(o, "\n");
		for (auto &w : order) {
			auto &row = rows[w];
			auto value = [&](const std::string &p) {
				auto c = row.find(p);
				if (c == row.end() || !c->second.error.empty() ||
				    c->second.reps.empty())
					return -1.0;
				return stat(c->second.reps).median;
			};
			double ours = value("cowtable");
			if (ours <= 0)
				continue;
			fprintf(o, "%-28s", w.c_str());
			for (auto &p : g_peers) {
				if (p == "cowtable")
					continue;
				double theirs = value(p);
				if (theirs >= 0)
					fprintf(o, theirs / ours < 0.1 ? " %19.4fx" : " %19.2fx",
					        theirs / ours);
				else
					fprintf(o, " %*s", width, "n/a");
			}
			fprintf(o, "\n");
		}
		for (auto &p : notes)
			fprintf(o, "  %-22s %s\n", p.first.c_str(), p.second.c_str());

		// Skipped figures, one line per peer and reason.
		std::map<std::pair<std::string, std::string>, std::string> why;
		for (auto &w : order)
			for (auto &c : rows[w])
				if (!c.second.skipped.empty()) {
					std::string &ws = why[{c.first, c.second.skipped}];
					ws += (ws.empty() ? "" : ", ") + w;
				}
		if (!why.empty())
			fprintf(o, "\nskipped:\n");
		for (auto &y : why)
			fprintf(o, "  %-22s %s: %s\n", y.first.first.c_str(), y.second.c_str(),
			        y.first.second.c_str());

		// The lowest and highest repetition, for the plots' bars (a
		// skewed spread does not fit in one ± figure).
		if (reps <= 1) {
			fflush(o);
			return;
		}
		fprintf(o, "\nrange of the repetitions (lowest..highest), as above:\n");
		fprintf(o, "%-28s", "workload");
		for (auto &p : g_peers)
			fprintf(o, " %*s", width + 4, p.c_str());
		fprintf(o, "\n");
		for (auto &w : order) {
			fprintf(o, "%-28s", w.c_str());
			for (auto &p : g_peers) {
				auto c = rows[w].find(p);
				char buf[64] = "n/a";
				if (c != rows[w].end() && c->second.error.empty() &&
				    !c->second.reps.empty()) {
					Stat s = stat(c->second.reps);
					snprintf(buf, sizeof(buf), "%.6g..%.6g", s.lo, s.hi);
				}
				fprintf(o, " %*s", width + 4, buf);
			}
			fprintf(o, "\n");
		}
		fflush(o);
	}
};

// ----------------------------------------------------------- registration
template <class T> void register_range(TableReporter &rep, bool note)
{
	std::string peer = T::name;
	add_once(g_peers, peer);
	if (note)
		rep.notes.push_back({peer, T::note});
	add_once(g_workloads, "range_1G_empty");
	add_once(g_workloads, "range_1G_populated");
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

// A populated table of N pages for a micro workload, kept between batches
// (every micro workload leaves the table as it found it).
template <class T, size_t N> void micro_setup(benchmark::internal::Benchmark *b, Micro m)
{
	switch (m) {
	case LOOKUP_HIT:
		b->Setup(setup_kept<T, N, LOOKUP_HIT>);
		break;
	case LOOKUP_MISS:
		b->Setup(setup_kept<T, N, LOOKUP_MISS>);
		break;
	case SHARE_RELEASE:
		b->Setup(setup_kept<T, N, SHARE_RELEASE>);
		break;
	case NEW_LAST:
		b->Setup(setup_kept<T, N, NEW_LAST>);
		break;
	}
	b->Teardown(keep);
}

// Peers that insert page by page at a microsecond or so: a 16 GiB region
// (4 Mi pages) takes them seconds to fill, once per repetition, so their
// 16 GiB rows run with --long only.  Measured: docs/benchmarks.md.
template <class T>
constexpr bool slow_fill =
        std::is_same_v<T, CdsSkipRcu> || std::is_same_v<T, CdsSkipHp> ||
        std::is_same_v<T, TbbMap> || std::is_same_v<T, UrcuLfht> || std::is_same_v<T, RwTree>;

// Bytes the allocator holds per page of a dense region of this peer's,
// measured on 256 MiB, to tell whether the 64 GiB region fits in memory.
template <class T> double dense_bytes_per_page()
{
	const size_t pages = 65536;
	forget_kept();
	size_t before = held_bytes();
	build_dense<T>(pages);
	double per_page = (double(held_bytes()) - double(before)) / double(pages);
	Shared<T>::table.reset();
	return per_page;
}

double mem_available()
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	double kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lf kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib * 1024;
}

// One point of the region-size series, is_cow_dense_<size>, or the reason it
// is skipped here.
template <class T, size_t Pages> void register_dense(TableReporter &rep, const char *size)
{
	std::string peer = T::name, w = std::string("is_cow_dense_") + size;
	add_once(g_workloads, w);
	if (Pages >= (size_t(1) << 22) && slow_fill<T> && !g_long) {
		rep.skip(w + " x1", peer,
		         "fills 16 GiB page by page, seconds per repetition: --long only");
		return;
	}
	if (Pages >= (size_t(1) << 24)) {
		double need = dense_bytes_per_page<T>() * double(Pages), have = mem_available();
		if (need > have / 2) {
			char why[160];
			snprintf(why, sizeof(why),
			         "needs about %.1f GiB, more than half of the %.1f GiB available",
			         need / double(1 << 30), have / double(1 << 30));
			rep.skip(w + " x1", peer, why);
			return;
		}
	}
	benchmark::RegisterBenchmark((w + "|" + peer).c_str(), is_cow_dense<T, Pages>)
	        ->Setup(setup_dense<T, Pages, DENSE_LOOKUP>)
	        ->Teardown(keep)
	        ->UseRealTime()
	        ->Threads(1);
}

template <class T> void register_peer(TableReporter &rep)
{
	using benchmark::RegisterBenchmark;
	std::string peer = T::name;
	add_once(g_peers, peer);
	auto reg = [&](const std::string &work, auto fn) {
		add_once(g_workloads, work);
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
			reg(w, [pages](benchmark::State &st) {
				fork_storm<T>(st, pages, true);
			})->Setup([](const benchmark::State &) {
				  setup_pages<T>(0, 0);
			  })->Threads(8);
		auto z = reg("zygote_" + std::to_string(pages),
		             [pages](benchmark::State &st) { zygote<T>(st, pages); });
		z->Setup([](const benchmark::State &) { setup_pages<T>(0, 0); })->Threads(2);
	}

	// Forks of recorded real layouts, 1 and 2 threads, briefly (one
	// repetition of the largest is a few hundred thousand pages).  A flat
	// array cannot index a 47-bit address space.
	for (const Layout &l : layouts()) {
		std::string w = "fork_real_layout_" + l.name;
		if constexpr (std::is_same_v<T, FlatArray>) {
			add_once(g_workloads, w);
			for (const char *x : {" x1", " x2"})
				rep.skip(w + x, peer,
				         "real addresses span 2^47 bytes: no flat array");
		} else {
			reg(w, [&l](benchmark::State &st) { fork_layout<T>(st, l); })
			        ->Setup([](const benchmark::State &) { setup_pages<T>(0, 0); })
			        ->MinTime(0.05)
			        ->Threads(1)
			        ->Threads(2);
		}
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
				micro_setup<T, 1000>(b, mm);
			else if (n == 65536)
				micro_setup<T, 65536>(b, mm);
			else if (n == 1000000)
				micro_setup<T, 1000000>(b, mm);
			else
				micro_setup<T, 16000000>(b, mm);
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
			reg(std::string(mx.name) + "_64K", [l, z](benchmark::State &st) {
				mixed<T>(st, l, z, true);
			})->Setup([](const benchmark::State &) {
				  setup_pages<T>(65536, 65536);
			  })->Threads(8);
	}

	// Dense regions of 256 MiB to 16 GiB (64 GiB with --long).
	register_dense<T, (size_t(1) << 16)>(rep, "256M");
	register_dense<T, (size_t(1) << 18)>(rep, "1G");
	register_dense<T, (size_t(1) << 20)>(rep, "4G");
	register_dense<T, (size_t(1) << 22)>(rep, "16G");
	if (g_long)
		register_dense<T, (size_t(1) << 24)>(rep, "64G");
	add_once(g_workloads, "cow_fault_dense_16G");
	if (slow_fill<T> && !g_long)
		rep.skip("cow_fault_dense_16G x1", peer,
		         "fills 16 GiB page by page, seconds per repetition: --long only");
	else
		RegisterBenchmark(("cow_fault_dense_16G|" + peer).c_str(),
		                  cow_fault_dense<T, (size_t(1) << 22)>)
		        ->Setup(setup_dense<T, (size_t(1) << 22), DENSE_FAULT>)
		        ->Teardown(keep)
		        ->UseRealTime()
		        ->Threads(1);

	// Memory: one page in three (as the populated tables), 1 GiB dense, and
	// the worst case for a structure of 64-page blocks, one page in 64; and
	// the fixed cost of a table with nothing in it.
	size_t mem_n = g_long ? 1000000 : 262144;
	std::string mem = std::string("memory_") + (g_long ? "1M" : "256K");
	for (const char *w : {mem.c_str(), "memory_dense_1G", "memory_sparse_64", "memory_empty"})
		add_once(g_workloads, w);
	RegisterBenchmark((mem + "|" + peer).c_str(), [mem_n](benchmark::State &st) {
		memory<T>(st, mem_n, 3, false);
	})->Iterations(1);
	RegisterBenchmark(("memory_dense_1G|" + peer).c_str(), [](benchmark::State &st) {
		memory<T>(st, kDensePages, 1, true);
	})->Iterations(1);
	RegisterBenchmark(("memory_sparse_64|" + peer).c_str(), [](benchmark::State &st) {
		memory<T>(st, 16384, 64, false);
	})->Iterations(1);
	RegisterBenchmark(("memory_empty|" + peer).c_str(), memory_empty<T>)->Iterations(1);
	for (const Layout &l : layouts()) {
		std::string w = "memory_real_layout_" + l.name;
		add_once(g_workloads, w);
		if constexpr (std::is_same_v<T, FlatArray>)
			rep.skip(w, peer, "real addresses span 2^47 bytes: no flat array");
		else
			RegisterBenchmark((w + "|" + peer).c_str(), [&l](benchmark::State &st) {
				memory_layout<T>(st, l);
			})->Iterations(1);
	}
}

// The linux-fork reference row: fork_storm (1 and 2 processes) and range_1G.
void register_linux_fork(TableReporter &rep)
{
	add_once(g_peers, "linux-fork");
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

// Flags cowbench sets unless the command line does: three repetitions,
// interleaved, each shorter than Google Benchmark's default 0.5 s, so that
// the default set stays within a few minutes.
const char *const kDefaultFlags[][2] = {
        {"--benchmark_repetitions", "--benchmark_repetitions=3"},
        {"--benchmark_enable_random_interleaving", "--benchmark_enable_random_interleaving=true"},
        {"--benchmark_min_time", "--benchmark_min_time=0.2"},
};

// The child of memory_empty: the bytes of an empty table of one peer.
int empty_table_main(const std::string &peer)
{
	if (empty_table_bytes<Cowtable>(peer) || empty_table_bytes<SeedTree>(peer) ||
	    empty_table_bytes<RwTree>(peer) || empty_table_bytes<CdsSkipRcu>(peer) ||
	    empty_table_bytes<CdsSkipHp>(peer) || empty_table_bytes<TbbMap>(peer) ||
	    empty_table_bytes<UrcuLfht>(peer) || empty_table_bytes<JudySpin>(peer) ||
	    empty_table_bytes<LinuxXarray>(peer) || empty_table_bytes<FlatArray>(peer))
		return 0;
	return 1;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc == 2 && strncmp(argv[1], "--empty-table=", 14) == 0)
		return empty_table_main(argv[1] + 14);
	std::vector<char *> args;
	std::vector<std::string> given;
	for (int i = 0; i < argc; i++) {
		if (std::string(argv[i]) == "--long")
			g_long = true;
		else
			args.push_back(argv[i]);
		given.push_back(argv[i]);
	}
	for (auto &d : kDefaultFlags) {
		bool set = false;
		for (auto &g : given)
			set |= g.compare(0, strlen(d[0]), d[0]) == 0;
		if (!set)
			args.insert(args.begin() + 1, const_cast<char *>(d[1]));
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
	forget_kept(); // before the libraries' own teardown at exit
	benchmark::Shutdown();
	return 0;
}
