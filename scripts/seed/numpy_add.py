"""The seed chapter's one-process version: c = a + b with numpy.

Usage: numpy_add.py [N]
"""
import sys

import numpy as np

n = int(float(sys.argv[1])) if len(sys.argv) > 1 else 1000000
a = np.random.randn(n)
b = np.random.randn(n)
c = a + b
