// ISA-L Reed-Solomon codec: encode, decode of every (or 200 random) erasure
// patterns, parity deltas against full re-encodes, argument checks, sharing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "ec/codec.h"

namespace cfs::ec {
namespace {

using Buf = std::vector<uint8_t>;

struct Stripe {
  std::vector<Buf> units;  // k data then m parity, each `len` bytes
};

Buf RandomBuf(std::mt19937_64& rng, size_t len) {
  Buf b(len);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

std::vector<const uint8_t*> Ptrs(const std::vector<Buf>& v) {
  std::vector<const uint8_t*> p;
  for (const auto& b : v) p.push_back(b.data());
  return p;
}
std::vector<uint8_t*> MutPtrs(std::vector<Buf>& v) {
  std::vector<uint8_t*> p;
  for (auto& b : v) p.push_back(b.data());
  return p;
}

Stripe MakeStripe(const ErasureCodec& c, std::mt19937_64& rng, size_t len) {
  Stripe s;
  for (uint32_t i = 0; i < c.k(); ++i) s.units.push_back(RandomBuf(rng, len));
  std::vector<Buf> parity(c.m(), Buf(len, 0));
  c.Encode(Ptrs(s.units).data(), MutPtrs(parity).data(), len);
  for (auto& p : parity) s.units.push_back(std::move(p));
  return s;
}

// All subsets of 1..m of the k+m units, or `cap` random ones if there are more.
std::vector<std::vector<uint32_t>> ErasurePatterns(uint32_t k, uint32_t m, size_t cap,
                                                   std::mt19937_64& rng) {
  const uint32_t n = k + m;
  std::vector<std::vector<uint32_t>> all;
  for (uint32_t mask = 1; mask < (1u << n); ++mask) {
    if (static_cast<uint32_t>(__builtin_popcount(mask)) > m) continue;
    std::vector<uint32_t> e;
    for (uint32_t u = 0; u < n; ++u) {
      if (mask & (1u << u)) e.push_back(u);
    }
    all.push_back(std::move(e));
  }
  if (all.size() > cap) {
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(cap);
  }
  return all;
}

// k random survivors outside `erased`.
std::vector<uint32_t> PickPresent(uint32_t k, uint32_t m, const std::vector<uint32_t>& erased,
                                  std::mt19937_64& rng) {
  std::vector<uint32_t> alive;
  for (uint32_t u = 0; u < k + m; ++u) {
    if (std::find(erased.begin(), erased.end(), u) == erased.end()) alive.push_back(u);
  }
  std::shuffle(alive.begin(), alive.end(), rng);
  alive.resize(k);
  return alive;
}

// Rebuilds `erased` from `present` and checks every byte. Returns failures.
int DecodeAndCompare(const ErasureCodec& c, const Stripe& s, const std::vector<uint32_t>& present,
                     const std::vector<uint32_t>& erased, size_t len) {
  std::vector<const uint8_t*> in;
  for (uint32_t p : present) in.push_back(s.units[p].data());
  std::vector<Buf> out(erased.size(), Buf(len, 0xA5));
  Status st = c.Decode(present, in.data(), erased, MutPtrs(out).data(), len);
  EXPECT_TRUE(st.ok()) << st.ToString();
  int bad = 0;
  for (size_t i = 0; i < erased.size(); ++i) {
    if (out[i] != s.units[erased[i]]) ++bad;
  }
  return bad;
}

struct Code {
  uint32_t k, m;
};
const Code kCodes[] = {{1, 1}, {2, 2}, {3, 1}, {4, 2}, {8, 2}, {16, 4}, {6, 3}};

class EcCodecTest : public ::testing::TestWithParam<Code> {};

TEST_P(EcCodecTest, DecodesEveryErasurePattern) {
  const auto [k, m] = GetParam();
  auto codec = GetCodec(k, m);
  ASSERT_TRUE(codec.ok()) << codec.status().ToString();
  const ErasureCodec& c = **codec;
  EXPECT_EQ(c.k(), k);
  EXPECT_EQ(c.m(), m);
  std::mt19937_64 rng(k * 100 + m);
  for (size_t len : {size_t{1}, size_t{63}, size_t{4097}}) {
    Stripe s = MakeStripe(c, rng, len);
    for (const auto& erased : ErasurePatterns(k, m, 200, rng)) {
      auto present = PickPresent(k, m, erased, rng);
      EXPECT_EQ(DecodeAndCompare(c, s, present, erased, len), 0)
          << "len " << len << " erased " << ::testing::PrintToString(erased) << " present "
          << ::testing::PrintToString(present);
    }
  }
}

TEST_P(EcCodecTest, DecodesOneMiB) {
  const auto [k, m] = GetParam();
  const ErasureCodec& c = **GetCodec(k, m);
  std::mt19937_64 rng(k * 1000 + m);
  const size_t len = size_t{1} << 20;
  Stripe s = MakeStripe(c, rng, len);
  for (const auto& erased : ErasurePatterns(k, m, 12, rng)) {
    auto present = PickPresent(k, m, erased, rng);
    EXPECT_EQ(DecodeAndCompare(c, s, present, erased, len), 0)
        << "erased " << ::testing::PrintToString(erased);
  }
}

// Decoding with every unit present in a non-sorted order, asking for all of
// them (more than m wanted units), returns the stripe unchanged.
TEST_P(EcCodecTest, DecodesAllUnitsFromShuffledSurvivors) {
  const auto [k, m] = GetParam();
  const ErasureCodec& c = **GetCodec(k, m);
  std::mt19937_64 rng(k * 7 + m);
  Stripe s = MakeStripe(c, rng, 4097);
  std::vector<uint32_t> all(k + m);
  std::iota(all.begin(), all.end(), 0u);
  auto present = PickPresent(k, m, {}, rng);
  EXPECT_EQ(DecodeAndCompare(c, s, present, all, 4097), 0);
}

TEST_P(EcCodecTest, DeltaOfOneUnitMatchesReencode) {
  const auto [k, m] = GetParam();
  const ErasureCodec& c = **GetCodec(k, m);
  std::mt19937_64 rng(k * 31 + m);
  for (size_t len : {size_t{1}, size_t{63}, size_t{4097}, size_t{1} << 20}) {
    for (int round = 0; round < 4; ++round) {
      Stripe s = MakeStripe(c, rng, len);
      uint32_t j = static_cast<uint32_t>(rng() % k);
      size_t a = rng() % len;
      size_t b = a + 1 + rng() % (len - a);  // [a, b), non-empty
      size_t n = b - a;

      std::vector<Buf> data(s.units.begin(), s.units.begin() + k);
      Buf fresh = RandomBuf(rng, n);
      Buf delta(n);
      for (size_t i = 0; i < n; ++i) delta[i] = data[j][a + i] ^ fresh[i];
      std::copy(fresh.begin(), fresh.end(), data[j].begin() + a);

      std::vector<Buf> pdelta(m, Buf(n, 0));
      c.AccumulateDelta(j, delta.data(), MutPtrs(pdelta).data(), n);

      std::vector<Buf> want(m, Buf(len, 0));
      c.Encode(Ptrs(data).data(), MutPtrs(want).data(), len);
      for (uint32_t i = 0; i < m; ++i) {
        Buf got = s.units[k + i];
        for (size_t x = 0; x < n; ++x) got[a + x] ^= pdelta[i][x];
        EXPECT_EQ(got, want[i]) << "len " << len << " unit " << j << " parity " << i << " range ["
                                << a << "," << b << ")";
      }
    }
  }
}

TEST_P(EcCodecTest, DeltasOfSeveralUnitsAccumulate) {
  const auto [k, m] = GetParam();
  const ErasureCodec& c = **GetCodec(k, m);
  std::mt19937_64 rng(k * 57 + m);
  const size_t len = 4097;
  Stripe s = MakeStripe(c, rng, len);
  std::vector<Buf> data(s.units.begin(), s.units.begin() + k);
  const size_t a = 100, n = 3001;

  std::vector<Buf> pdelta(m, Buf(n, 0));
  for (uint32_t j = 0; j < k; j += 1 + static_cast<uint32_t>(rng() % 2)) {
    Buf fresh = RandomBuf(rng, n);
    Buf delta(n);
    for (size_t i = 0; i < n; ++i) delta[i] = data[j][a + i] ^ fresh[i];
    std::copy(fresh.begin(), fresh.end(), data[j].begin() + a);
    c.AccumulateDelta(j, delta.data(), MutPtrs(pdelta).data(), n);
  }
  std::vector<Buf> want(m, Buf(len, 0));
  c.Encode(Ptrs(data).data(), MutPtrs(want).data(), len);
  for (uint32_t i = 0; i < m; ++i) {
    Buf got = s.units[k + i];
    for (size_t x = 0; x < n; ++x) got[a + x] ^= pdelta[i][x];
    EXPECT_EQ(got, want[i]) << "parity " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Codes, EcCodecTest, ::testing::ValuesIn(kCodes),
                         [](const ::testing::TestParamInfo<Code>& info) {
                           return "k" + std::to_string(info.param.k) + "m" +
                                  std::to_string(info.param.m);
                         });

TEST(EcCodec, RejectsUnsupportedCodes) {
  for (auto [k, m] : {std::pair{0u, 1u}, {1u, 0u}, {17u, 1u}, {4u, 5u}, {0u, 0u}}) {
    auto c = GetCodec(k, m);
    ASSERT_FALSE(c.ok()) << k << "+" << m;
    EXPECT_EQ(c.status().err(), EINVAL);
  }
  EXPECT_TRUE(GetCodec(16, 4).ok());
}

TEST(EcCodec, IsCachedPerCode) {
  auto a = GetCodec(4, 2), b = GetCodec(4, 2), other = GetCodec(4, 1);
  ASSERT_TRUE(a.ok() && b.ok() && other.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), other->get());
}

TEST(EcCodec, DecodeRejectsBadIndexes) {
  const ErasureCodec& c = **GetCodec(4, 2);
  std::mt19937_64 rng(9);
  Stripe s = MakeStripe(c, rng, 64);
  Buf out(64);
  uint8_t* outp = out.data();
  auto decode = [&](std::vector<uint32_t> present, std::vector<uint32_t> wanted) {
    std::vector<const uint8_t*> in;
    for (uint32_t p : present) in.push_back(p < s.units.size() ? s.units[p].data() : nullptr);
    return c.Decode(present, in.data(), wanted, &outp, 64).err();
  };
  EXPECT_EQ(decode({0, 1, 2}, {3}), EINVAL);           // fewer than k
  EXPECT_EQ(decode({0, 1, 2, 3, 4}, {5}), EINVAL);     // more than k
  EXPECT_EQ(decode({0, 1, 2, 2}, {3}), EINVAL);        // repeated
  EXPECT_EQ(decode({0, 1, 2, 6}, {3}), EINVAL);        // present out of range
  EXPECT_EQ(decode({0, 1, 2, 4}, {6}), EINVAL);        // wanted out of range
  EXPECT_EQ(decode({0, 1, 2, 4}, {3}), 0);
  EXPECT_EQ(out, s.units[3]);
}

// Four threads share one codec (and its decode-table cache, pushed past its
// bound by the 16+4 code's many patterns); every result is checked by content.
TEST(EcCodec, ThreadsShareOneCodec) {
  const ErasureCodec& c = **GetCodec(16, 4);
  std::mt19937_64 rng(4);
  const size_t len = 4097;
  Stripe s = MakeStripe(c, rng, len);
  auto patterns = ErasurePatterns(16, 4, 150, rng);
  std::vector<std::vector<uint32_t>> presents;
  for (const auto& e : patterns) presents.push_back(PickPresent(16, 4, e, rng));

  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        std::vector<Buf> parity(4, Buf(len, 0));
        c.Encode(Ptrs(s.units).data(), MutPtrs(parity).data(), len);
        for (uint32_t i = 0; i < 4; ++i) failures[t] += parity[i] != s.units[16 + i];
        // Each thread walks the patterns from a different start.
        for (size_t p = 0; p < patterns.size(); ++p) {
          size_t i = (p + t * patterns.size() / 4) % patterns.size();
          std::vector<const uint8_t*> in;
          for (uint32_t u : presents[i]) in.push_back(s.units[u].data());
          std::vector<Buf> out(patterns[i].size(), Buf(len, 0));
          Status st = c.Decode(presents[i], in.data(), patterns[i], MutPtrs(out).data(), len);
          failures[t] += !st.ok();
          for (size_t e = 0; e < out.size(); ++e) failures[t] += out[e] != s.units[patterns[i][e]];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace cfs::ec
