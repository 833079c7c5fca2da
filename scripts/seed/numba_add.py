"""The seed chapter's Numba version: prange over the index, threads without the GIL.

End to end includes importing numba and compiling the function, as running
the chapter's code does.

Usage: numba_add.py [N] [THREADS]
"""
import sys

import numba
import numpy as np

n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1000000
nthreads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
numba.set_num_threads(nthreads)
a = np.random.randn(n)
b = np.random.randn(n)
c = np.empty(n, dtype="float64")


@numba.njit(parallel=True)
def numba_fun(arr1, arr2, arr3):
    """The thread worker."""
    for index in numba.prange(arr1.shape[0]):
        arr3[index] = arr1[index] + arr2[index]


numba_fun(a, b, c)
