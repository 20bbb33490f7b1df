// Frame codec (libcfs/rpc/frame.h): what a peer sends is hostile. Valid frames
// round-trip; every limit is enforced at its exact edge; garbage, truncated
// input, a wrong version and unknown methods give EPROTO, never a crash.
#include "rpc/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cfs.pb.h"
#include <google/protobuf/stubs/logging.h>

namespace cfs::rpc {
namespace {

pb::RpcHeader ValidHeader() {
  pb::RpcHeader h;
  h.set_version(kWireVersion);
  h.set_call_id(0x123456789abcull);
  h.set_method(pb::WRITE_UNIT);
  h.set_body_len(37);
  h.set_bulk_len(1 << 20);
  return h;
}

// Splits an encoded prefix into (length, header bytes) and decodes both.
Result<pb::RpcHeader> DecodeFrame(const std::string& frame) {
  if (frame.size() < kLengthPrefix) return Status::Protocol("short");
  auto len = DecodeHeaderLength(reinterpret_cast<const uint8_t*>(frame.data()));
  if (!len.ok()) return len.status();
  if (frame.size() - kLengthPrefix < *len) return Status::Protocol("truncated");
  return DecodeHeader(std::string_view(frame).substr(kLengthPrefix, *len));
}

void PutLen(uint8_t p[4], uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

TEST(FrameTest, HeaderRoundTrip) {
  pb::RpcHeader h = ValidHeader();
  std::string frame;
  EncodeFramePrefix(h, &frame);
  ASSERT_EQ(frame.size(), kLengthPrefix + h.ByteSizeLong());
  auto got = DecodeFrame(frame);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->version(), kWireVersion);
  EXPECT_EQ(got->call_id(), h.call_id());
  EXPECT_EQ(got->method(), pb::WRITE_UNIT);
  EXPECT_EQ(got->body_len(), 37u);
  EXPECT_EQ(got->bulk_len(), 1u << 20);
  EXPECT_FALSE(got->is_response());

  // A response with an error.
  pb::RpcHeader r = h;
  r.set_is_response(true);
  r.set_err(ENOENT);
  r.set_err_msg("no such file: a/b");
  r.set_bulk_len(0);
  EncodeFramePrefix(r, &frame);  // replaces previous contents
  auto got2 = DecodeFrame(frame);
  ASSERT_TRUE(got2.ok()) << got2.status().ToString();
  EXPECT_TRUE(got2->is_response());
  EXPECT_EQ(got2->err(), ENOENT);
  EXPECT_EQ(got2->err_msg(), "no such file: a/b");
}

TEST(FrameTest, EveryValidMethodRoundTrips) {
  const auto* d = pb::Method_descriptor();
  for (int i = 0; i < d->value_count(); i++) {
    auto m = static_cast<pb::Method>(d->value(i)->number());
    pb::RpcHeader h = ValidHeader();
    h.set_method(m);
    std::string frame;
    EncodeFramePrefix(h, &frame);
    auto got = DecodeFrame(frame);
    if (m == pb::METHOD_NONE) {
      ASSERT_FALSE(got.ok());
      EXPECT_EQ(got.status().err(), EPROTO);
    } else {
      ASSERT_TRUE(got.ok()) << d->value(i)->name() << ": " << got.status().ToString();
      EXPECT_EQ(got->method(), m);
    }
  }
}

TEST(FrameTest, HeaderLengthLimits) {
  uint8_t p[4];
  PutLen(p, 0);
  auto r0 = DecodeHeaderLength(p);
  ASSERT_FALSE(r0.ok());
  EXPECT_EQ(r0.status().err(), EPROTO);
  PutLen(p, 1);
  ASSERT_TRUE(DecodeHeaderLength(p).ok());
  EXPECT_EQ(*DecodeHeaderLength(p), 1u);
  PutLen(p, kMaxHeaderLen);
  ASSERT_TRUE(DecodeHeaderLength(p).ok());
  EXPECT_EQ(*DecodeHeaderLength(p), kMaxHeaderLen);
  for (uint32_t bad : {kMaxHeaderLen + 1, 1u << 16, 1u << 24, 0x7fffffffu, 0xffffffffu}) {
    PutLen(p, bad);
    auto r = DecodeHeaderLength(p);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().err(), EPROTO);
  }
  // Little-endian: 0x00000102 = 258.
  uint8_t le[4] = {0x02, 0x01, 0x00, 0x00};
  EXPECT_EQ(*DecodeHeaderLength(le), 258u);
  // Big-endian reading of the same bytes would be huge; make sure it is not.
  uint8_t be[4] = {0x00, 0x00, 0x01, 0x02};
  EXPECT_FALSE(DecodeHeaderLength(be).ok());
}

TEST(FrameTest, HeaderBytesOverLimitRejected) {
  // A header padded to over kMaxHeaderLen with a long err_msg, though well formed.
  pb::RpcHeader h = ValidHeader();
  h.set_err_msg(std::string(kMaxHeaderLen, 'x'));
  std::string bytes = h.SerializeAsString();
  ASSERT_GT(bytes.size(), kMaxHeaderLen);
  auto r = DecodeHeader(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EPROTO);
  // Just at the limit is fine.
  h.set_err_msg(std::string(kMaxHeaderLen - (bytes.size() - kMaxHeaderLen) - 8, 'x'));
  bytes = h.SerializeAsString();
  ASSERT_LE(bytes.size(), kMaxHeaderLen);
  EXPECT_TRUE(DecodeHeader(bytes).ok());
}

TEST(FrameTest, BodyAndBulkLimits) {
  pb::RpcHeader h = ValidHeader();
  h.set_body_len(kMaxBodyLen);
  EXPECT_TRUE(DecodeHeader(h.SerializeAsString()).ok());
  h.set_body_len(kMaxBodyLen + 1);
  auto r = DecodeHeader(h.SerializeAsString());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EPROTO);
  h.set_body_len(0xffffffffu);
  EXPECT_EQ(DecodeHeader(h.SerializeAsString()).status().err(), EPROTO);

  h = ValidHeader();
  h.set_bulk_len(kMaxBulkLen);
  EXPECT_TRUE(DecodeHeader(h.SerializeAsString()).ok());
  h.set_bulk_len(kMaxBulkLen + 1);
  EXPECT_EQ(DecodeHeader(h.SerializeAsString()).status().err(), EPROTO);
  h.set_bulk_len(~0ull);
  EXPECT_EQ(DecodeHeader(h.SerializeAsString()).status().err(), EPROTO);
  h.set_bulk_len(0);
  h.set_body_len(0);
  EXPECT_TRUE(DecodeHeader(h.SerializeAsString()).ok());
}

TEST(FrameTest, WrongVersion) {
  for (uint32_t v : {0u, 2u, 3u, 0xffffffffu}) {
    pb::RpcHeader h = ValidHeader();
    h.set_version(v);
    auto r = DecodeHeader(h.SerializeAsString());
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.status().err(), EPROTO);
    EXPECT_NE(r.status().message().find("version"), std::string::npos) << r.status().message();
  }
}

TEST(FrameTest, UnknownMethod) {
  for (int m : {0, 5, 9, 32, 49, 60, 69, 75, 1000, -1, 0x7fffffff}) {
    pb::RpcHeader h = ValidHeader();
    h.set_method(static_cast<pb::Method>(m));
    auto r = DecodeHeader(h.SerializeAsString());
    ASSERT_FALSE(r.ok()) << m;
    EXPECT_EQ(r.status().err(), EPROTO) << m;
  }
}

TEST(FrameTest, EmptyHeaderBytes) {
  // Zero bytes parse as an all-default header: version 0 -> refused.
  auto r = DecodeHeader(std::string_view());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EPROTO);
}

TEST(FrameTest, GarbageNeverCrashesAndIsMostlyRejected) {
  google::protobuf::LogSilencer quiet;  // random strings are not UTF-8
  std::mt19937_64 rng(5);
  int accepted = 0;
  for (int i = 0; i < 20000; i++) {
    std::string g(rng() % 64, '\0');
    for (auto& c : g) c = static_cast<char>(rng());
    auto r = DecodeHeader(g);
    if (r.ok()) {
      // Anything accepted satisfies every rule.
      accepted++;
      EXPECT_EQ(r->version(), kWireVersion);
      EXPECT_LE(r->body_len(), kMaxBodyLen);
      EXPECT_LE(r->bulk_len(), kMaxBulkLen);
      EXPECT_TRUE(pb::Method_IsValid(r->method()));
      EXPECT_NE(r->method(), pb::METHOD_NONE);
    } else {
      EXPECT_EQ(r.status().err(), EPROTO);
    }
  }
  EXPECT_LT(accepted, 100);  // random bytes are not valid headers
  // Invalid protobuf: a field with wire type 7 does not exist; a varint that never ends.
  EXPECT_EQ(DecodeHeader(std::string("\x0f\x01", 2)).status().err(), EPROTO);
  EXPECT_EQ(DecodeHeader(std::string(20, '\xff')).status().err(), EPROTO);
  EXPECT_EQ(DecodeHeader(std::string("\x00\x00", 2)).status().err(), EPROTO);  // field number 0
}

TEST(FrameTest, TruncatedHeader) {
  pb::RpcHeader h = ValidHeader();
  h.set_err_msg("some message that makes the header longer");
  std::string bytes = h.SerializeAsString();
  for (size_t cut = 0; cut < bytes.size(); cut++) {
    auto r = DecodeHeader(std::string_view(bytes).substr(0, cut));
    // Any prefix is either refused with EPROTO or (cut at a field boundary after
    // every required rule holds) a valid header; never garbage values.
    if (r.ok()) {
      EXPECT_EQ(r->version(), kWireVersion);
      EXPECT_NE(r->method(), pb::METHOD_NONE);
    } else {
      EXPECT_EQ(r.status().err(), EPROTO) << cut;
    }
  }
  // Cut inside the err_msg string: the length prefix promises more than is there.
  auto r = DecodeHeader(std::string_view(bytes).substr(0, bytes.size() - 3));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().err(), EPROTO);
}

TEST(FrameTest, BodyRoundTrip) {
  pb::CreateRequest c;
  c.set_parent(1);
  c.set_name("file-\xc3\xa9");
  c.set_mode(0100644);
  c.set_exclusive(true);
  c.mutable_layout_hint()->set_k(4);
  c.mutable_layout_hint()->set_unit(1 << 20);
  std::string b = c.SerializeAsString();
  pb::CreateRequest d;
  ASSERT_TRUE(DecodeBody(b, &d).ok());
  EXPECT_EQ(d.parent(), 1u);
  EXPECT_EQ(d.name(), c.name());
  EXPECT_EQ(d.mode(), 0100644u);
  EXPECT_TRUE(d.exclusive());
  EXPECT_EQ(d.layout_hint().k(), 4u);

  pb::ReaddirResponse rr;
  for (int i = 0; i < 100; i++) {
    auto* e = rr.add_entries();
    e->set_name("n" + std::to_string(i));
    e->set_ino(1000 + i);
    e->set_cookie(3 + i);
  }
  rr.set_eof(true);
  pb::ReaddirResponse rr2;
  ASSERT_TRUE(DecodeBody(rr.SerializeAsString(), &rr2).ok());
  ASSERT_EQ(rr2.entries_size(), 100);
  EXPECT_EQ(rr2.entries(57).name(), "n57");
  EXPECT_TRUE(rr2.eof());

  pb::Empty e;
  EXPECT_TRUE(DecodeBody("", &e).ok());
}

TEST(FrameTest, BodyGarbageAndTruncation) {
  pb::UnitIo io;
  io.set_ino(77);
  io.set_target_id(3);
  io.set_offset(1ull << 40);
  io.set_length(1 << 20);
  std::string b = io.SerializeAsString();
  // Cutting inside a varint is a malformed message.
  pb::UnitIo out;
  Status s = DecodeBody(std::string_view(b).substr(0, b.size() - 1), &out);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err(), EPROTO);
  EXPECT_NE(s.message().find("UnitIo"), std::string::npos) << s.message();

  // A string field whose length runs past the end.
  pb::LookupRequest lr;
  lr.set_parent(1);
  lr.set_name(std::string(300, 'a'));
  std::string lb = lr.SerializeAsString();
  for (size_t cut : {lb.size() - 1, lb.size() - 150, size_t(4)}) {
    pb::LookupRequest o;
    EXPECT_EQ(DecodeBody(std::string_view(lb).substr(0, cut), &o).err(), EPROTO) << cut;
  }

  std::mt19937_64 rng(6);
  for (int i = 0; i < 20000; i++) {
    std::string g(rng() % 200, '\0');
    for (auto& c : g) c = static_cast<char>(rng());
    pb::Attr a;
    Status st = DecodeBody(g, &a);
    if (!st.ok()) {
      EXPECT_EQ(st.err(), EPROTO);
    }
    pb::ReaddirResponse r;
    st = DecodeBody(g, &r);
    if (!st.ok()) {
      EXPECT_EQ(st.err(), EPROTO);
    }
  }
}

}  // namespace
}  // namespace cfs::rpc
