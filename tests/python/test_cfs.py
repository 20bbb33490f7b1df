"""Tests of the cfs Python module (bindings/python/cfs.py) on a real local
cluster started with `cfs local up` (6 S-workers, default layout 4+2, a FUSE
mount for the mount-path form of the context and cross-checks).

Environment: CFS_BIN_DIR (the build's bin/, required) and CFS_LIBRARY (the
libcfs.so to load; else the module's own search). Stdlib only:
    CFS_BIN_DIR=build/bin CFS_LIBRARY=build/lib/libcfs.so python3 tests/python/test_cfs.py
"""

import errno
import hashlib
import multiprocessing
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
import cfs  # noqa: E402

MiB = 1 << 20
CLUSTER = {}  # addr, mnt, dir: set by setUpModule


def pattern(seed, size):
    """Deterministic bytes for a content check (the same in every process)."""
    return random.Random(seed).randbytes(size)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def _run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def setUpModule():
    bindir = os.environ.get("CFS_BIN_DIR")
    if not bindir or not os.path.exists(os.path.join(bindir, "cfs")):
        raise RuntimeError("set CFS_BIN_DIR to the build's bin/ directory (holding cfs, cfs-meta, ...)")
    base = tempfile.mkdtemp(prefix="cfs-pytest-")
    CLUSTER.update(cfs=os.path.join(bindir, "cfs"), base=base, dir=os.path.join(base, "cluster"),
                   mnt=os.path.join(base, "mnt"))
    r = _run([CLUSTER["cfs"], "local", "up", "--dir", CLUSTER["dir"], "--mount", CLUSTER["mnt"], "--workers", "6"])
    if r.returncode != 0:
        tearDownModule()
        raise RuntimeError("cfs local up failed:\n" + r.stdout)
    with open(os.path.join(CLUSTER["dir"], "run", "meta.addr")) as f:
        CLUSTER["addr"] = f.read().strip()


def tearDownModule():
    if "dir" not in CLUSTER:
        return
    _run([CLUSTER["cfs"], "local", "down", "--dir", CLUSTER["dir"]])
    if os.path.ismount(CLUSTER["mnt"]):
        _run(["fusermount3", "-u", "-z", CLUSTER["mnt"]])
    shutil.rmtree(CLUSTER["base"], ignore_errors=True)


class CfsTest(unittest.TestCase):
    def setUp(self):
        self.ctx = cfs.Context(CLUSTER["addr"])
        self.addCleanup(self.ctx.close)
        # A fresh directory per test.
        self.dir = "/py/" + self.id().rsplit(".", 1)[-1]
        self.ctx.mkdir(self.dir, parents=True)

    def p(self, name):
        return self.dir + "/" + name

    def on_mount(self, cfs_path):
        return CLUSTER["mnt"] + cfs_path


class TestLibraryAndErrors(CfsTest):
    def test_version_and_strerror(self):
        self.assertTrue(cfs.version().startswith("0."), cfs.version())
        texts = [cfs.strerror(c) for c in (cfs.ENOTREG, cfs.ECOMMITTED, cfs.ENOTMOUNT, cfs.ECKPTBUSY)]
        self.assertEqual(len(set(texts)), 4, texts)
        for c, t in zip((cfs.ENOTREG, cfs.ECOMMITTED, cfs.ENOTMOUNT, cfs.ECKPTBUSY), texts):
            self.assertTrue(t)
            self.assertEqual(cfs.strerror(-c), t)
            self.assertNotEqual(t, cfs.strerror(errno.EIO))
        self.assertEqual(cfs.strerror(errno.ENOENT), os.strerror(errno.ENOENT))

    def test_errors_are_oserrors_with_code_and_text(self):
        with self.assertRaises(FileNotFoundError) as cm:
            self.ctx.stat(self.p("missing"))
        e = cm.exception
        self.assertIsInstance(e, cfs.CfsError)
        self.assertIsInstance(e, OSError)
        self.assertEqual(e.errno, errno.ENOENT)
        self.assertEqual(e.strerror, cfs.strerror(errno.ENOENT))
        self.assertEqual(e.filename, self.p("missing"))
        self.assertEqual(e.op, "cfs_stat")
        self.assertIn("ENOENT", str(e))
        self.ctx.mkdir(self.p("d"))
        with self.assertRaises(FileExistsError):
            self.ctx.mkdir(self.p("d"))
        self.ctx.mkdir(self.p("d"), exist_ok=True)
        with self.assertRaises(IsADirectoryError):
            self.ctx.open(self.p("d"))
        with self.assertRaises(cfs.CfsError) as cm:
            self.ctx.open(self.p("nofile"), "r")
        self.assertEqual(cm.exception.errno, errno.ENOENT)

    def test_unreachable_cluster_and_not_a_mount(self):
        with self.assertRaises(cfs.CfsError) as cm:
            cfs.Context("127.0.0.1:1", {"timeout_ms": 2000})
        self.assertIn(cm.exception.errno, (errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ETIMEDOUT))
        with self.assertRaises(cfs.CfsError) as cm:
            cfs.Context(tempfile.gettempdir())
        self.assertEqual(cm.exception.errno, cfs.ENOTMOUNT)
        self.assertIn("CFS_ENOTMOUNT", str(cm.exception))
        with self.assertRaises(cfs.CfsError) as cm:
            cfs.Context(CLUSTER["addr"], "no_such_option=1")
        self.assertEqual(cm.exception.errno, errno.EINVAL)

    def test_bad_handles(self):
        f = self.ctx.create(self.p("x"))
        f.close()
        f.close()  # idempotent
        self.assertTrue(f.closed)
        with self.assertRaises(ValueError):
            f.pwrite(b"x", 0)
        # A handle number that is not open: EBADF from libcfs itself.
        g = cfs.File(self.ctx, 4242, "/nowhere", os.O_RDONLY)
        with self.assertRaises(cfs.CfsError) as cm:
            g.pread(10, 0)
        self.assertEqual(cm.exception.errno, errno.EBADF)
        g._fh = -1
        with self.ctx.open(self.p("x"), "r") as r:
            with self.assertRaises(cfs.CfsError) as cm:
                r.pwrite(b"abc", 0)
            self.assertEqual(cm.exception.errno, errno.EBADF)
        with self.ctx.open(self.p("x"), "r+") as w:
            with self.assertRaises(cfs.CfsError) as cm:
                w.pwrite(b"abc", 1 << 63)
            self.assertEqual(cm.exception.errno, errno.EFBIG)


class TestFiles(CfsTest):
    def test_write_read_with_layout_hint(self):
        data = pattern(1, 5 * MiB + 12345)
        layout = cfs.Layout(1 << 20, 4, 2)
        with self.ctx.create(self.p("a"), layout=layout) as f:
            self.assertEqual(f.write(data[:3 * MiB]), 3 * MiB)
            self.assertEqual(f.tell(), 3 * MiB)
            self.assertEqual(f.pwrite(memoryview(data)[3 * MiB:], 3 * MiB), len(data) - 3 * MiB)
            f.fsync()
            st = f.stat()
            self.assertEqual(st.size, len(data))
            self.assertEqual(st.layout, layout)
        st = self.ctx.stat(self.p("a"))
        self.assertTrue(st.is_file)
        self.assertEqual((st.size, st.layout), (len(data), layout))
        with self.ctx.open(self.p("a")) as f:
            self.assertEqual(sha(f.read()), sha(data))
            self.assertEqual(f.pread(100, 2 * MiB - 50), data[2 * MiB - 50:2 * MiB + 50])
            self.assertEqual(f.pread(100, len(data) - 10), data[-10:])  # short at EOF
            self.assertEqual(f.pread(100, len(data) + 10), b"")
            f.seek(-20, os.SEEK_END)
            self.assertEqual(f.read(), data[-20:])
            self.assertEqual(f.read(), b"")
            buf = bytearray(MiB + 7)
            self.assertEqual(f.pread_into(buf, 4 * MiB), MiB + 7)
            self.assertEqual(bytes(buf), data[4 * MiB:5 * MiB + 7])
        # The same bytes through the FUSE mount (close-to-open).
        with open(self.on_mount(self.p("a")), "rb") as f:
            self.assertEqual(sha(f.read()), sha(data))
        self.assertEqual(self.ctx.read_bytes(self.p("a")), data)

    def test_vectored_truncate_append(self):
        parts = [pattern(2, 1000), pattern(3, MiB + 1), bytearray(pattern(4, 333))]
        whole = b"".join(bytes(p) for p in parts)
        with self.ctx.create(self.p("v"), readable=True) as f:
            self.assertEqual(f.pwritev(parts, 10), len(whole))
            outs = [bytearray(500), bytearray(len(whole) - 500)]
            self.assertEqual(f.preadv_into(outs, 10), len(whole))
            self.assertEqual(b"".join(outs), whole)
            self.assertEqual(f.pread(10, 0), b"\0" * 10)  # the hole before offset 10
            self.assertEqual(f.truncate(1234), 1234)
            self.assertEqual(f.stat().size, 1234)
        self.assertEqual(self.ctx.read_bytes(self.p("v")), (b"\0" * 10 + whole)[:1234])
        self.ctx.truncate(self.p("v"), 5000)
        self.assertEqual(self.ctx.read_bytes(self.p("v")), (b"\0" * 10 + whole)[:1234] + b"\0" * (5000 - 1234))
        with self.ctx.open(self.p("v"), "a") as f:
            f.write(b"tail")
        self.assertEqual(self.ctx.read_bytes(self.p("v"))[-8:], b"\0\0\0\0tail")
        with self.assertRaises(FileExistsError):
            self.ctx.create(self.p("v"), exclusive=True)

    def test_threads_share_a_context(self):
        # libcfs calls release the GIL: 4 threads, one context, one file each.
        datas = {i: pattern(100 + i, 3 * MiB + i) for i in range(4)}
        errors = []

        def work(i):
            try:
                self.ctx.write_bytes(self.p("t%d" % i), datas[i])
            except Exception as e:  # reported by the main thread
                errors.append(e)

        ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        for i in range(4):
            self.assertEqual(sha(self.ctx.read_bytes(self.p("t%d" % i))), sha(datas[i]))

    def test_closing_the_context_flushes_and_closes_files(self):
        data = pattern(5, 2 * MiB + 3)
        ctx = cfs.Context(CLUSTER["addr"])
        f = ctx.create(self.p("c"))
        f.pwrite(data, 0)
        ctx.close()
        self.assertTrue(f.closed)
        with self.assertRaises(ValueError):
            f.pwrite(b"x", 0)
        with self.assertRaises(ValueError):
            ctx.stat("/")
        self.assertEqual(self.ctx.read_bytes(self.p("c")), data)


class TestNamespace(CfsTest):
    def test_mkdir_listdir_rename_unlink(self):
        self.ctx.mkdir(self.p("a/b/c"), parents=True)
        self.assertTrue(self.ctx.stat(self.p("a/b/c")).is_dir)
        names = ["f%03d" % i for i in range(40)]
        for n in names:
            self.ctx.write_bytes(self.p("a/" + n), n.encode())
        # A small batch makes cfs_readdir page with its cookie.
        ents = list(self.ctx.scandir(self.p("a"), batch=7))
        self.assertEqual(sorted(e.name for e in ents), sorted(names + ["b"]))
        self.assertEqual(len(ents), len(names) + 1)  # no duplicates across pages
        self.assertTrue(next(e for e in ents if e.name == "b").is_dir)
        self.assertTrue(all(e.is_file for e in ents if e.name != "b"))
        self.assertEqual(sorted(self.ctx.listdir(self.p("a"))), sorted(names + ["b"]))
        self.assertEqual(sorted(os.listdir(self.on_mount(self.p("a")))), sorted(names + ["b"]))
        # rename replaces an existing target, as rename(2).
        self.ctx.rename(self.p("a/f000"), self.p("a/f001"))
        self.assertEqual(self.ctx.read_bytes(self.p("a/f001")), b"f000")
        self.assertFalse(self.ctx.exists(self.p("a/f000")))
        self.ctx.rename(self.p("a/b"), self.p("b2"))
        self.assertTrue(self.ctx.stat(self.p("b2/c")).is_dir)
        for n in names[1:]:
            self.ctx.unlink(self.p("a/" + n))
        self.assertEqual(self.ctx.listdir(self.p("a")), [])
        self.ctx.rmdir(self.p("a"))
        with self.assertRaises(FileNotFoundError):
            self.ctx.listdir(self.p("a"))
        with self.assertRaises(cfs.CfsError) as cm:
            self.ctx.rmdir(self.p("b2"))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)

    def test_setstripe_is_inherited(self):
        self.ctx.mkdir(self.p("s"))
        self.ctx.setstripe(self.p("s"), cfs.Layout(256 << 10, 2, 1))
        self.ctx.write_bytes(self.p("s/x"), b"abc")
        self.assertEqual(self.ctx.stat(self.p("s/x")).layout, cfs.Layout(256 << 10, 2, 1))

    def test_context_from_mount_path(self):
        # The mount point itself and a directory inside it both name the cluster.
        data = pattern(6, MiB + 99)
        with cfs.Context(CLUSTER["mnt"]) as m1:
            m1.write_bytes(self.p("via-mount"), data)
        with cfs.Context(self.on_mount(self.dir)) as m2:
            self.assertEqual(m2.read_bytes(self.p("via-mount")), data)
            self.assertIn("via-mount", m2.listdir(self.dir))
        # A file written through FUSE, read through the library.
        fuse_data = pattern(7, 300000)
        with open(self.on_mount(self.p("via-fuse")), "wb") as f:
            f.write(fuse_data)
        self.assertEqual(self.ctx.read_bytes(self.p("via-fuse")), fuse_data)


class TestAsync(CfsTest):
    def test_buffers_queue_mixed_sizes(self):
        size = 9 * MiB + 4321
        data = pattern(8, size)
        with self.ctx.alloc_buffer(size) as wbuf, self.ctx.ioqueue(depth=32, batch=8) as q:
            self.assertEqual(len(wbuf.view), size)
            wbuf.view[:] = data  # fill the registered memory in place
            self.assertEqual(bytes(wbuf.array[:16]), data[:16])  # the ctypes array is the same memory
            f = self.ctx.create(self.p("async"), readable=True)
            sizes = [4096, 65536 + 3, MiB, 333, 2 * MiB + 1, 8191, 256 << 10]
            reqs, off, i = [], 0, 0
            while off < size:
                n = min(sizes[i % len(sizes)], size - off)
                reqs.append(cfs.IoRequest.write(f, wbuf, off, n, buf_offset=off, user_data=i))
                off, i = off + n, i + 1
            # Submit in bursts, reap through the eventfd: every request completes once.
            done, pos = {}, 0
            while len(done) < len(reqs):
                if pos < len(reqs):
                    pos += q.submit(reqs[pos:pos + 10])
                r, _, _ = select.select([q.fileno()], [], [], 30)
                self.assertTrue(r, "no completion within 30 s")
                for c in q.reap(min=0, timeout=0):
                    self.assertNotIn(c.user_data, done)
                    done[c.user_data] = c.res
            self.assertEqual(q.pending, 0)
            self.assertEqual(done, {r.user_data: r.length for r in reqs})
            q.run([cfs.IoRequest.fsync(f, user_data=99)])
            self.assertEqual(f.stat().size, size)

            # Read back into a bytearray registered in place, other sizes, more
            # requests than the queue depth (run() reaps as the queue fills).
            back = bytearray(size)
            with self.ctx.register_buffer(back) as rbuf:
                reads, off = [], 0
                while off < size:
                    n = min(100000, size - off)
                    reads.append(cfs.IoRequest.read(f, rbuf, off, n, buf_offset=off, user_data=off))
                    off += n
                self.assertGreater(len(reads), q.depth)
                comps = q.run(reads)
                self.assertEqual(sorted(c.user_data for c in comps), [r.user_data for r in reads])
                self.assertTrue(all(c.ok for c in comps))
            self.assertEqual(sha(back), sha(data))
            f.close()
        with open(self.on_mount(self.p("async")), "rb") as fm:
            self.assertEqual(sha(fm.read()), sha(data))

    def test_async_errors(self):
        f = self.ctx.create(self.p("e"), readable=True)
        buf = self.ctx.alloc_buffer(MiB)

        class Unregistered:  # a buffer id libcfs never gave out
            id, closed = 777, False

            def _span(self, off, n):
                return buf.addr + off, n

        with self.ctx.ioqueue(depth=4) as q:
            with self.assertRaises(cfs.CfsError) as cm:
                q.submit([cfs.IoRequest.write(f, Unregistered(), 0, 4096)])
            self.assertEqual(cm.exception.errno, cfs.ENOTREG)
            self.assertIn("CFS_ENOTREG", str(cm.exception))
            with self.assertRaises(ValueError):  # outside the buffer: refused before libcfs
                q.submit([cfs.IoRequest.write(f, buf, 0, MiB + 1)])
            # A good request then a bad one: one accepted, the bad one raises next.
            buf.view[:4096] = b"z" * 4096
            good = cfs.IoRequest.write(f, buf, 0, 4096, user_data=1)
            bad = cfs.IoRequest.write(f, Unregistered(), 4096, 4096, user_data=2)
            self.assertEqual(q.submit([good, bad]), 1)
            with self.assertRaises(cfs.CfsError):
                q.submit([bad])
            self.assertEqual(q.reap(min=1, timeout=30), [cfs.Completion(1, 4096)])
            # A read past the end of the file completes short, not failed.
            c = q.run([cfs.IoRequest.read(f, buf, 0, 8192, user_data=3)])
            self.assertEqual(c, [cfs.Completion(3, 4096)])
            self.assertEqual(bytes(buf.view[:4096]), b"z" * 4096)
        buf.close()
        with self.assertRaises(ValueError):
            buf.view[0]
        f.close()
        # A queue fills: submit returns how many were accepted, 0 when full.
        wbuf = self.ctx.alloc_buffer(64 * 4096)
        g = self.ctx.create(self.p("full"))
        with self.ctx.ioqueue(depth=2, batch=1) as q:
            reqs = [cfs.IoRequest.write(g, wbuf, i * 4096, 4096, buf_offset=i * 4096, user_data=i) for i in range(64)]
            n = q.submit(reqs)
            self.assertEqual(n, 2)
            self.assertEqual(q.submit(reqs[n:]), 0)
            q.reap(min=2, timeout=30)
        g.close()
        wbuf.close()


class TestCheckpoints(CfsTest):
    def test_sets_latest_list_retention(self):
        job = self.dir + "/job"
        self.assertIsNone(self.ctx.ckpt_latest(job))
        sizes = {}
        for step in (1, 2):
            d = self.ctx.ckpt_begin("%s/step-%d" % (job, step))
            self.assertEqual(d, "%s/.pending/step-%d" % (job, step))
            self.assertEqual(self.ctx.ckpt_begin("%s/step-%d" % (job, step)), d)  # joining is fine
            for r in range(3):
                self.ctx.write_bytes("%s/r%d" % (d, r), pattern(step * 10 + r, 100000 + r))
            # A file still open for writing in this context: the commit refuses.
            f = self.ctx.create(d + "/open")
            with self.assertRaises(cfs.CfsError) as cm:
                self.ctx.ckpt_commit("%s/step-%d" % (job, step))
            self.assertEqual(cm.exception.errno, cfs.ECKPTBUSY)
            f.close()
            self.ctx.unlink(d + "/open")
            self.ctx.ckpt_commit("%s/step-%d" % (job, step))
            sizes[step] = 3 * 100000 + 3
            self.assertEqual(self.ctx.ckpt_latest(job), "step-%d" % step)
        with self.assertRaises(cfs.CfsError) as cm:
            self.ctx.ckpt_commit(job + "/step-2")
        self.assertEqual(cm.exception.errno, cfs.ECOMMITTED)
        with self.assertRaises(cfs.CfsError) as cm:
            self.ctx.ckpt_begin(job + "/step-1")
        self.assertEqual(cm.exception.errno, cfs.ECOMMITTED)
        # Committed content is where ckpt_path says, through the library and FUSE.
        path = self.ctx.ckpt_path(job + "/step-1")
        self.assertEqual(path, job + "/step-1")
        self.assertEqual(self.ctx.read_bytes(path + "/r2"), pattern(12, 100002))
        with open(self.on_mount(path + "/r0"), "rb") as fm:
            self.assertEqual(fm.read(), pattern(10, 100000))
        # A pending set: listed last, not latest, no path.
        self.ctx.ckpt_begin(job + "/step-3")
        infos = self.ctx.ckpt_list(job)
        self.assertEqual([(i.name, i.committed) for i in infos],
                         [("step-1", True), ("step-2", True), ("step-3", False)])
        self.assertLess(infos[0].seq, infos[1].seq)
        self.assertEqual(infos[2].seq, 0)
        self.assertEqual([(i.files, i.bytes) for i in infos[:2]], [(3, sizes[1]), (3, sizes[2])])
        self.assertGreater(infos[1].commit_ns, 0)
        self.assertEqual(self.ctx.ckpt_latest(job), "step-2")
        with self.assertRaises(FileNotFoundError):
            self.ctx.ckpt_path(job + "/step-3")
        # Retention: keep 2, applied at the next commit.
        self.assertEqual(self.ctx.ckpt_get_retention(job), 0)
        self.ctx.ckpt_set_retention(job, 2)
        self.assertEqual(self.ctx.ckpt_get_retention(job), 2)
        self.ctx.ckpt_commit(job + "/step-3")
        self.assertEqual([i.name for i in self.ctx.ckpt_list(job)], ["step-2", "step-3"])
        self.assertFalse(self.ctx.exists(job + "/step-1"))
        self.ctx.ckpt_remove(job + "/step-3")
        self.assertEqual(self.ctx.ckpt_latest(job), "step-2")
        with self.assertRaises(FileNotFoundError):
            self.ctx.ckpt_remove(job + "/step-3")

    def test_multiprocess_n_to_n_and_n_to_1(self):
        # 4 processes (spawned, each with its own Context) write a checkpoint:
        # a file each (N-to-N; even ranks through the async queue) and a slice
        # each of one shared file (N-to-1). The parent commits and verifies.
        job, nranks = self.dir + "/mpjob", 4
        mp = multiprocessing.get_context("spawn")
        with mp.Pool(nranks) as pool:
            results = pool.starmap(_rank_writer, [(CLUSTER["addr"], job + "/step-1", r) for r in range(nranks)])
        self.assertEqual(sorted(r[0] for r in results), list(range(nranks)))
        self.assertIsNone(self.ctx.ckpt_latest(job))  # nothing complete before the commit
        self.ctx.ckpt_commit(job + "/step-1")
        self.assertEqual(self.ctx.ckpt_latest(job), "step-1")
        d = self.ctx.ckpt_path(job + "/step-1")
        for rank, digest in results:
            got = self.ctx.read_bytes("%s/rank-%d" % (d, rank))
            self.assertEqual(len(got), _rank_size(rank))
            self.assertEqual(sha(got), digest)
            self.assertEqual(got, pattern(1000 + rank, _rank_size(rank)))
        shared = self.ctx.read_bytes(d + "/shared")
        self.assertEqual(len(shared), nranks * _SLICE)
        for r in range(nranks):
            self.assertEqual(shared[r * _SLICE:(r + 1) * _SLICE], pattern(2000 + r, _SLICE), "slice %d" % r)
        with open(self.on_mount(d + "/shared"), "rb") as fm:
            self.assertEqual(sha(fm.read()), sha(shared))
        info = self.ctx.ckpt_list(job)
        self.assertEqual(len(info), 1)
        self.assertEqual((info[0].files, info[0].bytes),
                         (nranks + 1, nranks * _SLICE + sum(_rank_size(r) for r in range(nranks))))


_SLICE = 3 * MiB + 5000  # not stripe aligned: neighbouring ranks share stripes


def _rank_size(rank):
    return 6 * MiB + 777 * rank


def _rank_writer(addr, set_name, rank):
    """One rank of the multiprocess test (runs in a spawned process)."""
    with cfs.Context(addr) as ctx:
        d = ctx.ckpt_begin(set_name)
        data = pattern(1000 + rank, _rank_size(rank))
        f = ctx.create("%s/rank-%d" % (d, rank))
        if rank % 2 == 0:
            with ctx.alloc_buffer(len(data)) as buf, ctx.ioqueue(depth=64, batch=16) as q:
                buf.view[:] = data
                reqs, off, i = [], 0, 0
                while off < len(data):
                    n = min((4096, 300000, MiB, 65536 + 1)[i % 4], len(data) - off)
                    reqs.append(cfs.IoRequest.write(f, buf, off, n, buf_offset=off, user_data=i))
                    off, i = off + n, i + 1
                q.run(reqs)
                f.close()  # waits for nothing: all reaped
        else:
            f.write(data[:MiB])
            f.write(data[MiB:])
            f.close()
        with ctx.open(d + "/shared", os.O_WRONLY | os.O_CREAT) as s:
            s.pwrite(pattern(2000 + rank, _SLICE), rank * _SLICE)
        return rank, sha(data)


if __name__ == "__main__":
    unittest.main(verbosity=2)
