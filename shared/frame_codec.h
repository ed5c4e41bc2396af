// Wire framing between sidecars: a 4-byte big-endian payload length, then one
// msgpack object of exactly that many bytes.
//
// Contract: the decoder never reads past the bytes it was given, waits for more
// when a frame is partial, and rejects (with a message saying why) a frame whose
// declared length is over the limit (before its bytes arrive), an empty frame, an
// undecodable payload, a payload over the nesting or container limits, and a
// payload with bytes left after its object. After an error it stays failed: the
// stream has lost its framing and the connection should be closed.
//
// Thread-safety: FrameDecoder is not thread-safe (one per connection); the free
// functions are.
#ifndef CLUSTER_BALANCE_SHARED_FRAME_CODEC_H_
#define CLUSTER_BALANCE_SHARED_FRAME_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace cb {

inline constexpr std::size_t kFrameHeaderBytes = 4;

struct FrameLimits {
  std::size_t max_payload_bytes = 16 * 1024 * 1024;
  // msgpack allocates a container's elements before reading them. These two bound
  // what declared-but-absent elements can make a decoder allocate (depth x
  // elements x 32 bytes, 8 MiB with the defaults); elements actually present cost
  // at most 32 bytes per payload byte, so a decoder's memory stays within about
  // 32 x max_payload_bytes + 8 MiB.
  std::size_t max_container_elements = 16 * 1024;
  std::size_t max_depth = 16;
};

// Appends the frame holding `payload` (already msgpack-encoded) to `out`.
// TooLarge when the payload is over `limits.max_payload_bytes`, InvalidArgument when
// it is empty; `out` is left unchanged on error.
Status AppendFrame(std::string& out, std::string_view payload, const FrameLimits& limits);

// Encodes `message` with msgpack and appends it as one frame.
template <typename Message>
Status AppendMessageFrame(std::string& out, const Message& message, const FrameLimits& limits) {
  msgpack::sbuffer encoded;
  msgpack::pack(encoded, message);
  return AppendFrame(out, std::string_view(encoded.data(), encoded.size()), limits);
}

// Decodes one payload that must hold exactly one msgpack object. The returned
// handle owns all of its data (nothing refers back to `payload`).
Result<msgpack::object_handle> DecodePayload(std::string_view payload, const FrameLimits& limits);

class FrameDecoder {
 public:
  explicit FrameDecoder(FrameLimits limits = {}) : limits_(limits) {}
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Buffers received bytes. Call Next() until it yields no frame after every
  // Append, and the buffer never holds more than one frame plus one read.
  void Append(std::string_view bytes);

  // The next whole frame's object; std::nullopt while more bytes are needed; an
  // error when the stream is malformed (and every later call returns it again).
  Result<std::optional<msgpack::object_handle>> Next();

  std::size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  FrameLimits limits_;
  std::string buffer_;
  std::size_t consumed_ = 0;
  Status failure_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_FRAME_CODEC_H_
