#!/usr/bin/env bash
# Instructions per 16-frame block of the stage node's render path on armhf
# (Cortex-A8 code, run under qemu-arm): `tutti bench node` is run twice under
# qemu with one instruction a translation block (-singlestep) and every
# block's execution logged (-d exec,nochain), with two numbers of blocks;
# the difference of the logged instruction counts over the difference of the
# blocks is the render path's instructions a block (the session's set-up, the
# same in both runs, cancels out). Counts are exact for the emulated program,
# libc and libm included; they are not cycles (the A8's pipeline, caches and
# NEON stalls are not modelled).
#   scripts/bench-node-armhf.sh [BUILD_DIR]   (default build-armhf)
set -euo pipefail
dir=${1:-build-armhf}
tutti=$dir/tutti
file "$tutti" | grep -q "ARM, EABI5" || { echo "$tutti: not an armhf build"; exit 1; }
count() {
    qemu-arm -L / -singlestep -d exec,nochain \
        "$tutti" bench node --blocks "$1" --repeat 1 2>&1 >/dev/null | grep -c '^Trace'
}
a=2000 b=12000
ia=$(count $a)
ib=$(count $b)
per=$(( (ib - ia) / (b - a) ))
echo "armhf (qemu-arm, -singlestep): $ia instructions with $a blocks, $ib with $b: $per a block"
echo "{\"bench\":\"node_armhf_instructions\",\"frames\":16,\"blocks\":[$a,$b],\"instructions\":[$ia,$ib],\"per_block\":$per}"
