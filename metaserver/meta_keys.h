// Key encodings of the M-worker's RocksDB column families
// (docs/on-disk-meta.md). Big-endian integers so that keys sort numerically.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cfs::meta {

inline void PutBE64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; i--) out->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}
inline uint64_t GetBE64(std::string_view s, size_t pos = 0) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(s[pos + i]);
  return v;
}
inline std::string InoKey(uint64_t ino) {
  std::string k;
  PutBE64(&k, ino);
  return k;
}
// dentries: parent BE8 | hash63(name) BE8 | name
inline std::string DentryKey(uint64_t parent, uint64_t hash, const std::string& name) {
  std::string k;
  k.reserve(16 + name.size());
  PutBE64(&k, parent);
  PutBE64(&k, hash);
  k += name;
  return k;
}
// xattrs: ino BE8 | name
inline std::string XattrKey(uint64_t ino, const std::string& name) {
  std::string k = InoKey(ino);
  k += name;
  return k;
}

// degraded: target BE4 | ino BE8
inline std::string DegradedKey(uint32_t target, uint64_t ino) {
  std::string k;
  for (int i = 3; i >= 0; i--) k.push_back(static_cast<char>((target >> (i * 8)) & 0xff));
  PutBE64(&k, ino);
  return k;
}
inline uint32_t DegradedKeyTarget(std::string_view k) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; i++) v = (v << 8) | static_cast<uint8_t>(k[i]);
  return v;
}

}  // namespace cfs::meta
