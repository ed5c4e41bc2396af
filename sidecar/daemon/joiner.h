// The first start of a dynamic server (`cluster-sidecar --join`): it has no index
// yet, so it cannot take part in the cluster; the Joiner gets it one.
//
// It dials every triad server of the cluster file (the well-known addresses) and,
// on the first connection that passes the handshake (with index -1), sends a
// JoinRequest; the triad server answers with the index (membership/admission.h
// says which) and closes. One request is in flight at a time, so one start is
// admitted once. A refusal is logged with its reason and the next authenticated
// triad server is asked; the dialers keep retrying with backoff meanwhile, so the
// Joiner waits as long as it takes for a triad server to admit it. A triad server
// that does not finish the handshake, or does not answer the request, within the
// heartbeat timeout loses its connection (and is dialed again).
//
// Thread-safety: none; it runs on the io_context thread it was started on.
#ifndef CLUSTER_BALANCE_SIDECAR_DAEMON_JOINER_H_
#define CLUSTER_BALANCE_SIDECAR_DAEMON_JOINER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "shared/cluster_config.h"
#include "sidecar/auth/cluster_key.h"
#include "sidecar/auth/handshake.h"
#include "sidecar/daemon/peer_dialers.h"
#include "sidecar/daemon/peer_session.h"
#include "sidecar/protocol/messages.h"
#include "sidecar/transport/connection.h"

namespace cb::daemon {

class Joiner {
 public:
  using AdmittedHandler = std::function<void(int index)>;

  // `self`: the dynamic server's id, addresses and weight (its index unused).
  // `on_admitted` is called once, with the index, after which the Joiner has
  // stopped. Nothing is dialed before Start().
  Joiner(boost::asio::io_context& io, ClusterConfig config, ServerConfig self, auth::ClusterKey key,
         uint64_t incarnation, AdmittedHandler on_admitted);

  Joiner(const Joiner&) = delete;
  Joiner& operator=(const Joiner&) = delete;
  ~Joiner();

  void Start();
  // Closes every connection and stops dialing; no callback after this. Idempotent.
  void Stop();

 private:
  void OnConnection(std::shared_ptr<transport::Connection> connection, int triad_index);
  void OnMessage(const PeerSession::Ptr& attempt, const protocol::Message& message);
  void OnClosed(const PeerSession::Ptr& attempt);
  // Sends the JoinRequest on an authenticated attempt when none is in flight.
  void AskNext();
  // Closes the attempts stuck in the handshake or on the request.
  void OnTimer();
  // The id of the triad server an attempt dialed, for log lines.
  const std::string& TriadId(const PeerSession& attempt) const;

  ClusterConfig config_;
  ServerConfig self_;
  auth::ClusterKey key_;
  uint64_t incarnation_;
  AdmittedHandler on_admitted_;
  PeerDialers dialers_;
  std::vector<PeerSession::Ptr> attempts_;  // one connection per triad server
  PeerSession::Ptr asking_;                 // the attempt the request is in flight on
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace cb::daemon

#endif  // CLUSTER_BALANCE_SIDECAR_DAEMON_JOINER_H_
