// Writes the seed corpus for wire_fuzz (see wire_fuzz.cc for the input layout):
// a few valid frames (requests and responses) and valid bodies of several types.
// Usage: make_seeds DIR. The output is committed in tests/fuzz/corpus/.
#include <cstdio>
#include <string>

#include "cfs.pb.h"
#include "rpc/frame.h"

namespace {

std::string g_dir;
int g_count = 0;

void Write(const std::string& name, const std::string& bytes) {
  std::string path = g_dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fclose(f);
  g_count++;
}

char TypeIndex(const google::protobuf::Message& m) {
  return static_cast<char>(m.GetDescriptor()->index());
}

void Frame(const std::string& name, cfs::pb::Method method, bool response,
           const google::protobuf::Message& body, uint64_t bulk_len = 0, int err = 0) {
  cfs::pb::RpcHeader h;
  h.set_version(cfs::rpc::kWireVersion);
  h.set_call_id(42);
  h.set_method(method);
  h.set_is_response(response);
  std::string b = body.SerializeAsString();
  h.set_body_len(static_cast<uint32_t>(b.size()));
  h.set_bulk_len(bulk_len);
  if (err) {
    h.set_err(err);
    h.set_err_msg("no such file");
  }
  std::string frame;
  cfs::rpc::EncodeFramePrefix(h, &frame);
  Write("frame-" + name, std::string(1, '\0') + TypeIndex(body) + frame + b);
}

void Body(const std::string& name, const google::protobuf::Message& body) {
  Write("body-" + name,
        std::string(1, static_cast<char>((TypeIndex(body) << 1) | 1)) + body.SerializeAsString());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  g_dir = argv[1];
  using namespace cfs::pb;

  LookupRequest lookup;
  lookup.set_parent(1);
  lookup.set_name("hello.txt");
  Frame("lookup", LOOKUP, false, lookup);

  AttrResponse attr;
  auto* a = attr.mutable_attr();
  a->set_ino(7);
  a->set_mode(0100644);
  a->set_nlink(1);
  a->set_size(123456789);
  a->set_mtime_ns(1700000000123456789);
  a->mutable_layout()->set_unit(1 << 20);
  a->mutable_layout()->set_k(6);
  for (int t = 1; t <= 6; t++) a->mutable_layout()->add_targets(t);
  Frame("attr-response", LOOKUP, true, attr);

  Empty empty;
  Frame("error-response", GETATTR, true, empty, 0, 2 /*ENOENT*/);

  UnitIo io;
  io.set_ino(7);
  io.set_target_id(3);
  io.set_offset(1 << 20);
  io.set_length(65536);
  Frame("write-unit", WRITE_UNIT, false, io, 65536);
  Frame("read-unit", READ_UNIT, false, io);

  CreateRequest create;
  create.set_parent(1);
  create.set_name("new-file");
  create.set_mode(0100600);
  create.set_exclusive(true);
  create.mutable_layout_hint()->set_k(4);
  create.set_client_id(99);
  Frame("create", CREATE, false, create);

  RenameRequest rename;
  rename.set_parent(1);
  rename.set_name("a");
  rename.set_new_parent(2);
  rename.set_new_name("b");
  rename.set_flags(1);
  Frame("rename", RENAME, false, rename);

  RegisterWorkerRequest reg;
  reg.set_worker_uuid("0f9c2d1e-8c57-4c1a-9a53-5d1d1f1d2f00");
  reg.set_host("127.0.0.1");
  reg.set_port(7101);
  auto* t = reg.add_targets();
  t->set_uuid("target-uuid");
  t->set_path("/srv/cfs/t0");
  t->set_capacity(1ull << 40);
  t->set_free(1ull << 39);
  Frame("register", REGISTER_WORKER, false, reg);

  ReaddirResponse rd;
  for (int i = 0; i < 3; i++) {
    auto* e = rd.add_entries();
    e->set_name("entry" + std::to_string(i));
    e->set_ino(100 + i);
    e->set_type(010);
    e->set_cookie(3 + i);
  }
  rd.set_eof(true);
  Body("readdir-response", rd);

  ClusterMap map;
  map.set_epoch(3);
  auto* w = map.add_workers();
  w->set_id(1);
  w->set_host("127.0.0.1");
  w->set_port(7101);
  w->set_up(true);
  w->add_target_ids(1);
  *map.add_targets() = *t;
  Body("cluster-map", map);

  XattrRequest x;
  x.set_ino(7);
  x.set_name("user.color");
  x.set_value(std::string("\x00\xff\x01", 3));
  x.set_flags(1);
  Body("xattr", x);

  SetattrRequest sa;
  sa.set_ino(7);
  sa.set_valid(SETATTR_MODE | SETATTR_SIZE);
  sa.set_mode(0755);
  sa.set_size(0);
  Body("setattr", sa);

  std::printf("wrote %d seeds to %s\n", g_count, g_dir.c_str());
  return 0;
}
