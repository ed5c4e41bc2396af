#include "shared/frame_codec.h"

#include <exception>

namespace cb {
namespace {

uint32_t ReadBigEndian32(std::string_view bytes) {
  return static_cast<uint32_t>(static_cast<unsigned char>(bytes[0])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[3]));
}

}  // namespace

Status AppendFrame(std::string& out, std::string_view payload, const FrameLimits& limits) {
  if (payload.empty()) return Status::InvalidArgument("frame: empty payload");
  if (payload.size() > limits.max_payload_bytes || payload.size() > UINT32_MAX) {
    return Status::TooLarge("frame: payload of " + std::to_string(payload.size()) +
                            " bytes is over the limit of " +
                            std::to_string(limits.max_payload_bytes));
  }
  const auto size = static_cast<uint32_t>(payload.size());
  const char header[kFrameHeaderBytes] = {static_cast<char>(size >> 24),
                                          static_cast<char>(size >> 16),
                                          static_cast<char>(size >> 8), static_cast<char>(size)};
  out.append(header, kFrameHeaderBytes);
  out.append(payload);
  return Status::Ok();
}

Result<msgpack::object_handle> DecodePayload(std::string_view payload, const FrameLimits& limits) {
  const msgpack::unpack_limit unpack_limits(
      limits.max_container_elements, limits.max_container_elements, limits.max_payload_bytes,
      limits.max_payload_bytes, limits.max_payload_bytes, limits.max_depth);
  std::size_t offset = 0;
  try {
    msgpack::object_handle handle =
        msgpack::unpack(payload.data(), payload.size(), offset, nullptr, nullptr, unpack_limits);
    if (offset != payload.size()) {
      return Status::InvalidArgument("frame: " + std::to_string(payload.size() - offset) +
                                     " bytes left after the message");
    }
    return handle;
  } catch (const msgpack::insufficient_bytes&) {
    return Status::InvalidArgument("frame: message ends before its declared end");
  } catch (const msgpack::size_overflow& error) {
    return Status::TooLarge(std::string("frame: message over a decoding limit (") + error.what() +
                            ")");
  } catch (const std::exception& error) {
    return Status::InvalidArgument(std::string("frame: undecodable message (") + error.what() +
                                   ")");
  }
}

void FrameDecoder::Append(std::string_view bytes) {
  if (!failure_.ok()) return;
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

Result<std::optional<msgpack::object_handle>> FrameDecoder::Next() {
  if (!failure_.ok()) return failure_;
  const std::string_view pending = std::string_view(buffer_).substr(consumed_);
  if (pending.size() < kFrameHeaderBytes) return std::optional<msgpack::object_handle>();
  const uint32_t size = ReadBigEndian32(pending);
  if (size == 0) {
    failure_ = Status::InvalidArgument("frame: empty frame");
    return failure_;
  }
  if (size > limits_.max_payload_bytes) {
    failure_ =
        Status::TooLarge("frame: declared size " + std::to_string(size) + " is over the limit of " +
                         std::to_string(limits_.max_payload_bytes));
    return failure_;
  }
  if (pending.size() - kFrameHeaderBytes < size) return std::optional<msgpack::object_handle>();

  Result<msgpack::object_handle> decoded =
      DecodePayload(pending.substr(kFrameHeaderBytes, size), limits_);
  if (!decoded.ok()) {
    failure_ = decoded.status();
    return failure_;
  }
  consumed_ += kFrameHeaderBytes + size;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return std::optional<msgpack::object_handle>(std::move(decoded).value());
}

}  // namespace cb
