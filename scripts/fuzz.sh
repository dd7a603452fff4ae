#!/bin/bash
# Runs every fuzz target of the repository, one after another, each for FUZZTIME (default 30s;
# anything `go test -fuzztime` takes, such as 2m or 10000x). Go allows one -fuzz target per
# invocation, so the targets are found by name: every `func FuzzXxx(f *testing.F)` in a
# _test.go file. Arguments, if any, are regular expressions; only targets whose name or
# package directory matches one of them run (scripts/fuzz.sh etcmerge FuzzParse).
#
# The first failing input stops the run. Go has written it to the package's
# testdata/fuzz/FuzzXxx/ directory, where plain `go test` replays it from then on: fix the
# code, keep the file as the regression case.
#
# FUZZMINIMIZETIME bounds how long go shrinks each new input (default 5s): left at go's 60s, the
# minimizer spends whole runs shrinking the kilobyte-sized layer tars instead of fuzzing. A
# failing input is saved whether or not its shrinking finished.
#
# FUZZ_PARALLEL sets the number of fuzzing workers (default: one per CPU). The targets that
# build trees on disk (etcmerge, store) spend most of their time in fsync and syncfs; with
# TMPDIR on a tmpfs (TMPDIR=/dev/shm) they run many times faster.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
if [[ -z ${GOFLAGS:-} ]]; then
	# The Makefile's build flags, for when the script runs on its own.
	GOFLAGS="-buildvcs=false -tags=$(xargs < tools/bootc-fetch/TAGS | tr ' ' ',')"
	export GOFLAGS
fi
parallel=()
if [[ -n ${FUZZ_PARALLEL:-} ]]; then
	parallel=(-parallel "$FUZZ_PARALLEL")
fi

# "dir name" per target, sorted, from the test files under the module directories.
mapfile -t targets < <(
	grep -rHo --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' lib tools generators tests |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' | sort -u
)
if ((${#targets[@]} == 0)); then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

selected=()
for t in "${targets[@]}"; do
	if (($# == 0)); then
		selected+=("$t")
		continue
	fi
	for pat in "$@"; do
		if [[ $t =~ $pat ]]; then
			selected+=("$t")
			break
		fi
	done
done
if ((${#selected[@]} == 0)); then
	echo "fuzz: no fuzz target matches $*" >&2
	exit 1
fi

echo "fuzz: ${#selected[@]} target(s), $FUZZTIME each"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${selected[@]}"; do
	dir=${t% *}
	name=${t#* }
	corpus=$dir/testdata/fuzz/$name
	before=$(ls "$corpus" 2>/dev/null || true)
	start=$SECONDS
	printf 'fuzz: %-40s ' "$name ./$dir"
	if go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "${parallel[@]}" "./$dir" >"$log" 2>&1; then
		# go's last progress line: "fuzz: elapsed: 30s, execs: 91254 (3041/sec), new interesting: 12 (total: 80)"
		last=$(grep '^fuzz: elapsed' "$log" | tail -1 | sed -E 's/^fuzz: elapsed: [^,]*, //; s/ \([0-9]+\/sec\)//')
		echo "ok ($((SECONDS - start))s${last:+, $last})"
		continue
	fi
	echo "FAILED"
	cat "$log"
	new=$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null || true) | head -1)
	echo
	if [[ -n $new ]]; then
		echo "fuzz: $name found a failing input: $corpus/$new"
		echo "fuzz: it is now a regression case that plain go test replays; reproduce with"
		echo "      go test -run '^$name/$new\$' ./$dir"
	else
		echo "fuzz: $name failed without a new input (see the output above)"
	fi
	exit 1
done
echo "fuzz: all targets ran for $FUZZTIME without a failure"
