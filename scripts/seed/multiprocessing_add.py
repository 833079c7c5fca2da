"""The seed chapter's process version: multiprocessing.Array shared between
worker processes, each adding its chunk with a per-index loop over numpy
views (np.frombuffer), the design vecpar is the Rust form of.

Usage: multiprocessing_add.py [N] [PROCESSES]
"""
import ctypes
import multiprocessing
import sys

import numpy as np


def worker(arr1, arr2, arr3, chunk):
    """The process worker."""
    # Create Numpy arrays from the shared multiprocessing arrays
    arr1_np = np.frombuffer(arr1.get_obj())
    arr2_np = np.frombuffer(arr2.get_obj())
    arr3_np = np.frombuffer(arr3.get_obj())
    for index in chunk:
        arr3_np[index] = arr1_np[index] + arr2_np[index]


if __name__ == "__main__":
    n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1000000
    nprocesses = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    a = multiprocessing.Array(ctypes.c_double, n)
    b = multiprocessing.Array(ctypes.c_double, n)
    c = multiprocessing.Array(ctypes.c_double, n)
    a[:] = np.random.randn(n)
    b[:] = np.random.randn(n)
    chunks = np.array_split(range(n), nprocesses)
    all_processes = []
    for chunk in chunks:
        process = multiprocessing.Process(target=worker, args=(a, b, c, chunk))
        all_processes.append(process)
        process.start()
    for process in all_processes:
        process.join()
