// Frame codec: the one place that turns bytes from a peer into an RpcHeader.
// Everything here treats input as hostile: lengths are bounded before anything
// is allocated, and malformed input yields EPROTO, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cfs.pb.h"
#include "common/status.h"

namespace cfs::rpc {

constexpr uint32_t kWireVersion = 1;
constexpr uint32_t kMaxHeaderLen = 4096;
constexpr uint32_t kMaxBodyLen = 64u << 20;
constexpr uint64_t kMaxBulkLen = 256ull << 20;
constexpr size_t kLengthPrefix = 4;

// Encodes the length prefix and header into `out` (replacing its contents).
void EncodeFramePrefix(const pb::RpcHeader& header, std::string* out);
// Reads the u32 little-endian header length and checks it.
Result<uint32_t> DecodeHeaderLength(const uint8_t prefix[kLengthPrefix]);
// Parses and validates a header (version, limits).
Result<pb::RpcHeader> DecodeHeader(std::string_view bytes);
// Parses a message body; EPROTO when it is not a valid encoding of `msg`'s type.
Status DecodeBody(std::string_view bytes, google::protobuf::Message* msg);

}  // namespace cfs::rpc
