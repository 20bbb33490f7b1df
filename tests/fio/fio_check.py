#!/usr/bin/env python3
"""Checks for tests/fio/fio_engine_test.sh.

  fio_check.py json FILE.json WRITE_BYTES READ_BYTES
      every job of fio's JSON output has error 0, and the jobs together wrote
      and read exactly the given byte counts (-1: not checked). Prints the
      bandwidth fio measured.
  fio_check.py offset-pattern FILE SIZE BS
      FILE (read through the FUSE mount) is SIZE bytes of fio's
      verify_pattern=%o blocks of BS bytes: every 8-byte little-endian word is
      the file offset of its block. Compares sha256 of the file with the sha256
      of the expected content and reports the first differing word.
"""
import hashlib
import json
import struct
import sys


def check_json(path, want_write, want_read):
    with open(path) as f:
        text = f.read()
    # fio may print notes before the JSON document.
    doc = json.loads(text[text.index("{"):])
    jobs = doc.get("jobs", [])
    if not jobs:
        return f"{path}: no jobs in fio's output"
    written = read = 0
    for job in jobs:
        if job.get("error", 0) != 0:
            return f"{path}: job {job.get('jobname')} ended with error {job['error']}"
        written += job["write"]["io_bytes"]
        read += job["read"]["io_bytes"]
        for d in ("write", "read"):
            st = job[d]
            if st["io_bytes"]:
                print(f"  {job['jobname']}: {d} {st['io_bytes'] / 2**20:.0f} MiB, "
                      f"{st['bw_bytes'] / 2**20:.1f} MiB/s, {st['iops']:.0f} IOPS, "
                      f"clat mean {st['clat_ns']['mean'] / 1000:.0f} us")
    if want_write >= 0 and written != want_write:
        return f"{path}: wrote {written} bytes, expected {want_write}"
    if want_read >= 0 and read != want_read:
        return f"{path}: read {read} bytes, expected {want_read}"
    return None


def check_offset_pattern(path, size, bs):
    expect = hashlib.sha256()
    got = hashlib.sha256()
    first_bad = None
    total = 0
    with open(path, "rb") as f:
        off = 0
        while True:
            block = f.read(bs)
            if not block:
                break
            total += len(block)
            want = struct.pack("<Q", off) * (bs // 8)
            want = want[:len(block)]
            expect.update(want)
            got.update(block)
            if first_bad is None and block != want:
                for i in range(0, len(block), 8):
                    if block[i:i + 8] != want[i:i + 8]:
                        first_bad = (off + i, block[i:i + 8].hex(), want[i:i + 8].hex())
                        break
            off += len(block)
    if total != size:
        return f"{path}: {total} bytes through FUSE, expected {size}"
    print(f"  sha256 via FUSE {got.hexdigest()[:16]}..., expected {expect.hexdigest()[:16]}...")
    if first_bad:
        return f"{path}: word at {first_bad[0]} is {first_bad[1]}, expected {first_bad[2]}"
    if got.digest() != expect.digest():
        return f"{path}: sha256 differs"
    return None


def main():
    if sys.argv[1] == "json":
        err = check_json(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "offset-pattern":
        err = check_offset_pattern(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        err = f"unknown check {sys.argv[1]}"
    if err:
        print("  " + err, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
