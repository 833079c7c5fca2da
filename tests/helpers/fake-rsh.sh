#!/bin/sh
# Open MPI's rsh launcher calls `AGENT HOST COMMAND...`. This agent runs
# COMMAND here, in a new UTS namespace whose host name is HOST, so that one
# machine hosts several "nodes": Open MPI then treats each as its own
# shared-memory domain (its per-host names for segments and session
# directories no longer collide), and vecpar's ranks split over them as over
# real nodes. Used by tests/mpi.rs and scripts/mpi.sh.
host=$1
shift
exec unshare --uts sh -c "hostname $host && exec $*"
