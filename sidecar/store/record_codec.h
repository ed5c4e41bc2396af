// The byte form of a Record: the value of a LevelDB entry and the payload a
// sidecar sends to its peers (as one msgpack bin inside a message).
//
// A fixed little-endian layout, 30 bytes of header then the value:
//
//   offset size
//        0    1  format version, kRecordFormatVersion (1)
//        1    1  bits: 0x01 = deleted (a tombstone); the others must be 0
//        2    8  version.clock
//       10    4  version.server
//       14    8  expiry_unix_ms (two's complement)
//       22    4  flags
//       26    4  value length N
//       30    N  value bytes
//
// The same record always encodes to the same bytes, on every machine.
//
// Contract: decoding never reads outside the given bytes and never crashes or
// allocates more than their size, whatever they hold. It returns Unsupported for
// another format version and InvalidArgument for anything else malformed
// (truncated, trailing bytes, unknown bits), with a message saying what.
//
// Thread-safety: free functions on values; safe from any thread.
#ifndef CLUSTER_BALANCE_SIDECAR_STORE_RECORD_CODEC_H_
#define CLUSTER_BALANCE_SIDECAR_STORE_RECORD_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/status.h"
#include "sidecar/store/record.h"

namespace cb::store {

inline constexpr uint8_t kRecordFormatVersion = 1;
inline constexpr std::size_t kRecordHeaderBytes = 30;
// Values are at most this long (the length field is 32 bits).
inline constexpr std::size_t kMaxRecordValueBytes = 0xFFFFFFFFu;

// Everything in a record but the value bytes: what a scan needs, without copying
// the value.
struct RecordHeader {
  Version version;
  int64_t expiry_unix_ms = 0;
  uint32_t flags = 0;
  bool deleted = false;
  uint32_t value_size = 0;

  bool operator==(const RecordHeader&) const = default;
};

// Appends the encoding of `record` to `out`. Precondition: record.value.size() <=
// kMaxRecordValueBytes.
void AppendRecord(std::string& out, const Record& record);
std::string EncodeRecord(const Record& record);

// Decodes exactly one record from all of `bytes`.
Result<Record> DecodeRecord(std::string_view bytes);
// Checks all of `bytes` like DecodeRecord and returns the header only.
Result<RecordHeader> DecodeRecordHeader(std::string_view bytes);

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_RECORD_CODEC_H_
