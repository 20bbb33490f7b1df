// Layout arithmetic (libcfs/common/layout.h): the mapping from file bytes to
// (target, local offset) must cover every byte exactly once, keep each target's
// object dense and agree with LocalObjectSize. Checked on many random layouts,
// including n > k+m where the stripe window slides over the target list.
#include "common/layout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace cfs {
namespace {

Layout MakeLayout(uint32_t unit, uint32_t k, uint32_t m, uint32_t n) {
  Layout l;
  l.unit = unit;
  l.k = k;
  l.m = m;
  for (uint32_t i = 0; i < n; i++) l.targets.push_back(100 + i * 7);  // ids need not be dense
  return l;
}

// A random valid layout. Units are kept small-ish (64 KiB..1 MiB) so that many
// stripes fit in the ranges tested.
Layout RandomLayout(std::mt19937_64& rng) {
  uint32_t unit = kMinStripeUnit << (rng() % 5);
  uint32_t k = 1 + rng() % kMaxDataUnits;
  uint32_t m = rng() % (kMaxParityUnits + 1);
  uint32_t n = k + m + (rng() % 3 == 0 ? 0 : rng() % 9);
  return MakeLayout(unit, k, m, n);
}

// Checks that the extents tile [off, off+len) exactly, in order, each inside one unit.
void CheckTiling(const Layout& l, uint64_t off, uint64_t len) {
  auto ext = MapRange(l, off, len);
  uint64_t pos = off;
  for (const auto& e : ext) {
    ASSERT_EQ(e.file_offset, pos) << l.ToString() << " off=" << off << " len=" << len;
    ASSERT_GT(e.length, 0u);
    ASSERT_LE(e.length, l.unit);
    uint64_t s = e.file_offset / l.stripe_bytes();
    ASSERT_EQ(e.stripe, s);
    uint32_t j = static_cast<uint32_t>((e.file_offset % l.stripe_bytes()) / l.unit);
    ASSERT_EQ(e.unit_index, j);
    ASSERT_LT(e.unit_index, l.k);
    // Never crosses a unit boundary.
    ASSERT_EQ((e.file_offset / l.unit), (e.file_offset + e.length - 1) / l.unit);
    ASSERT_EQ(e.target_index, TargetIndexOf(l, e.stripe, e.unit_index));
    ASSERT_LT(e.target_index, l.n());
    ASSERT_EQ(e.local_offset,
              LocalOffset(l, e.stripe, e.target_index) + e.file_offset % l.unit);
    pos += e.length;
  }
  ASSERT_EQ(pos, off + len);
}

TEST(LayoutTest, ValidateAcceptsAndRejects) {
  EXPECT_TRUE(MakeLayout(kDefaultStripeUnit, 6, 0, 6).Validate().ok());
  EXPECT_TRUE(MakeLayout(kMinStripeUnit, 1, 0, 1).Validate().ok());
  EXPECT_TRUE(MakeLayout(kMaxStripeUnit, kMaxDataUnits, kMaxParityUnits, 20).Validate().ok());
  EXPECT_EQ(MakeLayout(kMinStripeUnit / 2, 1, 0, 1).Validate().err(), EINVAL);
  EXPECT_EQ(MakeLayout(kMaxStripeUnit * 2u, 1, 0, 1).Validate().err(), EINVAL);
  EXPECT_EQ(MakeLayout(kMinStripeUnit * 3, 1, 0, 1).Validate().err(), EINVAL);  // not a power of two
  EXPECT_EQ(MakeLayout(kDefaultStripeUnit, 0, 0, 1).Validate().err(), EINVAL);
  EXPECT_EQ(MakeLayout(kDefaultStripeUnit, kMaxDataUnits + 1, 0, 40).Validate().err(), EINVAL);
  EXPECT_EQ(MakeLayout(kDefaultStripeUnit, 2, kMaxParityUnits + 1, 40).Validate().err(), EINVAL);
  EXPECT_EQ(MakeLayout(kDefaultStripeUnit, 4, 2, 5).Validate().err(), EINVAL);  // n < k+m
  Layout dup = MakeLayout(kDefaultStripeUnit, 2, 0, 3);
  dup.targets[2] = dup.targets[0];
  EXPECT_EQ(dup.Validate().err(), EINVAL);
  // ValidateShape ignores targets.
  EXPECT_TRUE(MakeLayout(kDefaultStripeUnit, 4, 2, 0).ValidateShape().ok());
}

TEST(LayoutTest, TargetIndexRotatesByStripe) {
  Layout l = MakeLayout(kMinStripeUnit, 4, 2, 6);
  for (uint64_t s = 0; s < 30; s++) {
    std::set<uint32_t> seen;
    for (uint32_t j = 0; j < l.width(); j++) {
      EXPECT_EQ(TargetIndexOf(l, s, j), (s + j) % 6);
      seen.insert(TargetIndexOf(l, s, j));
    }
    EXPECT_EQ(seen.size(), l.width()) << "a stripe uses each target at most once";
  }
  // n > k+m: the window of k+m slides by one target per stripe.
  Layout w = MakeLayout(kMinStripeUnit, 2, 1, 7);
  for (uint64_t s = 0; s < 50; s++)
    for (uint32_t j = 0; j < 3; j++) EXPECT_EQ(TargetIndexOf(w, s, j), (s + j) % 7);
  // Parity position (j = k) visits every target over n stripes.
  std::set<uint32_t> parity_targets;
  for (uint64_t s = 0; s < 7; s++) parity_targets.insert(TargetIndexOf(w, s, 2));
  EXPECT_EQ(parity_targets.size(), 7u);
}

TEST(LayoutTest, SimpleMapping) {
  Layout l = MakeLayout(kMinStripeUnit, 3, 0, 3);  // 64 KiB units, 192 KiB stripes
  const uint64_t u = kMinStripeUnit;
  auto e = MapRange(l, 0, 3 * u + 10);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].target_index, 0u);
  EXPECT_EQ(e[1].target_index, 1u);
  EXPECT_EQ(e[2].target_index, 2u);
  EXPECT_EQ(e[3].stripe, 1u);
  EXPECT_EQ(e[3].unit_index, 0u);
  EXPECT_EQ(e[3].target_index, 1u);  // stripe 1 starts one target later
  EXPECT_EQ(e[3].local_offset, u);   // n == k+m: slot = stripe
  EXPECT_EQ(e[3].length, 10u);
  // n == k+m: every target holds one unit per stripe, so local offset = stripe * unit.
  for (uint64_t s = 0; s < 10; s++)
    for (uint32_t t = 0; t < 3; t++) EXPECT_EQ(LocalOffset(l, s, t), s * u);
}

TEST(LayoutTest, EmptyRangeAndUnitBoundaries) {
  Layout l = MakeLayout(kMinStripeUnit, 4, 1, 7);
  const uint64_t u = kMinStripeUnit;
  EXPECT_TRUE(MapRange(l, 0, 0).empty());
  EXPECT_TRUE(MapRange(l, 12345, 0).empty());
  // Exactly one unit, aligned.
  auto one = MapRange(l, 5 * u, u);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].length, u);
  EXPECT_EQ(one[0].local_offset % u, 0u);
  // One byte either side of a unit boundary: two extents of one byte.
  auto two = MapRange(l, 5 * u - 1, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].length, 1u);
  EXPECT_EQ(two[1].length, 1u);
  EXPECT_EQ(two[0].local_offset % u, u - 1);
  EXPECT_EQ(two[1].local_offset % u, 0u);
  // Crossing a stripe boundary.
  auto st = MapRange(l, l.stripe_bytes() - 1, 2);
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].stripe, 0u);
  EXPECT_EQ(st[0].unit_index, l.k - 1);
  EXPECT_EQ(st[1].stripe, 1u);
  EXPECT_EQ(st[1].unit_index, 0u);
  // Far offsets do not overflow (file of 2^50 bytes).
  uint64_t far = 1ull << 50;
  CheckTiling(l, far - 3, u * 9 + 7);
}

TEST(LayoutTest, MapRangeTilesRandomRanges) {
  std::mt19937_64 rng(20240601);
  for (int iter = 0; iter < 400; iter++) {
    Layout l = RandomLayout(rng);
    ASSERT_TRUE(l.Validate().ok()) << l.ToString();
    uint64_t span = l.stripe_bytes() * (l.n() + 2);
    uint64_t off = rng() % span;
    uint64_t len = rng() % span;
    if (iter % 4 == 0) off = (off / l.unit) * l.unit;  // aligned starts
    if (iter % 5 == 0) len = (len / l.unit + 1) * l.unit;
    CheckTiling(l, off, len);
    if (HasFatalFailure()) return;
  }
}

// Every byte of a file maps to a distinct (target, local byte): no two file
// bytes share storage. Checked at unit granularity (extents never split units
// internally, so unit-level injectivity plus offset-in-unit gives byte-level).
TEST(LayoutTest, NoOverlapOnTargets) {
  std::mt19937_64 rng(77);
  for (int iter = 0; iter < 200; iter++) {
    Layout l = RandomLayout(rng);
    uint64_t stripes = 2 * l.n() + rng() % 5;
    uint64_t size = stripes * l.stripe_bytes() - rng() % l.unit;
    std::set<std::pair<uint32_t, uint64_t>> used;  // (target, local unit start)
    for (const auto& e : MapRange(l, 0, size)) {
      uint64_t local_unit_start = e.local_offset - e.file_offset % l.unit;
      ASSERT_EQ(local_unit_start % l.unit, 0u);
      ASSERT_TRUE(used.insert({e.target_index, local_unit_start}).second)
          << l.ToString() << ": two units share target " << e.target_index << " offset "
          << local_unit_start;
    }
  }
}

// LocalUnitIndex gives each target a dense 0,1,2,... sequence over the stripes
// it participates in (data and parity slots alike), so objects have no gaps.
TEST(LayoutTest, LocalUnitIndexDenseAndInjective) {
  std::mt19937_64 rng(99);
  for (int iter = 0; iter < 200; iter++) {
    Layout l = RandomLayout(rng);
    uint64_t stripes = 3 * l.n() + rng() % 11;
    std::vector<std::vector<uint64_t>> per_target(l.n());
    for (uint64_t s = 0; s < stripes; s++) {
      std::set<uint32_t> in_stripe;
      for (uint32_t j = 0; j < l.width(); j++) {
        uint32_t t = TargetIndexOf(l, s, j);
        ASSERT_TRUE(in_stripe.insert(t).second) << "target used twice in stripe " << s;
        per_target[t].push_back(LocalUnitIndex(l, s, t));
      }
    }
    for (uint32_t t = 0; t < l.n(); t++) {
      const auto& v = per_target[t];
      for (size_t i = 0; i < v.size(); i++)
        ASSERT_EQ(v[i], i) << l.ToString() << " target " << t
                           << ": local unit indexes must be 0,1,2,... in stripe order";
    }
    // Balanced: over whole periods of n stripes each target holds exactly k+m units.
    uint64_t whole = (stripes / l.n()) * l.n();
    for (uint32_t t = 0; t < l.n(); t++) {
      uint64_t cnt = 0;
      for (uint64_t s = 0; s < whole; s++)
        for (uint32_t j = 0; j < l.width(); j++)
          if (TargetIndexOf(l, s, j) == t) cnt++;
      ASSERT_EQ(cnt, (whole / l.n()) * l.width());
    }
  }
}

// Property: LocalObjectSize(t, size) is exactly the end of the furthest byte
// MapRange(0, size) puts on target t (0 if none).
TEST(LayoutTest, LocalObjectSizeMatchesMapRange) {
  std::mt19937_64 rng(4242);
  auto check = [](const Layout& l, uint64_t size) {
    std::vector<uint64_t> want(l.n(), 0);
    for (const auto& e : MapRange(l, 0, size))
      want[e.target_index] = std::max<uint64_t>(want[e.target_index], e.local_offset + e.length);
    for (uint32_t t = 0; t < l.n(); t++)
      ASSERT_EQ(LocalObjectSize(l, t, size), want[t])
          << l.ToString() << " target " << t << " size " << size;
  };
  for (int iter = 0; iter < 300; iter++) {
    Layout l = RandomLayout(rng);
    uint64_t max = l.stripe_bytes() * (2 * l.n() + 1);
    // Random sizes plus the interesting ones around unit and stripe boundaries.
    std::vector<uint64_t> sizes = {0, 1, l.unit - 1, l.unit, l.unit + 1, l.stripe_bytes() - 1,
                                   l.stripe_bytes(), l.stripe_bytes() + 1, rng() % max,
                                   rng() % max, (rng() % max / l.unit) * l.unit};
    for (uint64_t s : sizes) {
      check(l, s);
      if (HasFatalFailure()) return;
    }
  }
  // Exhaustive over every unit-aligned size +-1 for a small sliding layout.
  Layout l = MakeLayout(kMinStripeUnit, 3, 1, 5);
  for (uint64_t units = 0; units < 60; units++)
    for (int64_t d = -1; d <= 1; d++) {
      int64_t s = int64_t(units * l.unit) + d;
      if (s < 0) continue;
      check(l, uint64_t(s));
      if (HasFatalFailure()) return;
    }
}

TEST(LayoutTest, ParseSize) {
  struct Case {
    const char* in;
    uint64_t want;
  } good[] = {{"0", 0},           {"1", 1},
              {"1048576", 1048576}, {"64K", 64 << 10},
              {"64k", 64 << 10},    {"64KB", 64 << 10},
              {"64KiB", 64 << 10},  {"1M", 1 << 20},
              {"4MiB", 4 << 20},    {"4mib", 4 << 20},
              {"2G", 2ull << 30},   {"3T", 3ull << 40},
              {"7B", 7},            {"16777215T", 16777215ull << 40}};
  for (const auto& c : good) {
    auto r = ParseSize(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.want) << c.in;
  }
  const char* bad[] = {"",   "M",   "K1",    "1X",  "1 M",  "-1",  "1.5M", "1MM",
                       "0x10", " 1", "1M ", "18446744073709551616", "99999999999999999999",
                       "16777216P", "16777216T"};
  for (const char* b : bad) {
    auto r = ParseSize(b);
    EXPECT_FALSE(r.ok()) << "'" << b << "' parsed as " << (r.ok() ? *r : 0);
    if (!r.ok()) {
      EXPECT_EQ(r.status().err(), EINVAL) << b;
    }
  }
}

TEST(LayoutTest, FormatSize) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1 KiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(1 << 20), "1 MiB");
  EXPECT_EQ(FormatSize(64ull << 20), "64 MiB");
  EXPECT_EQ(FormatSize(1ull << 30), "1 GiB");
  EXPECT_EQ(FormatSize(5ull << 40), "5 TiB");
  EXPECT_EQ(FormatSize(3ull << 50), "3 PiB");
  // Round trip for the exact power-of-two sizes people type.
  for (uint64_t v : {1ull << 10, 64ull << 10, 1ull << 20, 4ull << 20, 1ull << 30}) {
    std::string s = FormatSize(v);
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    auto r = ParseSize(s);
    ASSERT_TRUE(r.ok()) << s;
    EXPECT_EQ(*r, v);
  }
}

TEST(LayoutTest, ParseStripe) {
  uint32_t k = 99, m = 99;
  ASSERT_TRUE(ParseStripe("6+0", &k, &m).ok());
  EXPECT_EQ(k, 6u);
  EXPECT_EQ(m, 0u);
  ASSERT_TRUE(ParseStripe("4+2", &k, &m).ok());
  EXPECT_EQ(k, 4u);
  EXPECT_EQ(m, 2u);
  ASSERT_TRUE(ParseStripe("16+4", &k, &m).ok());
  const char* bad[] = {"", "4", "4+", "+2", "4-2", "4+2+1", "4+2x", "0+0", "17+0", "4+5", "a+b",
                       "4 2"};
  for (const char* b : bad) {
    Status s = ParseStripe(b, &k, &m);
    EXPECT_FALSE(s.ok()) << "'" << b << "' accepted";
    EXPECT_EQ(s.err(), EINVAL) << b;
    EXPECT_FALSE(s.message().empty()) << b;
  }
}

}  // namespace
}  // namespace cfs
