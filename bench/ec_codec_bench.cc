// Throughput of the ISA-L codec: encode, decode of m lost data units, and
// parity deltas of one data unit. Bytes/s count data bytes (k units for
// encode/decode, the one delta unit for AccumulateDelta).
//
// Not in the CMake build yet (no bench target); build it against a build dir:
//   B=build-codec
//   g++ -std=c++20 -O2 -Ilibcfs -I$B/libcfs bench/ec_codec_bench.cc
//       $B/libcfs/libcfs_ec.a $B/libcfs/libcfs_common.a -lisal -lspdlog -lfmt
//       -lbenchmark -lpthread -o $B/bin/ec_codec_bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "ec/codec.h"

namespace {

using cfs::ec::ErasureCodec;

struct Units {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<const uint8_t*> in;
  std::vector<uint8_t*> out;
};

// k random data units and m output units of `len` bytes.
Units MakeUnits(uint32_t k, uint32_t m, size_t len) {
  Units u;
  std::mt19937_64 rng(42);
  for (uint32_t i = 0; i < k + m; ++i) {
    u.bufs.emplace_back(len);
    for (auto& c : u.bufs.back()) c = static_cast<uint8_t>(rng());
  }
  for (uint32_t i = 0; i < k; ++i) u.in.push_back(u.bufs[i].data());
  for (uint32_t i = k; i < k + m; ++i) u.out.push_back(u.bufs[i].data());
  return u;
}

void BM_Encode(benchmark::State& state) {
  auto k = static_cast<uint32_t>(state.range(0)), m = static_cast<uint32_t>(state.range(1));
  auto len = static_cast<size_t>(state.range(2));
  const ErasureCodec& c = **cfs::ec::GetCodec(k, m);
  Units u = MakeUnits(k, m, len);
  for (auto _ : state) {
    c.Encode(u.in.data(), u.out.data(), len);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * k * len));
}

// Data units 0..m-1 lost; rebuilt from the other data units and all parity.
void BM_DecodeLostData(benchmark::State& state) {
  auto k = static_cast<uint32_t>(state.range(0)), m = static_cast<uint32_t>(state.range(1));
  auto len = static_cast<size_t>(state.range(2));
  const ErasureCodec& c = **cfs::ec::GetCodec(k, m);
  Units u = MakeUnits(k, m, len);
  c.Encode(u.in.data(), u.out.data(), len);
  uint32_t lost = std::min(m, k);
  std::vector<uint32_t> present(k), wanted(lost);
  std::iota(present.begin(), present.end(), lost);
  std::iota(wanted.begin(), wanted.end(), 0u);
  std::vector<const uint8_t*> in;
  for (uint32_t p : present) in.push_back(u.bufs[p].data());
  std::vector<std::vector<uint8_t>> out(lost, std::vector<uint8_t>(len));
  std::vector<uint8_t*> outp;
  for (auto& o : out) outp.push_back(o.data());
  for (auto _ : state) {
    if (!c.Decode(present, in.data(), wanted, outp.data(), len).ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * k * len));
}

void BM_AccumulateDelta(benchmark::State& state) {
  auto k = static_cast<uint32_t>(state.range(0)), m = static_cast<uint32_t>(state.range(1));
  auto len = static_cast<size_t>(state.range(2));
  const ErasureCodec& c = **cfs::ec::GetCodec(k, m);
  Units u = MakeUnits(k, m, len);
  for (auto _ : state) {
    c.AccumulateDelta(k - 1, u.in[0], u.out.data(), len);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

void Codes(benchmark::internal::Benchmark* b) {
  for (auto [k, m] : {std::pair{4, 2}, {6, 3}, {8, 2}, {16, 4}}) {
    for (int64_t len : {int64_t{64} << 10, int64_t{1} << 20}) b->Args({k, m, len});
  }
}

BENCHMARK(BM_Encode)->Apply(Codes);
BENCHMARK(BM_DecodeLostData)->Apply(Codes);
BENCHMARK(BM_AccumulateDelta)->Apply(Codes);

}  // namespace

BENCHMARK_MAIN();
