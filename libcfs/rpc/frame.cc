#include "rpc/frame.h"

namespace cfs::rpc {

void EncodeFramePrefix(const pb::RpcHeader& header, std::string* out) {
  std::string h = header.SerializeAsString();
  uint32_t len = static_cast<uint32_t>(h.size());
  out->clear();
  out->reserve(kLengthPrefix + h.size());
  for (int i = 0; i < 4; i++) out->push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out->append(h);
}

Result<uint32_t> DecodeHeaderLength(const uint8_t p[kLengthPrefix]) {
  uint32_t len = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  if (len == 0 || len > kMaxHeaderLen)
    return Status::Protocol("frame header length " + std::to_string(len) + " out of range");
  return len;
}

Result<pb::RpcHeader> DecodeHeader(std::string_view bytes) {
  pb::RpcHeader h;
  if (bytes.size() > kMaxHeaderLen || !h.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::Protocol("malformed frame header");
  if (h.version() != kWireVersion)
    return Status::Protocol("unsupported wire version " + std::to_string(h.version()));
  if (h.body_len() > kMaxBodyLen)
    return Status::Protocol("frame body too large: " + std::to_string(h.body_len()));
  if (h.bulk_len() > kMaxBulkLen)
    return Status::Protocol("frame bulk too large: " + std::to_string(h.bulk_len()));
  if (!pb::Method_IsValid(h.method()) || h.method() == pb::METHOD_NONE)
    return Status::Protocol("unknown method " + std::to_string(h.method()));
  return h;
}

Status DecodeBody(std::string_view bytes, google::protobuf::Message* msg) {
  if (!msg->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::Protocol("malformed " + msg->GetTypeName() + " message");
  return Status::OK();
}

}  // namespace cfs::rpc
