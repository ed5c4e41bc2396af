// libFuzzer target: the sidecar wire framing (shared/frame_codec.h) on untrusted
// bytes from the network.
//
// Input layout:
//   byte 0          n = byte 0 % 8: how many chunk-size bytes follow
//   n bytes         chunk sizes, used in turn: size b means b + 1 bytes, except 0xff
//                   which means "everything left"; with n = 0 the stream arrives
//                   as one chunk
//   the rest        the byte stream a peer sent
//
// Small limits (64 KiB payload, 64 elements per container, depth 8) so that the
// oversize and over-limit paths are reachable.
//
// Invariants (a violation traps): the decoder buffers at most one partial frame
// plus one chunk; every decoded frame re-encodes to a payload that decodes again;
// after an error every later call returns the same error, whatever is appended;
// DecodePayload on any payload either fails or yields one object, and a payload
// that decodes, framed with AppendFrame, comes out of a fresh decoder unchanged.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>

#include "shared/frame_codec.h"
#include "shared/status.h"

namespace {

#define FUZZ_CHECK(condition)           \
  do {                                  \
    if (!(condition)) __builtin_trap(); \
  } while (0)

constexpr cb::FrameLimits kLimits{64 * 1024, 64, 8};

std::string Pack(const msgpack::object& object) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, object);
  return std::string(buffer.data(), buffer.size());
}

// A decoded object packs to bytes that decode under the same limits and pack to the
// same bytes again (a fixed point; byte comparison also works for NaN).
void CheckRoundTrip(const msgpack::object& object) {
  const std::string packed = Pack(object);
  FUZZ_CHECK(!packed.empty());
  if (packed.size() > kLimits.max_payload_bytes) return;  // a str8 may widen, etc.
  cb::Result<msgpack::object_handle> again = cb::DecodePayload(packed, kLimits);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Pack(again->get()) == packed);
}

void CheckStaysFailed(cb::FrameDecoder& decoder, const cb::Status& failure) {
  FUZZ_CHECK(!failure.ok());
  FUZZ_CHECK(!failure.message().empty());
  for (int i = 0; i < 2; ++i) {
    decoder.Append(std::string_view("\x00\x00\x00\x01\xc0", 5));  // a valid frame: nil
    auto next = decoder.Next();
    FUZZ_CHECK(!next.ok());
    FUZZ_CHECK(next.status().code() == failure.code());
    FUZZ_CHECK(next.status().message() == failure.message());
  }
}

void FuzzDecoder(std::string_view sizes, std::string_view stream) {
  cb::FrameDecoder decoder(kLimits);
  std::size_t next_size = 0;
  std::size_t appended = 0;
  std::size_t decoded_bytes = 0;  // header + payload of each frame returned
  while (!stream.empty()) {
    std::size_t chunk = stream.size();
    if (!sizes.empty()) {
      const auto code = static_cast<uint8_t>(sizes[next_size++ % sizes.size()]);
      if (code != 0xff) chunk = std::min<std::size_t>(code + 1u, stream.size());
    }
    const std::size_t before_append = decoder.buffered_bytes();
    decoder.Append(stream.substr(0, chunk));
    appended += chunk;
    stream.remove_prefix(chunk);
    FUZZ_CHECK(decoder.buffered_bytes() == before_append + chunk);
    // One partial frame plus one chunk at most.
    FUZZ_CHECK(decoder.buffered_bytes() <
               cb::kFrameHeaderBytes + kLimits.max_payload_bytes + chunk);

    while (true) {
      const std::size_t before = decoder.buffered_bytes();
      auto next = decoder.Next();
      if (!next.ok()) {
        CheckStaysFailed(decoder, next.status());
        return;
      }
      if (!next->has_value()) {
        FUZZ_CHECK(decoder.buffered_bytes() == before);
        break;
      }
      // A frame consumed its header and at least one payload byte, no more than the
      // limit allows.
      const std::size_t used = before - decoder.buffered_bytes();
      FUZZ_CHECK(used > cb::kFrameHeaderBytes);
      FUZZ_CHECK(used <= cb::kFrameHeaderBytes + kLimits.max_payload_bytes);
      decoded_bytes += used;
      CheckRoundTrip((*next)->get());
    }
    // Waiting for more: what is left is less than one whole frame.
    FUZZ_CHECK(decoder.buffered_bytes() < cb::kFrameHeaderBytes + kLimits.max_payload_bytes);
    FUZZ_CHECK(decoded_bytes + decoder.buffered_bytes() == appended);
  }
}

void FuzzPayload(std::string_view payload) {
  cb::Result<msgpack::object_handle> decoded = cb::DecodePayload(payload, kLimits);
  if (!decoded.ok()) {
    FUZZ_CHECK(!decoded.status().message().empty());
    return;
  }
  FUZZ_CHECK(!payload.empty());
  CheckRoundTrip(decoded->get());
  const std::string repacked = Pack(decoded->get());

  // The payload framed and fed to a fresh decoder comes out as the same object.
  std::string frame;
  const cb::Status appended = cb::AppendFrame(frame, payload, kLimits);
  if (payload.size() > kLimits.max_payload_bytes) {
    FUZZ_CHECK(appended.code() == cb::Status::Code::kTooLarge);
    return;
  }
  FUZZ_CHECK(appended.ok());
  FUZZ_CHECK(frame.size() == payload.size() + cb::kFrameHeaderBytes);
  cb::FrameDecoder decoder(kLimits);
  decoder.Append(frame);
  auto first = decoder.Next();
  FUZZ_CHECK(first.ok() && first->has_value());
  FUZZ_CHECK(Pack((*first)->get()) == repacked);
  auto second = decoder.Next();
  FUZZ_CHECK(second.ok() && !second->has_value());
  FUZZ_CHECK(decoder.buffered_bytes() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t size_count = std::min<std::size_t>(data[0] % 8, size - 1);
  const std::string_view sizes = input.substr(1, size_count);
  const std::string_view stream = input.substr(1 + size_count);
  FuzzDecoder(sizes, stream);
  FuzzPayload(stream);
  return 0;
}
