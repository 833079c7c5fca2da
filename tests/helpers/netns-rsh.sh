#!/bin/sh
# Open MPI's rsh launcher calls `AGENT HOST COMMAND...`. For a HOST of the
# form 10.251.0.I this agent runs COMMAND (Open MPI's orted) inside network
# namespace $VECPAR_NETNS-nI, with a host name of its own (UTS namespace)
# and a /dev/shm of its own (a private mount namespace with a fresh tmpfs):
# a node as separate as one machine can make it. Used by tests/mpi.rs,
# which creates and removes the namespaces.
host=$1
shift
i=${host##*.}
exec ip netns exec "$VECPAR_NETNS-n$i" unshare --uts --mount --propagation private \
  sh -c "hostname node$i && mount -t tmpfs -o size=1g tmpfs /dev/shm && exec $*"
