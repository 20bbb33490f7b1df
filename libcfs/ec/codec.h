// ErasureCodec: the k+m code of a layout (DESIGN §3, docs/erasure-coding.md).
// Units are byte buffers of equal length; data units are 0..k-1, parity units
// k..k+m-1. Implementations are immutable after creation and safe to share
// between threads. The real one is Reed-Solomon on ISA-L (isal_codec.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"

namespace cfs::ec {

class ErasureCodec {
 public:
  virtual ~ErasureCodec() = default;
  virtual uint32_t k() const = 0;
  virtual uint32_t m() const = 0;

  // parity[i] (i < m) = parity unit k+i of data[0..k-1]; all `len` bytes.
  virtual void Encode(const uint8_t* const* data, uint8_t* const* parity, size_t len) const = 0;

  // Parity deltas for a change of data unit j: delta = old XOR new of that unit
  // (over some byte range); parity_delta[i] ^= coefficient(i, j) * delta, for
  // i < m, over the same `len` bytes. Callers zero parity_delta first and may
  // accumulate the deltas of several data units into the same buffers.
  virtual void AccumulateDelta(uint32_t j, const uint8_t* delta, uint8_t* const* parity_delta,
                               size_t len) const = 0;

  // Rebuilds units from any k others. present[0..k-1] are unit indexes
  // (0..k+m-1, distinct) whose bytes are in in[0..k-1]; wanted[0..w-1] are the
  // unit indexes to rebuild into out[0..w-1]. EINVAL on bad indexes.
  virtual Status Decode(const std::vector<uint32_t>& present, const uint8_t* const* in,
                        const std::vector<uint32_t>& wanted, uint8_t* const* out,
                        size_t len) const = 0;
};

// Reed-Solomon over GF(2^8) with ISA-L (Cauchy matrix: MDS for k <= 16, m <= 4).
// EINVAL for k == 0, m == 0, k > 16 or m > 4. Cached per (k, m): cheap to call.
Result<std::shared_ptr<const ErasureCodec>> GetCodec(uint32_t k, uint32_t m);

}  // namespace cfs::ec
