// The messages sidecars exchange, one per frame (shared/frame_codec.h). A frame's
// payload is the msgpack array [type, body], body being the struct of that type
// (a msgpack array of its fields in declaration order).
//
// Connection life: the dialer sends Hello; the listener answers HelloReply (or
// Refusal); the dialer sends Proof (or Refusal); the listener answers Welcome (or
// Refusal). Only then do Heartbeat, ViewUpdate, StateRequest, JoinRequest and
// JoinReply flow. auth/handshake.h checks the order and the proofs.
//
// Compatibility: kProtocolVersion changes whenever a message changes shape; a peer
// of another version is refused in the handshake with both versions named.
#ifndef CLUSTER_BALANCE_SIDECAR_PROTOCOL_MESSAGES_H_
#define CLUSTER_BALANCE_SIDECAR_PROTOCOL_MESSAGES_H_

#include <cstdint>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "shared/frame_codec.h"
#include "shared/status.h"
#include "sidecar/protocol/key_command.h"

namespace cb::protocol {

inline constexpr uint32_t kProtocolVersion = 8;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kProofBytes = 32;  // HMAC-SHA256

// The config digest sections of shared/config_digest.h, as hex strings.
struct DigestSections {
  std::string cluster, node, servers, server_set, caches, deploy;
  MSGPACK_DEFINE(cluster, node, servers, server_set, caches, deploy)
  bool operator==(const DigestSections&) const = default;
};

// Who is speaking: sent by both sides of a handshake.
struct PeerIdentity {
  uint32_t protocol_version = kProtocolVersion;
  std::string cluster_name;
  std::string server_id;
  int32_t index = -1;        // -1: a dynamic server not yet admitted
  uint64_t incarnation = 0;  // grows with every start of that server
  DigestSections digest;
  MSGPACK_DEFINE(protocol_version, cluster_name, server_id, index, incarnation, digest)
};

struct Hello {
  PeerIdentity identity;
  std::string nonce;  // kNonceBytes random bytes
  MSGPACK_DEFINE(identity, nonce)
};

struct HelloReply {
  PeerIdentity identity;
  std::string nonce;
  std::string proof;  // HMAC over the transcript, by the listener
  MSGPACK_DEFINE(identity, nonce, proof)
};

struct Proof {
  std::string proof;  // HMAC over the transcript, by the dialer
  MSGPACK_DEFINE(proof)
};

struct Welcome {
  MSGPACK_DEFINE()
};

// Why a connection is refused; sent before closing so both sides can log it.
struct Refusal {
  std::string reason;
  MSGPACK_DEFINE(reason)
};

// What a server runs of one deployment (sidecar/deploy): the commit live in its
// deploy root, and why it does not run the deployment's current commit when its
// last try failed ("" otherwise). The server itself is the only source.
struct DeployedApp {
  std::string name;    // the deployment: "production/webapp/default/shop"
  std::string commit;  // 40 hex digits; "" = nothing live yet
  std::string error;
  MSGPACK_DEFINE(name, commit, error)
  bool operator==(const DeployedApp&) const = default;
};

// A deployment's current version, as a deploy or a rollback set it: the one of
// highest `version` (a hybrid clock value of the server that took the deploy; at
// equal versions the larger commit) wins everywhere, so all servers agree
// without a coordinator.
struct DeploymentTarget {
  std::string name;    // "production/webapp/default/shop"
  std::string commit;  // 40 hex digits
  uint64_t version = 0;
  std::string label;  // the deploy's --version ("1.2"), "" for none
  MSGPACK_DEFINE(name, commit, version, label)
  bool operator==(const DeploymentTarget&) const = default;
};

// What a sidecar knows of one server. Liveness and the operator's drain flag are
// versioned separately: liveness by the server's incarnation (a restart bumps it,
// so a stale "down" never overrides a newer "up"), the drain flag by a counter the
// triad bumps on every drain/enable (so it survives restarts of anyone).
//
// A dynamic server's identity is versioned by `admission`, raised by the triad
// server that (re)admits a server to that index or frees it; a freed index travels
// as a tombstone (empty id, the raised admission) so that every view forgets it.
struct ServerRecord {
  int32_t index = -1;
  std::string id;
  std::string cluster_address;
  std::string http_address;
  uint32_t weight = 100;
  bool dynamic = false;
  uint64_t incarnation = 0;
  bool alive = false;
  int64_t up_since_unix_ms = 0;
  bool draining = false;
  uint64_t admin_version = 0;
  std::vector<DeployedApp> deployed = {};  // sorted by name; from the server's own heartbeats
  uint64_t admission = 0;                  // dynamic servers only; 0 for static ones
  MSGPACK_DEFINE(index, id, cluster_address, http_address, weight, dynamic, incarnation, alive,
                 up_since_unix_ms, draining, admin_version, deployed, admission)
};

struct Heartbeat {
  uint64_t incarnation = 0;
  uint64_t view_generation = 0;
  int64_t sent_unix_ms = 0;
  // A triad server's store has caught up with the other live triad servers
  // (cache/ownership.h), and the triad servers the sender counts as owners (bit
  // i: index i; its own bit when it is synced: caught up, and has pulled from
  // every connected ready triad peer). A server owns keys only once every
  // connected triad peer counts it.
  bool store_ready = false;
  uint64_t ready_seen = 0;
  // From a triad server, the triad servers it is connected to (itself
  // included): a peer counts a server as ready only once it is connected to all
  // the triad servers that peer sees, so no triad server still takes it for
  // down. From a spoke, the triad servers it gives its quorum vote to
  // (sidecar/cache/ownership.h "Quorum").
  uint64_t triad_links = 0;
  // The ready triad servers whose records made the sender ready (none when it
  // became ready alone): a peer that holds all of them already need not wait for
  // a pull from the sender before it owns keys.
  uint64_t caught_up_from = 0;
  // What the sender runs, sorted by name: the triad takes it from here into its
  // view (a server's own word is the only source of it).
  std::vector<DeployedApp> deployed = {};
  // The round trip, measured by each side on its own clock (issue 14): the
  // sender's steady clock in microseconds, and the latest such reading it has
  // received from the recipient with how long it held it before this send.
  uint64_t sent_steady_us = 0;
  uint64_t echo_steady_us = 0;  // 0: nothing heard from the recipient yet
  uint64_t echo_held_us = 0;
  // From a triad server whose store has caught up: the live sessions routed to
  // each server index (those whose ids begin with its route character), by
  // index. Empty from everyone else.
  std::vector<uint64_t> live_sessions = {};
  MSGPACK_DEFINE(incarnation, view_generation, sent_unix_ms, store_ready, ready_seen, triad_links,
                 caught_up_from, deployed, sent_steady_us, echo_steady_us, echo_held_us,
                 live_sessions)
};

struct ViewUpdate {
  std::vector<ServerRecord> servers;  // whole records; receivers merge them
  // The sender knows who is up (membership.h "founded"): a receiver that has just
  // started takes its word on that; the view of a sender that has just started
  // too shows only the few servers it has met.
  bool founded = false;
  std::vector<DeploymentTarget> deployments = {};  // every current version the sender knows
  MSGPACK_DEFINE(servers, founded, deployments)
};

// An operator's drain or enable, forwarded to the triad.
struct StateRequest {
  std::string server_id;
  bool draining = false;
  MSGPACK_DEFINE(server_id, draining)
};

// A dynamic server (re)claims its index: the first message after the handshake on
// every one of its connections to a triad server. `server_id` must be the id it
// authenticated with.
struct JoinRequest {
  std::string server_id;
  std::string cluster_address;
  std::string http_address;
  uint32_t weight = 100;
  int32_t previous_index = -1;  // the index it held before a restart, if any
  MSGPACK_DEFINE(server_id, cluster_address, http_address, weight, previous_index)
};

// The triad server's answer: the index the server holds from now on (which may
// differ from previous_index when that one was given to another server meanwhile).
struct JoinReply {
  int32_t index = -1;  // -1: refused, `reason` says why
  std::string reason;
  MSGPACK_DEFINE(index, reason)
};

// --- The store (doc/store.md). Records travel as store/record_codec.h bytes.

// A write as the client asked it, the same on every retry: the sidecar the
// client asked (origin, in its start `incarnation`) numbers its writes. All
// zero: none (reads, flushes, the store's own writes).
struct RequestId {
  uint32_t origin = 0;
  uint64_t incarnation = 0;
  uint64_t sequence = 0;
  MSGPACK_DEFINE(origin, incarnation, sequence)
  bool none() const { return sequence == 0; }
  bool operator==(const RequestId&) const = default;
};

// One key-level memcached request (a get of one key included), sent by the
// server a client asked to the key's owner among the ready triad servers. On
// the wire its key command's fields follow `key` in the one flat array.
struct CacheOp {
  uint64_t id = 0;  // the sender's, echoed in the reply (one per attempt)
  std::string cache;
  std::string key;  // without the cache prefix
  KeyCommand key_command;
  // A get from a sender that holds this version already: the owner answers
  // `unchanged` instead of the bytes.
  uint64_t known_clock = 0;
  uint32_t known_server = 0;
  // A write: an owner that applied it already (cache/applied_requests.h) answers
  // as it did then instead of applying it again.
  RequestId request;
  MSGPACK_DEFINE(id, cache, key, key_command.command, key_command.flags, key_command.exptime,
                 key_command.data, key_command.cas_unique, key_command.delta,
                 key_command.value_too_large, known_clock, known_server, request)
};

struct CacheOpReply {
  uint64_t id = 0;
  std::string reply;       // the memcached reply line of a key-level command
  bool found = false;      // get: the key has a value
  bool unchanged = false;  // get: it is the version the sender knows
  std::string record;      // get, gat: the record, when found and not unchanged
  // The receiver does not own the key (yet) in its view: ask again shortly.
  bool retry = false;
  MSGPACK_DEFINE(id, reply, found, unchanged, record, retry)
};

// The owner's write (or a flush) to another triad server: applied (highest
// version wins) and synced to disk before the ack.
struct Replicate {
  uint64_t id = 0;
  std::string cache;
  std::string key;
  std::string record;
  bool flush = false;  // flush every record of `cache` older than the record's version
  // The client's write that made the record, and the owner's answer to it: the
  // replica remembers both, so that it can answer a retry if it becomes the owner.
  RequestId request;
  std::string reply;
  MSGPACK_DEFINE(id, cache, key, record, flush, request, reply)
};

struct ReplicateAck {
  uint64_t id = 0;
  bool ok = false;  // false: the write could not be stored (the reason is logged there)
  MSGPACK_DEFINE(id, ok)
};

// Anti-entropy (cache/catch_up.h): a triad server that starts, or finds a peer
// again, compares per-bucket digests and asks for the buckets that differ.
struct DigestRequest {
  std::string cache;
  MSGPACK_DEFINE(cache)
};

struct DigestReply {
  std::string cache;
  std::vector<std::string> caches;  // every cache the sender has, to ask about next
  std::vector<uint64_t> digests;    // one per bucket
  MSGPACK_DEFINE(cache, caches, digests)
};

// One page of a bucket's records: from the start, or (resume) from the key after
// `after`, the last key of the previous page. The puller asks for the next page
// only once a page has arrived, and keeps a few buckets in flight, so neither
// side ever queues more than a few pages whatever the size of the store.
struct BucketRequest {
  std::string cache;
  uint32_t bucket = 0;
  bool resume = false;
  std::string after;
  MSGPACK_DEFINE(cache, bucket, resume, after)
};

struct BucketRecords {
  std::string cache;
  uint32_t bucket = 0;
  std::vector<std::string> keys;
  std::vector<std::string> records;
  bool last = true;  // false: more of the bucket after keys.back(), on request
  MSGPACK_DEFINE(cache, bucket, keys, records, last)
};

// --- Deployment (sidecar/deploy/deploy_agent.h). Git packs travel in chunks of at
// most half a frame, in order on the one connection: a receiver appends chunks of
// one transfer id until offset + chunk reaches total.

// A server that took a deploy sends the new version to every triad server it is
// connected to: the pack of objects it assumes the triad server lacks, and the
// target. The triad server stores both and acknowledges.
struct DeployPush {
  uint64_t id = 0;
  DeploymentTarget target;
  uint64_t total = 0;   // the pack's size
  uint64_t offset = 0;  // of this chunk within the pack
  std::string chunk;
  MSGPACK_DEFINE(id, target, total, offset, chunk)
};

struct DeployPushAck {
  uint64_t id = 0;
  bool ok = false;
  // The pack did not hold everything the commit needs (the receiver missed an
  // earlier version): send a whole pack again.
  bool missing_objects = false;
  std::string error;
  MSGPACK_DEFINE(id, ok, missing_objects, error)
};

// A server that lacks a target's objects asks a triad server for them, naming
// the commits it has (the pack leaves out what those reach).
struct DeployFetch {
  uint64_t id = 0;
  std::string commit;
  std::vector<std::string> haves;
  MSGPACK_DEFINE(id, commit, haves)
};

struct DeployPack {
  uint64_t id = 0;
  bool ok = false;  // false: the sender lacks the commit itself (`error` says so)
  std::string error;
  uint64_t total = 0;
  uint64_t offset = 0;
  std::string chunk;
  MSGPACK_DEFINE(id, ok, error, total, offset, chunk)
};

// The handshake's and membership's messages.
using ClusterMessage = std::variant<Hello, HelloReply, Proof, Welcome, Refusal, Heartbeat,
                                    ViewUpdate, StateRequest, JoinRequest, JoinReply>;

// The store's messages, which the daemon hands to its cache::CacheNode: the one
// list of them. A new one is added here (and handled there, or that does not
// compile).
using StoreMessage = std::variant<CacheOp, CacheOpReply, Replicate, ReplicateAck, DigestRequest,
                                  DigestReply, BucketRequest, BucketRecords>;

// Deployment's messages, which the daemon hands to its deploy::DeployAgent.
using DeployMessage = std::variant<DeployPush, DeployPushAck, DeployFetch, DeployPack>;

namespace detail {
template <typename First, typename Second, typename Third>
struct JoinedVariant;
template <typename... First, typename... Second, typename... Third>
struct JoinedVariant<std::variant<First...>, std::variant<Second...>, std::variant<Third...>> {
  using type = std::variant<First..., Second..., Third...>;
};
template <typename T, typename Variant>
struct IsAlternative;
template <typename T, typename... Alternatives>
struct IsAlternative<T, std::variant<Alternatives...>>
    : std::bool_constant<(std::is_same_v<T, Alternatives> || ...)> {};
}  // namespace detail

// Every message. Its type on the wire is its index here: the cluster's
// messages, then the store's, then deployment's.
using Message = detail::JoinedVariant<ClusterMessage, StoreMessage, DeployMessage>::type;

// Whether T is one of the store's messages.
template <typename T>
inline constexpr bool kIsStoreMessage = detail::IsAlternative<T, StoreMessage>::value;

template <typename T>
inline constexpr bool kIsDeployMessage = detail::IsAlternative<T, DeployMessage>::value;

// Whether `message` is one of the store's (for cache::CacheNode::OnPeerMessage).
bool IsStoreMessage(const Message& message);
// Whether `message` is one of deployment's (for deploy::DeployAgent::OnPeerMessage).
bool IsDeployMessage(const Message& message);

// The message's name for log lines ("Hello", "Heartbeat", ...).
std::string_view MessageName(const Message& message);

// Appends `message` as one frame to `out`.
Status AppendMessage(std::string& out, const Message& message, const FrameLimits& limits);

// The message in a decoded frame: InvalidArgument when it is not [type, body] of a
// known type with a body of the right shape.
Result<Message> DecodeMessage(const msgpack::object& object);

}  // namespace cb::protocol

#endif  // CLUSTER_BALANCE_SIDECAR_PROTOCOL_MESSAGES_H_
