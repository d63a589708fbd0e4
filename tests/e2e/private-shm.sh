#!/usr/bin/env bash
# Runs one end-to-end test with a /dev/shm of its own (a mount namespace and
# an empty tmpfs), when it can (root, unshare): JACK registers its servers in
# /dev/shm/jack-shm-registry, which has 8 places, and a server that dies
# without unregistering keeps its place until a server of the same name
# starts again; scsynth leaves SuperColliderServer_PORT segments behind the
# same way. With a private /dev/shm nothing a test or an earlier crash left
# can fill the registry for the next, and nothing of the test's stays
# behind. TUTTI_SHARED_SHM=1 runs the test on the machine's /dev/shm.
# Usage: private-shm.sh COMMAND ARGS...
if [ "$(id -u)" = 0 ] && [ "${TUTTI_SHARED_SHM:-0}" != 1 ] && unshare -m true 2>/dev/null; then
    exec unshare -m --propagation private -- bash -c \
        'mount -t tmpfs -o mode=1777 tutti-test-shm /dev/shm 2>/dev/null; exec "$@"' bash "$@"
fi
exec "$@"
