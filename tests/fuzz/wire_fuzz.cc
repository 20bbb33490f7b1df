// libFuzzer target for the wire decoders (libcfs/rpc/frame.h). Input layout:
//   byte 0 even: a whole frame follows (u32 LE header length | header | body);
//                byte 1 picks the body's message type.
//   byte 0 odd:  bytes 1.. are a message body; byte 0 >> 1 picks its type.
// Types are every message in cfs.proto, in file order. Beyond "no crash" the
// target checks the decoders' promises: an accepted header obeys every limit,
// and a decoded body re-encodes to bytes that decode to an equal message.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cfs.pb.h"
#include "rpc/frame.h"

namespace {

using google::protobuf::Message;

const std::vector<const Message*>& Prototypes() {
  static const std::vector<const Message*> protos = [] {
    std::vector<const Message*> v;
    const auto* file = cfs::pb::RpcHeader::descriptor()->file();
    auto* factory = google::protobuf::MessageFactory::generated_factory();
    for (int i = 0; i < file->message_type_count(); i++)
      v.push_back(factory->GetPrototype(file->message_type(i)));
    return v;
  }();
  return protos;
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "wire_fuzz: %s\n", what);
  std::abort();
}

void CheckBody(std::string_view bytes, uint8_t type_sel) {
  const auto& protos = Prototypes();
  const Message* proto = protos[type_sel % protos.size()];
  std::unique_ptr<Message> msg(proto->New());
  cfs::Status st = cfs::rpc::DecodeBody(bytes, msg.get());
  if (!st.ok()) {
    if (st.err() != EPROTO) Fail("DecodeBody failed with an error other than EPROTO");
    return;
  }
  // Re-encode and decode again: what we accepted must be representable.
  std::string again = msg->SerializeAsString();
  std::unique_ptr<Message> msg2(proto->New());
  if (!cfs::rpc::DecodeBody(again, msg2.get()).ok()) Fail("re-encoded body does not decode");
  // NaN != NaN: a double field (rates in the status messages) holding a NaN
  // round-trips bit-exactly but would not compare equal.
  google::protobuf::util::DefaultFieldComparator cmp;
  cmp.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer diff;
  diff.set_field_comparator(&cmp);
  if (!diff.Compare(*msg, *msg2)) Fail("body changed across a re-encode round trip");
}

void CheckFrame(std::string_view in, uint8_t type_sel) {
  if (in.size() < cfs::rpc::kLengthPrefix) return;
  auto len = cfs::rpc::DecodeHeaderLength(reinterpret_cast<const uint8_t*>(in.data()));
  if (!len.ok()) {
    if (len.status().err() != EPROTO) Fail("DecodeHeaderLength: not EPROTO");
    return;
  }
  if (*len == 0 || *len > cfs::rpc::kMaxHeaderLen) Fail("header length out of range accepted");
  in.remove_prefix(cfs::rpc::kLengthPrefix);
  std::string_view hbytes = in.substr(0, *len);  // a short read is what a truncated peer sends
  auto h = cfs::rpc::DecodeHeader(hbytes);
  if (!h.ok()) {
    if (h.status().err() != EPROTO) Fail("DecodeHeader: not EPROTO");
    return;
  }
  if (h->version() != cfs::rpc::kWireVersion) Fail("wrong version accepted");
  if (h->body_len() > cfs::rpc::kMaxBodyLen) Fail("body_len over limit accepted");
  if (h->bulk_len() > cfs::rpc::kMaxBulkLen) Fail("bulk_len over limit accepted");
  if (!cfs::pb::Method_IsValid(h->method()) || h->method() == cfs::pb::METHOD_NONE)
    Fail("unknown method accepted");
  in.remove_prefix(hbytes.size());
  CheckBody(in.substr(0, h->body_len()), type_sel);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in strings is expected
  Prototypes();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint8_t sel = data[0];
  if ((sel & 1) == 0)
    CheckFrame(in.substr(2), data[1]);
  else
    CheckBody(in.substr(1), static_cast<uint8_t>(sel >> 1));
  return 0;
}
