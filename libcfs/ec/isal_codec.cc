// Reed-Solomon codec on ISA-L. The (k+m) x k encode matrix comes from
// gf_gen_cauchy1_matrix: identity on top (systematic), a Cauchy matrix below,
// so every k x k submatrix of it is invertible (MDS) for k + m <= 256. All
// Galois arithmetic is ISA-L's (ec_* kernels, gf_invert_matrix, gf_mul).
#include <isa-l/erasure_code.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "common/logging.h"
#include "ec/codec.h"

namespace cfs::ec {
namespace {

constexpr uint32_t kMaxK = 16;
constexpr uint32_t kMaxM = 4;
// Erasure patterns seen by one codec are few (one per failed-target set);
// bound the cache anyway so a scan over many patterns cannot grow it forever.
constexpr size_t kMaxDecodeTables = 64;
// ISA-L takes int lengths; feed it chunks well below INT_MAX.
constexpr size_t kMaxChunk = size_t{1} << 30;

// ec_* kernels take non-const source pointers but never write through them.
inline unsigned char** Unconst(const uint8_t* const* p) {
  return const_cast<unsigned char**>(reinterpret_cast<const unsigned char* const*>(p));
}

class IsalCodec final : public ErasureCodec {
 public:
  IsalCodec(uint32_t k, uint32_t m) : k_(k), m_(m), matrix_((k + m) * k), parity_tables_(32 * k * m) {
    gf_gen_cauchy1_matrix(matrix_.data(), static_cast<int>(k + m), static_cast<int>(k));
    ec_init_tables(static_cast<int>(k), static_cast<int>(m), matrix_.data() + k * k,
                   parity_tables_.data());
  }

  uint32_t k() const override { return k_; }
  uint32_t m() const override { return m_; }

  void Encode(const uint8_t* const* data, uint8_t* const* parity, size_t len) const override {
    RunTables(parity_tables_.data(), m_, data, parity, len);
  }

  void AccumulateDelta(uint32_t j, const uint8_t* delta, uint8_t* const* parity_delta,
                       size_t len) const override {
    if (j >= k_) {
      // A contract violation by the caller; wrong parity would be silent data loss.
      LOG_ERROR("ec: AccumulateDelta for data unit {} of a k={} code", j, k_);
      std::abort();
    }
    for (size_t off = 0; off < len; off += kMaxChunk) {
      int n = static_cast<int>(std::min(kMaxChunk, len - off));
      unsigned char* out[kMaxM];
      for (uint32_t i = 0; i < m_; ++i) out[i] = parity_delta[i] + off;
      ec_encode_data_update(n, static_cast<int>(k_), static_cast<int>(m_), static_cast<int>(j),
                            const_cast<unsigned char*>(parity_tables_.data()),
                            const_cast<unsigned char*>(delta + off), out);
    }
  }

  Status Decode(const std::vector<uint32_t>& present, const uint8_t* const* in,
                const std::vector<uint32_t>& wanted, uint8_t* const* out,
                size_t len) const override {
    const uint32_t n = k_ + m_;
    if (present.size() != k_) {
      return Status::Invalid("ec decode: " + std::to_string(present.size()) +
                             " units present, need k=" + std::to_string(k_));
    }
    uint32_t seen = 0;  // n <= 20 fits a bitmask
    for (uint32_t p : present) {
      if (p >= n || (seen & (1u << p)) != 0) {
        return Status::Invalid("ec decode: bad or repeated present unit " + std::to_string(p));
      }
      seen |= 1u << p;
    }
    for (uint32_t w : wanted) {
      if (w >= n) return Status::Invalid("ec decode: bad wanted unit " + std::to_string(w));
    }
    if (wanted.empty() || len == 0) return Status::OK();

    auto tables = DecodeTables(present, wanted);
    if (!tables.ok()) return tables.status();
    RunTables(tables.value()->data(), static_cast<uint32_t>(wanted.size()), in, out, len);
    return Status::OK();
  }

 private:
  using Tables = std::vector<unsigned char>;
  using Key = std::pair<std::vector<uint32_t>, std::vector<uint32_t>>;

  // out[0..rows-1] = the rows of `tables` applied to in[0..k-1].
  void RunTables(const unsigned char* tables, uint32_t rows, const uint8_t* const* in,
                 uint8_t* const* out, size_t len) const {
    unsigned char* src[kMaxK];
    for (size_t off = 0; off < len; off += kMaxChunk) {
      int chunk = static_cast<int>(std::min(kMaxChunk, len - off));
      for (uint32_t i = 0; i < k_; ++i) src[i] = Unconst(in)[i] + off;
      // Wanted may name more than m units (e.g. a full re-read); heap only then.
      std::vector<unsigned char*> dst(rows);
      for (uint32_t i = 0; i < rows; ++i) dst[i] = out[i] + off;
      ec_encode_data(chunk, static_cast<int>(k_), static_cast<int>(rows),
                     const_cast<unsigned char*>(tables), src, dst.data());
    }
  }

  // Tables that turn the present units into the wanted ones, cached per pattern.
  Result<std::shared_ptr<const Tables>> DecodeTables(const std::vector<uint32_t>& present,
                                                     const std::vector<uint32_t>& wanted) const {
    Key key(present, wanted);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return it->second.first;
      }
    }

    // Rows of the encode matrix for the present units, then their inverse:
    // inverse * present = data units.
    std::vector<unsigned char> sub(k_ * k_), inv(k_ * k_);
    for (uint32_t r = 0; r < k_; ++r) {
      std::copy_n(matrix_.data() + present[r] * k_, k_, sub.data() + r * k_);
    }
    if (gf_invert_matrix(sub.data(), inv.data(), static_cast<int>(k_)) != 0) {
      // Cannot happen for a Cauchy code with distinct indexes; say so if it does.
      return Status::Corruption("ec decode: singular submatrix");
    }
    // Data unit d is row d of the inverse; parity unit p is encode row p times it.
    std::vector<unsigned char> rows(wanted.size() * k_);
    for (size_t w = 0; w < wanted.size(); ++w) {
      unsigned char* row = rows.data() + w * k_;
      uint32_t u = wanted[w];
      if (u < k_) {
        std::copy_n(inv.data() + u * k_, k_, row);
        continue;
      }
      const unsigned char* enc = matrix_.data() + u * k_;
      for (uint32_t c = 0; c < k_; ++c) {
        unsigned char s = 0;
        for (uint32_t t = 0; t < k_; ++t) s ^= gf_mul(enc[t], inv[t * k_ + c]);
        row[c] = s;
      }
    }
    auto tables = std::make_shared<Tables>(32 * k_ * wanted.size());
    ec_init_tables(static_cast<int>(k_), static_cast<int>(wanted.size()), rows.data(),
                   tables->data());

    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second.first;  // another thread won the race
    if (cache_.size() >= kMaxDecodeTables) {
      cache_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    cache_.emplace(std::move(key), std::make_pair(tables, lru_.begin()));
    return std::shared_ptr<const Tables>(std::move(tables));
  }

  const uint32_t k_;
  const uint32_t m_;
  std::vector<unsigned char> matrix_;         // (k+m) x k, row-major
  std::vector<unsigned char> parity_tables_;  // ec_init_tables of the m parity rows

  mutable std::mutex mu_;
  mutable std::list<Key> lru_;  // most recently used first
  mutable std::map<Key, std::pair<std::shared_ptr<const Tables>, std::list<Key>::iterator>> cache_;
};

}  // namespace

Result<std::shared_ptr<const ErasureCodec>> GetCodec(uint32_t k, uint32_t m) {
  if (k == 0 || k > kMaxK || m == 0 || m > kMaxM) {
    return Status::Invalid("ec: unsupported code k=" + std::to_string(k) +
                           " m=" + std::to_string(m));
  }
  static std::mutex mu;
  static std::map<std::pair<uint32_t, uint32_t>, std::shared_ptr<const ErasureCodec>> codecs;
  std::lock_guard<std::mutex> lock(mu);
  auto& c = codecs[{k, m}];
  if (!c) c = std::make_shared<IsalCodec>(k, m);
  return c;
}

}  // namespace cfs::ec
