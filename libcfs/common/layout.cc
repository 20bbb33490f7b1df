#include "common/layout.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

namespace cfs {

Status Layout::ValidateShape() const {
  if (unit < kMinStripeUnit || unit > kMaxStripeUnit || (unit & (unit - 1)) != 0)
    return Status::Invalid("stripe unit must be a power of two between 64 KiB and 64 MiB, got " +
                           std::to_string(unit));
  if (k < 1 || k > kMaxDataUnits)
    return Status::Invalid("data unit count k must be 1.." + std::to_string(kMaxDataUnits) +
                           ", got " + std::to_string(k));
  if (m > kMaxParityUnits)
    return Status::Invalid("parity unit count m must be 0.." + std::to_string(kMaxParityUnits) +
                           ", got " + std::to_string(m));
  return Status::OK();
}

Status Layout::Validate() const {
  CFS_RETURN_IF_ERROR(ValidateShape());
  if (targets.size() < width())
    return Status::Invalid("layout needs at least k+m=" + std::to_string(width()) +
                           " targets, has " + std::to_string(targets.size()));
  std::set<uint32_t> seen(targets.begin(), targets.end());
  if (seen.size() != targets.size()) return Status::Invalid("layout lists a target twice");
  return Status::OK();
}

std::string Layout::ToString() const {
  std::string s = std::to_string(k) + "+" + std::to_string(m) + " unit=" + FormatSize(unit) +
                  " targets=[";
  for (size_t i = 0; i < targets.size(); i++) {
    if (i) s += ",";
    s += std::to_string(targets[i]);
  }
  return s + "]";
}

uint32_t TargetIndexOf(const Layout& l, uint64_t stripe, uint32_t j) {
  return static_cast<uint32_t>((stripe + j) % l.n());
}

// Target t holds a unit of stripe s iff (t - s) mod n < k+m. That pattern
// repeats every n stripes, with k+m hits per period, which gives a dense index.
uint64_t LocalUnitIndex(const Layout& l, uint64_t stripe, uint32_t t) {
  const uint64_t n = l.n(), w = l.width();
  if (n == w) return stripe;
  uint64_t period = stripe / n, r = stripe % n, before = 0;
  for (uint64_t r2 = 0; r2 < r; r2++)
    if ((t + n - r2) % n < w) before++;
  return period * w + before;
}

uint64_t LocalObjectSize(const Layout& l, uint32_t t, uint64_t file_size) {
  if (file_size == 0) return 0;
  const uint64_t sb = l.stripe_bytes();
  uint64_t last = (file_size - 1) / sb;  // last stripe with data
  // Walk back over at most n stripes to find the last one this target holds data in.
  for (uint64_t back = 0; back < l.n() && back <= last; back++) {
    uint64_t s = last - back;
    uint32_t j = static_cast<uint32_t>((t + l.n() - s % l.n()) % l.n());
    if (j >= l.k) continue;  // not a data unit of stripe s on this target
    uint64_t unit_start = s * sb + uint64_t(j) * l.unit;
    if (unit_start >= file_size) continue;
    uint64_t in_unit = std::min<uint64_t>(l.unit, file_size - unit_start);
    return LocalOffset(l, s, t) + in_unit;
  }
  return 0;
}

std::vector<UnitExtent> MapRange(const Layout& l, uint64_t offset, uint64_t length) {
  std::vector<UnitExtent> out;
  const uint64_t sb = l.stripe_bytes();
  uint64_t pos = offset, end = offset + length;
  while (pos < end) {
    uint64_t s = pos / sb;
    uint64_t in_stripe = pos % sb;
    uint32_t j = static_cast<uint32_t>(in_stripe / l.unit);
    uint64_t in_unit = in_stripe % l.unit;
    uint64_t len = std::min<uint64_t>(l.unit - in_unit, end - pos);
    UnitExtent e;
    e.file_offset = pos;
    e.length = static_cast<uint32_t>(len);
    e.stripe = s;
    e.unit_index = j;
    e.target_index = TargetIndexOf(l, s, j);
    e.local_offset = LocalOffset(l, s, e.target_index) + in_unit;
    out.push_back(e);
    pos += len;
  }
  return out;
}

Result<uint64_t> ParseSize(const std::string& in) {
  if (in.empty()) return Status::Invalid("empty size");
  size_t i = 0;
  uint64_t v = 0;
  while (i < in.size() && std::isdigit(static_cast<unsigned char>(in[i]))) {
    uint64_t nv = v * 10 + (in[i] - '0');
    if (nv / 10 != v) return Status::Invalid("size too large: " + in);
    v = nv;
    i++;
  }
  if (i == 0) return Status::Invalid("size must start with a number: " + in);
  std::string suf = in.substr(i);
  for (auto& c : suf) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mul = 1;
  if (suf.empty() || suf == "B") mul = 1;
  else if (suf == "K" || suf == "KB" || suf == "KIB") mul = 1ull << 10;
  else if (suf == "M" || suf == "MB" || suf == "MIB") mul = 1ull << 20;
  else if (suf == "G" || suf == "GB" || suf == "GIB") mul = 1ull << 30;
  else if (suf == "T" || suf == "TB" || suf == "TIB") mul = 1ull << 40;
  else return Status::Invalid("unknown size suffix '" + in.substr(i) + "' in " + in);
  if (v > UINT64_MAX / mul) return Status::Invalid("size too large: " + in);
  return v * mul;
}

std::string FormatSize(uint64_t b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 5) { v /= 1024; u++; }
  char buf[32];
  if (u == 0 || v == static_cast<uint64_t>(v))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

Status ParseStripe(const std::string& s, uint32_t* k, uint32_t* m) {
  unsigned kk = 0, mm = 0;
  char extra;
  if (std::sscanf(s.c_str(), "%u+%u%c", &kk, &mm, &extra) != 2)
    return Status::Invalid("stripe must look like K+M (e.g. 4+2), got '" + s + "'");
  *k = kk;
  *m = mm;
  Layout l;
  l.k = kk;
  l.m = mm;
  return l.ValidateShape();
}

}  // namespace cfs
