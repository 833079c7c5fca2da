"""The seed chapter's threading version: a per-index loop in each thread.

The GIL lets only one thread run Python at a time, so this is no faster than
one thread (the chapter's point).

Usage: threading_add.py [N] [THREADS]
"""
import sys
import threading

import numpy as np


def worker(arr1, arr2, arr3, chunk):
    """The thread worker."""
    for index in chunk:
        arr3[index] = arr1[index] + arr2[index]


n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1000000
nthreads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
a = np.random.randn(n)
b = np.random.randn(n)
c = np.empty(n, dtype="float64")
chunks = np.array_split(range(n), nthreads)
all_threads = []
for chunk in chunks:
    thread = threading.Thread(target=worker, args=(a, b, c, chunk))
    all_threads.append(thread)
    thread.start()
for thread in all_threads:
    thread.join()
