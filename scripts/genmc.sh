#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Model checking of cowtable's core with GenMC (docs/verification.md): every
# scenario of verify/genmc/ under RC11 and IMM must complete its exploration
# with no error, and every broken variant (one order weakened, one fence
# dropped) must be rejected.  Prints a table of executions explored, seconds
# and verdicts; exits non-zero on any unexpected result.  Exits 0, saying
# so, when GenMC is not installed.
#
#   GENMC=path          the genmc binary (default /opt/genmc-0.10.3/bin/genmc)
#   GENMC_MODELS        models to run (default "rc11 imm")
#   GENMC_ONLY          run only the scenarios named (space separated)
#   GENMC_EXTENDED=1    also run the long scenarios (minutes each)
#   GENMC_MATRIX=1      instead, every broken variant (GENMC_KNOBS: their
#                       names without CT_BROKEN_) against every scenario,
#                       reporting verdicts without expectations
#   GENMC_TIME_LIMIT    seconds per run (default 240; 1800 with GENMC_EXTENDED)
#   GENMC_KEEP=dir      keep every run's full output in dir
set -eu
cd "$(dirname "$0")/.."

genmc=${GENMC:-/opt/genmc-0.10.3/bin/genmc}
if ! "$genmc" --version >/dev/null 2>&1; then
	echo "genmc: skipped: GenMC not installed (build it with ../shared/tools/genmc/build.sh)"
	exit 77
fi
models=${GENMC_MODELS:-"rc11 imm"}
only=${GENMC_ONLY:-}
extended=${GENMC_EXTENDED:-0}
limit=${GENMC_TIME_LIMIT:-240}
keep=${GENMC_KEEP:-}

# Every run: the library's sources in one translation unit with the scenario
# (verify/genmc/harness.h), the __atomic mapping of src/ct_atomic.h, the
# ck_epoch model placed first on the include path, the harness's hooks,
# leaves of 4 pages, towers of at most 3 levels, index nodes of two entries
# (blocks 0 and 1 share a bottom node, 2 and 3 the next), no leaf cache (so
# that a freed leaf is freed).
cflags="-DCOWTABLE_ATOMIC_BUILTINS -DCT_VERIFY_HOOKS -DCT_CACHE_LEAVES=0 -DCT_LEAF_SHIFT=2
-DCT_MAX_LEVEL=3 -DCT_NODE_SHIFT=1 -Iverify/genmc -Iinclude -Isrc -Wno-unused-function"
options="--disable-estimation --disable-warn-on-unfreed-memory"

# scenario  defines (- for none)  expected: pass | error, or per model
# (rc11=error,imm=pass; skip: not run under that model by default)
runs="
mark_last         -                               pass
mark_last         CT_BROKEN_NEXT_LOAD_RELAXED     error
release_release   -                               pass
release_release   CT_BROKEN_SLOT_CAS_NO_ACQUIRE   error
mark_kill_lookup  -                               pass
mark_kill_lookup  CT_BROKEN_SLOT_LOAD_RELAXED     rc11=error,imm=skip
towers            -                               pass
towers            CT_BROKEN_LINK_NO_RELEASE       error
link_kill         -                               pass
link_kill         CT_BROKEN_STATE_NO_ACQUIRE      error
grace             -                               pass
grace             CT_BROKEN_EARLY_FREE            error
grace             CT_BROKEN_EPOCH_END_RELAXED     rc11=error,imm=pass
grace             CT_BROKEN_EPOCH_BEGIN_NO_FENCE  error
range_edges       -                               pass
range_edges       CT_BROKEN_LINK_NO_RELEASE       error
grace             CT_BROKEN_INDEX_KEPT            error
index_publish     -                               pass
index_publish     CT_BROKEN_INDEX_RELAXED         error
index_nodes       -                               pass
index_nodes       CT_BROKEN_NODE_UNLINK_LIVE      error
index_nodes       CT_BROKEN_SET_NO_HOLD           error
index_nodes       CT_BROKEN_INDEX_KEPT            error
index_stale       CT_BROKEN_INDEX_ZERO_TRUSTED    rc11=error,imm=skip
grace_poller      WRITER_POLLS=3                  rc11=pass,imm=skip
grace_poller      CT_BROKEN_TWO_EPOCHS            rc11=error,imm=skip
barrier           -                               pass
barrier           CT_BROKEN_BARRIER_TWO_ADVANCES  error
barrier           CT_BROKEN_EARLY_FREE               error
walk_reclaim      WALKS=1                         pass
walk_reclaim      WALKS=1,CT_BROKEN_EARLY_FREE    error
walk_reclaim      WALKS=1,CT_BROKEN_EPOCH_END_RELAXED error
walk_reclaim      WALKS=2                         pass
ctx_reuse         -                               pass
ctx_reuse         CT_BROKEN_CTX_PUT_RELAXED       error
cache_reuse       READER=1                        pass
cache_reuse       READER=1,CT_BROKEN_BARRIER_TWO_ADVANCES error
cache_reuse       READER=2                        pass
cache_reuse       READER=2,CT_BROKEN_BARRIER_TWO_ADVANCES error
cache_reuse       READER=1,CT_BROKEN_INDEX_KEPT error
"
# The long runs, and the orders the design names that no scenario needs
# (docs/verification.md, "Findings").
if [ "$extended" = 1 ]; then
	runs="$runs
mark_last         H0=2                                               pass
towers            HC=2                                               pass
grace_poller      WRITER_POLLS=3                                     imm=pass,rc11=skip
grace_poller      WRITER_POLLS=3,GM_REACH_FREE                       error
release_release   CT_BROKEN_SLOT_CAS_NO_RELEASE                      pass
release_release   CT_BROKEN_SLOT_CAS_NO_RELEASE,CT_BROKEN_EPOCH_BEGIN_NO_FENCE error
link_kill         CT_BROKEN_FREEZE_RELAXED                           pass
mark_kill_lookup  CT_BROKEN_DROP_NO_ACQUIRE                          pass
grace             CT_BROKEN_SEAL_NO_FENCE                            pass
walk_reclaim      WALKS=2,CT_BROKEN_EARLY_FREE                       error
walk_reclaim      -                                                  pass
walk_reclaim      GM_REACH_FREE                                      error
cache_reuse       -                                                  pass
index_stale       -                                                  pass
index_stale       CT_BROKEN_INDEX_ZERO_TRUSTED                       imm=error,rc11=skip
mark_kill_lookup  CT_BROKEN_SLOT_LOAD_RELAXED                        imm=error,rc11=skip
grace_poller      CT_BROKEN_TWO_EPOCHS                               imm=error,rc11=skip
"
	limit=${GENMC_TIME_LIMIT:-1800}
fi

if [ "${GENMC_MATRIX:-0}" = 1 ]; then
	runs=""
	knobs=${GENMC_KNOBS:-"NEXT_LOAD_RELAXED LINK_NO_RELEASE FREEZE_RELAXED STATE_NO_ACQUIRE
	DROP_NO_ACQUIRE SLOT_CAS_NO_RELEASE SLOT_CAS_NO_ACQUIRE SLOT_LOAD_RELAXED SEAL_NO_FENCE
	EARLY_FREE EPOCH_END_RELAXED EPOCH_BEGIN_NO_FENCE INDEX_KEPT INDEX_RELAXED"}
	for knob in $knobs; do
		for scenario in mark_last release_release mark_kill_lookup towers link_kill \
			grace range_edges index_publish index_nodes; do
			runs="$runs
$scenario CT_BROKEN_$knob any"
		done
	done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -z "$keep" ] || mkdir -p "$keep"

start_all=$(date +%s)
printf '%-17s %-34s %-5s %10s %8s  %s\n' scenario variant model executions seconds verdict
echo "$runs" | while read -r scenario defines expect; do
	[ -n "$scenario" ] || continue
	if [ -n "$only" ]; then
		case " $only " in *" $scenario "*) ;; *) continue ;; esac
	fi
	dflags=""
	if [ "$defines" != - ]; then
		for d in $(echo "$defines" | tr , ' '); do
			dflags="$dflags -D$d"
		done
	fi
	for model in $models; do
		want=$expect
		case "$expect" in
		*=*) want=$(echo "$expect" | tr , '\n' | sed -n "s/^$model=//p") ;;
		esac
		[ "$want" != skip ] || continue
		out="$tmp/out"
		t0=$(date +%s.%N)
		set +e
		# shellcheck disable=SC2086
		timeout "$limit" "$genmc" "-$model" $options -- $cflags $dflags \
			"verify/genmc/$scenario.c" >"$out" 2>&1
		rc=$?
		set -e
		t1=$(date +%s.%N)
		secs=$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')
		execs=$(sed -n 's/^Number of complete executions explored: //p' "$out")
		[ -n "$execs" ] || execs=-
		error=$(sed -n 's/^Error: //p' "$out" | head -1)
		assertion=$(sed -n 's/^Assertion violation: //p' "$out" | head -1)
		if [ $rc -eq 0 ] && grep -q '^No errors were detected' "$out"; then
			verdict="no errors"
			got=pass
		elif [ $rc -eq 42 ] && [ -n "$error" ] && [ "$execs" != - ]; then
			# rc 42: GenMC found an error while exploring, not at compile time.
			verdict="rejected: $error${assertion:+ ($assertion)}"
			got=error
		elif [ $rc -eq 124 ]; then
			verdict="time limit ($limit s)"
			got=timeout
		else
			verdict="failed (exit status $rc): $(grep -m1 -i 'error' "$out" || true)"
			got=failed
		fi
		if [ "$got" = "$want" ] || { [ "$want" = any ] && [ "$got" != failed ]; }; then
			mark=""
		else
			mark="  UNEXPECTED (expected $want)"
		fi
		printf '%-17s %-34s %-5s %10s %8s  %s%s\n' "$scenario" "$defines" "$model" \
			"$execs" "$secs" "$verdict" "$mark"
		if [ -n "$keep" ]; then
			cp "$out" "$keep/$scenario-$(echo "$defines" | tr ,= __)-$model.txt"
		fi
		if [ -n "$mark" ]; then
			echo "$scenario $defines $model" >>"$tmp/unexpected"
			tail -n 40 "$out" | sed 's/^/    | /'
		fi
	done
done
secs=$(($(date +%s) - start_all))
if [ -s "$tmp/unexpected" ]; then
	echo "genmc: FAILED: $(wc -l <"$tmp/unexpected") unexpected results in $secs s"
	exit 1
fi
echo "genmc: passed: every scenario as expected ($secs s)"
