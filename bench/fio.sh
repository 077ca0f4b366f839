#!/bin/sh
# bench/fio.sh - fio write bandwidth through pcache's frontends, against the
# kernel alone and against a plain libfuse passthrough (docs/performance.md).
#
#   sh bench/fio.sh [--size SIZE] [--runs N] [--json FILE] [--dir DIR]
#                   [--configs "kernel pcache-fuse passthrough shim"]
#                   [--workloads "randwrite write"] [--fuse-opts "-o ..."]
#                   [--quick]
#
# Workloads, each one fio job writing a new SIZE file (default 256m) once
# over, then fsync (--end_fsync=1, inside fio's measured time):
#   randwrite   4 KiB random writes
#   write       1 MiB sequential writes
# and, when asked for with --workloads:
#   overwrite   4 KiB random writes over a file fio has first written in
#               full (--overwrite=1; the layout is not measured): no block
#               allocation during the measured writes
# common fio options: --ioengine=psync --numjobs=1 --direct=0 --thread
# --fallocate=none (the file is not preallocated, whatever the frontend
# does with fallocate).
#
# Configurations, all on one backing directory DIR/pcache-fio.XXXXXX/backing
# (DIR: --dir, default $TMPDIR or /tmp):
#   kernel       fio on the backing directory: the kernel file system alone
#   pcache-fuse  fio on a build/pcache-fuse mount of it (docs/fuse.md),
#                with --fuse-opts (default: none, pcache's defaults)
#   passthrough  fio on a build/fuse-passthrough mount of it: a plain
#                libfuse passthrough with the writeback cache on
#                (bench/passthrough.c)
#   shim         fio on the backing directory under LD_PRELOAD=
#                build/libpcache-preload.so, PCACHE_PRELOAD_DIR=backing
#                (docs/preload.md; the dir backend)
#
# Each configuration runs each workload --runs times (default 3), round
# robin (run 1 of every configuration, then run 2, ...), each run on a fresh
# mount and a fresh file, after a sync.  The table gives the median
# bandwidth (MiB/s) and IOPS of fio's JSON output, the median wall time of
# the fio command, and the bandwidth as a multiple of the kernel's.
# --json FILE also writes the medians and every run's figures as JSON.
# --quick: --size 32m --runs 1 (a smoke test of the script, not figures).
#
# Needs fio, python3 (to read fio's JSON), /dev/fuse and fusermount3, and
# `make` (build/pcache-fuse, build/fuse-passthrough,
# build/libpcache-preload.so).  Exit 77 with the reason when /dev/fuse,
# fusermount3 or fio is missing; 1 when a run fails.  Every command runs
# under timeout, and the trap always unmounts.  Not part of `make check`:
# it is a benchmark, not a test.
set -u
BUILD=${BUILD:-build}
SIZE=256m RUNS=3 JSON="" WORKDIR=${TMPDIR:-/tmp}
CONFIGS="kernel pcache-fuse passthrough shim"
WORKLOADS="randwrite write"
FUSE_OPTS=""
T=${FIO_BENCH_TIMEOUT:-180}	# seconds for one fio run

usage() { sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift ;;
	--runs) RUNS=$2; shift ;;
	--json) JSON=$2; shift ;;
	--dir) WORKDIR=$2; shift ;;
	--configs) CONFIGS=$2; shift ;;
	--workloads) WORKLOADS=$2; shift ;;
	--fuse-opts) FUSE_OPTS=$2; shift ;;
	--quick) SIZE=32m RUNS=1 ;;
	-h|--help) usage 0 ;;
	*) echo "bench/fio.sh: unknown argument $1" >&2; usage 1 >&2 ;;
	esac
	[ $# -gt 0 ] && shift
done

[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 77; }
command -v fusermount3 >/dev/null 2>&1 || { echo "SKIP: no fusermount3"; exit 77; }
command -v fio >/dev/null 2>&1 || { echo "SKIP: no fio"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
for f in pcache-fuse fuse-passthrough libpcache-preload.so; do
	[ -e "$BUILD/$f" ] || { echo "bench/fio.sh: $BUILD/$f not built (run make)" >&2; exit 1; }
done
SHIM=$(cd "$BUILD" && pwd)/libpcache-preload.so

tmp=$(mktemp -d "$WORKDIR/pcache-fio.XXXXXX") || exit 1
B=$tmp/backing M=$tmp/mnt R=$tmp/results
mkdir -p "$B" "$M" "$R"
pid=""
cleanup() {
	if mountpoint -q "$M"; then
		timeout 30 fusermount3 -u "$M" 2>/dev/null || fusermount3 -u -z "$M"
	fi
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mount_fs() {	# mount_fs PROGRAM [options]: start the daemon, wait for the mount
	prog=$1; shift
	"$prog" "$B" "$M" -f "$@" >>"$tmp/daemon.log" 2>&1 &
	pid=$!
	i=0
	while ! mountpoint -q "$M"; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
			echo "bench/fio.sh: $prog: the mount did not appear" >&2
			cat "$tmp/daemon.log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

umount_fs() {	# unmount, and wait (30 s at most) for the daemon to write back and exit
	timeout 30 fusermount3 -u "$M" || { echo "bench/fio.sh: fusermount3 -u failed" >&2; exit 1; }
	i=0
	while kill -0 $pid 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "bench/fio.sh: the daemon did not exit" >&2; exit 1; }
		sleep 0.1
	done
	wait $pid
	pid=""
}

now() { date +%s.%N; }

run_one() {	# run_one CONFIG WORKLOAD RUN
	cfg=$1 wl=$2 n=$3
	extra=""
	case $wl in
	randwrite) rw=randwrite bs=4k ;;
	write) rw=write bs=1m ;;
	overwrite) rw=randwrite bs=4k extra=--overwrite=1 ;;
	*) echo "bench/fio.sh: unknown workload $wl" >&2; exit 1 ;;
	esac
	dir=$B pre=""
	case $cfg in
	kernel) ;;
	pcache-fuse) # shellcheck disable=SC2086 # FUSE_OPTS: words on purpose
		mount_fs "$BUILD/pcache-fuse" $FUSE_OPTS; dir=$M ;;
	passthrough) mount_fs "$BUILD/fuse-passthrough"; dir=$M ;;
	shim) pre="env LD_PRELOAD=$SHIM PCACHE_PRELOAD_DIR=$B" ;;
	*) echo "bench/fio.sh: unknown configuration $cfg" >&2; exit 1 ;;
	esac
	out=$R/$cfg.$wl.$n
	t0=$(now)
	# shellcheck disable=SC2086 # $pre, $extra: words on purpose
	(cd "$tmp" && timeout $T $pre fio --name="$cfg-$wl" $extra \
		--filename="$dir/fio-bench.dat" --rw=$rw --bs=$bs --size=$SIZE \
		--ioengine=psync --numjobs=1 --direct=0 --end_fsync=1 \
		--fallocate=none --thread --output-format=json \
		--output="$out.json") 2>"$out.err"
	rc=$?
	t1=$(now)
	echo "$t0 $t1" >"$out.wall"
	if [ $rc -ne 0 ]; then
		echo "bench/fio.sh: fio $cfg $wl run $n: exit status $rc" >&2
		cat "$out.err" "$out.json" >&2 2>/dev/null
		exit 1
	fi
	printf '  %-12s %-10s run %s: %s\n' "$cfg" "$wl" "$n" \
		"$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["write"]; print("%.1f MiB/s, %.0f IOPS" % (j["bw_bytes"]/2**20, j["iops"]))' "$out.json")"
	case $cfg in
	pcache-fuse|passthrough) umount_fs ;;
	esac
	rm -f "$B/fio-bench.dat"
	timeout 60 sync
}

echo "bench/fio.sh: $(fio --version), size $SIZE, $RUNS run(s), backing $B"
echo "  machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
	"$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM," \
	"Linux $(uname -r), backing on $(df --output=fstype "$B" | tail -n 1) ($(df --output=source "$B" | tail -n 1))"
[ -n "$FUSE_OPTS" ] && echo "  pcache-fuse options: $FUSE_OPTS"
timeout 60 sync
n=1
while [ $n -le "$RUNS" ]; do
	for wl in $WORKLOADS; do
		for cfg in $CONFIGS; do
			run_one "$cfg" "$wl" "$n"
		done
	done
	n=$((n + 1))
done

python3 - "$R" "$SIZE" "$RUNS" "$JSON" "$WORKLOADS" "$CONFIGS" <<'EOF'
import json, statistics, sys
rdir, size, runs, out, workloads, configs = sys.argv[1:7]
workloads, configs = workloads.split(), configs.split()
label = {"randwrite": "4 KiB randwrite", "write": "1 MiB seq write",
         "overwrite": "4 KiB overwrite"}
res = {}
for wl in workloads:
    for cfg in configs:
        rs = []
        for n in range(1, int(runs) + 1):
            j = json.load(open(f"{rdir}/{cfg}.{wl}.{n}.json"))["jobs"][0]["write"]
            t0, t1 = map(float, open(f"{rdir}/{cfg}.{wl}.{n}.wall").read().split())
            rs.append({"mib_s": j["bw_bytes"] / 2**20, "iops": j["iops"],
                       "runtime_s": j["runtime"] / 1000, "wall_s": t1 - t0})
        res[(wl, cfg)] = {
            "runs": rs,
            "mib_s": statistics.median(r["mib_s"] for r in rs),
            "iops": statistics.median(r["iops"] for r in rs),
            "wall_s": statistics.median(r["wall_s"] for r in rs),
        }
print()
print(f"size {size}, median of {runs} run(s); fio's bandwidth includes the end fsync")
print(f"{'workload':<16} {'configuration':<13} {'MiB/s':>9} {'IOPS':>9} {'wall s':>7} {'x kernel':>9}   runs (MiB/s)")
for wl in workloads:
    k = res.get((wl, "kernel"))
    for cfg in configs:
        r = res[(wl, cfg)]
        ratio = f"{r['mib_s'] / k['mib_s']:.2f}" if k else "-"
        runs_s = " ".join(f"{x['mib_s']:.0f}" for x in r["runs"])
        print(f"{label.get(wl, wl):<16} {cfg:<13} {r['mib_s']:>9.1f} {r['iops']:>9.0f} "
              f"{r['wall_s']:>7.2f} {ratio:>9}   {runs_s}")
if out:
    doc = {"size": size, "runs": int(runs), "results": [
        dict(workload=wl, configuration=cfg, **res[(wl, cfg)],
             x_kernel=(res[(wl, cfg)]["mib_s"] / res[(wl, "kernel")]["mib_s"]
                       if (wl, "kernel") in res else None))
        for wl in workloads for cfg in configs]}
    json.dump(doc, open(out, "w"), indent=1)
    print(f"wrote {out}")
EOF
