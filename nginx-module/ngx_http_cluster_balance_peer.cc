// nginx glue: the upstream peer callbacks. They ask the request's RequestPolicy
// (shared/request_policy.h) for each try's server and convert its answers to
// nginx's peer connection and to nginx's round robin, which is the fallback of
// every request and keeps the score of each server line.

#include <cstring>
#include <type_traits>
#include <utility>

#include "nginx-module/ngx_http_cluster_balance_glue.h"

namespace cb::nginx {
namespace {

// The peer data of one request: nginx's round robin data (the fallback) beside ours.
struct PeerData {
  ngx_http_upstream_rr_peer_data_t* round_robin;
  ngx_http_request_t* request;
  RequestContext* ctx;
  // Round robin's peer of the current try when it is a server line: round robin
  // keeps its score (connections, failures) and its TLS session.
  ngx_http_upstream_rr_peer_t* line_peer;
  // The chosen server's address, copied: the view may change during the request.
  sockaddr_storage sockaddr;
};
// In the request's pool, which nginx frees without running destructors.
static_assert(std::is_trivially_destructible_v<PeerData>);

// The index (server line) of the peer nginx's round robin chose; -1 if unknown.
int RoundRobinIndex(const ngx_http_upstream_rr_peer_data_t* round_robin) {
  int index = 0;
  for (ngx_http_upstream_rr_peer_t* peer = round_robin->peers->peer; peer != nullptr;
       peer = peer->next, ++index) {
    if (peer == round_robin->current) return index;
  }
  return -1;
}

// nginx's round robin peer of server line `index`; null when there is none.
ngx_http_upstream_rr_peer_t* ServerLine(ngx_http_upstream_rr_peers_t* peers, int index) {
  ngx_http_upstream_rr_peer_t* peer = peers->peer;
  for (int i = 0; peer != nullptr && i < index; ++i) peer = peer->next;
  return peer;
}

// Round robin's choice restricted to server line `index`: every other line is
// marked tried for the call, so that round robin applies its own rules (down,
// max_fails, max_conns) to that one line. NGX_BUSY when it may not be used.
ngx_int_t GetServerLine(ngx_peer_connection_t* pc, ngx_http_upstream_rr_peer_data_t* round_robin,
                        int index) {
  constexpr int kBits = 8 * sizeof(uintptr_t);
  const auto count = static_cast<int>(round_robin->peers->number);
  // InitUpstream allows at most 64 server lines: the tried bits are one word.
  if (round_robin->peers->single || index < 0 || index >= count || count > kBits) return NGX_BUSY;
  const uintptr_t bit = uintptr_t{1} << index;
  const uintptr_t all = count == kBits ? ~uintptr_t{0} : (uintptr_t{1} << count) - 1;
  const uintptr_t saved = round_robin->tried[0];
  if ((saved & bit) != 0) return NGX_BUSY;
  round_robin->tried[0] = saved | (all & ~bit);
  const ngx_int_t rc = ngx_http_upstream_get_round_robin_peer(pc, round_robin);
  round_robin->tried[0] = saved | (rc == NGX_OK ? bit : 0);
  return rc;
}

// nginx's own balancing (RequestPolicy::own_balancing and WhenNoServer): round
// robin over the server lines, except where the policy names a server line
// (RequestPolicy::OwnServerWithoutView) and round robin would use that line at all.
ngx_int_t GetFallbackPeer(ngx_peer_connection_t* pc, PeerData* data) {
  ngx_int_t rc = NGX_BUSY;
  RequestContext* ctx = data->ctx;
  try {
    const std::string_view session = SessionOf(data->request, ctx, ctx->upstream->WorkerBalancer());
    rc = GetServerLine(pc, data->round_robin, ctx->policy.OwnServerWithoutView(session));
  } catch (...) {
    LogException(pc->log, "choosing a server line");
  }
  if (rc != NGX_OK) rc = ngx_http_upstream_get_round_robin_peer(pc, data->round_robin);
  // Round robin takes the request's later tries too. (After NGX_BUSY nginx makes
  // none: it answers 502.)
  if (rc == NGX_OK) {
    ctx->policy.StartTry({RoundRobinIndex(data->round_robin), cb::RouteReason::kNoServer});
  }
  return rc;
}

// Round robin keeps the score of a server line chosen from the view (its
// connections, and its failures for ServerLinesHeldOut), as if it had chosen it.
void ScoreServerLine(PeerData* data, int index) {
  ngx_http_upstream_rr_peers_t* peers = data->round_robin->peers;
  ngx_http_upstream_rr_peer_t* peer = ServerLine(peers, index);
  data->line_peer = peer;
  if (peer == nullptr) return;
  ngx_http_upstream_rr_peers_wlock(peers);
  data->round_robin->current = peer;
  peer->conns++;
  // After fail_timeout a held-out line gets one request again, as round robin does.
  if (ngx_time() - peer->checked > peer->fail_timeout) peer->checked = ngx_time();
  ngx_http_upstream_rr_peers_unlock(peers);
}

// Marks the server lines this request tried in round robin's tried bits.
void MarkTriedLines(ngx_http_upstream_rr_peer_data_t* round_robin, cb::ServerSet tried) {
  const auto count = static_cast<int>(round_robin->peers->number);
  if (round_robin->peers->single || count > static_cast<int>(8 * sizeof(uintptr_t))) return;
  tried.ForEach([&](int index) {
    if (index < count) round_robin->tried[0] |= uintptr_t{1} << index;
  });
}

// When the view offers no (further) server: RequestPolicy::WhenNoServer. Giving up
// answers NGX_BUSY, so that nginx answers 502 as it does after round robin.
ngx_int_t GetPeerWithoutView(ngx_peer_connection_t* pc, PeerData* data) {
  const cb::RequestPolicy& policy = data->ctx->policy;
  switch (policy.WhenNoServer(data->ctx->upstream->WorkerBalancer())) {
    case cb::NoServerAction::kGiveUp:
      pc->name = data->round_robin->peers->name;
      return NGX_BUSY;
    case cb::NoServerAction::kOwnBalancingUntried:
      MarkTriedLines(data->round_robin, policy.tried());
      break;
    case cb::NoServerAction::kOwnBalancing:
      break;
  }
  return GetFallbackPeer(pc, data);
}

// The name nginx logs for a try ($upstream_addr keeps a pointer per try).
ngx_str_t* PeerName(PeerData* data, const cb::SocketAddress& address) {
  if (data->line_peer != nullptr) return &data->line_peer->name;
  auto* name = static_cast<ngx_str_t*>(ngx_palloc(data->request->pool, sizeof(ngx_str_t)));
  if (name == nullptr || !CopyToPool(data->request->pool, address.text, *name)) return nullptr;
  return name;
}

ngx_int_t GetPeer(ngx_peer_connection_t* pc, void* opaque) noexcept {
  auto* data = static_cast<PeerData*>(opaque);
  // Every balancer starts a try so: keepalive sets them when it has a connection.
  pc->cached = 0;
  pc->connection = nullptr;
  if (data->ctx->policy.own_balancing()) return GetFallbackPeer(pc, data);
  try {
    RequestContext* ctx = data->ctx;
    cb::Balancer& balancer = ctx->upstream->WorkerBalancer();
    const cb::RouteChoice choice = ctx->policy.ChooseNext(
        balancer, SessionOf(data->request, ctx, balancer), kUnreachableServers,
        [&] { return ServerLinesHeldOut(data->round_robin->peers, balancer); }, NowUnixMs());
    const cb::SocketAddress* address = balancer.AddressOf(choice.index);
    if (address == nullptr) return GetPeerWithoutView(pc, data);
    ScoreServerLine(data, choice.index);
    ngx_str_t* name = PeerName(data, *address);
    if (name == nullptr) return NGX_ERROR;
    ctx->policy.StartTry(choice);
    std::memcpy(&data->sockaddr, &address->storage, address->length);
    pc->sockaddr = reinterpret_cast<struct sockaddr*>(&data->sockaddr);
    pc->socklen = address->length;
    pc->name = name;
    return NGX_OK;
  } catch (...) {
    LogException(pc->log, "choosing a server");
    return GetPeerWithoutView(pc, data);
  }
}

void FreePeer(ngx_peer_connection_t* pc, void* opaque, ngx_uint_t state) noexcept {
  auto* data = static_cast<PeerData*>(opaque);
  if (data->ctx->policy.own_balancing()) {
    ngx_http_upstream_free_round_robin_peer(pc, data->round_robin, state);
    return;
  }
  const ngx_uint_t tries = pc->tries;
  ngx_http_upstream_rr_peer_t* line_peer = std::exchange(data->line_peer, nullptr);
  if (pc->cached && (state & NGX_PEER_FAILED) != 0 &&
      data->ctx->policy.TakeFreshConnectionRetry()) {
    // nginx gives that try back: it raises tries for a failed cached connection.
    if (line_peer != nullptr) {
      ngx_http_upstream_rr_peers_wlock(data->round_robin->peers);
      line_peer->conns--;
      ngx_http_upstream_rr_peers_unlock(data->round_robin->peers);
    }
  } else if (line_peer != nullptr) {
    // Counts a failure against max_fails. (Round robin sets tries to 0 for a
    // single line; the view may hold more servers.)
    ngx_http_upstream_free_round_robin_peer(pc, data->round_robin, state);
  }
  // Otherwise the failed server stays tried: a retry never picks it again and
  // follows the session's backup order over the others.
  pc->tries = tries > 0 ? tries - 1 : 0;
}

#if (NGX_HTTP_SSL)
// TLS session reuse is round robin's, per server line; none for dynamic servers.
ngx_int_t SetSession(ngx_peer_connection_t* pc, void* opaque) noexcept {
  auto* data = static_cast<PeerData*>(opaque);
  if (!data->ctx->policy.own_balancing() && data->line_peer == nullptr) return NGX_OK;
  return ngx_http_upstream_set_round_robin_peer_session(pc, data->round_robin);
}

void SaveSession(ngx_peer_connection_t* pc, void* opaque) noexcept {
  auto* data = static_cast<PeerData*>(opaque);
  if (!data->ctx->policy.own_balancing() && data->line_peer == nullptr) return;
  ngx_http_upstream_save_round_robin_peer_session(pc, data->round_robin);
}
#endif

}  // namespace

ngx_int_t InitPeer(ngx_http_request_t* r, ngx_http_upstream_srv_conf_t* uscf) noexcept {
  // Round robin first: it is the fallback of every request, and stays in place if
  // anything below fails.
  if (ngx_http_upstream_init_round_robin_peer(r, uscf) != NGX_OK) return NGX_ERROR;
  try {
    Upstream* upstream = UpstreamOf(uscf);
    if (upstream == nullptr) return NGX_OK;
    auto* data = static_cast<PeerData*>(ngx_pcalloc(r->pool, sizeof(PeerData)));
    RequestContext* ctx = ContextOf(r, upstream);
    if (data == nullptr || ctx == nullptr) return NGX_OK;
    cb::Balancer& balancer = upstream->WorkerBalancer();
    balancer.Refresh(static_cast<int64_t>(ngx_current_msec));
    LogNotices(balancer, *upstream, r->connection->log);
    ctx->policy.StartTries(balancer);
    data->round_robin = static_cast<ngx_http_upstream_rr_peer_data_t*>(r->upstream->peer.data);
    data->request = r;
    data->ctx = ctx;
    // Otherwise round robin's count (one try per server line) stands.
    if (const int max_tries = ctx->policy.MaxTries(balancer, kUnreachableServers); max_tries > 0) {
      r->upstream->peer.tries = static_cast<ngx_uint_t>(max_tries);
    }
    r->upstream->peer.data = data;
    r->upstream->peer.get = GetPeer;
    r->upstream->peer.free = FreePeer;
#if (NGX_HTTP_SSL)
    r->upstream->peer.set_session = SetSession;
    r->upstream->peer.save_session = SaveSession;
#endif
  } catch (...) {
    LogException(r->connection->log, "starting a request");
  }
  return NGX_OK;
}

}  // namespace cb::nginx
