#include "sidecar/protocol/messages.h"

#include <algorithm>
#include <array>
#include <exception>
#include <tuple>

namespace cb::protocol {
namespace {

constexpr std::array<std::string_view, std::variant_size_v<Message>> kNames = {
    "Hello",      "HelloReply",    "Proof",         "Welcome",     "Refusal",       "Heartbeat",
    "ViewUpdate", "StateRequest",  "JoinRequest",   "JoinReply",   "CacheOp",       "CacheOpReply",
    "Replicate",  "ReplicateAck",  "DigestRequest", "DigestReply", "BucketRequest", "BucketRecords",
    "DeployPush", "DeployPushAck", "DeployFetch",   "DeployPack"};
// A message added to Message without its name here does not compile.
static_assert(std::ranges::none_of(kNames, [](std::string_view name) { return name.empty(); }));

// Decodes the body as alternative `I` of Message when `type` is I, recursing
// through the alternatives.
template <std::size_t I = 0>
Result<Message> DecodeBody(uint64_t type, const msgpack::object& body) {
  if constexpr (I == std::variant_size_v<Message>) {
    return Status::InvalidArgument("message: unknown type " + std::to_string(type));
  } else {
    if (type != I) return DecodeBody<I + 1>(type, body);
    std::variant_alternative_t<I, Message> decoded;
    body.convert(decoded);
    return Message(std::in_place_index<I>, std::move(decoded));
  }
}

}  // namespace

bool IsStoreMessage(const Message& message) {
  return std::visit([](const auto& body) { return kIsStoreMessage<std::decay_t<decltype(body)>>; },
                    message);
}

bool IsDeployMessage(const Message& message) {
  return std::visit([](const auto& body) { return kIsDeployMessage<std::decay_t<decltype(body)>>; },
                    message);
}

std::string_view MessageName(const Message& message) { return kNames[message.index()]; }

Status AppendMessage(std::string& out, const Message& message, const FrameLimits& limits) {
  return std::visit(
      [&](const auto& body) {
        return AppendMessageFrame(out, std::forward_as_tuple(uint64_t{message.index()}, body),
                                  limits);
      },
      message);
}

Result<Message> DecodeMessage(const msgpack::object& object) {
  if (object.type != msgpack::type::ARRAY || object.via.array.size != 2 ||
      object.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER) {
    return Status::InvalidArgument("message: not a [type, body] pair");
  }
  const uint64_t type = object.via.array.ptr[0].via.u64;
  try {
    return DecodeBody(type, object.via.array.ptr[1]);
  } catch (const std::exception& error) {
    return Status::InvalidArgument("message: malformed " +
                                   std::string(type < kNames.size() ? kNames[type] : "body") +
                                   " (" + error.what() + ")");
  }
}

}  // namespace cb::protocol
