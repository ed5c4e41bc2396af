#include "sidecar/store/record.h"

#include <xxhash.h>

namespace cb::store {

uint64_t Version::CasToken() const {
  const uint64_t parts[2] = {clock, server};
  const uint64_t token = XXH3_64bits(parts, sizeof(parts));
  return token == 0 ? 1 : token;
}

}  // namespace cb::store
