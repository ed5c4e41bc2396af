// The command of a memcached request on one key, as the memcached listener
// parses it (memcache/parser.h) and as a sidecar sends it to the key's owner
// (CacheOp): one shape on both sides.
#ifndef CLUSTER_BALANCE_SIDECAR_PROTOCOL_KEY_COMMAND_H_
#define CLUSTER_BALANCE_SIDECAR_PROTOCOL_KEY_COMMAND_H_

#include <msgpack.hpp>

#include <cstdint>
#include <string>

namespace cb::protocol {

// The memcached commands; one travels as its unsigned value. A value past the
// known commands decodes, and its owner answers it "ERROR".
enum class Command {
  kGet,
  kGets,
  kGat,
  kGats,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kDelete,
  kTouch,
  kIncr,
  kDecr,
  kFlushAll,
  kVersion,
  kStats,
  kVerbosity,
  kQuit,
};

// get and gets: the retrievals that change nothing.
constexpr bool IsRead(Command command) {
  return command == Command::kGet || command == Command::kGets;
}
// get, gets, gat and gats: commands of many keys, answered with VALUE lines.
constexpr bool IsRetrieval(Command command) {
  return IsRead(command) || command == Command::kGat || command == Command::kGats;
}

// What a command asks of each key it names: the part of a request that a
// sidecar sends to the key's owner (CacheOp carries it as it is).
// Fields a command does not use keep their defaults.
struct KeyCommand {
  Command command = Command::kGet;
  uint32_t flags = 0;       // storage commands: the client flags
  int64_t exptime = 0;      // storage commands, touch, gat, gats: as sent
  std::string data;         // storage commands: the value, without its "\r\n"
  uint64_t cas_unique = 0;  // cas
  uint64_t delta = 0;       // incr, decr
  // Storage commands: the data block was longer than max_value_bytes and was
  // thrown away (`data` is empty); the answer is memcached's
  // "SERVER_ERROR object too large for cache" (commands.h Execute gives it).
  bool value_too_large = false;

  bool operator==(const KeyCommand&) const = default;
};

}  // namespace cb::protocol

// Command travels as its unsigned value.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <>
  struct convert<cb::protocol::Command> {
    const msgpack::object& operator()(const msgpack::object& object,
                                      cb::protocol::Command& command) const {
      command = static_cast<cb::protocol::Command>(object.as<uint32_t>());
      return object;
    }
  };

  template <>
  struct pack<cb::protocol::Command> {
    template <typename Stream>
    msgpack::packer<Stream>& operator()(msgpack::packer<Stream>& packer,
                                        const cb::protocol::Command& command) const {
      packer.pack(static_cast<uint32_t>(command));
      return packer;
    }
  };

  template <>
  struct object_with_zone<cb::protocol::Command> {
    void operator()(msgpack::object::with_zone& object,
                    const cb::protocol::Command& command) const {
      static_cast<msgpack::object&>(object) = msgpack::object(static_cast<uint32_t>(command));
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack

#endif  // CLUSTER_BALANCE_SIDECAR_PROTOCOL_KEY_COMMAND_H_
