// RocksNamespace on a real RocksDB in a temporary directory: every operation,
// its errors, readdir paging, rename variants, link counts, xattrs, persistence.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "rocks_namespace.h"

namespace cfs::meta {
namespace {

class NamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cfs-ns-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    ns_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    ns_.reset();
    RocksOptions o;
    auto r = RocksNamespace::Open(dir_, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ns_ = std::move(r).value();
  }
  static LayoutChooser Chooser() {
    return [](const pb::Layout* dir) -> Result<pb::Layout> {
      pb::Layout l;
      l.set_unit(dir && dir->unit() ? dir->unit() : 1 << 20);
      l.set_k(dir && dir->k() ? dir->k() : 2);
      for (uint32_t i = 0; i < l.k(); i++) l.add_targets(10 + i);
      return l;
    };
  }
  pb::Attr Create(uint64_t parent, const std::string& name, uint64_t client = 0) {
    pb::CreateRequest r;
    r.set_parent(parent);
    r.set_name(name);
    r.set_mode(S_IFREG | 0644);
    r.set_uid(1000);
    r.set_gid(1000);
    r.set_exclusive(true);
    r.set_client_id(client);
    auto res = ns_->Create(r, Chooser());
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? res->attr : pb::Attr();
  }
  Status CreateSt(uint64_t parent, const std::string& name) {
    pb::CreateRequest r;
    r.set_parent(parent);
    r.set_name(name);
    r.set_mode(S_IFREG | 0644);
    r.set_exclusive(true);
    return ns_->Create(r, Chooser()).status();
  }
  pb::Attr Mkdir(uint64_t parent, const std::string& name) {
    auto res = MkdirR(parent, name);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : pb::Attr();
  }
  Result<pb::Attr> MkdirR(uint64_t parent, const std::string& name) {
    pb::MkdirRequest r;
    r.set_parent(parent);
    r.set_name(name);
    r.set_mode(0755);
    return ns_->Mkdir(r);
  }
  Status Rename(uint64_t p, const std::string& n, uint64_t np, const std::string& nn, uint32_t flags = 0) {
    pb::RenameRequest r;
    r.set_parent(p);
    r.set_name(n);
    r.set_new_parent(np);
    r.set_new_name(nn);
    r.set_flags(flags);
    return ns_->Rename(r);
  }
  uint32_t Nlink(uint64_t ino) { return ns_->GetAttr(ino)->nlink(); }
  std::set<std::string> List(uint64_t dir, uint32_t page = 7) {
    std::set<std::string> names;
    uint64_t cookie = 0;
    for (;;) {
      pb::ReaddirRequest r;
      r.set_ino(dir);
      r.set_cookie(cookie);
      r.set_max_entries(page);
      pb::ReaddirResponse resp;
      EXPECT_TRUE(ns_->Readdir(r, &resp).ok());
      for (auto& e : resp.entries()) {
        EXPECT_TRUE(names.insert(e.name()).second) << "duplicate " << e.name();
        EXPECT_GE(e.cookie(), 3u);
        cookie = e.cookie();
      }
      if (resp.eof() || resp.entries_size() == 0) break;
    }
    return names;
  }
  void ExpectConsistent() {
    std::string report;
    Status s = ns_->CheckConsistency(&report);
    EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << report;
  }

  std::string dir_;
  std::unique_ptr<RocksNamespace> ns_;
};

TEST_F(NamespaceTest, RootExists) {
  auto a = ns_->GetAttr(kRootIno);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode(), uint32_t(S_IFDIR | 0755));
  EXPECT_EQ(a->uid(), 0u);
  EXPECT_EQ(a->nlink(), 2u);
  ExpectConsistent();
}

TEST_F(NamespaceTest, CreateLookupAndErrors) {
  pb::Attr f = Create(kRootIno, "a");
  EXPECT_GT(f.ino(), kRootIno);
  EXPECT_EQ(f.nlink(), 1u);
  EXPECT_TRUE(S_ISREG(f.mode()));
  EXPECT_EQ(f.layout().k(), 2u);
  EXPECT_EQ(f.layout().targets_size(), 2);
  auto l = ns_->Lookup(kRootIno, "a");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->ino(), f.ino());
  EXPECT_EQ(ns_->Lookup(kRootIno, "b").status().err(), ENOENT);
  EXPECT_EQ(CreateSt(kRootIno, "a").err(), EEXIST);
  // non-exclusive create returns the existing file
  pb::CreateRequest r;
  r.set_parent(kRootIno);
  r.set_name("a");
  r.set_mode(S_IFREG | 0600);
  auto again = ns_->Create(r, Chooser());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->attr.ino(), f.ino());
  EXPECT_EQ(CreateSt(kRootIno, std::string(256, 'x')).err(), ENAMETOOLONG);
  EXPECT_TRUE(CreateSt(kRootIno, std::string(255, 'x')).ok());
  EXPECT_EQ(CreateSt(kRootIno, ".").err(), EINVAL);
  EXPECT_EQ(CreateSt(kRootIno, "..").err(), EINVAL);
  EXPECT_EQ(CreateSt(kRootIno, "a/b").err(), EINVAL);
  EXPECT_EQ(CreateSt(kRootIno, std::string("a\0b", 3)).err(), EINVAL);
  EXPECT_EQ(CreateSt(kRootIno, "").err(), EINVAL);
  EXPECT_EQ(CreateSt(f.ino(), "x").err(), ENOTDIR);
  EXPECT_EQ(CreateSt(9999, "x").err(), ESTALE);
  // a failing chooser fails the create and leaves nothing behind
  pb::CreateRequest r2;
  r2.set_parent(kRootIno);
  r2.set_name("nospace");
  r2.set_mode(S_IFREG | 0644);
  auto res = ns_->Create(r2, [](const pb::Layout*) -> Result<pb::Layout> {
    return Status::NoSpace("need 2+0 targets, only 0 up");
  });
  EXPECT_EQ(res.status().err(), ENOSPC);
  EXPECT_EQ(ns_->Lookup(kRootIno, "nospace").status().err(), ENOENT);
  ExpectConsistent();
}

TEST_F(NamespaceTest, MkdirRmdirAndLinkCounts) {
  pb::Attr d = Mkdir(kRootIno, "d");
  EXPECT_EQ(d.nlink(), 2u);
  EXPECT_EQ(Nlink(kRootIno), 3u);
  Mkdir(d.ino(), "sub1");
  Mkdir(d.ino(), "sub2");
  EXPECT_EQ(Nlink(d.ino()), 4u);
  Create(d.ino(), "f");
  EXPECT_EQ(Nlink(d.ino()), 4u);
  EXPECT_EQ(MkdirR(kRootIno, "d").status().err(), EEXIST);
  EXPECT_EQ(ns_->Rmdir(kRootIno, "d").err(), ENOTEMPTY);
  EXPECT_EQ(ns_->Rmdir(d.ino(), "f").err(), ENOTDIR);
  EXPECT_EQ(ns_->Unlink(d.ino(), "sub1").err(), EISDIR);
  EXPECT_EQ(ns_->Rmdir(d.ino(), "nope").err(), ENOENT);
  EXPECT_TRUE(ns_->Rmdir(d.ino(), "sub1").ok());
  EXPECT_EQ(Nlink(d.ino()), 3u);
  EXPECT_TRUE(ns_->Rmdir(d.ino(), "sub2").ok());
  EXPECT_TRUE(ns_->Unlink(d.ino(), "f").ok());
  EXPECT_TRUE(ns_->Rmdir(kRootIno, "d").ok());
  EXPECT_EQ(Nlink(kRootIno), 2u);
  EXPECT_EQ(ns_->GetAttr(d.ino()).status().err(), ESTALE);
  ExpectConsistent();
  auto c = ns_->Counters();
  EXPECT_EQ(c.directories, 1u);
  EXPECT_EQ(c.files, 0u);
}

TEST_F(NamespaceTest, ParentTimesUpdate) {
  pb::Attr d = Mkdir(kRootIno, "d");
  usleep(2000);
  Create(d.ino(), "f");
  auto after = ns_->GetAttr(d.ino());
  EXPECT_GT(after->mtime_ns(), d.mtime_ns());
  EXPECT_GT(after->ctime_ns(), d.ctime_ns());
}

TEST_F(NamespaceTest, HardLinks) {
  pb::Attr f = Create(kRootIno, "f");
  pb::Attr d = Mkdir(kRootIno, "d");
  auto l = ns_->Link(f.ino(), d.ino(), "g");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->nlink(), 2u);
  EXPECT_EQ(ns_->Link(f.ino(), d.ino(), "g").status().err(), EEXIST);
  EXPECT_EQ(ns_->Link(d.ino(), kRootIno, "dl").status().err(), EPERM);
  EXPECT_TRUE(ns_->Unlink(kRootIno, "f").ok());
  EXPECT_EQ(Nlink(f.ino()), 1u);
  EXPECT_EQ(ns_->Lookup(d.ino(), "g")->ino(), f.ino());
  ExpectConsistent();
  EXPECT_TRUE(ns_->Unlink(d.ino(), "g").ok());
  EXPECT_EQ(ns_->GetAttr(f.ino()).status().err(), ESTALE);
  // the file's objects are queued for deletion
  auto gc = ns_->ListGc(100);
  ASSERT_TRUE(gc.ok());
  ASSERT_EQ(gc->size(), 1u);
  EXPECT_EQ((*gc)[0].ino, f.ino());
  EXPECT_EQ((*gc)[0].targets, (std::vector<uint32_t>{10, 11}));
  EXPECT_TRUE(ns_->GcDone({{f.ino(), 10}}).ok());
  EXPECT_EQ((*ns_->ListGc(100))[0].targets, (std::vector<uint32_t>{11}));
  EXPECT_TRUE(ns_->GcDone({{f.ino(), 11}}).ok());
  EXPECT_TRUE(ns_->ListGc(100)->empty());
  ExpectConsistent();
}

TEST_F(NamespaceTest, SymlinkAndMknod) {
  pb::SymlinkRequest s;
  s.set_parent(kRootIno);
  s.set_name("ln");
  s.set_target("some/where");
  auto a = ns_->Symlink(s);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(S_ISLNK(a->mode()));
  EXPECT_EQ(a->size(), 10u);
  EXPECT_EQ(*ns_->Readlink(a->ino()), "some/where");
  EXPECT_EQ(ns_->Symlink(s).status().err(), EEXIST);
  s.set_name("empty");
  s.set_target("");
  EXPECT_EQ(ns_->Symlink(s).status().err(), ENOENT);
  pb::CreateRequest r;
  r.set_parent(kRootIno);
  r.set_name("fifo");
  r.set_mode(S_IFIFO | 0600);
  auto fifo = ns_->Create(r, Chooser());
  ASSERT_TRUE(fifo.ok());
  EXPECT_TRUE(S_ISFIFO(fifo->attr.mode()));
  EXPECT_EQ(fifo->attr.layout().targets_size(), 0);
  EXPECT_EQ(ns_->Readlink(fifo->attr.ino()).status().err(), EINVAL);
  ExpectConsistent();
}

TEST_F(NamespaceTest, SetAttr) {
  pb::Attr f = Create(kRootIno, "f");
  pb::SetattrRequest r;
  r.set_ino(f.ino());
  r.set_valid(pb::SETATTR_MODE | pb::SETATTR_UID | pb::SETATTR_GID | pb::SETATTR_SIZE |
              pb::SETATTR_MTIME);
  r.set_mode(0600);
  r.set_uid(7);
  r.set_gid(8);
  r.set_size(12345);
  r.set_mtime_ns(42);
  auto a = ns_->SetAttr(r);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mode(), uint32_t(S_IFREG | 0600));
  EXPECT_EQ(a->uid(), 7u);
  EXPECT_EQ(a->gid(), 8u);
  EXPECT_EQ(a->size(), 12345u);
  EXPECT_EQ(a->mtime_ns(), 42);
  EXPECT_GT(a->ctime_ns(), f.ctime_ns() - 1);
  pb::SetattrRequest d;
  d.set_ino(kRootIno);
  d.set_valid(pb::SETATTR_SIZE);
  EXPECT_EQ(ns_->SetAttr(d).status().err(), EISDIR);
  // sizes only grow through reports
  EXPECT_EQ(ns_->ReportSize(f.ino(), 100, 0)->size(), 12345u);
  EXPECT_EQ(ns_->ReportSize(f.ino(), 99999, 0)->size(), 99999u);
}

TEST_F(NamespaceTest, RenameVariants) {
  pb::Attr a = Mkdir(kRootIno, "a");
  pb::Attr b = Mkdir(kRootIno, "b");
  pb::Attr f = Create(a.ino(), "f");
  pb::Attr g = Create(b.ino(), "g");
  // plain move across directories
  ASSERT_TRUE(Rename(a.ino(), "f", b.ino(), "f2").ok());
  EXPECT_EQ(ns_->Lookup(a.ino(), "f").status().err(), ENOENT);
  EXPECT_EQ(ns_->Lookup(b.ino(), "f2")->ino(), f.ino());
  // replace an existing file: the old one goes
  ASSERT_TRUE(Rename(b.ino(), "f2", b.ino(), "g").ok());
  EXPECT_EQ(ns_->Lookup(b.ino(), "g")->ino(), f.ino());
  EXPECT_EQ(ns_->GetAttr(g.ino()).status().err(), ESTALE);
  // NOREPLACE
  Create(b.ino(), "h");
  EXPECT_EQ(Rename(b.ino(), "g", b.ino(), "h", kRenameNoReplace).err(), EEXIST);
  EXPECT_TRUE(Rename(b.ino(), "g", b.ino(), "i", kRenameNoReplace).ok());
  // EXCHANGE of a file and a directory across parents fixes nlinks
  pb::Attr sub = Mkdir(a.ino(), "sub");
  EXPECT_EQ(Nlink(a.ino()), 3u);
  EXPECT_EQ(Nlink(b.ino()), 2u);
  ASSERT_TRUE(Rename(a.ino(), "sub", b.ino(), "i", kRenameExchange).ok());
  EXPECT_EQ(ns_->Lookup(b.ino(), "i")->ino(), sub.ino());
  EXPECT_EQ(ns_->Lookup(a.ino(), "sub")->ino(), f.ino());
  EXPECT_EQ(Nlink(a.ino()), 2u);
  EXPECT_EQ(Nlink(b.ino()), 3u);
  EXPECT_EQ(Rename(a.ino(), "sub", b.ino(), "none", kRenameExchange).err(), ENOENT);
  EXPECT_EQ(Rename(a.ino(), "sub", b.ino(), "i", 3).err(), EINVAL);
  ExpectConsistent();
  // directory under itself
  pb::Attr deep = Mkdir(sub.ino(), "deep");
  EXPECT_EQ(Rename(b.ino(), "i", deep.ino(), "x").err(), EINVAL);
  EXPECT_EQ(Rename(b.ino(), "i", sub.ino(), "x").err(), EINVAL);
  // replacing: file over dir, dir over file, dir over non-empty dir, dir over empty dir
  EXPECT_EQ(Rename(a.ino(), "sub", b.ino(), "i").err(), EISDIR);
  EXPECT_EQ(Rename(b.ino(), "i", a.ino(), "sub").err(), ENOTDIR);
  pb::Attr e = Mkdir(a.ino(), "empty");
  Mkdir(a.ino(), "full");
  Create(ns_->Lookup(a.ino(), "full")->ino(), "x");
  EXPECT_EQ(Rename(b.ino(), "i", a.ino(), "full").err(), ENOTEMPTY);
  ASSERT_TRUE(Rename(b.ino(), "i", a.ino(), "empty").ok());
  EXPECT_EQ(ns_->GetAttr(e.ino()).status().err(), ESTALE);
  EXPECT_EQ(ns_->Lookup(a.ino(), "empty")->ino(), sub.ino());
  EXPECT_EQ(Nlink(a.ino()), 4u);  // empty(=sub), full
  EXPECT_EQ(Nlink(b.ino()), 2u);
  EXPECT_EQ(ns_->Lookup(sub.ino(), "..")->ino(), a.ino());
  // rename onto itself and onto another link of the same inode
  EXPECT_TRUE(Rename(a.ino(), "sub", a.ino(), "sub").ok());
  ASSERT_TRUE(ns_->Link(f.ino(), a.ino(), "flink").ok());
  EXPECT_TRUE(Rename(a.ino(), "sub", a.ino(), "flink").ok());
  EXPECT_EQ(Nlink(f.ino()), 2u);
  EXPECT_EQ(Rename(a.ino(), "missing", a.ino(), "z").err(), ENOENT);
  ExpectConsistent();
}

TEST_F(NamespaceTest, ReaddirPagingIsStableUnderChanges) {
  pb::Attr d = Mkdir(kRootIno, "d");
  std::set<std::string> expect;
  for (int i = 0; i < 300; i++) {
    std::string n = "file" + std::to_string(i);
    Create(d.ino(), n);
    expect.insert(n);
  }
  EXPECT_EQ(List(d.ino()), expect);
  // Page through while deleting entries already returned and adding new ones:
  // every entry present from start to end must be seen exactly once.
  std::set<std::string> seen;
  uint64_t cookie = 0;
  int added = 0;
  for (;;) {
    pb::ReaddirRequest r;
    r.set_ino(d.ino());
    r.set_cookie(cookie);
    r.set_max_entries(16);
    r.set_plus(true);
    pb::ReaddirResponse resp;
    ASSERT_TRUE(ns_->Readdir(r, &resp).ok());
    for (auto& e : resp.entries()) {
      EXPECT_TRUE(seen.insert(e.name()).second);
      EXPECT_EQ(e.attr().ino(), e.ino());
      EXPECT_GT(e.cookie(), cookie);
      cookie = e.cookie();
      if (expect.count(e.name())) {
        ASSERT_TRUE(ns_->Unlink(d.ino(), e.name()).ok());
      }
    }
    Create(d.ino(), "new" + std::to_string(added++));
    if (resp.eof()) break;
  }
  for (auto& n : expect) EXPECT_TRUE(seen.count(n)) << n;
  EXPECT_EQ(List(d.ino()).size(), size_t(added));
  pb::ReaddirRequest r;
  r.set_ino(kRootIno);
  pb::ReaddirResponse resp;
  ASSERT_TRUE(ns_->Readdir(r, &resp).ok());
  EXPECT_TRUE(resp.eof());
  ASSERT_EQ(resp.entries_size(), 1);
  EXPECT_EQ(resp.entries(0).type(), uint32_t(S_IFDIR >> 12));
  ExpectConsistent();
}

TEST_F(NamespaceTest, Xattrs) {
  pb::Attr f = Create(kRootIno, "f");
  EXPECT_TRUE(ns_->SetXattr(f.ino(), "user.a", "1", 0).ok());
  EXPECT_TRUE(ns_->SetXattr(f.ino(), "user.b", std::string("x\0y", 3), 0).ok());
  EXPECT_EQ(*ns_->GetXattr(f.ino(), "user.b"), std::string("x\0y", 3));
  EXPECT_EQ(ns_->SetXattr(f.ino(), "user.a", "2", kXattrCreate).err(), EEXIST);
  EXPECT_EQ(ns_->SetXattr(f.ino(), "user.c", "2", kXattrReplace).err(), ENODATA);
  EXPECT_TRUE(ns_->SetXattr(f.ino(), "user.a", "2", kXattrReplace).ok());
  EXPECT_EQ(*ns_->GetXattr(f.ino(), "user.a"), "2");
  EXPECT_EQ(ns_->SetXattr(f.ino(), "user.big", std::string(64 * 1024 + 1, 'v'), 0).err(), E2BIG);
  EXPECT_EQ(*ns_->ListXattr(f.ino()), (std::vector<std::string>{"user.a", "user.b"}));
  EXPECT_TRUE(ns_->RemoveXattr(f.ino(), "user.a").ok());
  EXPECT_EQ(ns_->RemoveXattr(f.ino(), "user.a").err(), ENODATA);
  EXPECT_EQ(ns_->GetXattr(f.ino(), "user.a").status().err(), ENODATA);
  EXPECT_EQ(ns_->GetXattr(9999, "user.a").status().err(), ESTALE);
  // xattrs go with the inode
  ASSERT_TRUE(ns_->Unlink(kRootIno, "f").ok());
  pb::Attr g = Create(kRootIno, "g");
  EXPECT_TRUE(ns_->ListXattr(g.ino())->empty());
}

TEST_F(NamespaceTest, UnlinkWhileOpenMakesOrphan) {
  pb::Attr f = Create(kRootIno, "f", /*client=*/7);
  ASSERT_TRUE(ns_->Open(f.ino(), 7).ok());  // two opens
  ASSERT_TRUE(ns_->Unlink(kRootIno, "f").ok());
  EXPECT_EQ(ns_->Counters().orphans, 1u);
  auto a = ns_->GetAttr(f.ino());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->nlink(), 0u);
  ExpectConsistent();
  pb::CloseRequest c;
  c.set_ino(f.ino());
  c.set_client_id(7);
  c.set_has_size(true);
  c.set_size(500);
  auto closed = ns_->Close(c);
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->size(), 500u);
  EXPECT_TRUE(ns_->GetAttr(f.ino()).ok());  // one open left
  ASSERT_TRUE(ns_->Close(c).ok());
  EXPECT_EQ(ns_->GetAttr(f.ino()).status().err(), ESTALE);
  EXPECT_EQ(ns_->Counters().orphans, 0u);
  EXPECT_EQ(ns_->ListGc(10)->size(), 1u);
  ExpectConsistent();
}

TEST_F(NamespaceTest, OrphansSurviveRestartUntilPurged) {
  pb::Attr f = Create(kRootIno, "f", 1);
  pb::Attr g = Create(kRootIno, "g", 1);
  ASSERT_TRUE(ns_->Unlink(kRootIno, "f").ok());
  ASSERT_TRUE(Rename(kRootIno, "g", kRootIno, "h").ok());
  Create(kRootIno, "x", 1);
  ASSERT_TRUE(Rename(kRootIno, "x", kRootIno, "h").ok());  // g is replaced while open
  EXPECT_EQ(ns_->Counters().orphans, 2u);
  Reopen();
  ExpectConsistent();
  EXPECT_EQ(ns_->Counters().orphans, 2u);
  ASSERT_TRUE(ns_->Open(g.ino(), 2).ok());  // a client reopens g during the grace
  uint64_t purged = 0;
  ASSERT_TRUE(ns_->PurgeClosedOrphans(&purged).ok());
  EXPECT_EQ(purged, 1u);
  EXPECT_EQ(ns_->GetAttr(f.ino()).status().err(), ESTALE);
  EXPECT_TRUE(ns_->GetAttr(g.ino()).ok());
  ExpectConsistent();
}

TEST_F(NamespaceTest, PersistsAcrossReopen) {
  pb::Attr d = Mkdir(kRootIno, "d");
  pb::Attr f = Create(d.ino(), "f");
  ASSERT_TRUE(ns_->SetXattr(f.ino(), "user.k", "v", 0).ok());
  pb::Layout dl;
  dl.set_unit(256 * 1024);
  dl.set_k(3);
  ASSERT_TRUE(ns_->SetDirLayout(d.ino(), dl).ok());
  ASSERT_TRUE(ns_->PutState({{"w/abc", "hello"}}).ok());
  for (int i = 0; i < 50; i++) Create(d.ino(), "many" + std::to_string(i));
  ASSERT_TRUE(ns_->FlushMemtables().ok());  // read back from SST files, not the WAL
  Reopen();
  EXPECT_EQ(List(d.ino()).size(), 51u);
  EXPECT_EQ(ns_->Lookup(d.ino(), "f")->ino(), f.ino());
  EXPECT_EQ(*ns_->GetXattr(f.ino(), "user.k"), "v");
  EXPECT_EQ(**ns_->GetState("w/abc"), "hello");
  EXPECT_EQ(ns_->ScanState("w/")->size(), 1u);
  // new inode numbers never reuse old ones; the dir layout is inherited
  pb::Attr g = Create(d.ino(), "g");
  EXPECT_GT(g.ino(), f.ino());
  EXPECT_EQ(g.layout().unit(), 256u * 1024);
  EXPECT_EQ(g.layout().k(), 3u);
  pb::Attr sub = Mkdir(d.ino(), "sub");
  EXPECT_EQ(Create(sub.ino(), "h").layout().k(), 3u);
  auto c = ns_->Counters();
  EXPECT_EQ(c.files, 53u);
  EXPECT_EQ(c.directories, 3u);
  ExpectConsistent();
}

TEST_F(NamespaceTest, CheckConsistencyFindsDamage) {
  Create(kRootIno, "f");
  ExpectConsistent();
  ns_.reset();
  // Break it behind the store's back: drop the inode CF entry of "f".
  {
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* n : {"default", "inodes", "dentries", "xattrs", "orphans", "gc", "state", "degraded"})
      cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, cfs, &h, &raw).ok());
    std::string k(8, '\0');
    k[7] = 2;
    ASSERT_TRUE(raw->Delete(rocksdb::WriteOptions(), h[1], k).ok());
    for (auto* x : h) raw->DestroyColumnFamilyHandle(x);
    delete raw;
  }
  Reopen();
  std::string report;
  EXPECT_FALSE(ns_->CheckConsistency(&report).ok());
  EXPECT_NE(report.find("missing inode 2"), std::string::npos) << report;
}

// Many writers at once (group commit): every create lands, the namespace stays
// consistent. Prints the rate for one and for eight writers.
TEST_F(NamespaceTest, ConcurrentCreatesGroupCommit) {
  for (int threads : {1, 8}) {
    pb::Attr d = Mkdir(kRootIno, "c" + std::to_string(threads));
    const int per = 150;
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    std::atomic<int> failures{0};
    for (int t = 0; t < threads; t++) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per; i++) {
          pb::CreateRequest r;
          r.set_parent(d.ino());
          r.set_name("t" + std::to_string(t) + "-" + std::to_string(i));
          r.set_mode(S_IFREG | 0644);
          r.set_exclusive(true);
          if (!ns_->Create(r, Chooser()).ok()) failures++;
        }
      });
    }
    for (auto& th : ts) th.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(List(d.ino(), 1000).size(), size_t(threads * per));
    std::printf("%d writer(s): %.0f creates/s (WAL fsync per group)\n", threads, threads * per / secs);
  }
  ExpectConsistent();
}

TEST_F(NamespaceTest, NameHashIsAtLeastThree) {
  for (int i = 0; i < 1000; i++) EXPECT_GE(RocksNamespace::NameHash(std::to_string(i)), 3u);
}

}  // namespace
}  // namespace cfs::meta
