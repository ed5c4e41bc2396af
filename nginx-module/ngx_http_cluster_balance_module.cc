// nginx glue of cluster_balance: directives, the upstream peer callbacks, the
// $cluster_route variables and the insert mode's header filter. Every decision is
// made by cb::Balancer (shared/balancer.h); this file only converts between nginx's
// structures and string views.
//
// Failing open: every entry point nginx calls is noexcept and catches. Whatever
// goes wrong inside the module (no view, a bad view, an exception), the request is
// served by nginx's own round robin over the upstream's server lines with its
// passive failure handling; it is never dropped because of the module.

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
}

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/balancer.h"
#include "shared/balancer_options.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/socket_address.h"

extern "C" {
extern ngx_module_t ngx_http_cluster_balance_module;
}

namespace {

// ---------------------------------------------------------------------------------
// Conversions

std::string_view View(const ngx_str_t& text) {
  return {reinterpret_cast<const char*>(text.data), text.len};
}

// Copies `text` into `pool`; false when the pool is out of memory.
bool CopyToPool(ngx_pool_t* pool, std::string_view text, ngx_str_t& out) {
  out.len = text.size();
  out.data = static_cast<u_char*>(ngx_pnalloc(pool, text.size() == 0 ? 1 : text.size()));
  if (out.data == nullptr) return false;
  std::memcpy(out.data, text.data(), text.size());
  return true;
}

void LogWhat(ngx_uint_t level, ngx_log_t* log, std::string_view where, std::string_view what) {
  ngx_log_error(level, log, 0, "cluster_balance: %*s: %*s", where.size(), where.data(), what.size(),
                what.data());
}

// Fail open: the caller goes on as if the module were not there.
void LogException(ngx_log_t* log, std::string_view where) noexcept {
  try {
    throw;
  } catch (const std::exception& error) {
    LogWhat(NGX_LOG_ALERT, log, where, error.what());
  } catch (...) {
    LogWhat(NGX_LOG_ALERT, log, where, "unknown exception");
  }
}

int64_t NowUnixMs() {
  ngx_time_t* now = ngx_timeofday();
  return static_cast<int64_t>(now->sec) * 1000 + static_cast<int64_t>(now->msec);
}

std::string_view ReasonName(cb::RouteReason reason) {
  switch (reason) {
    case cb::RouteReason::kSticky:
      return "sticky";
    case cb::RouteReason::kBackup:
      return "backup";
    case cb::RouteReason::kBalanced:
      return "balanced";
    case cb::RouteReason::kNoServer:
      return "fallback";
  }
  return "fallback";
}

// ---------------------------------------------------------------------------------
// Configuration: one Upstream per upstream block that uses cluster_balance.

struct Upstream {
  cb::BalancerOptions options;
  bool cookie_configured = false;  // cluster_balance_cookie was given
  bool initialized = false;        // InitUpstream ran: no other method replaced it
  std::string name;                // the upstream block's name, for log lines
  std::vector<cb::SocketAddress> configured;
  // Created in each worker on its first request: a worker is one thread, and each
  // process must map the view and seed its own generator.
  std::unique_ptr<cb::Balancer> balancer;

  cb::Balancer& WorkerBalancer() {
    if (!balancer) {
      std::random_device entropy;
      const uint64_t seed = (uint64_t{entropy()} << 32) ^ entropy() ^
                            static_cast<uint64_t>(ngx_pid) ^
                            static_cast<uint64_t>(ngx_current_msec);
      balancer = std::make_unique<cb::Balancer>(options, configured, seed);
    }
    return *balancer;
  }
};

struct SrvConf {
  Upstream* upstream;  // null: not a cluster_balance upstream
};

void DeleteUpstream(void* data) noexcept { delete static_cast<Upstream*>(data); }

Upstream* UpstreamOf(ngx_http_upstream_srv_conf_t* uscf) {
  if (uscf == nullptr || uscf->srv_conf == nullptr) return nullptr;
  auto* conf =
      static_cast<SrvConf*>(ngx_http_conf_upstream_srv_conf(uscf, ngx_http_cluster_balance_module));
  return conf == nullptr ? nullptr : conf->upstream;
}

// ---------------------------------------------------------------------------------
// Per request

// Lives in the request's pool (trivially destructible). Shared by the peer
// callbacks, the variables and the header filter.
struct RequestContext {
  Upstream* upstream;
  ngx_str_t session;  // points into the request's headers; len 0: no session
  bool session_found;
  bool planned;  // $cluster_route was read before the first connection
  int planned_index;
  cb::RouteReason planned_reason;
  int chosen;  // the server of the latest try; -1 none yet
  cb::RouteReason reason;
};

RequestContext* ContextOf(ngx_http_request_t* r, Upstream* upstream) {
  auto* ctx =
      static_cast<RequestContext*>(ngx_http_get_module_ctx(r, ngx_http_cluster_balance_module));
  if (ctx != nullptr) return ctx->upstream == upstream ? ctx : nullptr;
  ctx = static_cast<RequestContext*>(ngx_pcalloc(r->pool, sizeof(RequestContext)));
  if (ctx == nullptr) return nullptr;
  ctx->upstream = upstream;
  ctx->chosen = -1;
  ctx->planned_index = -1;
  ngx_http_set_ctx(r, ctx, ngx_http_cluster_balance_module);
  return ctx;
}

// Finds the request's session once: Cookie headers first, then the path.
std::string_view SessionOf(ngx_http_request_t* r, RequestContext* ctx, cb::Balancer& balancer) {
  if (ctx->session_found) return View(ctx->session);
  ctx->session_found = true;
  std::string_view session;
#if defined(nginx_version) && nginx_version >= 1023000
  for (ngx_table_elt_t* header = r->headers_in.cookie; header != nullptr && session.empty();
       header = header->next) {
    session = balancer.SessionFromCookieHeader(View(header->value));
  }
#else
  auto** cookies = static_cast<ngx_table_elt_t**>(r->headers_in.cookies.elts);
  for (ngx_uint_t i = 0; i < r->headers_in.cookies.nelts && session.empty(); ++i) {
    session = balancer.SessionFromCookieHeader(View(cookies[i]->value));
  }
#endif
  // As the client sent it, like the application and clusterctl read it: no
  // percent-decoding can make a session of what the application sees as none.
  if (session.empty()) session = balancer.SessionFromPath(View(r->unparsed_uri));
  ctx->session.data = reinterpret_cast<u_char*>(const_cast<char*>(session.data()));
  ctx->session.len = session.size();
  return session;
}

void LogNotices(cb::Balancer& balancer, const Upstream& upstream, ngx_log_t* log) {
  for (const cb::ViewNotice& notice : balancer.TakeNotices()) {
    LogWhat(notice.level == cb::ViewNotice::Level::kWarning ? NGX_LOG_WARN : NGX_LOG_NOTICE, log,
            "upstream \"" + upstream.name + "\"", notice.text);
  }
}

// The peer data of one request: nginx's round robin data (the fallback) beside ours.
struct PeerData {
  ngx_http_upstream_rr_peer_data_t* round_robin;
  ngx_http_request_t* request;
  RequestContext* ctx;
  cb::ServerSet tried;
  bool fallback;
  int current;  // the server of the current try (view path); -1 none
  // Round robin's peer of the current try when it is a server line: round robin
  // keeps its score (connections, failures) and its TLS session.
  ngx_http_upstream_rr_peer_t* line_peer;
  bool retried_cached;  // a failed cached keepalive connection got its fresh retry
  // The chosen server's address, copied: the view may change during the request.
  sockaddr_storage sockaddr;
};

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

// The server lines that nginx's passive failure handling holds out now: max_fails
// failures, fail_timeout not over since the last, and the last one after the
// server last came up. The view says whether a server's sidecar is up; this
// remembers that its application did not answer, so that each request of its
// sessions does not wait for it again. A server that came back since (a new up
// period in the view) gets its sessions back at once.
cb::ServerSet ServerLinesHeldOut(ngx_http_upstream_rr_peers_t* peers,
                                 const cb::Balancer& balancer) {
  cb::ServerSet held_out;
  const time_t now = ngx_time();
  ngx_http_upstream_rr_peers_rlock(peers);
  int index = 0;
  for (ngx_http_upstream_rr_peer_t* peer = peers->peer; peer != nullptr;
       peer = peer->next, ++index) {
    if (peer->max_fails == 0 || peer->fails < peer->max_fails ||
        now - peer->checked > peer->fail_timeout) {
      continue;
    }
    const int64_t up_since_ms = balancer.UpSinceUnixMs(index);
    if (up_since_ms > 0 && static_cast<int64_t>(peer->checked) * 1000 < up_since_ms) continue;
    held_out.Add(index);
  }
  ngx_http_upstream_rr_peers_unlock(peers);
  return held_out;
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

// Without a usable view: nginx's round robin over the server lines, except that a
// session's first try goes to its own server line (the route character's) while
// round robin would use that line at all.
ngx_int_t GetFallbackPeer(ngx_peer_connection_t* pc, PeerData* data) {
  data->fallback = true;
  ngx_int_t rc = NGX_BUSY;
  RequestContext* ctx = data->ctx;
  if (ctx != nullptr && data->tried.empty()) {
    try {
      const std::string_view session =
          SessionOf(data->request, ctx, ctx->upstream->WorkerBalancer());
      rc = GetServerLine(pc, data->round_robin, cb::RouteIndexOfSession(session));
    } catch (...) {
      LogException(pc->log, "choosing a server line");
    }
  }
  if (rc != NGX_OK) rc = ngx_http_upstream_get_round_robin_peer(pc, data->round_robin);
  if (rc == NGX_OK && ctx != nullptr) {
    ctx->chosen = RoundRobinIndex(data->round_robin);
    ctx->reason = cb::RouteReason::kNoServer;
    data->tried.Add(ctx->chosen);
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

// The view's choice, avoiding server lines that just failed (ServerLinesHeldOut)
// while any other server is eligible.
cb::RouteChoice ChooseAvoidingFailures(cb::Balancer& balancer, std::string_view session,
                                       cb::ServerSet tried, ngx_http_upstream_rr_peers_t* peers) {
  const cb::ServerSet held_out = ServerLinesHeldOut(peers, balancer);
  cb::RouteChoice choice = balancer.Choose(session, tried | held_out, NowUnixMs());
  if (choice.index < 0 && !held_out.empty()) choice = balancer.Choose(session, tried, NowUnixMs());
  return choice;
}

// Marks the server lines this request tried in round robin's tried bits.
void MarkTriedLines(ngx_http_upstream_rr_peer_data_t* round_robin, cb::ServerSet tried) {
  const auto count = static_cast<int>(round_robin->peers->number);
  if (round_robin->peers->single || count > static_cast<int>(8 * sizeof(uintptr_t))) return;
  tried.ForEach([&](int index) {
    if (index < count) round_robin->tried[0] |= uintptr_t{1} << index;
  });
}

// When the view offers no (further) server: before any try, and when the view
// turned unusable during the request, round robin over the lines not tried yet;
// otherwise every server was tried and nginx answers 502, as round robin does.
ngx_int_t GetPeerWithoutView(ngx_peer_connection_t* pc, PeerData* data) {
  if (!data->tried.empty()) {
    if (data->ctx->upstream->WorkerBalancer().usable()) {
      pc->name = data->round_robin->peers->name;
      return NGX_BUSY;
    }
    MarkTriedLines(data->round_robin, data->tried);
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
  if (data->fallback) return GetFallbackPeer(pc, data);
  try {
    RequestContext* ctx = data->ctx;
    cb::Balancer& balancer = ctx->upstream->WorkerBalancer();
    cb::RouteChoice choice;
    if (data->tried.empty() && ctx->planned && ctx->planned_index >= 0) {
      choice = {ctx->planned_index, ctx->planned_reason};  // what $cluster_route told it
    } else {
      choice = ChooseAvoidingFailures(balancer, SessionOf(data->request, ctx, balancer),
                                      data->tried, data->round_robin->peers);
    }
    const cb::SocketAddress* address = balancer.AddressOf(choice.index);
    if (address == nullptr) return GetPeerWithoutView(pc, data);
    ScoreServerLine(data, choice.index);
    ngx_str_t* name = PeerName(data, *address);
    if (name == nullptr) return NGX_ERROR;
    data->tried.Add(choice.index);
    data->current = choice.index;
    ctx->chosen = choice.index;
    ctx->reason = choice.reason;
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
  if (data->fallback) {
    ngx_http_upstream_free_round_robin_peer(pc, data->round_robin, state);
    return;
  }
  const ngx_uint_t tries = pc->tries;
  ngx_http_upstream_rr_peer_t* line_peer = std::exchange(data->line_peer, nullptr);
  if (pc->cached && (state & NGX_PEER_FAILED) != 0 && !data->retried_cached) {
    // A kept-alive connection the server had closed meanwhile is no failure of the
    // server: once per request, it is tried again on a fresh connection (nginx
    // gives that try back: it raises tries for a failed cached connection).
    data->retried_cached = true;
    data->tried.Remove(data->current);
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
  // Otherwise the failed server stays in `tried`: a retry never picks it again and
  // follows the session's backup order over the others.
  pc->tries = tries > 0 ? tries - 1 : 0;
}

#if (NGX_HTTP_SSL)
// TLS session reuse is round robin's, per server line; none for dynamic servers.
ngx_int_t SetSession(ngx_peer_connection_t* pc, void* opaque) noexcept {
  auto* data = static_cast<PeerData*>(opaque);
  if (!data->fallback && data->line_peer == nullptr) return NGX_OK;
  return ngx_http_upstream_set_round_robin_peer_session(pc, data->round_robin);
}

void SaveSession(ngx_peer_connection_t* pc, void* opaque) noexcept {
  auto* data = static_cast<PeerData*>(opaque);
  if (!data->fallback && data->line_peer == nullptr) return;
  ngx_http_upstream_save_round_robin_peer_session(pc, data->round_robin);
}
#endif

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
    const bool usable = balancer.Refresh(static_cast<int64_t>(ngx_current_msec));
    LogNotices(balancer, *upstream, r->connection->log);
    data->round_robin = static_cast<ngx_http_upstream_rr_peer_data_t*>(r->upstream->peer.data);
    data->request = r;
    data->ctx = ctx;
    data->fallback = !usable;
    data->current = -1;
    if (usable) r->upstream->peer.tries = static_cast<ngx_uint_t>(balancer.Candidates());
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

// ---------------------------------------------------------------------------------
// Variables: $cluster_route (the chosen server's route character) and
// $cluster_route_reason (sticky, backup, balanced or fallback).
//
// proxy_set_header values are evaluated before nginx connects, so when a variable
// is read before the first try it makes the choice then, and the first try honours
// it: the header names the server that gets the request. Only on a retry (the
// chosen server failed) does it name the one tried first.

RequestContext* DecidedContext(ngx_http_request_t* r) {
  auto* ctx =
      static_cast<RequestContext*>(ngx_http_get_module_ctx(r, ngx_http_cluster_balance_module));
  if (ctx != nullptr && (ctx->chosen >= 0 || ctx->planned)) return ctx;
  // A choice is made here only before nginx starts connecting (InitPeer sets
  // peer.get), never after the fact for a response that no server gave.
  if (r->upstream == nullptr || r->upstream->conf == nullptr || r->upstream->peer.get != nullptr ||
      r->cached) {
    return ctx;
  }
  Upstream* upstream = UpstreamOf(r->upstream->conf->upstream);
  if (upstream == nullptr) return ctx;
  ctx = ContextOf(r, upstream);
  if (ctx == nullptr) return nullptr;
  cb::Balancer& balancer = upstream->WorkerBalancer();
  if (!balancer.Refresh(static_cast<int64_t>(ngx_current_msec))) return ctx;  // round robin
  auto* peers = static_cast<ngx_http_upstream_rr_peers_t*>(r->upstream->conf->upstream->peer.data);
  const cb::RouteChoice choice =
      peers == nullptr ? balancer.Choose(SessionOf(r, ctx, balancer), {}, NowUnixMs())
                       : ChooseAvoidingFailures(balancer, SessionOf(r, ctx, balancer), {}, peers);
  ctx->planned = true;
  ctx->planned_index = choice.index;
  ctx->planned_reason = choice.reason;
  return ctx;
}

ngx_int_t SetVariable(ngx_http_variable_value_t* v, std::string_view value) {
  if (value.empty()) {
    v->not_found = 1;
    return NGX_OK;
  }
  v->data = reinterpret_cast<u_char*>(const_cast<char*>(value.data()));
  v->len = static_cast<unsigned>(value.size());
  v->valid = 1;
  v->no_cacheable = 1;
  v->not_found = 0;
  return NGX_OK;
}

ngx_int_t RouteVariable(ngx_http_request_t* r, ngx_http_variable_value_t* v, uintptr_t) noexcept {
  try {
    RequestContext* ctx = DecidedContext(r);
    const int index = ctx == nullptr ? -1 : ctx->chosen >= 0 ? ctx->chosen : ctx->planned_index;
    return SetVariable(v, cb::RouteCharTextForIndex(index));
  } catch (...) {
    LogException(r->connection->log, "$cluster_route");
    return SetVariable(v, {});
  }
}

ngx_int_t ReasonVariable(ngx_http_request_t* r, ngx_http_variable_value_t* v, uintptr_t) noexcept {
  try {
    RequestContext* ctx = DecidedContext(r);
    if (ctx == nullptr) return SetVariable(v, {});
    if (ctx->chosen >= 0) return SetVariable(v, ReasonName(ctx->reason));
    if (ctx->planned && ctx->planned_index >= 0)
      return SetVariable(v, ReasonName(ctx->planned_reason));
    return SetVariable(v, {});
  } catch (...) {
    LogException(r->connection->log, "$cluster_route_reason");
    return SetVariable(v, {});
  }
}

ngx_http_variable_t kVariables[] = {
    {ngx_string("cluster_route"), nullptr, RouteVariable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("cluster_route_reason"), nullptr, ReasonVariable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0},
};

ngx_int_t AddVariables(ngx_conf_t* cf) noexcept {
  for (ngx_http_variable_t& definition : kVariables) {
    ngx_http_variable_t* variable = ngx_http_add_variable(cf, &definition.name, definition.flags);
    if (variable == nullptr) return NGX_ERROR;
    variable->get_handler = definition.get_handler;
    variable->data = definition.data;
  }
  return NGX_OK;
}

// ---------------------------------------------------------------------------------
// Insert mode: pin the client to the server that answered.

ngx_http_output_header_filter_pt next_header_filter;

bool AddSetCookie(ngx_http_request_t* r, std::string_view value) {
  auto* header = static_cast<ngx_table_elt_t*>(ngx_list_push(&r->headers_out.headers));
  if (header == nullptr) return false;
  header->hash = 1;
  ngx_str_set(&header->key, "Set-Cookie");
#if defined(nginx_version) && nginx_version >= 1023000
  header->next = nullptr;
#endif
  if (!CopyToPool(r->pool, value, header->value)) {
    header->hash = 0;  // nginx skips headers with hash 0
    return false;
  }
  return true;
}

ngx_int_t HeaderFilter(ngx_http_request_t* r) noexcept {
  try {
    auto* ctx =
        static_cast<RequestContext*>(ngx_http_get_module_ctx(r, ngx_http_cluster_balance_module));
    // Only a response that a server of the cluster sent (not nginx's own 502 after
    // every try failed) pins the client.
    if (ctx != nullptr && r == r->main && ctx->chosen >= 0 && r->upstream != nullptr &&
        r->upstream->headers_in.status_n != 0 && r->err_status == 0 && !r->cached &&
        ctx->upstream->options.mode == cb::StickyMode::kInsert) {
      const std::string header =
          ctx->upstream->WorkerBalancer().InsertCookieFor(View(ctx->session), ctx->chosen);
      if (!header.empty() && !AddSetCookie(r, header)) {
        LogWhat(NGX_LOG_WARN, r->connection->log, "insert mode", "no memory for the cookie");
      }
    }
  } catch (...) {
    LogException(r->connection->log, "setting the insert cookie");
  }
  return next_header_filter(r);
}

// Runs after the upstream blocks were initialized: a balancing method written
// after cluster_balance (nginx only warns "load balancing method redefined") would
// leave the module half active, so it is refused.
ngx_int_t PostConfiguration(ngx_conf_t* cf) noexcept {
  auto* main_conf = static_cast<ngx_http_upstream_main_conf_t*>(
      ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module));
  auto** upstreams = static_cast<ngx_http_upstream_srv_conf_t**>(main_conf->upstreams.elts);
  bool inserts_cookies = false;
  for (ngx_uint_t i = 0; i < main_conf->upstreams.nelts; ++i) {
    const Upstream* upstream = UpstreamOf(upstreams[i]);
    if (upstream != nullptr && upstream->options.mode == cb::StickyMode::kInsert) {
      inserts_cookies = true;
    }
    if (upstream != nullptr && !upstream->initialized) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                    "cluster_balance: upstream \"%V\": another balancing method (hash, "
                    "ip_hash, least_conn, random) follows cluster_balance; use one of them",
                    &upstreams[i]->host);
      return NGX_ERROR;
    }
  }
  // Every response of the server passes a header filter: only when it is needed.
  if (inserts_cookies) {
    next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = HeaderFilter;
  }
  return NGX_OK;
}

// ---------------------------------------------------------------------------------
// Directives

std::vector<std::string_view> Arguments(ngx_conf_t* cf) {
  auto* values = static_cast<ngx_str_t*>(cf->args->elts);
  std::vector<std::string_view> words;
  for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) words.push_back(View(values[i]));
  return words;
}

char* Refuse(ngx_conf_t* cf, std::string_view message) {
  ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%*s", message.size(), message.data());
  return static_cast<char*>(NGX_CONF_ERROR);
}

ngx_int_t InitUpstream(ngx_conf_t* cf, ngx_http_upstream_srv_conf_t* uscf) noexcept;

char* BalanceDirective(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
  try {
    auto* own = static_cast<SrvConf*>(conf);
    if (own->upstream != nullptr) return const_cast<char*>("is duplicate");
    auto* uscf = static_cast<ngx_http_upstream_srv_conf_t*>(
        ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module));
    if (uscf->peer.init_upstream != nullptr) {
      return Refuse(cf,
                    "\"cluster_balance\" must come before \"keepalive\" and any other balancing "
                    "method (hash, ip_hash, least_conn, random) in the upstream block; it "
                    "replaces them");
    }
    auto upstream = std::make_unique<Upstream>();
    std::vector<std::string_view> words = Arguments(cf);
    // A relative view path is taken relative to nginx's prefix, as nginx's own paths.
    ngx_str_t view_path = static_cast<ngx_str_t*>(cf->args->elts)[1];
    if (ngx_conf_full_name(cf->cycle, &view_path, 0) != NGX_OK) {
      return static_cast<char*>(NGX_CONF_ERROR);
    }
    words[0] = View(view_path);
    if (cb::Status parsed = cb::ParseBalancerWords(words, upstream->options); !parsed.ok()) {
      return Refuse(cf, "cluster_balance: " + parsed.message());
    }
    upstream->name = std::string(View(uscf->host));
    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(cf->pool, 0);
    if (cleanup == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    cleanup->handler = DeleteUpstream;
    cleanup->data = upstream.get();
    own->upstream = upstream.release();
    // The cluster chooses backups: no "backup" server lines; max_conns is not kept.
    uscf->flags = NGX_HTTP_UPSTREAM_CREATE | NGX_HTTP_UPSTREAM_WEIGHT |
                  NGX_HTTP_UPSTREAM_MAX_FAILS | NGX_HTTP_UPSTREAM_FAIL_TIMEOUT |
                  NGX_HTTP_UPSTREAM_DOWN;
    uscf->peer.init_upstream = InitUpstream;
    return NGX_CONF_OK;
  } catch (...) {
    LogException(cf->log, "cluster_balance");
    return static_cast<char*>(NGX_CONF_ERROR);
  }
}

char* CookieDirective(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
  try {
    auto* own = static_cast<SrvConf*>(conf);
    if (own->upstream == nullptr) {
      return Refuse(cf,
                    "\"cluster_balance_cookie\" must follow \"cluster_balance ... mode=insert\"");
    }
    if (own->upstream->cookie_configured) return const_cast<char*>("is duplicate");
    const std::vector<std::string_view> words = Arguments(cf);
    cb::StickyCookie cookie;
    if (cb::Status parsed = cb::ParseStickyCookieWords(words, cookie); !parsed.ok()) {
      return Refuse(cf, "cluster_balance_cookie: " + parsed.message());
    }
    own->upstream->options.insert_cookie = std::move(cookie);
    own->upstream->cookie_configured = true;
    return NGX_CONF_OK;
  } catch (...) {
    LogException(cf->log, "cluster_balance_cookie");
    return static_cast<char*>(NGX_CONF_ERROR);
  }
}

// Each server line is one server of the cluster, in cluster order: line i is the
// server with route character i.
ngx_int_t InitUpstream(ngx_conf_t* cf, ngx_http_upstream_srv_conf_t* uscf) noexcept {
  try {
    Upstream* upstream = UpstreamOf(uscf);
    if (upstream == nullptr) return NGX_ERROR;
    const auto refuse = [&](std::string_view message) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "cluster_balance: upstream \"%V\": %*s", &uscf->host,
                    message.size(), message.data());
      return NGX_ERROR;
    };
    if (upstream->cookie_configured && upstream->options.mode != cb::StickyMode::kInsert) {
      return refuse("cluster_balance_cookie is for mode=insert only");
    }
    if (uscf->servers == nullptr || uscf->servers->nelts == 0) {
      return refuse("no server lines: list the cluster's static servers in cluster order");
    }
    auto* servers = static_cast<ngx_http_upstream_server_t*>(uscf->servers->elts);
    if (uscf->servers->nelts > static_cast<ngx_uint_t>(cb::kMaxServers)) {
      return refuse("more than 64 server lines (one per route character)");
    }
    upstream->configured.clear();
    for (ngx_uint_t i = 0; i < uscf->servers->nelts; ++i) {
      const ngx_http_upstream_server_t& server = servers[i];
      const std::string line = "server " + std::string(View(server.name)) + " (line " +
                               std::to_string(i + 1) + " of the upstream)";
      if (server.backup) {
        return refuse(line +
                      " is a backup: the cluster computes each session's backup; "
                      "list every server without \"backup\"");
      }
      if (server.max_conns != 0) {
        return refuse(line + " has max_conns, which cluster_balance does not keep; remove it");
      }
      if (server.naddrs != 1) {
        return refuse(line + " resolves to " + std::to_string(server.naddrs) +
                      " addresses; each server line must be one server of the cluster");
      }
      cb::SocketAddress address;
      std::memcpy(&address.storage, server.addrs[0].sockaddr,
                  std::min<std::size_t>(server.addrs[0].socklen, sizeof(address.storage)));
      address.length = server.addrs[0].socklen;
      address.text = std::string(View(server.addrs[0].name));
      upstream->configured.push_back(std::move(address));
    }
    if (ngx_http_upstream_init_round_robin(cf, uscf) != NGX_OK) return NGX_ERROR;
    uscf->peer.init = InitPeer;
    upstream->initialized = true;
    return NGX_OK;
  } catch (...) {
    LogException(cf->log, "cluster_balance");
    return NGX_ERROR;
  }
}

void* CreateSrvConf(ngx_conf_t* cf) noexcept {
  return ngx_pcalloc(cf->pool, sizeof(SrvConf));  // upstream = null
}

ngx_command_t kCommands[] = {
    {ngx_string("cluster_balance"), NGX_HTTP_UPS_CONF | NGX_CONF_1MORE, BalanceDirective,
     NGX_HTTP_SRV_CONF_OFFSET, 0, nullptr},
    {ngx_string("cluster_balance_cookie"), NGX_HTTP_UPS_CONF | NGX_CONF_1MORE, CookieDirective,
     NGX_HTTP_SRV_CONF_OFFSET, 0, nullptr},
    ngx_null_command,
};

ngx_http_module_t kModuleContext = {
    AddVariables,       // preconfiguration
    PostConfiguration,  // postconfiguration
    nullptr,            // create main configuration
    nullptr,            // init main configuration
    CreateSrvConf,      // create server configuration
    nullptr,            // merge server configuration
    nullptr,            // create location configuration
    nullptr,            // merge location configuration
};

}  // namespace

extern "C" {
ngx_module_t ngx_http_cluster_balance_module = {
    NGX_MODULE_V1,
    &kModuleContext,
    kCommands,
    NGX_HTTP_MODULE,
    nullptr,  // init master
    nullptr,  // init module
    nullptr,  // init process
    nullptr,  // init thread
    nullptr,  // exit thread
    nullptr,  // exit process
    nullptr,  // exit master
    NGX_MODULE_V1_PADDING,
};
}
