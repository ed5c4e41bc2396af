#include "sidecar/store/record_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace cb::store {
namespace {

Record Sample() {
  Record record;
  record.value = std::string("a\0b\xff value", 10);
  record.version = Version{0x0123456789abcdefULL, 0xfedcba98u};
  record.expiry_unix_ms = 1'700'000'000'123;
  record.flags = 0xdeadbeef;
  return record;
}

TEST(RecordCodecTest, RoundTrips) {
  Record tombstone;
  tombstone.version = Version{42, 1};
  tombstone.deleted = true;
  Record negative = Sample();
  negative.expiry_unix_ms = -7;
  Record large = Sample();
  large.value.assign(1 << 20, 'x');
  for (const Record& record : {Sample(), tombstone, negative, large, Record{}}) {
    const std::string bytes = EncodeRecord(record);
    EXPECT_EQ(bytes.size(), kRecordHeaderBytes + record.value.size());
    Result<Record> decoded = DecodeRecord(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, record);
    Result<RecordHeader> header = DecodeRecordHeader(bytes);
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header->version, record.version);
    EXPECT_EQ(header->expiry_unix_ms, record.expiry_unix_ms);
    EXPECT_EQ(header->flags, record.flags);
    EXPECT_EQ(header->deleted, record.deleted);
    EXPECT_EQ(header->value_size, record.value.size());
  }
}

TEST(RecordCodecTest, LayoutIsFixedLittleEndian) {
  Record record;
  record.value = "v";
  record.version = Version{0x0102030405060708ULL, 0x0a0b0c0d};
  record.expiry_unix_ms = 0x1112131415161718LL;
  record.flags = 0x21222324;
  record.deleted = true;
  const std::string expected(
      "\x01\x01"
      "\x08\x07\x06\x05\x04\x03\x02\x01"
      "\x0d\x0c\x0b\x0a"
      "\x18\x17\x16\x15\x14\x13\x12\x11"
      "\x24\x23\x22\x21"
      "\x01\x00\x00\x00"
      "v",
      31);
  EXPECT_EQ(EncodeRecord(record), expected);
  std::string appended = "prefix";
  AppendRecord(appended, record);
  EXPECT_EQ(appended, "prefix" + expected);
}

TEST(RecordCodecTest, RejectsEveryTruncationAndTrailingBytes) {
  const std::string bytes = EncodeRecord(Sample());
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(DecodeRecord(bytes.substr(0, size)).ok()) << size;
  }
  Result<Record> trailing = DecodeRecord(bytes + "x");
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(trailing.status().message().find("value length"), std::string::npos);
}

TEST(RecordCodecTest, RejectsOtherFormatVersionsAndUnknownBits) {
  std::string bytes = EncodeRecord(Sample());
  bytes[0] = 2;
  Result<Record> other = DecodeRecord(bytes);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Status::Code::kUnsupported);
  EXPECT_NE(other.status().message().find("format version 2"), std::string::npos);

  bytes = EncodeRecord(Sample());
  bytes[1] = 0x02;
  Result<Record> bits = DecodeRecord(bytes);
  ASSERT_FALSE(bits.ok());
  EXPECT_EQ(bits.status().code(), Status::Code::kInvalidArgument);
}

TEST(RecordCodecTest, HugeDeclaredLengthIsRejectedWithoutAllocating) {
  std::string bytes = EncodeRecord(Sample());
  bytes.resize(kRecordHeaderBytes);
  bytes[26] = bytes[27] = bytes[28] = bytes[29] = '\xff';
  EXPECT_FALSE(DecodeRecord(bytes).ok());
}

TEST(RecordCodecTest, RandomBytesNeverCrash) {
  std::mt19937_64 random(12345);
  const std::string valid = EncodeRecord(Sample());
  int accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(random() % 64);
      for (char& c : bytes) c = static_cast<char>(random());
    } else {
      bytes = valid;  // flip a few bytes of a valid encoding
      for (int flips = 1 + random() % 3; flips > 0; --flips) {
        bytes[random() % bytes.size()] = static_cast<char>(random());
      }
    }
    Result<Record> decoded = DecodeRecord(bytes);
    if (decoded.ok()) {
      ++accepted;
      EXPECT_EQ(EncodeRecord(*decoded), bytes);  // what decodes is exactly what it encodes to
    }
  }
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace cb::store
