#!/usr/bin/env python3
"""A worker that lies: it speaks vecpar's protocol (--sync ipc) perfectly,
computes nothing, and reports every step done. With LIE=fill it does fill
its chunk of a and b (so the inputs are right) and still computes nothing.

The tests run it as --worker-bin to show that a run is never vouched for by
the process that computed it: the coordinator checks the arrays itself.
"""
import json
import os
import socket
import struct
import sys


def main():
    args = sys.argv[1:]
    wid = int(args[args.index("--id") + 1])
    chan = socket.socket(fileno=os.dup(1))
    seg = os.dup(0)
    chan.send(json.dumps({"type": "hello", "id": wid, "pid": os.getpid(), "version": os.environ["LIE_VERSION"]}).encode())
    job = json.loads(chan.recv(65536))  # {"type": "assign", ...}
    chan.send(json.dumps({"type": "ready", "pin": {"kind": "unpinned"}}).encode())
    fill = os.environ.get("LIE") == "fill"
    while True:
        msg = json.loads(chan.recv(65536))
        step = msg["step"]
        kind = step["step"]
        if kind == "shutdown":
            return
        if kind == "init":
            if fill:
                fill_inputs(seg, job)
            result = {"result": "init", "error": None}
        elif kind == "run":
            result = {"result": "round", "timing": {"start_ns": 1, "end_ns": 2, "cpu": 0}}
        elif kind == "rebuild":
            result = {"result": "rebuilt"}
        else:  # a reduction's partial sums: claim they are all zero
            result = {"result": "report", "partial": {"nodes": []}}
        chan.send(json.dumps({"type": "done", "seq": msg["seq"], "result": result}).encode())


def fill_inputs(seg, job):
    """Fills the chunk of a and b with 1.0 (not what the generator gives,
    but not zero either): a liar that did some of its work."""
    header = os.pread(seg, 4096, 0)
    a_off, b_off = struct.unpack_from("<QQ", header, 8 + 4 + 4 + 8 * 5)
    size = 8 if job["dtype"] == "f64" else 4
    start, end = job["start"], job["end"]
    fmt = "<d" if size == 8 else "<f"
    data = struct.pack(fmt, 1.0) * (end - start)
    os.pwrite(seg, data, a_off + start * size)
    os.pwrite(seg, data, b_off + start * size)


if __name__ == "__main__":
    try:
        main()
    except (EOFError, ConnectionError, json.JSONDecodeError):
        pass
