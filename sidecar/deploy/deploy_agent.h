// One sidecar's part in clustered deployment (issue 13; DESIGN.md "Deployment").
//
// Every server keeps a Git repository (GitStore) and, for the deployments of its
// own stage and host, a live tree per webapp (LiveTree). The cluster agrees on
// each deployment's current version through Membership (a DeploymentTarget in
// every view update, highest version wins). This agent:
//  - takes a deploy or rollback: checks the upload, commits it, sends the pack
//    and the target to every triad server it is connected to (DeployPush) and
//    answers once they stored it (a deploy succeeds while a triad server is down:
//    the live ones have it, and the one that returns fetches it like a spoke);
//  - converges: whenever a target differs from what the server has, it fetches
//    the missing objects from a triad server (DeployFetch / DeployPack), checks
//    the commit out beside the live one, switches atomically, runs the webapp's
//    activation command, and reports what is live (Membership::SetSelfDeployed,
//    carried by its heartbeats). A failure keeps the previous version live, is
//    reported with its reason, and is retried when the target changes again;
//    a fetch that found no triad server is retried on every Tick.
//  - serves packs to servers that ask (triad servers hold every version).
// Git work runs on one worker thread; everything else, and every callback, on the
// io_context thread, so the event loop never waits for a checkout.
//
// Thread-safety: none; call it on the io_context thread only.
#ifndef CLUSTER_BALANCE_SIDECAR_DEPLOY_DEPLOY_AGENT_H_
#define CLUSTER_BALANCE_SIDECAR_DEPLOY_DEPLOY_AGENT_H_

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/cluster_config.h"
#include "shared/server_set.h"
#include "shared/status.h"
#include "sidecar/protocol/messages.h"

namespace cb::deploy {

// What the agent needs of its sidecar.
class DeployLink {
 public:
  virtual ~DeployLink() = default;
  virtual bool Send(int index, const protocol::Message& message) = 0;
  // Bytes queued on the connection to `index` and not yet written; nullopt when
  // there is no connection. Packs are fed in chunks only while this is small, so
  // that heartbeats never wait behind a whole pack.
  virtual std::optional<size_t> QueuedBytes(int index) const = 0;
  // The triad servers this sidecar is connected to now (never itself).
  virtual ServerSet ConnectedTriad() const = 0;
  virtual std::string ServerId(int index) const = 0;
  // The cluster's current version of every deployment (Membership::deployments).
  virtual const std::map<std::string, protocol::DeploymentTarget, std::less<>>& Targets() const = 0;
  // A deploy this server took was stored: merge it into the view and publish.
  virtual void AcceptTarget(const protocol::DeploymentTarget& target) = 0;
  // What this server runs changed: into the view and the next heartbeat.
  virtual void ReportDeployed(std::vector<protocol::DeployedApp> deployed) = 0;
  // A version for a new target: greater than every target version seen.
  virtual uint64_t NextTargetVersion() = 0;
};

struct DeployAgentOptions {
  int self_index = 0;
  bool self_is_triad = false;
  std::string repository;   // <data_dir>/deploy.git
  std::string deploy_root;  // <deploy_root>/<webapp>/current
  DeployConfig config;
  uint64_t chunk_bytes = 1024 * 1024;  // at most half a frame
  std::chrono::milliseconds push_timeout{30'000};
};

// A deploy as the admin endpoint received it.
struct DeployOrder {
  std::string webapp, stage, host, version, message, author;
  std::string archive;  // the upload's bytes
};

struct RollbackOrder {
  std::string webapp, stage, host, to, author;
};

// The admin endpoint's answer: HTTP status and JSON body.
struct DeployAnswer {
  unsigned status = 200;
  nlohmann::json body;
};
using DeployReply = std::function<void(DeployAnswer)>;

struct DeployCounters {
  uint64_t pack_bytes_sent = 0;
  uint64_t pack_bytes_received = 0;
};

class DeployAgent {
 public:
  // Opens the repository and the live trees found under the deploy root; an error
  // naming the path when they cannot be opened. Call Start() next.
  static Result<std::unique_ptr<DeployAgent>> Open(boost::asio::io_context& io,
                                                   DeployAgentOptions options, DeployLink& link);
  DeployAgent(const DeployAgent&) = delete;
  DeployAgent& operator=(const DeployAgent&) = delete;
  ~DeployAgent();  // Stop()

  // Reports what is live and starts converging on what the view says.
  void Start();
  // Waits for the worker's current step; later callbacks are dropped. Idempotent.
  void Stop();

  // The view's targets may have changed, or a triad peer came up: converge.
  void OnTargetsChanged();
  void OnPeerMessage(int index, const protocol::Message& message);
  void OnPeerDown(int index);
  // Every heartbeat interval: retries fetches that found no triad server.
  void Tick();

  void Deploy(DeployOrder order, DeployReply reply);
  void Rollback(RollbackOrder order, DeployReply reply);
  // GET /deployments: every deployment (or those of `webapp`) with its history.
  DeployAnswer Deployments(const std::string& webapp) const;

  const DeployCounters& counters() const { return counters_; }

 private:
  struct State;
  DeployAgent(std::unique_ptr<State> state);
  std::shared_ptr<State> state_;
  DeployCounters& counters_;
};

}  // namespace cb::deploy

#endif  // CLUSTER_BALANCE_SIDECAR_DEPLOY_DEPLOY_AGENT_H_
