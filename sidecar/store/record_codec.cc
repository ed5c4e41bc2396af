#include "sidecar/store/record_codec.h"

#include <cassert>

namespace cb::store {

namespace {

constexpr uint8_t kDeletedBit = 0x01;
constexpr uint8_t kKnownBits = kDeletedBit;

void PutFixed(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }
}

uint64_t GetFixed(std::string_view bytes, std::size_t offset, int size) {
  uint64_t value = 0;
  for (int i = 0; i < size; ++i) {
    value |= uint64_t{static_cast<uint8_t>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

}  // namespace

void AppendRecord(std::string& out, const Record& record) {
  assert(record.value.size() <= kMaxRecordValueBytes);
  out.reserve(out.size() + kRecordHeaderBytes + record.value.size());
  out.push_back(static_cast<char>(kRecordFormatVersion));
  out.push_back(static_cast<char>(record.deleted ? kDeletedBit : 0));
  PutFixed(out, record.version.clock, 8);
  PutFixed(out, record.version.server, 4);
  PutFixed(out, static_cast<uint64_t>(record.expiry_unix_ms), 8);
  PutFixed(out, record.flags, 4);
  PutFixed(out, record.value.size(), 4);
  out.append(record.value);
}

std::string EncodeRecord(const Record& record) {
  std::string out;
  AppendRecord(out, record);
  return out;
}

Result<RecordHeader> DecodeRecordHeader(std::string_view bytes) {
  if (bytes.empty()) {
    return Status::InvalidArgument("record: empty");
  }
  const auto format = static_cast<uint8_t>(bytes[0]);
  if (format != kRecordFormatVersion) {
    return Status::Unsupported("record: format version " + std::to_string(format) +
                               " (this build reads " + std::to_string(kRecordFormatVersion) + ")");
  }
  if (bytes.size() < kRecordHeaderBytes) {
    return Status::InvalidArgument("record: truncated header (" + std::to_string(bytes.size()) +
                                   " of " + std::to_string(kRecordHeaderBytes) + " bytes)");
  }
  const auto bits = static_cast<uint8_t>(bytes[1]);
  if ((bits & ~kKnownBits) != 0) {
    return Status::InvalidArgument("record: unknown flag bits " + std::to_string(bits));
  }
  RecordHeader header;
  header.deleted = (bits & kDeletedBit) != 0;
  header.version.clock = GetFixed(bytes, 2, 8);
  header.version.server = static_cast<uint32_t>(GetFixed(bytes, 10, 4));
  header.expiry_unix_ms = static_cast<int64_t>(GetFixed(bytes, 14, 8));
  header.flags = static_cast<uint32_t>(GetFixed(bytes, 22, 4));
  header.value_size = static_cast<uint32_t>(GetFixed(bytes, 26, 4));
  const std::size_t present = bytes.size() - kRecordHeaderBytes;
  if (present != header.value_size) {
    return Status::InvalidArgument("record: value length " + std::to_string(header.value_size) +
                                   " but " + std::to_string(present) + " bytes follow the header");
  }
  return header;
}

Result<Record> DecodeRecord(std::string_view bytes) {
  Result<RecordHeader> header = DecodeRecordHeader(bytes);
  if (!header.ok()) {
    return header.status();
  }
  Record record;
  record.version = header->version;
  record.expiry_unix_ms = header->expiry_unix_ms;
  record.flags = header->flags;
  record.deleted = header->deleted;
  record.value.assign(bytes.substr(kRecordHeaderBytes));
  return record;
}

}  // namespace cb::store
