"""cfs: Python bindings for libcfs, the CFS client library (include/cfs/cfs.h).

A thin ctypes layer over the stable C ABI of libcfs.so.0: no compile step, no
Python headers, any python3. Every libcfs call releases the GIL, so threads
do I/O in parallel. Errors raise CfsError (an OSError) with the errno or CFS_E*
code and cfs_strerror's text.

    import cfs
    with cfs.Context("127.0.0.1:9000") as ctx:          # or a cfs-fuse mount path
        with ctx.create("/data/x", layout=cfs.Layout(1 << 20, 4, 2)) as f:
            f.write(b"hello")
        d = ctx.ckpt_begin("job/step-1")                  # write the set's files into d
        ...
        ctx.ckpt_commit("job/step-1")
        ctx.ckpt_latest("job")                            # -> "step-1"

See docs/python.md.
"""

import collections
import ctypes
import ctypes.util
import errno as _errno
import os
import stat as _stat
import threading
import weakref

__all__ = [
    "CfsError", "Context", "File", "Layout", "Stat", "DirEntry", "CheckpointInfo",
    "Buffer", "IoQueue", "IoRequest", "Completion", "version", "strerror", "load_library",
    "ENOTREG", "ECOMMITTED", "ENOTMOUNT", "ECKPTBUSY", "ERRNO_BASE",
    "IO_READ", "IO_WRITE", "IO_FSYNC", "CKPT_PENDING", "CKPT_COMMITTED",
]

# Values of cfs.h (the ABI: these never change within major version 0).
ERRNO_BASE = 4096
ENOTREG = ERRNO_BASE + 1     # the buffer is not inside a registered buffer
ECOMMITTED = ERRNO_BASE + 2  # the checkpoint set is already committed
ENOTMOUNT = ERRNO_BASE + 3   # the path given to Context is not on a cfs mount
ECKPTBUSY = ERRNO_BASE + 4   # the checkpoint set has files open for writing here
IO_READ, IO_WRITE, IO_FSYNC = 0, 1, 2
CKPT_PENDING, CKPT_COMMITTED = 0, 1
_ABI_MAJOR = "0"


# ---------------------------------------------------------------------------
# C structures (cfs.h)

class _Layout(ctypes.Structure):
    _fields_ = [("unit", ctypes.c_uint32), ("k", ctypes.c_uint32), ("m", ctypes.c_uint32)]


class _Stat(ctypes.Structure):
    _fields_ = [("ino", ctypes.c_uint64), ("mode", ctypes.c_uint32), ("uid", ctypes.c_uint32),
                ("gid", ctypes.c_uint32), ("nlink", ctypes.c_uint32), ("size", ctypes.c_uint64),
                ("atime_ns", ctypes.c_int64), ("mtime_ns", ctypes.c_int64),
                ("ctime_ns", ctypes.c_int64), ("layout", _Layout)]


class _Dirent(ctypes.Structure):
    _fields_ = [("ino", ctypes.c_uint64), ("type", ctypes.c_uint32), ("name", ctypes.c_char * 256)]


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Iocb(ctypes.Structure):
    _fields_ = [("op", ctypes.c_uint32), ("fh", ctypes.c_int), ("buf", ctypes.c_int),
                ("addr", ctypes.c_void_p), ("len", ctypes.c_size_t), ("off", ctypes.c_uint64),
                ("user_data", ctypes.c_uint64)]


class _Ioevent(ctypes.Structure):
    _fields_ = [("user_data", ctypes.c_uint64), ("res", ctypes.c_int64)]


class _IoqOpts(ctypes.Structure):
    _fields_ = [("depth", ctypes.c_uint32), ("batch", ctypes.c_uint32)]


class _CkptInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 256), ("state", ctypes.c_uint32), ("seq", ctypes.c_uint64),
                ("commit_ns", ctypes.c_int64), ("files", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


# ---------------------------------------------------------------------------
# Loading the library

_P = ctypes.c_void_p
_I, _I64, _U32, _U64, _SZ = ctypes.c_int, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
_S = ctypes.c_char_p
_SIGNATURES = {
    "cfs_version": (_S, []),
    "cfs_strerror": (_S, [_I]),
    "cfs_mount": (_I, [_S, _S, ctypes.POINTER(_P)]),
    "cfs_unmount": (_I, [_P]),
    "cfs_open": (_I, [_P, _S, _I, _U32, ctypes.POINTER(_Layout)]),
    "cfs_close": (_I, [_P, _I]),
    "cfs_pread": (_I64, [_P, _I, _P, _SZ, _U64]),
    "cfs_pwrite": (_I64, [_P, _I, _P, _SZ, _U64]),
    "cfs_preadv": (_I64, [_P, _I, ctypes.POINTER(_Iovec), _I, _U64]),
    "cfs_pwritev": (_I64, [_P, _I, ctypes.POINTER(_Iovec), _I, _U64]),
    "cfs_fsync": (_I, [_P, _I]),
    "cfs_fstat": (_I, [_P, _I, ctypes.POINTER(_Stat)]),
    "cfs_ftruncate": (_I, [_P, _I, _U64]),
    "cfs_stat": (_I, [_P, _S, ctypes.POINTER(_Stat)]),
    "cfs_mkdir": (_I, [_P, _S, _U32]),
    "cfs_rmdir": (_I, [_P, _S]),
    "cfs_unlink": (_I, [_P, _S]),
    "cfs_rename": (_I, [_P, _S, _S]),
    "cfs_truncate": (_I, [_P, _S, _U64]),
    "cfs_readdir": (_I, [_P, _S, ctypes.POINTER(_U64), ctypes.POINTER(_Dirent), _I]),
    "cfs_setstripe": (_I, [_P, _S, ctypes.POINTER(_Layout)]),
    "cfs_buf_register": (_I, [_P, _P, _SZ]),
    "cfs_buf_alloc": (_I, [_P, _SZ, ctypes.POINTER(_P)]),
    "cfs_buf_unregister": (_I, [_P, _I]),
    "cfs_ioq_create": (_I, [_P, ctypes.POINTER(_IoqOpts), ctypes.POINTER(_P)]),
    "cfs_ioq_destroy": (_I, [_P]),
    "cfs_ioq_submit": (_I, [_P, ctypes.POINTER(_Iocb), _I]),
    "cfs_ioq_reap": (_I, [_P, ctypes.POINTER(_Ioevent), _I, _I, _I]),
    "cfs_ioq_fd": (_I, [_P]),
    "cfs_ioq_pending": (_I, [_P]),
    "cfs_ckpt_begin": (_I, [_P, _S, ctypes.c_char_p, _SZ]),
    "cfs_ckpt_commit": (_I, [_P, _S]),
    "cfs_ckpt_latest": (_I, [_P, _S, ctypes.c_char_p, _SZ]),
    "cfs_ckpt_path": (_I, [_P, _S, ctypes.c_char_p, _SZ]),
    "cfs_ckpt_remove": (_I, [_P, _S]),
    "cfs_ckpt_set_retention": (_I, [_P, _S, _U32]),
    "cfs_ckpt_get_retention": (_I, [_P, _S]),
    "cfs_ckpt_list": (_I, [_P, _S, ctypes.POINTER(_CkptInfo), _I]),
}

_lib = None
_lib_lock = threading.Lock()


def _candidates():
    env = os.environ.get("CFS_LIBRARY")
    if env:
        # An explicit choice is final: a wrong path must fail, not fall back.
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    name = "libcfs.so." + _ABI_MAJOR
    # Installed as LIBDIR/python3/dist-packages/cfs.py next to LIBDIR/libcfs.so.0;
    # or copied right next to the library.
    paths = [os.path.join(here, name), os.path.normpath(os.path.join(here, "..", "..", name))]
    found = ctypes.util.find_library("cfs")
    if found:
        paths.append(found)
    paths.append(name)  # the dynamic linker's search (LD_LIBRARY_PATH, ld.so.cache)
    return paths, False


def load_library():
    """Loads libcfs (once) and returns the ctypes.CDLL.

    Search order: $CFS_LIBRARY (a path), libcfs.so.0 next to this module or in
    the library directory two levels up (the install layout), then
    ctypes.util.find_library("cfs") and the dynamic linker's "libcfs.so.0"."""
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        paths, explicit = _candidates()
        errors = []
        for p in paths:
            if os.sep in p and not os.path.exists(p) and not explicit:
                continue
            try:
                lib = ctypes.CDLL(p)
            except OSError as e:
                errors.append(str(e))  # names the path already
                if explicit:
                    break
                continue
            for fname, (res, args) in _SIGNATURES.items():
                fn = getattr(lib, fname)
                fn.restype, fn.argtypes = res, args
            v = lib.cfs_version().decode()
            if v.split(".")[0] != _ABI_MAJOR:
                raise ImportError("%s is libcfs %s; this module needs major version %s" % (p, v, _ABI_MAJOR))
            _lib = lib
            return lib
        raise ImportError("cannot load libcfs (set CFS_LIBRARY to libcfs.so.0): " +
                          ("; ".join(errors) if errors else "not found in " + ", ".join(paths)))


def version():
    """The loaded libcfs's version, "MAJOR.MINOR.PATCH"."""
    return load_library().cfs_version().decode()


def strerror(code):
    """cfs_strerror: text for an errno value or a CFS_E* code (either sign)."""
    return load_library().cfs_strerror(int(code)).decode()


# ---------------------------------------------------------------------------
# Errors

class CfsError(OSError):
    """A libcfs call failed. .errno is the positive errno value or CFS_E* code
    (ENOTREG, ECOMMITTED, ...), .strerror cfs_strerror's text, .filename the
    path involved if any, .op the C function that failed.

    Errors with a matching OSError subclass are also instances of it, so
    `except FileNotFoundError` catches -ENOENT from libcfs."""

    def __init__(self, code, op="", filename=None):
        code = abs(int(code))
        super().__init__(code, strerror(code), filename)
        self.op = op

    def __str__(self):
        where = " (%s)" % self.op if self.op else ""
        name = ": %r" % self.filename if self.filename is not None else ""
        return "[%s] %s%s%s" % (_code_name(self.errno), self.strerror, name, where)

    def __reduce__(self):  # survives pickling (multiprocessing)
        return (_make_error, (self.errno, self.op, self.filename))


def _code_name(code):
    names = {ENOTREG: "CFS_ENOTREG", ECOMMITTED: "CFS_ECOMMITTED", ENOTMOUNT: "CFS_ENOTMOUNT",
             ECKPTBUSY: "CFS_ECKPTBUSY"}
    return names.get(code) or _errno.errorcode.get(code, "E%d" % code)


_BUILTIN = {
    _errno.ENOENT: FileNotFoundError, _errno.EEXIST: FileExistsError,
    _errno.EISDIR: IsADirectoryError, _errno.ENOTDIR: NotADirectoryError,
    _errno.EACCES: PermissionError, _errno.EPERM: PermissionError,
    _errno.ETIMEDOUT: TimeoutError, _errno.ECONNRESET: ConnectionResetError,
    _errno.ECONNREFUSED: ConnectionRefusedError, _errno.EAGAIN: BlockingIOError,
    _errno.EINTR: InterruptedError,
}
_SUBCLASSES = {}


def _error_class(code):
    base = _BUILTIN.get(code)
    if base is None:
        return CfsError
    cls = _SUBCLASSES.get(base)
    if cls is None:
        cls = type("Cfs" + base.__name__, (CfsError, base), {"__module__": __name__})
        _SUBCLASSES[base] = cls
    return cls


def _make_error(code, op="", filename=None):
    code = abs(int(code))
    return _error_class(code)(code, op, filename)


def _check(rc, op, filename=None):
    if rc < 0:
        raise _make_error(-rc, op, filename)
    return rc


def _path(p):
    p = os.fspath(p)
    return p.encode() if isinstance(p, str) else bytes(p)


# ---------------------------------------------------------------------------
# Plain data

Layout = collections.namedtuple("Layout", "unit k m", defaults=(0, 0, 0))
Layout.__doc__ = """A file's striping: unit bytes, k data and m parity units; 0 = inherit."""

Stat = collections.namedtuple(
    "Stat", "ino mode uid gid nlink size atime_ns mtime_ns ctime_ns layout")
Stat.is_dir = property(lambda s: _stat.S_ISDIR(s.mode))
Stat.is_file = property(lambda s: _stat.S_ISREG(s.mode))

DirEntry = collections.namedtuple("DirEntry", "name ino type")
DirEntry.is_dir = property(lambda d: d.type == 4)
DirEntry.is_file = property(lambda d: d.type == 8)

CheckpointInfo = collections.namedtuple("CheckpointInfo", "name state seq commit_ns files bytes")
CheckpointInfo.committed = property(lambda c: c.state == CKPT_COMMITTED)


def _to_stat(st):
    return Stat(st.ino, st.mode, st.uid, st.gid, st.nlink, st.size, st.atime_ns, st.mtime_ns,
                st.ctime_ns, Layout(st.layout.unit, st.layout.k, st.layout.m))


def _layout_ptr(layout):
    if layout is None:
        return None
    unit, k, m = layout
    return ctypes.byref(_Layout(unit, k, m))


_OPEN_MODES = {
    "r": os.O_RDONLY, "r+": os.O_RDWR, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND, "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "x+": os.O_RDWR | os.O_CREAT | os.O_EXCL,
}


def _flags(flags):
    if isinstance(flags, int):
        return flags
    f = flags.replace("b", "")
    if f not in _OPEN_MODES:
        raise ValueError("bad open mode %r (use r, r+, w, w+, a, a+, x, x+ or os.O_* flags)" % flags)
    return _OPEN_MODES[f]


class _Closable:
    """`with` closes it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _ClosedWhenCollected(_Closable):
    """`with` closes it, and so does garbage collection (errors ignored)."""

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class _Pinned:
    """A C pointer to a Python buffer's bytes, without copying when possible:
    bytes are passed as they are, writable buffers (bytearray, mmap, array,
    numpy, memoryview of those) through ctypes.from_buffer. Read-only buffers
    other than bytes are copied once (Python exposes no address for them)."""

    __slots__ = ("obj", "ptr", "len")

    def __init__(self, data, writable):
        if isinstance(data, Buffer):
            data = data.view
        if isinstance(data, bytes) and not writable:
            self.obj, self.len = data, len(data)
            self.ptr = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p)
            return
        mv = memoryview(data)
        if not mv.contiguous:
            raise ValueError("buffer must be contiguous")
        mv = mv.cast("B")
        self.len = mv.nbytes
        if mv.readonly:
            if writable:
                raise TypeError("a writable buffer is needed (bytearray, memoryview of one, mmap)")
            b = mv.tobytes()
            self.obj, self.ptr = b, ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p)
            return
        arr = (ctypes.c_char * self.len).from_buffer(mv) if self.len else None
        self.obj = (mv, arr)
        self.ptr = ctypes.cast(arr, ctypes.c_void_p) if arr is not None else ctypes.c_void_p()


# ---------------------------------------------------------------------------
# Context

class Context(_ClosedWhenCollected):
    """A client of one cluster (cfs_mount). `cluster` is "HOST:PORT" of the
    M-worker (several separated by commas), the path of a cfs-fuse mount (or
    of anything inside one), or None for $CFS_CLUSTER. `options` is a dict or
    the "key=value,..." string cfs_mount takes (timeout_ms, readahead, ...).

    Safe to share between threads. Not across fork(): make one per process.
    Closing it (close() or the end of a with block) closes its files, queues
    and buffers."""

    def __init__(self, cluster=None, options=None):
        self._lib = load_library()
        self._ptr = None
        self._files = weakref.WeakSet()
        self._queues = weakref.WeakSet()
        self._buffers = weakref.WeakSet()
        if isinstance(options, dict):
            options = ",".join("%s=%s" % kv for kv in options.items())
        if cluster is not None:
            cluster = os.fspath(cluster)
        elif not os.environ.get("CFS_CLUSTER"):
            raise CfsError(_errno.EINVAL, "cfs_mount: no cluster given and CFS_CLUSTER is not set")
        else:
            cluster = os.environ["CFS_CLUSTER"]
        ptr = ctypes.c_void_p()
        _check(self._lib.cfs_mount(_path(cluster), options.encode() if options else None,
                                   ctypes.byref(ptr)), "cfs_mount", cluster)
        self._ptr = ptr
        self.cluster = cluster

    # -- lifetime --
    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Destroys the queues (waiting for their requests), frees the buffers
        and closes every open file (flushing), then frees the context."""
        if self._ptr is None:
            return
        for q in list(self._queues):
            q.close()
        for b in list(self._buffers):
            b._forget()  # cfs_unmount frees them with the context
        for f in list(self._files):
            f._fh = -1   # cfs_unmount flushes and closes them
        ptr, self._ptr = self._ptr, None
        _check(self._lib.cfs_unmount(ptr), "cfs_unmount")

    unmount = close

    def _p(self):
        if self._ptr is None:
            raise ValueError("operation on a closed cfs.Context")
        return self._ptr

    # -- files --
    def open(self, path, flags="r", mode=0o644, layout=None):
        """Opens a file. flags: "r", "r+", "w", "w+", "a", "a+", "x", "x+" (as
        open(); "b" ignored) or os.O_* flags. layout (a Layout or (unit, k, m))
        applies when the file is created."""
        fh = _check(self._lib.cfs_open(self._p(), _path(path), _flags(flags), mode, _layout_ptr(layout)),
                    "cfs_open", path)
        f = File(self, fh, os.fspath(path), _flags(flags))
        self._files.add(f)
        return f

    def create(self, path, layout=None, mode=0o644, exclusive=False, readable=False):
        """Creates (or truncates) a file for writing with an optional layout hint."""
        flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        return self.open(path, flags, mode, layout)

    def read_bytes(self, path):
        """The whole content of a file."""
        with self.open(path) as f:
            return f.read()

    def write_bytes(self, path, data, layout=None):
        """Creates/replaces a file with `data`; closes it (visible to others)."""
        with self.create(path, layout=layout) as f:
            f.pwrite(data, 0)

    # -- namespace --
    def stat(self, path):
        st = _Stat()
        _check(self._lib.cfs_stat(self._p(), _path(path), ctypes.byref(st)), "cfs_stat", path)
        return _to_stat(st)

    def exists(self, path):
        try:
            self.stat(path)
            return True
        except FileNotFoundError:
            return False

    def mkdir(self, path, mode=0o755, parents=False, exist_ok=False):
        """Makes a directory; parents=True makes missing parents too."""
        path = os.fspath(path)
        if parents:
            parts = [p for p in path.split("/") if p]
            for i in range(1, len(parts)):
                rc = self._lib.cfs_mkdir(self._p(), _path("/" + "/".join(parts[:i])), mode)
                if rc < 0 and rc != -_errno.EEXIST:
                    _check(rc, "cfs_mkdir", "/" + "/".join(parts[:i]))
        rc = self._lib.cfs_mkdir(self._p(), _path(path), mode)
        if rc == -_errno.EEXIST and exist_ok:
            return
        _check(rc, "cfs_mkdir", path)

    def rmdir(self, path):
        _check(self._lib.cfs_rmdir(self._p(), _path(path)), "cfs_rmdir", path)

    def unlink(self, path):
        _check(self._lib.cfs_unlink(self._p(), _path(path)), "cfs_unlink", path)

    remove = unlink

    def rename(self, src, dst):
        """Renames, replacing an existing dst as rename(2) does."""
        _check(self._lib.cfs_rename(self._p(), _path(src), _path(dst)), "cfs_rename", src)

    def truncate(self, path, size):
        _check(self._lib.cfs_truncate(self._p(), _path(path), size), "cfs_truncate", path)

    def setstripe(self, path, layout):
        """Default layout of new files in directory `path`."""
        _check(self._lib.cfs_setstripe(self._p(), _path(path), _layout_ptr(layout)), "cfs_setstripe", path)

    def scandir(self, path, batch=256):
        """Yields DirEntry(name, ino, type) for each entry (cfs_readdir; no "."/"..")."""
        cookie = ctypes.c_uint64(0)
        ents = (_Dirent * batch)()
        while True:
            n = _check(self._lib.cfs_readdir(self._p(), _path(path), ctypes.byref(cookie), ents, batch),
                       "cfs_readdir", path)
            if n == 0:
                return
            for e in ents[:n]:
                name = e.name.decode(errors="surrogateescape")
                if name not in (".", ".."):
                    yield DirEntry(name, e.ino, e.type)

    def listdir(self, path="/"):
        """Names in directory `path`, in the order cfs_readdir gives them."""
        return [e.name for e in self.scandir(path)]

    # -- checkpoint sets --
    def _str_out(self, fn, name, arg, *, none_on_enoent=False):
        cap = 4096
        while True:
            out = ctypes.create_string_buffer(cap)
            rc = fn(self._p(), _path(arg), out, cap)
            if rc == -_errno.ERANGE and cap < (1 << 20):
                cap *= 4
                continue
            if rc == -_errno.ENOENT and none_on_enoent:
                return None
            _check(rc, name, arg)
            return out.value.decode(errors="surrogateescape")

    def ckpt_begin(self, set_name):
        """Creates or joins checkpoint set "JOB/NAME"; returns the CFS directory
        to write its files into. CfsError(ECOMMITTED) if it is committed."""
        return self._str_out(self._lib.cfs_ckpt_begin, "cfs_ckpt_begin", set_name)

    def ckpt_commit(self, set_name):
        """Makes the set durable and visible as complete, atomically."""
        _check(self._lib.cfs_ckpt_commit(self._p(), _path(set_name)), "cfs_ckpt_commit", set_name)

    def ckpt_latest(self, job):
        """Name of the newest committed set of `job`, or None if it has none."""
        return self._str_out(self._lib.cfs_ckpt_latest, "cfs_ckpt_latest", job, none_on_enoent=True)

    def ckpt_path(self, set_name):
        """CFS directory of a committed set's files."""
        return self._str_out(self._lib.cfs_ckpt_path, "cfs_ckpt_path", set_name)

    def ckpt_list(self, job):
        """CheckpointInfo of every set of `job`: committed oldest first, then pending."""
        cap = 64
        while True:
            out = (_CkptInfo * cap)()
            n = _check(self._lib.cfs_ckpt_list(self._p(), _path(job), out, cap), "cfs_ckpt_list", job)
            if n <= cap:
                return [CheckpointInfo(c.name.decode(errors="surrogateescape"), c.state, c.seq,
                                       c.commit_ns, c.files, c.bytes) for c in out[:n]]
            cap = n + 16  # sets were added between the calls: ask again

    def ckpt_remove(self, set_name):
        """Deletes a set (committed or pending) with its files."""
        _check(self._lib.cfs_ckpt_remove(self._p(), _path(set_name)), "cfs_ckpt_remove", set_name)

    def ckpt_set_retention(self, job, keep):
        """Keep only the newest `keep` committed sets (0: all), applied at each commit."""
        _check(self._lib.cfs_ckpt_set_retention(self._p(), _path(job), keep), "cfs_ckpt_set_retention", job)

    def ckpt_get_retention(self, job):
        return _check(self._lib.cfs_ckpt_get_retention(self._p(), _path(job)), "cfs_ckpt_get_retention", job)

    # -- asynchronous I/O --
    def alloc_buffer(self, size):
        """A registered buffer of `size` bytes allocated by libcfs (cfs_buf_alloc)."""
        addr = ctypes.c_void_p()
        bid = _check(self._lib.cfs_buf_alloc(self._p(), size, ctypes.byref(addr)), "cfs_buf_alloc")
        b = Buffer(self, bid, addr.value, size, None)
        self._buffers.add(b)
        return b

    def register_buffer(self, obj):
        """Registers the memory of a writable Python buffer (bytearray, mmap,
        ...) for asynchronous I/O (cfs_buf_register); keeps `obj` alive until
        the Buffer is closed. Do not resize obj while registered."""
        pin = _Pinned(obj, writable=True)
        if pin.len == 0:
            raise ValueError("cannot register an empty buffer")
        bid = _check(self._lib.cfs_buf_register(self._p(), pin.ptr, pin.len), "cfs_buf_register")
        b = Buffer(self, bid, pin.ptr.value, pin.len, pin)
        self._buffers.add(b)
        return b

    def ioqueue(self, depth=64, batch=16):
        """An I/O queue (cfs_ioq_create): at most `depth` requests in flight,
        `batch` started together. Use each queue from one thread at a time."""
        return IoQueue(self, depth, min(batch, depth))


# ---------------------------------------------------------------------------
# File

class File(_ClosedWhenCollected):
    """An open file of a Context (cfs_open). pread/pwrite at explicit offsets,
    read/write/seek at a position of its own, like a raw binary file."""

    def __init__(self, ctx, fh, path, flags):
        self._ctx, self._fh, self.path, self.flags = ctx, fh, path, flags
        self._pos = 0

    def __repr__(self):
        return "<cfs.File %r fh=%d%s>" % (self.path, self._fh, " closed" if self.closed else "")

    @property
    def closed(self):
        return self._fh < 0 or self._ctx.closed

    @property
    def fh(self):
        """The libcfs handle (for cfs_iocb.fh)."""
        if self.closed:
            raise ValueError("I/O on a closed cfs.File")
        return self._fh

    def close(self):
        """Flushes and releases the handle (waits for its async requests)."""
        if self.closed:
            self._fh = -1
            return
        fh, self._fh = self._fh, -1
        _check(self._ctx._lib.cfs_close(self._ctx._p(), fh), "cfs_close", self.path)

    def pread(self, size, offset):
        """Up to `size` bytes at `offset` (fewer only at end of file)."""
        buf = ctypes.create_string_buffer(size)
        n = _check(self._ctx._lib.cfs_pread(self._ctx._p(), self.fh, buf, size, offset), "cfs_pread", self.path)
        return buf.raw[:n]

    def pread_into(self, buf, offset):
        """Reads into a writable buffer (bytearray, memoryview, mmap, Buffer)
        without copying; returns the count."""
        pin = _Pinned(buf, writable=True)
        return _check(self._ctx._lib.cfs_pread(self._ctx._p(), self.fh, pin.ptr, pin.len, offset),
                      "cfs_pread", self.path)

    def pwrite(self, data, offset):
        """Writes all of `data` (any bytes-like object) at `offset`; returns its length."""
        pin = _Pinned(data, writable=False)
        return _check(self._ctx._lib.cfs_pwrite(self._ctx._p(), self.fh, pin.ptr, pin.len, offset),
                      "cfs_pwrite", self.path)

    @staticmethod
    def _iov(bufs, writable):
        pins = [_Pinned(b, writable) for b in bufs]
        iov = (_Iovec * max(1, len(pins)))()
        for i, p in enumerate(pins):
            iov[i].iov_base, iov[i].iov_len = p.ptr.value, p.len
        return pins, iov

    def pwritev(self, bufs, offset):
        """Writes the buffers in order as one contiguous range (cfs_pwritev)."""
        pins, iov = self._iov(bufs, False)
        return _check(self._ctx._lib.cfs_pwritev(self._ctx._p(), self.fh, iov, len(pins), offset),
                      "cfs_pwritev", self.path)

    def preadv_into(self, bufs, offset):
        """Fills the writable buffers in order from one contiguous range (cfs_preadv)."""
        pins, iov = self._iov(bufs, True)
        return _check(self._ctx._lib.cfs_preadv(self._ctx._p(), self.fh, iov, len(pins), offset),
                      "cfs_preadv", self.path)

    def read(self, size=-1):
        """Reads from the position; size < 0 reads to the end of the file."""
        if size is None or size < 0:
            chunks = []
            step = 4 << 20
            while True:
                b = self.pread(step, self._pos)
                self._pos += len(b)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)
        b = self.pread(size, self._pos)
        self._pos += len(b)
        return b

    def readinto(self, buf):
        n = self.pread_into(buf, self._pos)
        self._pos += n
        return n

    def write(self, data):
        """Writes at the position (at the end for "a" files); returns the count."""
        n = self.pwrite(data, self._pos)
        self._pos = self.stat().size if self.flags & os.O_APPEND else self._pos + n
        return n

    def seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.stat().size + offset
        else:
            raise ValueError("bad whence %r" % whence)
        if pos < 0:
            raise ValueError("negative seek position %d" % pos)
        self._pos = pos
        return pos

    def tell(self):
        return self._pos

    def fsync(self):
        """Makes everything written through this handle durable."""
        _check(self._ctx._lib.cfs_fsync(self._ctx._p(), self.fh), "cfs_fsync", self.path)

    def stat(self):
        st = _Stat()
        _check(self._ctx._lib.cfs_fstat(self._ctx._p(), self.fh, ctypes.byref(st)), "cfs_fstat", self.path)
        return _to_stat(st)

    def truncate(self, size=None):
        """Sets the size (default: the current position)."""
        size = self._pos if size is None else size
        _check(self._ctx._lib.cfs_ftruncate(self._ctx._p(), self.fh, size), "cfs_ftruncate", self.path)
        return size


# ---------------------------------------------------------------------------
# Asynchronous I/O

class Buffer(_Closable):
    """A registered buffer. .view is a writable memoryview of its bytes (no
    copy), .array the same memory as a ctypes char array, .addr its address.
    Views must not be used after close() (the memory of alloc_buffer is freed).
    close() raises CfsError(EBUSY) while requests using it are in flight."""

    def __init__(self, ctx, bid, addr, size, pin):
        self._ctx, self.id, self.addr, self.size, self._pin = ctx, bid, addr, size, pin
        self.array = (ctypes.c_char * size).from_address(addr)
        self.view = memoryview(self.array).cast("B")

    def __len__(self):
        return self.size

    def __repr__(self):
        return "<cfs.Buffer id=%d size=%d%s>" % (self.id, self.size, " closed" if self.id < 0 else "")

    @property
    def closed(self):
        return self.id < 0 or self._ctx.closed

    def _forget(self):
        self.id = -1
        self.array = None
        try:
            self.view.release()
        except BufferError:  # something still exports it; it must not be used anyway
            pass

    def close(self):
        """Unregisters (and for alloc_buffer frees) the buffer."""
        if self.closed:
            return
        _check(self._ctx._lib.cfs_buf_unregister(self._ctx._p(), self.id), "cfs_buf_unregister")
        self._forget()
        self._pin = None

    unregister = close

    def _span(self, offset, length):
        if self.closed:
            raise ValueError("I/O on a closed cfs.Buffer")
        if length is None:
            length = self.size - offset
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError("range [%d, %d) outside the buffer of %d bytes" % (offset, offset + length, self.size))
        return self.addr + offset, length


class IoRequest(collections.namedtuple("IoRequest", "op file buffer buf_offset length offset user_data")):
    """One asynchronous request: op (IO_READ, IO_WRITE, IO_FSYNC) on `file`,
    moving `length` bytes between buffer[buf_offset:] and the file at `offset`."""

    __slots__ = ()

    @classmethod
    def write(cls, file, buffer, offset, length=None, buf_offset=0, user_data=0):
        return cls(IO_WRITE, file, buffer, buf_offset, length, offset, user_data)

    @classmethod
    def read(cls, file, buffer, offset, length=None, buf_offset=0, user_data=0):
        return cls(IO_READ, file, buffer, buf_offset, length, offset, user_data)

    @classmethod
    def fsync(cls, file, user_data=0):
        return cls(IO_FSYNC, file, None, 0, 0, 0, user_data)


class Completion(collections.namedtuple("Completion", "user_data res")):
    """A reaped request: res is the bytes moved or a negative error."""

    __slots__ = ()

    @property
    def ok(self):
        return self.res >= 0

    def check(self):
        """Raises CfsError for a failed request; returns res otherwise."""
        if self.res < 0:
            raise _make_error(-self.res, "async request user_data=%d" % self.user_data)
        return self.res


class IoQueue(_ClosedWhenCollected):
    """A submission/completion queue (cfs_ioq). submit() a list of IoRequest,
    reap() Completions; fileno() polls readable while completions wait."""

    def __init__(self, ctx, depth, batch):
        self._ctx = ctx
        self._lib = ctx._lib
        ptr = ctypes.c_void_p()
        _check(self._lib.cfs_ioq_create(ctx._p(), ctypes.byref(_IoqOpts(depth, batch)), ctypes.byref(ptr)),
               "cfs_ioq_create")
        self._ptr = ptr
        self.depth, self.batch = depth, batch
        self._events = (_Ioevent * depth)()
        self._inflight = []  # Buffers and Files of requests in flight: kept alive
        ctx._queues.add(self)

    @property
    def closed(self):
        return self._ptr is None

    def _q(self):
        if self._ptr is None:
            raise ValueError("operation on a closed cfs.IoQueue")
        return self._ptr

    def close(self):
        """Waits for the requests in flight and frees the queue."""
        if self._ptr is None:
            return
        ptr, self._ptr = self._ptr, None
        self._lib.cfs_ioq_destroy(ptr)
        self._inflight = []

    def submit(self, requests):
        """Submits IoRequests in order; returns how many were accepted (like
        io_submit): fewer when the queue fills, 0 when it is full. Raises
        CfsError if the first request is invalid (a later invalid one stops
        the batch there and raises on the next submit starting at it)."""
        requests = list(requests)
        if not requests:
            return 0
        cbs = (_Iocb * len(requests))()
        for i, r in enumerate(requests):
            cb = cbs[i]
            cb.op, cb.fh, cb.user_data = r.op, r.file.fh, r.user_data
            if r.op != IO_FSYNC:
                cb.buf = r.buffer.id
                cb.addr, cb.len = r.buffer._span(r.buf_offset, r.length)
                cb.off = r.offset
            else:
                cb.buf = -1
        n = self._lib.cfs_ioq_submit(self._q(), cbs, len(cbs))
        if n == -_errno.EAGAIN:
            return 0
        _check(n, "cfs_ioq_submit")
        self._inflight.extend((r.file, r.buffer) for r in requests[:n])
        return n

    def reap(self, min=1, max=None, timeout=None):
        """Completions: waits until `min` are there or `timeout` seconds passed
        (None: no limit, 0: poll); returns up to `max` (default: depth)."""
        max = self.depth if max is None else max
        if max > len(self._events):
            self._events = (_Ioevent * max)()
        ms = -1 if timeout is None else int(timeout * 1000)
        n = _check(self._lib.cfs_ioq_reap(self._q(), self._events, min, max, ms), "cfs_ioq_reap")
        out = [Completion(e.user_data, e.res) for e in self._events[:n]]
        if self._lib.cfs_ioq_pending(self._q()) == 0:
            self._inflight = []
        return out

    def run(self, requests):
        """Submits every request (reaping as the queue fills) and waits for all
        of them; returns their Completions, raising CfsError on the first
        failed one after all finished."""
        requests = list(requests)
        done, i = [], 0
        while i < len(requests):
            n = self.submit(requests[i:])
            i += n
            if i < len(requests) or n == 0:
                done.extend(self.reap(1))
        while self.pending:
            done.extend(self.reap(1))
        for c in done:
            c.check()
        return done

    def fileno(self):
        """The queue's eventfd (readable while completions wait), for select/poll."""
        return _check(self._lib.cfs_ioq_fd(self._q()), "cfs_ioq_fd")

    fd = fileno

    @property
    def pending(self):
        """Requests submitted and not yet reaped."""
        return _check(self._lib.cfs_ioq_pending(self._q()), "cfs_ioq_pending")
