// The outgoing half of "one connection per pair of servers" (sidecar.h): one
// transport::PeerDialer for every server of the cluster file this side dials,
// each keeping its one connection alive, with backoff between attempts (logged
// at debug level).
//
// Thread-safety: none; use it on the io_context thread, where on_connected runs.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_PEER_DIALERS_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_PEER_DIALERS_H_

#include <utility>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>

#include "shared/cluster_config.h"
#include "shared/server_set.h"
#include "sidecar/transport/connection.h"
#include "sidecar/transport/peer_dialer.h"

namespace cb::daemon {

class PeerDialers {
 public:
  // A new connection (not started) to the server at `index`.
  using ConnectedHandler = std::function<void(std::shared_ptr<transport::Connection>, int index)>;

  explicit PeerDialers(boost::asio::io_context& io) : io_(io) {}
  PeerDialers(const PeerDialers&) = delete;
  PeerDialers& operator=(const PeerDialers&) = delete;

  // Starts dialing the static server of `config` at every index of `indices`.
  // The frame limit of `options` is the cluster file's.
  void Dial(const ClusterConfig& config, ServerSet indices, transport::DialerOptions options,
            const ConnectedHandler& on_connected);
  // The connection to `index` proved itself (PeerDialer::MarkHealthy); ignored
  // for a server not dialed.
  void MarkHealthy(int index);
  // Stops every dialer (PeerDialer::Stop). Idempotent.
  void Stop();

 private:
  boost::asio::io_context& io_;
  std::map<int, std::unique_ptr<transport::PeerDialer>> dialers_;
};

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_PEER_DIALERS_H_
