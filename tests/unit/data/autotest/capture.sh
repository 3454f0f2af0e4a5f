#!/bin/bash
# Captures the outputs tests/unit/test_autotest.py reads, from Open vSwitch's
# real test suite (the okopy keyword of the patched build), in a scratch
# directory so that a running `make check` is not disturbed.  A wrapper
# `ovstest` placed first on AUTOTEST_PATH makes "ovstest test-dp-bpf" (test
# "okopy BPF - programs replaced and unloaded under running threads") fail
# while a flag file exists: once, to get a failure that passes on recheck;
# always, to get one that fails twice.  Each invocation's standard output
# and standard error are merged, in order, as okopy/ovs/autotest.py reads
# them.
#
#   tests/unit/data/autotest/capture.sh [BUILD_DIR]   (default: build/ovs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../../../build/ovs}" && pwd)
src=$(sed -n 's/^abs_top_srcdir=.\(.*\).$/\1/p' "$build/tests/atconfig")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

mkdir -p "$scratch/tests" "$scratch/bin"
sed "s|^at_top_build_prefix=.*|at_top_build_prefix='$build/'|" \
    "$build/tests/atconfig" > "$scratch/tests/atconfig"
cp "$build/tests/atlocal" "$scratch/tests/atlocal"
cat > "$scratch/bin/ovstest" <<WRAP
#!/bin/sh
if [ "\$1" = test-dp-bpf ] && [ -e "$scratch/fail" ]; then
    [ -e "$scratch/fail-always" ] || rm -f "$scratch/fail"
    echo "injected failure" >&2
    exit 1
fi
exec "$build/tests/ovstest" "\$@"
WRAP
chmod +x "$scratch/bin/ovstest"

path="$scratch/bin"
# Autotest looks for relative AUTOTEST_PATH entries in both trees.
for d in utilities vswitchd ovsdb vtep tests ipsec; do
    path="$path:$build/$d:$src/$d"
done
suite() {
    /bin/bash "$src/tests/testsuite" -C "$scratch/tests" \
        AUTOTEST_PATH="$path" "$@" 2>&1 || true
}
keyword=(-j8 -k 'okopy,!hidden')

suite "${keyword[@]}" > "$here/pass.txt"
touch "$scratch/fail"
suite "${keyword[@]}" > "$here/fail.txt"
suite --recheck > "$here/recheck-pass.txt"
touch "$scratch/fail" "$scratch/fail-always"
suite "${keyword[@]}" > "$here/fail-always.txt"
suite --recheck > "$here/recheck-fail.txt"
# Paths of this machine would make the files differ from run to run.
sed -i "s|$scratch|SCRATCH|g; s|$build|BUILD|g; s|$src|SRC|g" "$here"/*.txt
echo "captured: $(cd "$here" && ls ./*.txt | tr '\n' ' ')"
