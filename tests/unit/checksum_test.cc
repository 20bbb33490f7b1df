// Block checksums (libcfs/common/checksum.h): xxHash3-64 as the library computes
// it, except that 0 is reserved for "no checksum" on disk.
#include "common/checksum.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>
#include <string>
#include <vector>

#include "common/layout.h"

namespace cfs {
namespace {

TEST(ChecksumTest, MatchesXxh3ForManySizes) {
  std::mt19937_64 rng(1);
  std::vector<unsigned char> buf(kChecksumBlock + 17);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (size_t len : {size_t(0), size_t(1), size_t(3), size_t(16), size_t(17), size_t(128),
                     size_t(129), size_t(240), size_t(241), size_t(4096), size_t(kChecksumBlock - 1),
                     size_t(kChecksumBlock), buf.size()}) {
    uint64_t want = XXH3_64bits(buf.data(), len);
    if (want == 0) want = 1;
    EXPECT_EQ(BlockChecksum(buf.data(), len), want) << "len " << len;
  }
}

TEST(ChecksumTest, KnownValues) {
  // Reference values of XXH3_64bits (seed 0) from the xxHash test vectors.
  EXPECT_EQ(BlockChecksum("", 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(BlockChecksum("a", 1), XXH3_64bits("a", 1));
}

TEST(ChecksumTest, NeverZero) {
  std::mt19937_64 rng(2);
  std::vector<unsigned char> buf(256);
  for (int i = 0; i < 200000; i++) {
    size_t len = rng() % buf.size();
    for (size_t j = 0; j < len; j++) buf[j] = static_cast<unsigned char>(rng());
    ASSERT_NE(BlockChecksum(buf.data(), len), 0u);
  }
  // All-zero blocks (holes) get a real, non-zero checksum too.
  std::vector<unsigned char> zeros(kChecksumBlock, 0);
  EXPECT_NE(BlockChecksum(zeros.data(), zeros.size()), 0u);
}

TEST(ChecksumTest, DetectsEverySingleBitFlipInABlock) {
  std::mt19937_64 rng(3);
  std::vector<unsigned char> buf(kChecksumBlock);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  const uint64_t good = BlockChecksum(buf.data(), buf.size());
  // Every bit of a sample of bytes spread over the block, including the ends.
  for (size_t pos : {size_t(0), size_t(1), size_t(4095), size_t(4096), size_t(32768),
                     size_t(kChecksumBlock - 1)}) {
    for (int bit = 0; bit < 8; bit++) {
      buf[pos] ^= static_cast<unsigned char>(1u << bit);
      EXPECT_NE(BlockChecksum(buf.data(), buf.size()), good) << "pos " << pos << " bit " << bit;
      buf[pos] ^= static_cast<unsigned char>(1u << bit);
    }
  }
  EXPECT_EQ(BlockChecksum(buf.data(), buf.size()), good);
  // A truncated block must not match either.
  EXPECT_NE(BlockChecksum(buf.data(), buf.size() - 1), good);
}

TEST(ChecksumTest, UnalignedInputGivesSameResult) {
  std::string a(kChecksumBlock + 8, '\0');
  std::mt19937_64 rng(4);
  for (auto& c : a) c = static_cast<char>(rng());
  std::string shifted = "x" + a;  // same bytes at an odd address
  EXPECT_EQ(BlockChecksum(a.data(), kChecksumBlock), BlockChecksum(shifted.data() + 1, kChecksumBlock));
}

}  // namespace
}  // namespace cfs
