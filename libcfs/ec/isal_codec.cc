// Placeholder until the ISA-L codec lands (being written now).
#include "ec/codec.h"
namespace cfs::ec {
Result<std::shared_ptr<const ErasureCodec>> GetCodec(uint32_t, uint32_t) {
  return Status::NotSupported("erasure codec not built yet");
}
}  // namespace cfs::ec
