// The asynchronous C API (registered buffers, I/O queues) against a real
// local cluster: deep queues, mixed request sizes, plain and parity layouts,
// many threads on one context, the eventfd, every documented error, and a
// cluster that goes away under a queue. Data is checked by content, through
// the API and through the FUSE mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cfs/cfs.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

LocalCluster* cluster = nullptr;

// Runs every request through q, as many at a time as it takes, and checks each
// completion's result against want[user_data].
void RunAll(cfs_ioq* q, std::vector<cfs_iocb> cbs, const std::map<uint64_t, int64_t>& want) {
  size_t next = 0, done = 0;
  std::vector<cfs_ioevent> ev(64);
  while (done < cbs.size()) {
    if (next < cbs.size()) {
      int n = cfs_ioq_submit(q, &cbs[next], static_cast<int>(cbs.size() - next));
      ASSERT_TRUE(n > 0 || n == -EAGAIN) << cfs_strerror(n);
      if (n > 0) next += static_cast<size_t>(n);
    }
    int got = cfs_ioq_reap(q, ev.data(), 1, static_cast<int>(ev.size()), 60000);
    ASSERT_GT(got, 0) << "no completion within 60 s";
    for (int i = 0; i < got; i++) {
      auto it = want.find(ev[i].user_data);
      ASSERT_NE(it, want.end());
      ASSERT_EQ(ev[i].res, it->second) << "request " << ev[i].user_data << ": "
                                       << (ev[i].res < 0 ? cfs_strerror(static_cast<int>(ev[i].res)) : "");
    }
    done += static_cast<size_t>(got);
  }
  EXPECT_EQ(cfs_ioq_pending(q), 0);
}

class AsyncIoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster = new LocalCluster();  // 6+0 by default; parity files ask for 4+2
    std::string err = cluster->Up();
    ASSERT_EQ(err, "") << "cfs local up failed:\n" << err;
  }
  static void TearDownTestSuite() {
    delete cluster;
    cluster = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster);
    ASSERT_EQ(cfs_mount(cluster->MetaAddr().c_str(), nullptr, &ctx_), 0);
  }
  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(cfs_unmount(ctx_), 0);
    }
  }

  cfs_ctx* ctx_ = nullptr;
};

// Mixed sizes from 1 byte to 9 MiB, sequential in the file, submitted 256 deep.
std::vector<size_t> MixedSizes(uint64_t total, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const size_t choices[] = {1, 4096, 65536, 333333, 1 << 20, 4 << 20, (9 << 20) + 7, 256 << 10};
  std::vector<size_t> out;
  uint64_t off = 0;
  while (off < total) {
    size_t n = std::min<uint64_t>(choices[rng() % 8], total - off);
    out.push_back(n);
    off += n;
  }
  return out;
}

void WriteReadBack(cfs_ctx* ctx, const std::string& path, const cfs_layout* hint, uint64_t size,
                   uint64_t seed, uint32_t depth, uint32_t batch) {
  void* wmem = nullptr;
  int wbuf = cfs_buf_alloc(ctx, size, &wmem);
  ASSERT_GE(wbuf, 0) << cfs_strerror(wbuf);
  FillPattern(wmem, size, seed);
  int fh = cfs_open(ctx, path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0644, hint);
  ASSERT_GE(fh, 0) << cfs_strerror(fh);
  cfs_ioq_opts o{depth, batch};
  cfs_ioq* q = nullptr;
  ASSERT_EQ(cfs_ioq_create(ctx, &o, &q), 0);

  std::vector<cfs_iocb> cbs;
  std::map<uint64_t, int64_t> want;
  uint64_t off = 0;
  for (size_t n : MixedSizes(size, seed)) {
    cbs.push_back({CFS_IO_WRITE, fh, wbuf, static_cast<char*>(wmem) + off, n, off, cbs.size()});
    want[cbs.size() - 1] = static_cast<int64_t>(n);
    off += n;
  }
  // Shuffled: completion order and merging must not depend on submission order.
  std::shuffle(cbs.begin() + 1, cbs.end(), std::mt19937_64(seed));
  RunAll(q, cbs, want);
  cfs_iocb fs{CFS_IO_FSYNC, fh, -1, nullptr, 0, 0, 999999};
  ASSERT_EQ(cfs_ioq_submit(q, &fs, 1), 1);
  cfs_ioevent ev;
  ASSERT_EQ(cfs_ioq_reap(q, &ev, 1, 1, 60000), 1);
  EXPECT_EQ(ev.user_data, 999999u);
  EXPECT_EQ(ev.res, 0);

  // Read back asynchronously in other sizes, in random order, into a second buffer.
  void* rmem = nullptr;
  int rbuf = cfs_buf_alloc(ctx, size + 4096, &rmem);
  ASSERT_GE(rbuf, 0);
  std::memset(rmem, 0xEE, size + 4096);
  cbs.clear();
  off = 0;
  for (size_t n : MixedSizes(size, seed + 1)) {
    cbs.push_back({CFS_IO_READ, fh, rbuf, static_cast<char*>(rmem) + off, n, off, 0});
    off += n;
  }
  // One read past the end: short.
  cbs.push_back({CFS_IO_READ, fh, rbuf, static_cast<char*>(rmem) + size, 4096, size - 100, 0});
  std::shuffle(cbs.begin(), cbs.end(), std::mt19937_64(seed + 2));
  std::map<uint64_t, int64_t> rwant;
  for (size_t i = 0; i < cbs.size(); i++) {
    cbs[i].user_data = i;
    rwant[i] = static_cast<int64_t>(cbs[i].off == size - 100 ? 100 : cbs[i].len);
  }
  RunAll(q, cbs, rwant);
  ASSERT_EQ(std::memcmp(rmem, wmem, size - 100), 0) << path << ": async read-back differs";
  EXPECT_EQ(cfs_ioq_destroy(q), 0);
  EXPECT_EQ(cfs_close(ctx, fh), 0);
  EXPECT_EQ(cfs_buf_unregister(ctx, wbuf), 0);
  EXPECT_EQ(cfs_buf_unregister(ctx, rbuf), 0);
}

TEST_F(AsyncIoTest, DeepQueueMixedSizesPlainAndParityLayouts) {
  const uint64_t size = (96ull << 20) + 12345;
  cfs_layout plain{1 << 20, 6, 0}, parity{1 << 20, 4, 2}, small{256 << 10, 4, 2};
  WriteReadBack(ctx_, "/async-plain", &plain, size, 1, 256, 16);
  WriteReadBack(ctx_, "/async-parity", &parity, size, 2, 256, 16);
  WriteReadBack(ctx_, "/async-small-units", &small, size, 3, 32, 4);
  WriteReadBack(ctx_, "/async-depth1", &parity, 8 << 20, 4, 1, 1);
  // The same bytes through the FUSE mount.
  EXPECT_EQ(CheckPatternFile(cluster->Path("async-plain"), size, 1), "");
  EXPECT_EQ(CheckPatternFile(cluster->Path("async-parity"), size, 2), "");
  EXPECT_EQ(CheckPatternFile(cluster->Path("async-small-units"), size, 3), "");
}

// Contiguous requests in one registered buffer merge into whole stripes; the
// result must be the same bytes whatever the batch.
TEST_F(AsyncIoTest, ContiguousRequestsMergeAcrossBatches) {
  for (uint32_t batch : {1u, 3u, 64u}) {
    const uint64_t size = 40ull << 20;
    void* mem;
    int b = cfs_buf_alloc(ctx_, size, &mem);
    ASSERT_GE(b, 0);
    FillPattern(mem, size, 100 + batch);
    cfs_layout parity{1 << 20, 4, 2};
    std::string path = "/merge-" + std::to_string(batch);
    int fh = cfs_open(ctx_, path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644, &parity);
    ASSERT_GE(fh, 0);
    cfs_ioq_opts o{64, batch};
    cfs_ioq* q;
    ASSERT_EQ(cfs_ioq_create(ctx_, &o, &q), 0);
    std::vector<cfs_iocb> cbs;
    std::map<uint64_t, int64_t> want;
    for (uint64_t off = 0; off < size; off += 256 << 10) {
      cbs.push_back({CFS_IO_WRITE, fh, b, static_cast<char*>(mem) + off, 256 << 10, off, off});
      want[off] = 256 << 10;
    }
    RunAll(q, cbs, want);
    cfs_ioq_destroy(q);
    ASSERT_EQ(cfs_close(ctx_, fh), 0);
    EXPECT_EQ(CheckPatternFile(cluster->Path(path.substr(1)), size, 100 + batch), "") << batch;
    cfs_buf_unregister(ctx_, b);
  }
}

// fio's io_u buffers: requests that follow each other in the file but sit in
// scattered memory. They merge where a unit starts (gathered writes of whole
// stripes) and must not merge elsewhere; either way the bytes must be right.
TEST_F(AsyncIoTest, ScatteredBuffersMergeAtUnitBoundaries) {
  struct Case { cfs_layout layout; uint64_t bs; const char* name; };
  const Case cases[] = {{{1 << 20, 4, 2}, 1 << 20, "/scatter-1m-units"},
                        {{256 << 10, 4, 2}, 1 << 20, "/scatter-256k-units"},
                        {{1 << 20, 4, 2}, 512 << 10, "/scatter-half-units"},
                        {{1 << 20, 6, 0}, 1 << 20, "/scatter-plain"}};
  for (const Case& c : cases) {
    const int kReqs = 48;
    void* mem;
    int b = cfs_buf_alloc(ctx_, kReqs * c.bs, &mem);
    ASSERT_GE(b, 0);
    std::vector<int> slot(kReqs);
    for (int i = 0; i < kReqs; i++) slot[i] = i;
    std::shuffle(slot.begin(), slot.end(), std::mt19937_64(c.bs + c.layout.unit));
    for (int i = 0; i < kReqs; i++)
      FillPattern(static_cast<char*>(mem) + slot[i] * c.bs, c.bs, 31, static_cast<uint64_t>(i) * c.bs);
    int fh = cfs_open(ctx_, c.name, O_CREAT | O_TRUNC | O_WRONLY, 0644, &c.layout);
    ASSERT_GE(fh, 0) << c.name;
    cfs_ioq_opts o{64, 16};
    cfs_ioq* q;
    ASSERT_EQ(cfs_ioq_create(ctx_, &o, &q), 0);
    std::vector<cfs_iocb> cbs;
    std::map<uint64_t, int64_t> want;
    for (int i = 0; i < kReqs; i++) {
      cbs.push_back({CFS_IO_WRITE, fh, b, static_cast<char*>(mem) + slot[i] * c.bs, c.bs,
                     static_cast<uint64_t>(i) * c.bs, static_cast<uint64_t>(i)});
      want[i] = static_cast<int64_t>(c.bs);
    }
    RunAll(q, cbs, want);
    cfs_ioq_destroy(q);
    ASSERT_EQ(cfs_close(ctx_, fh), 0);
    EXPECT_EQ(CheckPatternFile(cluster->Path(c.name + 1), kReqs * c.bs, 31), "") << c.name;
    cfs_buf_unregister(ctx_, b);
  }
}

// Eight threads, one queue each, on one context: N-to-1 slices of a shared
// parity file and a file each (N-to-N).
TEST_F(AsyncIoTest, ManyThreadsOneContextNToOneAndNToN) {
  const int kThreads = 8;
  const uint64_t slice = (6ull << 20) + 4096;
  int shared = cfs_open(ctx_, "/n1", O_CREAT | O_TRUNC | O_RDWR, 0644, nullptr);
  ASSERT_GE(shared, 0);
  std::vector<std::thread> ts;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      void* mem;
      int b = cfs_buf_alloc(ctx_, 2 * slice, &mem);
      if (b < 0) return void(errors[t] = "alloc");
      char* own = static_cast<char*>(mem);
      char* part = own + slice;
      FillPattern(own, slice, 1000 + t);
      FillPattern(part, slice, 7, t * slice);  // the shared file is one pattern
      std::string path = "/nn-" + std::to_string(t);
      int fh = cfs_open(ctx_, path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644, nullptr);
      if (fh < 0) return void(errors[t] = "open");
      cfs_ioq* q;
      if (cfs_ioq_create(ctx_, nullptr, &q) != 0) return void(errors[t] = "ioq");
      std::vector<cfs_iocb> cbs;
      for (uint64_t off = 0; off < slice; off += 1 << 20) {
        uint64_t n = std::min<uint64_t>(1 << 20, slice - off);
        cbs.push_back({CFS_IO_WRITE, fh, b, own + off, n, off, 1});
        cbs.push_back({CFS_IO_WRITE, shared, b, part + off, n, t * slice + off, 2});
      }
      size_t next = 0, done = 0;
      cfs_ioevent ev[16];
      while (done < cbs.size()) {
        if (next < cbs.size()) {
          int n = cfs_ioq_submit(q, &cbs[next], static_cast<int>(cbs.size() - next));
          if (n > 0) next += static_cast<size_t>(n);
        }
        int got = cfs_ioq_reap(q, ev, 1, 16, 60000);
        if (got <= 0) return void(errors[t] = "reap timed out");
        for (int i = 0; i < got; i++)
          if (ev[i].res <= 0) return void(errors[t] = std::string("write: ") + cfs_strerror(static_cast<int>(ev[i].res)));
        done += static_cast<size_t>(got);
      }
      cfs_ioq_destroy(q);
      if (cfs_close(ctx_, fh) != 0) errors[t] = "close";
      cfs_buf_unregister(ctx_, b);
    });
  }
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; t++) ASSERT_EQ(errors[t], "") << "thread " << t;
  ASSERT_EQ(cfs_close(ctx_, shared), 0);
  for (int t = 0; t < kThreads; t++)
    EXPECT_EQ(CheckPatternFile(cluster->Path("nn-" + std::to_string(t)), slice, 1000 + t), "");
  EXPECT_EQ(CheckPatternFile(cluster->Path("n1"), kThreads * slice, 7), "");
}

TEST_F(AsyncIoTest, EventFdAppendsAndCloseWithRequestsInFlight) {
  const size_t n = 8 << 20;
  void* mem;
  int b = cfs_buf_alloc(ctx_, 4 * n, &mem);
  ASSERT_GE(b, 0);
  FillPattern(mem, 4 * n, 55);
  int fh = cfs_open(ctx_, "/appends", O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644, nullptr);
  ASSERT_GE(fh, 0);
  cfs_ioq* q;
  ASSERT_EQ(cfs_ioq_create(ctx_, nullptr, &q), 0);
  int efd = cfs_ioq_fd(q);
  ASSERT_GE(efd, 0);
  pollfd p{efd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "readable with nothing submitted";
  // Appends land one after the other, whatever offset they name.
  std::vector<cfs_iocb> cbs;
  for (int i = 0; i < 4; i++) cbs.push_back({CFS_IO_WRITE, fh, b, static_cast<char*>(mem) + i * n, n, 12345, static_cast<uint64_t>(i)});
  ASSERT_EQ(cfs_ioq_submit(q, cbs.data(), 4), 4);
  EXPECT_EQ(poll(&p, 1, 60000), 1) << "not readable after completions";
  cfs_ioevent ev[4];
  int got = 0;
  while (got < 4) {
    int r = cfs_ioq_reap(q, ev + got, 1, 4 - got, 60000);
    ASSERT_GT(r, 0);
    got += r;
  }
  for (auto& e : ev) EXPECT_EQ(e.res, static_cast<int64_t>(n));
  EXPECT_EQ(poll(&p, 1, 0), 0) << "readable after everything was reaped";
  // Close with requests in flight: waits for them, and they count.
  int fh2 = cfs_open(ctx_, "/closed-early", O_CREAT | O_TRUNC | O_WRONLY, 0644, nullptr);
  ASSERT_GE(fh2, 0);
  cfs_iocb big{CFS_IO_WRITE, fh2, b, mem, 4 * n, 0, 9};
  ASSERT_EQ(cfs_ioq_submit(q, &big, 1), 1);
  EXPECT_EQ(cfs_close(ctx_, fh2), 0);
  ASSERT_EQ(cfs_ioq_reap(q, ev, 1, 1, 60000), 1);
  EXPECT_EQ(ev[0].res, static_cast<int64_t>(4 * n));
  cfs_ioq_destroy(q);
  ASSERT_EQ(cfs_close(ctx_, fh), 0);
  EXPECT_EQ(CheckPatternFile(cluster->Path("appends"), 4 * n, 55), "");
  EXPECT_EQ(CheckPatternFile(cluster->Path("closed-early"), 4 * n, 55), "");
  cfs_buf_unregister(ctx_, b);
}

TEST_F(AsyncIoTest, BadRequestsGetClearErrorsAndLoseNothing) {
  char stack[4096];
  void* mem;
  int b = cfs_buf_alloc(ctx_, 1 << 20, &mem);
  ASSERT_GE(b, 0);
  int fh = cfs_open(ctx_, "/bad", O_CREAT | O_TRUNC | O_RDWR, 0644, nullptr);
  int ro = cfs_open(ctx_, "/bad", O_RDONLY, 0, nullptr);
  ASSERT_GE(fh, 0);
  ASSERT_GE(ro, 0);
  cfs_ioq_opts o{4, 4};
  cfs_ioq* q;
  ASSERT_EQ(cfs_ioq_create(ctx_, &o, &q), 0);
  auto one = [&](cfs_iocb cb) { return cfs_ioq_submit(q, &cb, 1); };
  EXPECT_EQ(one({CFS_IO_WRITE, fh, b, stack, 10, 0, 0}), -CFS_ENOTREG) << "memory outside the buffer";
  EXPECT_EQ(one({CFS_IO_WRITE, fh, b, static_cast<char*>(mem) + 4096, 1 << 20, 0, 0}), -CFS_ENOTREG)
      << "runs past the buffer's end";
  EXPECT_EQ(one({CFS_IO_WRITE, fh, b + 77, mem, 10, 0, 0}), -CFS_ENOTREG) << "unknown buffer id";
  EXPECT_EQ(one({CFS_IO_WRITE, 4242, b, mem, 10, 0, 0}), -EBADF);
  EXPECT_EQ(one({CFS_IO_WRITE, ro, b, mem, 10, 0, 0}), -EBADF) << "write on a read-only handle";
  EXPECT_EQ(one({CFS_IO_WRITE, fh, b, mem, 10, ~0ull - 5, 0}), -EFBIG);
  EXPECT_EQ(one({7, fh, b, mem, 10, 0, 0}), -EINVAL);
  EXPECT_EQ(cfs_ioq_pending(q), 0);
  // A bad request in the middle: the ones before it are accepted.
  FillPattern(mem, 1 << 20, 77);
  cfs_iocb mix[3] = {{CFS_IO_WRITE, fh, b, mem, 4096, 0, 1},
                     {CFS_IO_WRITE, fh, b, static_cast<char*>(mem) + 4096, 4096, 4096, 2},
                     {CFS_IO_WRITE, fh, b, stack, 4096, 8192, 3}};
  EXPECT_EQ(cfs_ioq_submit(q, mix, 3), 2);
  EXPECT_EQ(cfs_ioq_submit(q, mix + 2, 1), -CFS_ENOTREG);
  // Full queue: depth 4.
  cfs_iocb more[3] = {{CFS_IO_READ, fh, b, mem, 1, 0, 4}, {CFS_IO_READ, fh, b, mem, 1, 0, 5},
                      {CFS_IO_READ, fh, b, mem, 1, 0, 6}};
  EXPECT_EQ(cfs_ioq_submit(q, more, 3), 2);
  EXPECT_EQ(cfs_ioq_submit(q, more + 2, 1), -EAGAIN);
  // A buffer with requests in flight cannot go away.
  int busy = cfs_buf_unregister(ctx_, b);
  cfs_ioevent ev[4];
  int got = 0;
  while (got < 4) got += cfs_ioq_reap(q, ev + got, 4 - got, 4 - got, 60000);
  EXPECT_TRUE(busy == -EBUSY || busy == 0);
  if (busy == -EBUSY) {
    EXPECT_EQ(cfs_buf_unregister(ctx_, b), 0);
  }
  EXPECT_EQ(cfs_buf_unregister(ctx_, b), -CFS_ENOTREG);
  EXPECT_EQ(cfs_buf_register(ctx_, nullptr, 10), -EINVAL);
  int r1 = cfs_buf_register(ctx_, stack, sizeof stack);
  ASSERT_GE(r1, 0);
  EXPECT_EQ(cfs_buf_register(ctx_, stack + 100, 10), -EINVAL) << "overlapping registration";
  EXPECT_EQ(cfs_buf_unregister(ctx_, r1), 0);
  cfs_ioq_opts too_deep{5000, 1};
  cfs_ioq* q2;
  EXPECT_EQ(cfs_ioq_create(ctx_, &too_deep, &q2), -EINVAL);
  EXPECT_STRNE(cfs_strerror(-CFS_ENOTREG), cfs_strerror(-CFS_ECOMMITTED));
  EXPECT_NE(std::string(cfs_strerror(-CFS_ENOTREG)).find("registered"), std::string::npos);
  cfs_ioq_destroy(q);
  ASSERT_EQ(cfs_close(ctx_, ro), 0);
  ASSERT_EQ(cfs_close(ctx_, fh), 0);
  // What was accepted before the bad request is there.
  EXPECT_EQ(CheckPatternFile(cluster->Path("bad"), 8192, 77), "");
}

TEST_F(AsyncIoTest, MountPathAndVectoredCalls) {
  cfs_ctx* c2 = nullptr;
  ASSERT_EQ(cfs_mount(cluster->mnt().c_str(), nullptr, &c2), 0) << "mount point";
  ASSERT_EQ(cfs_unmount(c2), 0);
  ASSERT_EQ(cfs_mount((cluster->mnt() + "/some/dir/inside").c_str(), nullptr, &c2), 0);
  EXPECT_EQ(cfs_mount("/proc", nullptr, &c2), -CFS_ENOTMOUNT);
  std::string a(3 << 20, '\0'), bb(1234567, '\0');
  FillPattern(a.data(), a.size(), 9, 0);
  FillPattern(bb.data(), bb.size(), 9, a.size());
  int fh = cfs_open(c2, "/vec", O_CREAT | O_TRUNC | O_RDWR, 0644, nullptr);
  ASSERT_GE(fh, 0);
  iovec w[3] = {{a.data(), a.size()}, {nullptr, 0}, {bb.data(), bb.size()}};
  ASSERT_EQ(cfs_pwritev(c2, fh, w, 3, 0), static_cast<int64_t>(a.size() + bb.size()));
  std::string x(a.size() + bb.size() + 100, '\0');
  iovec r[2] = {{x.data(), 1000}, {x.data() + 1000, x.size() - 1000}};
  ASSERT_EQ(cfs_preadv(c2, fh, r, 2, 0), static_cast<int64_t>(a.size() + bb.size()));
  EXPECT_EQ(std::memcmp(x.data(), a.data(), a.size()), 0);
  EXPECT_EQ(std::memcmp(x.data() + a.size(), bb.data(), bb.size()), 0);
  EXPECT_EQ(cfs_preadv(c2, fh, r, -1, 0), -EINVAL);
  ASSERT_EQ(cfs_close(c2, fh), 0);
  ASSERT_EQ(cfs_unmount(c2), 0);
  EXPECT_EQ(CheckPatternFile(cluster->Path("vec"), a.size() + bb.size(), 9), "");
}

// Random 4 KiB reads and writes racing on the stripes of a 4+2 file, 32 in
// flight: every write of a block writes the same bytes (a function of its
// offset), so every read must return either the old zeros or exactly those
// bytes, never EIO or a mix (reads retry when writers move a stripe on).
TEST_F(AsyncIoTest, RandomReadsRacingWritesOnParityStripes) {
  const uint64_t blocks = 32 * 256, bs = 4096;
  cfs_layout parity{1 << 20, 4, 2};
  int fh = cfs_open(ctx_, "/race", O_CREAT | O_TRUNC | O_RDWR, 0644, &parity);
  ASSERT_GE(fh, 0);
  ASSERT_EQ(cfs_ftruncate(ctx_, fh, blocks * bs), 0);
  void* mem;
  int b = cfs_buf_alloc(ctx_, 32 * bs, &mem);
  ASSERT_GE(b, 0);
  cfs_ioq_opts o{32, 1};
  cfs_ioq* q;
  ASSERT_EQ(cfs_ioq_create(ctx_, &o, &q), 0);
  std::mt19937_64 rng(42);
  std::vector<int> free_slots;
  for (int i = 0; i < 32; i++) free_slots.push_back(i);
  struct Req { uint32_t op; uint64_t off; };
  std::vector<Req> reqs(32);
  std::string want(bs, '\0'), zeros(bs, '\0');
  int done = 0, bad = 0;
  while (done < 12000) {
    while (!free_slots.empty()) {
      int slot = free_slots.back();
      uint64_t off = (rng() % blocks) * bs;
      uint32_t op = rng() & 1 ? CFS_IO_WRITE : CFS_IO_READ;
      char* p = static_cast<char*>(mem) + slot * bs;
      if (op == CFS_IO_WRITE) FillPattern(p, bs, 5, off);
      cfs_iocb cb{op, fh, b, p, bs, off, static_cast<uint64_t>(slot)};
      if (cfs_ioq_submit(q, &cb, 1) != 1) break;
      reqs[slot] = {op, off};
      free_slots.pop_back();
    }
    cfs_ioevent ev[32];
    int n = cfs_ioq_reap(q, ev, 1, 32, 60000);
    ASSERT_GT(n, 0);
    for (int i = 0; i < n; i++, done++) {
      int slot = static_cast<int>(ev[i].user_data);
      free_slots.push_back(slot);
      const Req& r = reqs[slot];
      ASSERT_EQ(ev[i].res, static_cast<int64_t>(bs))
          << (r.op == CFS_IO_WRITE ? "write" : "read") << " at " << r.off << ": "
          << (ev[i].res < 0 ? cfs_strerror(static_cast<int>(ev[i].res)) : "short");
      if (r.op == CFS_IO_READ) {
        const char* got = static_cast<const char*>(mem) + slot * bs;
        FillPattern(want.data(), bs, 5, r.off);
        if (std::memcmp(got, want.data(), bs) != 0 && std::memcmp(got, zeros.data(), bs) != 0) bad++;
      }
    }
  }
  EXPECT_EQ(bad, 0) << "reads returned bytes that were never written";
  cfs_ioq_destroy(q);
  ASSERT_EQ(cfs_close(ctx_, fh), 0);
  cfs_buf_unregister(ctx_, b);
}

// Runs last (name order is not guaranteed, so it brings the workers back).
TEST_F(AsyncIoTest, ZClusterGoingAwayFailsRequestsWithoutHanging) {
  cfs_ctx* c = nullptr;
  ASSERT_EQ(cfs_mount(cluster->MetaAddr().c_str(), "timeout_ms=3000,failure_timeout_ms=1000", &c), 0);
  const size_t n = 4 << 20;
  void* mem;
  int b = cfs_buf_alloc(c, 16 * n, &mem);
  ASSERT_GE(b, 0);
  FillPattern(mem, 16 * n, 3);
  cfs_layout plain{1 << 20, 6, 0};
  int fh = cfs_open(c, "/going-away", O_CREAT | O_TRUNC | O_WRONLY, 0644, &plain);
  ASSERT_GE(fh, 0);
  cfs_ioq* q;
  ASSERT_EQ(cfs_ioq_create(c, nullptr, &q), 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < 6; i++) pids.push_back(cluster->WorkerPid(i));
  std::vector<cfs_iocb> cbs;
  int failed = 0, total = 0;
  for (int round = 0; round < 20; round++) {
    cbs.clear();
    for (int i = 0; i < 16; i++)
      cbs.push_back({CFS_IO_WRITE, fh, b, static_cast<char*>(mem) + i * n, n,
                     (static_cast<uint64_t>(round) * 16 + i) * n, 0});
    int s = cfs_ioq_submit(q, cbs.data(), 16);
    ASSERT_GT(s, 0);
    if (round == 2) {
      for (pid_t p : pids) LocalCluster::KillAndWait(p, SIGKILL);
    }
    cfs_ioevent ev[16];
    int got = 0;
    while (got < s) {
      int r = cfs_ioq_reap(q, ev + got, s - got, s - got, 120000);
      ASSERT_GT(r, 0) << "a request hung after the S-workers died";
      got += r;
    }
    for (int i = 0; i < got; i++) {
      total++;
      if (ev[i].res < 0) {
        failed++;
        int e = static_cast<int>(-ev[i].res);
        EXPECT_TRUE(e == EIO || e == ETIMEDOUT || e == ECONNREFUSED || e == ECONNRESET ||
                    e == EHOSTUNREACH || e == EPIPE)
            << cfs_strerror(e);
      }
    }
    if (failed > 0 && round > 3) break;
  }
  EXPECT_GT(failed, 0) << "writes succeeded with every S-worker dead";
  cfs_ioq_destroy(q);
  // Nothing is buffered (failed requests reported their errors): close
  // returns without hanging.
  cfs_close(c, fh);
  cfs_unmount(c);
  for (int i = 0; i < 6; i++) ASSERT_EQ(cluster->StartWorker(i), "");
}

}  // namespace
}  // namespace cfs::test
