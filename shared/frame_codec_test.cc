#include "shared/frame_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace cb {
namespace {

using Decoded = Result<std::optional<msgpack::object_handle>>;

template <typename T>
std::string Encode(const T& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  return std::string(buffer.data(), buffer.size());
}

std::string Header(uint32_t size) {
  return std::string{static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                     static_cast<char>(size >> 8), static_cast<char>(size)};
}

// A frame built by hand, without AppendFrame's checks.
std::string RawFrame(const std::string& payload) {
  return Header(static_cast<uint32_t>(payload.size())) + payload;
}

template <typename T>
std::string MessageFrame(const T& message, const FrameLimits& limits = {}) {
  std::string out;
  const Status status = AppendMessageFrame(out, message, limits);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return out;
}

// Next() must yield a whole object.
msgpack::object_handle ExpectObject(FrameDecoder& decoder) {
  Decoded next = decoder.Next();
  EXPECT_TRUE(next.ok()) << next.status().ToString();
  if (!next.ok()) return msgpack::object_handle();
  EXPECT_TRUE(next->has_value());
  if (!next->has_value()) return msgpack::object_handle();
  return std::move(**next);
}

// Next() must say it needs more bytes.
void ExpectNeedsMore(FrameDecoder& decoder) {
  Decoded next = decoder.Next();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_FALSE(next->has_value());
}

Status ExpectError(FrameDecoder& decoder) {
  Decoded next = decoder.Next();
  EXPECT_FALSE(next.ok());
  return next.status();
}

std::string Nested(int depth, char container_byte) {  // 0x91: [x], 0x81: {nil: x}
  std::string payload;
  for (int i = 0; i < depth; ++i) {
    payload += container_byte;
    if (container_byte == '\x81') payload += '\xc0';  // the key
  }
  payload += '\xc0';  // the innermost value: nil
  return payload;
}

TEST(FrameCodecTest, RoundTripsMsgpackValues) {
  const std::map<std::string, int64_t> map{{"a", 1}, {"generation", 1234567890123}, {"z", -5}};
  const std::vector<int64_t> array{0, 1, -1, 127, 128, -32, -33, 65535, 65536, -2147483649LL};
  const std::string text("h\xc3\xa9llo, cluster\0with a NUL", 26);
  const std::string long_text(70000, 's');  // str32
  const std::vector<char> binary{'\0', '\x01', '\xff', '\x80', 'b'};
  const auto ints = std::make_tuple(uint64_t{0}, std::numeric_limits<uint64_t>::max(),
                                    std::numeric_limits<int64_t>::min(),
                                    std::numeric_limits<int64_t>::max(), int64_t{-1}, true, false);
  const auto nested =
      std::make_tuple(map, array, std::vector<std::string>{"x", "", "yz"},
                      std::map<std::string, std::vector<int>>{{"k", {1, 2, 3}}, {"e", {}}});

  FrameDecoder decoder;
  std::string frame;
  frame = MessageFrame(map);
  ASSERT_EQ(frame.substr(0, 4), Header(static_cast<uint32_t>(Encode(map).size())));
  ASSERT_EQ(frame.substr(4), Encode(map));
  decoder.Append(frame);
  {
    msgpack::object_handle handle = ExpectObject(decoder);
    ASSERT_EQ(handle.get().type, msgpack::type::MAP);
    EXPECT_EQ((handle.get().as<std::map<std::string, int64_t>>()), map);
  }
  ExpectNeedsMore(decoder);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);

  decoder.Append(MessageFrame(array));
  {
    msgpack::object_handle handle = ExpectObject(decoder);
    ASSERT_EQ(handle.get().type, msgpack::type::ARRAY);
    EXPECT_EQ(handle.get().as<std::vector<int64_t>>(), array);
  }
  for (const std::string& s : {text, long_text, std::string()}) {
    decoder.Append(MessageFrame(s));
    msgpack::object_handle handle = ExpectObject(decoder);
    ASSERT_EQ(handle.get().type, msgpack::type::STR);
    EXPECT_EQ(handle.get().as<std::string>(), s);
  }
  decoder.Append(MessageFrame(binary));
  {
    msgpack::object_handle handle = ExpectObject(decoder);
    ASSERT_EQ(handle.get().type, msgpack::type::BIN);
    EXPECT_EQ(handle.get().as<std::vector<char>>(), binary);
  }
  decoder.Append(MessageFrame(ints));
  {
    msgpack::object_handle handle = ExpectObject(decoder);
    EXPECT_EQ(handle.get().as<std::remove_const_t<decltype(ints)>>(), ints);
  }
  decoder.Append(MessageFrame(nested));
  {
    msgpack::object_handle handle = ExpectObject(decoder);
    EXPECT_EQ(handle.get().as<std::remove_const_t<decltype(nested)>>(), nested);
  }
  // Scalars as whole messages.
  for (const int64_t value : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    decoder.Append(MessageFrame(value));
    EXPECT_EQ(ExpectObject(decoder).get().as<int64_t>(), value);
  }
  decoder.Append(MessageFrame(std::numeric_limits<uint64_t>::max()));
  EXPECT_EQ(ExpectObject(decoder).get().as<uint64_t>(), std::numeric_limits<uint64_t>::max());
  ExpectNeedsMore(decoder);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameCodecTest, HeaderIsTheBigEndianPayloadLength) {
  const std::string payload = Encode(std::string(0x1234 - 3, 'p'));  // str16: 3 header bytes
  ASSERT_EQ(payload.size(), 0x1234u);
  std::string out = "prefix";
  ASSERT_TRUE(AppendFrame(out, payload, FrameLimits{}).ok());
  EXPECT_EQ(out, "prefix" + std::string("\x00\x00\x12\x34", 4) + payload);
}

TEST(FrameCodecTest, DecodesSeveralFramesFromOneAppend) {
  std::string stream;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        AppendMessageFrame(stream, std::make_tuple(i, std::string(i * 10, 'x')), FrameLimits{})
            .ok());
  }
  FrameDecoder decoder;
  decoder.Append(stream);
  EXPECT_EQ(decoder.buffered_bytes(), stream.size());
  for (int i = 0; i < 5; ++i) {
    msgpack::object_handle handle = ExpectObject(decoder);
    EXPECT_EQ((handle.get().as<std::tuple<int, std::string>>()),
              std::make_tuple(i, std::string(i * 10, 'x')));
  }
  ExpectNeedsMore(decoder);
  ExpectNeedsMore(decoder);  // asking again is harmless
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameCodecTest, WaitsForEveryByteOfAFrame) {
  const std::vector<std::string> messages{std::string(300, 'a'), "b"};
  std::string stream;
  for (const auto& m : messages) stream += MessageFrame(m);
  const std::size_t first_frame = 4 + Encode(messages[0]).size();

  FrameDecoder decoder;
  std::vector<std::string> decoded;
  std::vector<std::size_t> completed_at;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    decoder.Append(stream.substr(i, 1));
    Decoded next = decoder.Next();
    ASSERT_TRUE(next.ok()) << "at byte " << i << ": " << next.status().ToString();
    if (next->has_value()) {
      decoded.push_back((**next).get().as<std::string>());
      completed_at.push_back(i);
      EXPECT_EQ(decoder.buffered_bytes(), 0u);
    } else {
      const std::size_t frame_start = i < first_frame ? 0 : first_frame;
      EXPECT_EQ(decoder.buffered_bytes(), i + 1 - frame_start) << "at byte " << i;
    }
  }
  EXPECT_EQ(decoded, messages);
  EXPECT_EQ(completed_at, (std::vector<std::size_t>{first_frame - 1, stream.size() - 1}));
}

TEST(FrameCodecTest, RejectsAnOversizedLengthBeforeThePayloadArrives) {
  FrameLimits limits;
  limits.max_payload_bytes = 100;
  {
    FrameDecoder decoder(limits);
    const std::string header = Header(101);
    decoder.Append(header.substr(0, 3));
    ExpectNeedsMore(decoder);
    decoder.Append(header.substr(3));  // the fourth header byte, no payload at all
    const Status error = ExpectError(decoder);
    EXPECT_EQ(error.code(), Status::Code::kTooLarge);
    EXPECT_NE(error.message().find("101"), std::string::npos) << error.message();
    EXPECT_NE(error.message().find("100"), std::string::npos) << error.message();
  }
  {
    FrameDecoder decoder;  // default limit, a length no decoder should believe
    decoder.Append(Header(0xffffffff));
    EXPECT_EQ(ExpectError(decoder).code(), Status::Code::kTooLarge);
  }
  {
    FrameDecoder decoder;
    decoder.Append(Header(16 * 1024 * 1024 + 1));
    EXPECT_EQ(ExpectError(decoder).code(), Status::Code::kTooLarge);
  }
  {
    // Exactly at the limit is fine: a str8 of 98 bytes is a 100-byte payload.
    const std::string payload = Encode(std::string(98, 'q'));
    ASSERT_EQ(payload.size(), 100u);
    FrameDecoder decoder(limits);
    decoder.Append(RawFrame(payload));
    EXPECT_EQ(ExpectObject(decoder).get().as<std::string>(), std::string(98, 'q'));
  }
}

TEST(FrameCodecTest, RejectsAnEmptyFrame) {
  FrameDecoder decoder;
  decoder.Append(Header(0) + MessageFrame(1));
  const Status error = ExpectError(decoder);
  EXPECT_EQ(error.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(error.message().find("empty"), std::string::npos) << error.message();
}

TEST(FrameCodecTest, RejectsAGarbagePayload) {
  struct Case {
    const char* name;
    std::string payload;
    const char* expected;
  };
  const Case cases[] = {
      {"never-used byte 0xc1", std::string("\xc1", 1), "undecodable"},
      {"0xc1 after a valid prefix", std::string("\x92\x01\xc1", 3), "undecodable"},
      {"str shorter than declared", std::string("\xa5hi", 3), "ends before"},
      {"array missing elements", std::string("\x93\x01\x02", 3), "ends before"},
      {"uint32 cut short", std::string("\xce\x00\x01", 3), "ends before"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FrameDecoder decoder;
    decoder.Append(RawFrame(c.payload) + MessageFrame(7));
    const Status error = ExpectError(decoder);
    EXPECT_EQ(error.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(error.message().find(c.expected), std::string::npos) << error.message();

    Result<msgpack::object_handle> direct = DecodePayload(c.payload, FrameLimits{});
    ASSERT_FALSE(direct.ok());
    EXPECT_EQ(direct.status().code(), Status::Code::kInvalidArgument);
  }
}

TEST(FrameCodecTest, RejectsBytesLeftAfterTheMessage) {
  const std::string payload = Encode(1) + Encode(std::string("extra"));
  FrameDecoder decoder;
  decoder.Append(RawFrame(payload));
  const Status error = ExpectError(decoder);
  EXPECT_EQ(error.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(error.message().find("6 bytes left"), std::string::npos) << error.message();

  Result<msgpack::object_handle> direct = DecodePayload(Encode(5) + "\xc0", FrameLimits{});
  ASSERT_FALSE(direct.ok());
  EXPECT_NE(direct.status().message().find("1 bytes left"), std::string::npos)
      << direct.status().message();
}

TEST(FrameCodecTest, RejectsNestingDeeperThanTheLimit) {
  FrameLimits limits;
  ASSERT_EQ(limits.max_depth, 16u);
  for (const char container : {'\x91', '\x81'}) {
    SCOPED_TRACE(container == '\x91' ? "arrays" : "maps");
    {
      FrameDecoder decoder;  // exactly max_depth levels are fine
      decoder.Append(RawFrame(Nested(16, container)));
      msgpack::object_handle handle = ExpectObject(decoder);
      EXPECT_EQ(handle.get().type, container == '\x91' ? msgpack::type::ARRAY : msgpack::type::MAP);
    }
    for (const int depth : {17, 1000, 100000}) {
      SCOPED_TRACE(depth);
      FrameDecoder decoder;
      decoder.Append(RawFrame(Nested(depth, container)));
      const Status error = ExpectError(decoder);
      EXPECT_EQ(error.code(), Status::Code::kTooLarge);
      EXPECT_NE(error.message().find("depth"), std::string::npos) << error.message();
    }
  }
  // A smaller configured depth is honoured.
  limits.max_depth = 2;
  FrameDecoder shallow(limits);
  shallow.Append(RawFrame(Nested(2, '\x91')) + RawFrame(Nested(3, '\x91')));
  ExpectObject(shallow);
  EXPECT_EQ(ExpectError(shallow).code(), Status::Code::kTooLarge);
}

TEST(FrameCodecTest, RejectsHugeContainerHeadersWithoutAllocating) {
  struct Case {
    const char* name;
    std::string payload;
  };
  const Case cases[] = {
      {"array32 of 4294967295", std::string("\xdd\xff\xff\xff\xff", 5)},
      {"array32 of 16385", std::string("\xdd\x00\x00\x40\x01", 5)},
      {"map32 of 4294967295", std::string("\xdf\xff\xff\xff\xff", 5)},
      {"array32 in an array", std::string("\x91\xdd\xff\xff\xff\xff", 6)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FrameDecoder decoder;
    decoder.Append(RawFrame(c.payload));
    const Status error = ExpectError(decoder);
    EXPECT_EQ(error.code(), Status::Code::kTooLarge);
    EXPECT_NE(error.message().find("size overflow"), std::string::npos) << error.message();
  }
  // A container at the limit is decoded as far as the bytes go: it is the frame
  // that is short, not the limit that is exceeded.
  FrameDecoder decoder;
  decoder.Append(RawFrame(std::string("\xdd\x00\x00\x40\x00", 5)));
  const Status error = ExpectError(decoder);
  EXPECT_EQ(error.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(error.message().find("ends before"), std::string::npos) << error.message();
}

TEST(FrameCodecTest, StaysFailedAfterAnError) {
  FrameDecoder decoder;
  decoder.Append(MessageFrame(1) + RawFrame(std::string("\xc1", 1)) + MessageFrame(2));
  EXPECT_EQ(ExpectObject(decoder).get().as<int>(), 1);  // frames before the error are fine
  const Status first = ExpectError(decoder);
  ASSERT_FALSE(first.ok());
  const std::size_t buffered = decoder.buffered_bytes();
  for (int i = 0; i < 3; ++i) {
    decoder.Append(MessageFrame(3));  // ignored
    EXPECT_EQ(decoder.buffered_bytes(), buffered);
    const Status again = ExpectError(decoder);
    EXPECT_EQ(again.code(), first.code());
    EXPECT_EQ(again.message(), first.message());
  }
}

TEST(FrameCodecTest, BufferStaysBoundedOverManyFrames) {
  // 1000 frames of varying size, fed in chunks that cut them at every position.
  std::string stream;
  std::size_t largest_frame = 0;
  std::vector<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    expected.push_back(
        std::string(static_cast<std::size_t>(i * 7 % 61), static_cast<char>('a' + i % 26)));
    const std::size_t before = stream.size();
    ASSERT_TRUE(AppendMessageFrame(stream, expected.back(), FrameLimits{}).ok());
    largest_frame = std::max(largest_frame, stream.size() - before);
  }
  FrameDecoder decoder;
  std::vector<std::string> decoded;
  std::size_t offset = 0;
  std::size_t max_buffered = 0;
  for (std::size_t round = 0; offset < stream.size(); ++round) {
    const std::size_t chunk = std::min<std::size_t>(1 + round * 13 % 97, stream.size() - offset);
    const std::size_t pending = decoder.buffered_bytes();
    ASSERT_LT(pending, largest_frame);  // only a partial frame is left between reads
    decoder.Append(std::string_view(stream).substr(offset, chunk));
    offset += chunk;
    ASSERT_EQ(decoder.buffered_bytes(), pending + chunk);
    ASSERT_LE(decoder.buffered_bytes(), largest_frame + chunk);
    max_buffered = std::max(max_buffered, decoder.buffered_bytes());
    for (;;) {
      Decoded next = decoder.Next();
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      if (!next->has_value()) break;
      decoded.push_back((**next).get().as<std::string>());
    }
  }
  EXPECT_EQ(decoded, expected);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_LE(max_buffered, largest_frame + 97);
}

TEST(FrameCodecTest, AppendFrameRefusesOversizedAndEmptyPayloads) {
  FrameLimits limits;
  limits.max_payload_bytes = 64;
  std::string out = "kept";
  const Status too_large = AppendFrame(out, std::string(65, '\xc0'), limits);
  ASSERT_FALSE(too_large.ok());
  EXPECT_EQ(too_large.code(), Status::Code::kTooLarge);
  EXPECT_NE(too_large.message().find("65"), std::string::npos) << too_large.message();
  EXPECT_NE(too_large.message().find("64"), std::string::npos) << too_large.message();
  EXPECT_EQ(out, "kept");

  const Status empty = AppendFrame(out, std::string_view(), limits);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(empty.message().find("empty"), std::string::npos) << empty.message();
  EXPECT_EQ(out, "kept");

  const Status message_too_large = AppendMessageFrame(out, std::string(100, 'm'), limits);
  EXPECT_EQ(message_too_large.code(), Status::Code::kTooLarge);
  EXPECT_EQ(out, "kept");

  ASSERT_TRUE(AppendFrame(out, std::string(64, '\xc0'), limits).ok());  // at the limit
  EXPECT_EQ(out.size(), 4u + 4u + 64u);
}

TEST(FrameCodecTest, DecodedObjectsOwnTheirData) {
  const std::string text(1000, 't');
  const std::vector<char> binary(1000, '\x5a');
  std::optional<msgpack::object_handle> kept;
  {
    auto decoder = std::make_unique<FrameDecoder>();
    std::string stream = MessageFrame(std::make_tuple(text, binary, std::string("short")));
    decoder->Append(stream);
    kept = ExpectObject(*decoder);
    std::fill(stream.begin(), stream.end(), '\xee');  // the caller's bytes are gone too

    // Reuse the decoder's buffer: more frames, several compactions.
    for (int i = 0; i < 50; ++i) {
      decoder->Append(MessageFrame(std::string(900, static_cast<char>('A' + i % 26))));
      EXPECT_EQ(ExpectObject(*decoder).get().as<std::string>().size(), 900u);
    }
  }  // the decoder and its buffer are destroyed
  ASSERT_TRUE(kept.has_value());
  const auto value = kept->get().as<std::tuple<std::string, std::vector<char>, std::string>>();
  EXPECT_EQ(std::get<0>(value), text);
  EXPECT_EQ(std::get<1>(value), binary);
  EXPECT_EQ(std::get<2>(value), "short");

  // The same for DecodePayload.
  std::string payload = Encode(std::string(200, 'd'));
  Result<msgpack::object_handle> direct = DecodePayload(payload, FrameLimits{});
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  std::fill(payload.begin(), payload.end(), '\0');
  payload.clear();
  payload.shrink_to_fit();
  EXPECT_EQ(direct->get().as<std::string>(), std::string(200, 'd'));
}

}  // namespace
}  // namespace cb
