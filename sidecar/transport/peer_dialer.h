// Keeps one outgoing connection to one peer alive.
//
// Contract: Start() resolves and connects (the whole attempt bounded by
// connect_timeout; every resolved address is tried in turn). On success
// on_connected(connection) is called with a Connection not yet started: the
// owner Start()s it and begins the handshake. The dialer watches that connection;
// when it closes (the peer went away, or the owner called Close() on it, e.g.
// after a refused handshake) the dialer connects again after Backoff::Next().
// A failed attempt is retried the same way. on_retry(why, delay), if given, is
// called before every wait, for log lines. The backoff starts over after
// MarkHealthy() (the owner's handshake succeeded) or when a connection lived at
// least healthy_after. A connection to itself (TCP simultaneous open on a local
// port nobody listens on) counts as a failed attempt.
//
// Stop() cancels the attempt in flight and the pending wait, closes the current
// connection (its on_closed is still called, with an OK status) and calls no
// callback of the dialer again; once every dialer, listener and connection is
// stopped or closed, io_context::run() returns. The destructor stops.
//
// Thread-safety: not thread-safe; use it on the io_context's thread. Callbacks run
// there and must not throw.
#ifndef CLUSTER_BALANCE_SIDECAR_TRANSPORT_PEER_DIALER_H_
#define CLUSTER_BALANCE_SIDECAR_TRANSPORT_PEER_DIALER_H_

#include <utility>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "shared/config_values.h"
#include "shared/frame_codec.h"
#include "shared/status.h"
#include "sidecar/transport/backoff.h"
#include "sidecar/transport/connection.h"

namespace cb::transport {

struct DialerOptions {
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(3);
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(100);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(5);
  // A connection that lived this long resets the backoff when it closes.
  std::chrono::milliseconds healthy_after = std::chrono::seconds(10);
  uint64_t seed = Backoff::RandomSeed();
  FrameLimits limits;
  std::size_t max_queued_bytes = kDefaultMaxQueuedBytes;
};

class PeerDialer {
 public:
  using ConnectedHandler = std::function<void(std::shared_ptr<Connection>)>;
  // Why the last attempt or connection ended, and the wait before the next one.
  using RetryHandler = std::function<void(const Status& why, std::chrono::milliseconds delay)>;

  // Does nothing before Start().
  PeerDialer(asio::io_context& io, HostPort peer, DialerOptions options,
             ConnectedHandler on_connected, RetryHandler on_retry = {});
  PeerDialer(const PeerDialer&) = delete;
  PeerDialer& operator=(const PeerDialer&) = delete;
  ~PeerDialer();

  // Starts the first attempt; no-op when started or stopped.
  void Start();
  // The current connection proved itself (handshake done): reset the backoff.
  void MarkHealthy();
  // Idempotent; see the header comment.
  void Stop();

  const HostPort& peer() const;
  // The connection handed to on_connected, until it closes; else null.
  std::shared_ptr<Connection> connection() const;
  // Connection attempts started so far.
  uint64_t attempts() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the pending operations
};

}  // namespace cb::transport

#endif  // CLUSTER_BALANCE_SIDECAR_TRANSPORT_PEER_DIALER_H_
