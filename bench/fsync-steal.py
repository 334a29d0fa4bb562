#!/usr/bin/env python3
"""Does this machine stop when something fsyncs? Run it before trusting a latency benchmark.

One process per core spins on the clock and records every gap above 1 ms (time the process did
not run); meanwhile another process writes 4 KiB and calls fdatasync, RATE times per second (0:
not at all), in a scratch file under DIR. On a VM whose host charges the disk's work to the VM's
processor quota, the gaps come every 100 ms (the quota's period) once the sync rate is high
enough (docs/performance.md, "The fsync's hidden cost").

    python3 bench/fsync-steal.py [--rate 4000] [--seconds 3] [--dir .] [--spinners 2]
"""
import argparse
import multiprocessing as mp
import os
import tempfile
import time


def spin(seconds, out):
    start = last = time.perf_counter()
    gaps = []
    while last - start < seconds:
        now = time.perf_counter()
        if now - last > 0.001:
            gaps.append(((last - start) * 1e3, (now - last) * 1e3))
        last = now
    out.put(gaps)


def sync_loop(rate, seconds, directory, out):
    fd, path = tempfile.mkstemp(dir=directory, prefix="fsync-steal-")
    try:
        block = os.urandom(4096)
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            os.pwrite(fd, block, (n % 4096) * 4096)
            os.fdatasync(fd)
            n += 1
            ahead = start + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        out.put(n / seconds)
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--rate", type=float, default=4000, help="fdatasync calls per second (0: none)")
    a.add_argument("--seconds", type=float, default=3)
    a.add_argument("--dir", default=".", help="where the scratch file goes (the disk to test)")
    a.add_argument("--spinners", type=int, default=os.cpu_count() or 1)
    o = a.parse_args()
    out, syncs = mp.Queue(), mp.Queue()
    procs = [mp.Process(target=spin, args=(o.seconds, out)) for _ in range(o.spinners)]
    if o.rate > 0:
        procs.append(mp.Process(target=sync_loop, args=(o.rate, o.seconds + 0.5, o.dir, syncs)))
    for p in procs:
        p.start()
    results = [out.get() for _ in range(o.spinners)]
    for p in procs:
        p.join()
    rate = syncs.get() if o.rate > 0 else 0
    print(f"fdatasync: {rate:.0f}/s; {o.spinners} spinner(s) for {o.seconds:.1f} s each")
    for i, gaps in enumerate(results):
        stolen = sum(g for _, g in gaps)
        big = [f"{at:.0f}ms:{g:.1f}" for at, g in gaps if g > 5][:8]
        print(f"  spinner {i}: {len(gaps)} gaps > 1 ms, {stolen:.0f} ms stolen "
              f"({100 * stolen / (o.seconds * 1e3):.1f}%); gaps > 5 ms at {big}")


if __name__ == "__main__":
    main()
