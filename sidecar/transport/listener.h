// Accepts sidecar connections on one address.
//
// Contract: Listen() binds (with SO_REUSEADDR) and listens synchronously, so a
// port in use is reported before the daemon says it is ready, as one line:
// "127.0.0.1:6800: address already in use". Then every accepted socket becomes a
// Connection (not yet started) handed to on_accept, on the io_context's thread;
// the callee Start()s it (or drops it, which closes it). Errors of one accept
// (e.g. out of file descriptors) are retried after a short pause.
// Stop() closes the listening socket; on_accept is not called after it. The
// destructor stops. Connections already accepted are not affected by Stop().
//
// Thread-safety: not thread-safe; use it on the io_context's thread (Listen may
// be called before that thread runs the io_context).
#ifndef CLUSTER_BALANCE_SIDECAR_TRANSPORT_LISTENER_H_
#define CLUSTER_BALANCE_SIDECAR_TRANSPORT_LISTENER_H_

#include <utility>

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "shared/config_values.h"
#include "shared/frame_codec.h"
#include "shared/status.h"
#include "sidecar/transport/connection.h"

namespace cb::transport {

class Listener {
 public:
  using AcceptHandler = std::function<void(std::shared_ptr<Connection>)>;

  // `address.host`: an IP literal or a name (resolved now, first address used);
  // port 0 picks a free port (see bound_port()). IoError naming the address on
  // failure. Connections get `limits` and `max_queued_bytes`.
  static Result<std::unique_ptr<Listener>> Listen(
      asio::io_context& io, const HostPort& address, FrameLimits limits, AcceptHandler on_accept,
      std::size_t max_queued_bytes = kDefaultMaxQueuedBytes);

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // The port actually bound (the chosen one when listening on port 0).
  uint16_t bound_port() const;
  // "127.0.0.1:6800" with the bound port.
  const std::string& local_endpoint() const;
  // Idempotent.
  void Stop();

 private:
  struct State;
  explicit Listener(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;  // shared with the pending accept
};

}  // namespace cb::transport

#endif  // CLUSTER_BALANCE_SIDECAR_TRANSPORT_LISTENER_H_
