#!/usr/bin/env bash
# Assembles a Bela project folder for the stage node: the sources Bela's
# build compiles (flat, in the project folder) and the headers (under
# include/, as the sources name them), plus a line of build flags.
#   hw/bela/make-project.sh OUT_DIR
# Then: scp -r OUT_DIR root@bela.local:Bela/projects/tutti and build on the
# board (docs/bela.md).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: hw/bela/make-project.sh OUT_DIR}
mkdir -p "$out/include/tutti" "$out/include/hw" "$out/include/posix" "$out/include/core"
cp "$top/hw/bela/render.cpp" "$out/"
# The core (no simulation), the posix platform, the node.
for f in "$top"/core/src/*.c "$top"/core/src/posix/*.c "$top"/hw/*.c; do cp "$f" "$out/"; done
cp "$top"/core/include/tutti/*.h "$out/include/tutti/"
cp "$top"/core/src/*.h "$out/include/core/"
cp "$top"/core/src/posix/*.h "$out/include/posix/"
cp "$top"/hw/*.h "$out/include/hw/"
cat >"$out/build-flags.txt" <<'FLAGS'
CPPFLAGS=-DTUTTI_STATIC -Iprojects/tutti/include -Iprojects/tutti/include/core -Iprojects/tutti/include/hw
CFLAGS=-std=gnu11
LDLIBS=-luv -lnng -lsodium -lm
FLAGS
ls "$out" | wc -l | xargs echo "files:"
