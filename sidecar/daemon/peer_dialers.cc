#include "sidecar/daemon/peer_dialers.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace cb::daemon {

void PeerDialers::Dial(const ClusterConfig& config, ServerSet indices,
                       transport::DialerOptions options, const ConnectedHandler& on_connected) {
  options.limits.max_payload_bytes = config.max_frame_bytes;
  indices.ForEach([&](int index) {
    const ServerConfig& peer = config.servers[static_cast<std::size_t>(index)];
    auto dialer = std::make_unique<transport::PeerDialer>(
        io_, peer.cluster_address, options,
        [on_connected, index](std::shared_ptr<transport::Connection> connection) {
          on_connected(std::move(connection), index);
        },
        [id = peer.id](const Status& why, std::chrono::milliseconds delay) {
          spdlog::debug("{}: {}; retrying in {} ms", id, why.message(), delay.count());
        });
    dialer->Start();
    dialers_[index] = std::move(dialer);
  });
}

void PeerDialers::MarkHealthy(int index) {
  if (auto dialer = dialers_.find(index); dialer != dialers_.end()) dialer->second->MarkHealthy();
}

void PeerDialers::Stop() {
  for (auto& [index, dialer] : dialers_) dialer->Stop();
}

}  // namespace cb::daemon
