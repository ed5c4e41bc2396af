// The routing decision per request: cookie parse + view read + choice over 64
// servers, beside the anchor, a consistent-hash lookup the way nginx's
// `hash $cookie_JSESSIONID consistent` does it (CRC32 of the cookie value, binary
// search over 160 points per server). Run through bench/run-route-bench, which
// interleaves the cases and reports medians and the ratio.
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/view_file.h"

namespace {

constexpr int kServers = 64;
constexpr int kHeaders = 1024;  // distinct requests, cycled, so no branch is learned by heart
constexpr int64_t kNowUnixMs = 1'700'000'000'000;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Cookie headers as browsers send them: a few other cookies around the session's.
std::vector<std::string> MakeCookieHeaders(bool with_session) {
  std::vector<std::string> headers;
  uint64_t state = 7;
  for (int i = 0; i < kHeaders; ++i) {
    std::string session(1, cb::RouteCharForIndex(static_cast<int>(SplitMix64(state) % kServers)));
    for (int c = 0; c < 31; ++c) {
      session += cb::kRouteAlphabet[SplitMix64(state) % cb::kRouteAlphabet.size()];
    }
    std::string header = "_ga=GA1.2.1234567890.1700000000; lang=en-US; ";
    if (with_session) header += "JSESSIONID=" + session + "; ";
    header += "theme=dark";
    headers.push_back(std::move(header));
  }
  return headers;
}

// A view file of 64 servers published by a real ViewWriter, read by a real
// ViewReader: the module's per-request path.
class ViewFixture {
 public:
  // Every `down_every`-th server is down (0: none); with `warming`, server 5 came up
  // 30 s ago and ramps up over the 60 s slow start.
  ViewFixture(int down_every, bool warming) {
    char directory[] = "/tmp/cluster-balance-bench-XXXXXX";
    if (mkdtemp(directory) == nullptr) std::abort();
    directory_ = directory;
    path_ = directory_ + "/view";
    cb::ClusterView view;
    (void)view.SetClusterName("bench");
    view.generation = 1;
    view.slow_start_ms = 60'000;
    for (int i = 0; i < kServers; ++i) {
      cb::ViewServer& server = view.server(i);
      server.index = static_cast<uint8_t>(i);
      const bool down = down_every > 0 && i % down_every == 0;
      server.state = static_cast<uint8_t>(down ? cb::ServerState::kDown : cb::ServerState::kUp);
      server.weight = 100;
      if (warming && i == 5) server.up_since_unix_ms = kNowUnixMs - 30'000;
      (void)server.SetId("app-" + std::to_string(i));
      (void)server.SetHttpAddress("10.0.0." + std::to_string(i) + ":8080");
    }
    auto writer = cb::ViewWriter::Open(path_);
    if (!writer.ok() || !(*writer)->Publish(view).ok()) std::abort();
    writer_ = std::move(writer).value();
    auto reader = cb::ViewReader::Open(path_);
    if (!reader.ok()) std::abort();
    reader_ = std::move(reader).value();
  }
  ~ViewFixture() {
    reader_.reset();
    writer_.reset();
    std::remove(path_.c_str());
    rmdir(directory_.c_str());
  }
  cb::ViewReader& reader() { return *reader_; }

 private:
  std::string directory_;
  std::string path_;
  std::unique_ptr<cb::ViewWriter> writer_;
  std::unique_ptr<cb::ViewReader> reader_;
};

void RunClusterBalance(benchmark::State& state, bool with_session, int down_every,
                       bool warming = false) {
  ViewFixture fixture(down_every, warming);
  const std::vector<std::string> headers = MakeCookieHeaders(with_session);
  uint64_t random_state = 11;
  std::size_t next = 0;
  // As a module worker keeps them: the table of the last view it saw.
  uint64_t table_view_id = 0;
  cb::RoutingTable table;
  for (auto _ : state) {
    const std::string& header = headers[next++ % headers.size()];
    cb::RouteRequest request;
    request.session_id = cb::SessionIdFromCookieHeader(header, cb::kDefaultSessionCookie);
    request.now_unix_ms = kNowUnixMs;
    request.random = SplitMix64(random_state);
    const cb::ClusterView* view = fixture.reader().Current().value();
    if (fixture.reader().snapshot_id() != table_view_id) {
      table = cb::RoutingTable(*view);
      table_view_id = fixture.reader().snapshot_id();
    }
    benchmark::DoNotOptimize(table.Choose(request));
  }
}

// Route mode, the session's server is up: the common case.
void BM_ClusterBalance_Sticky(benchmark::State& state) { RunClusterBalance(state, true, 0); }
// Every fourth server down: a quarter of sessions go to their rendezvous backup.
void BM_ClusterBalance_QuarterDown(benchmark::State& state) { RunClusterBalance(state, true, 4); }
// No session cookie: weighted choice among 64 up servers.
void BM_ClusterBalance_NewSession(benchmark::State& state) { RunClusterBalance(state, false, 0); }
// No session cookie while one server warms up: every weight is ramped per request.
void BM_ClusterBalance_NewSessionSlowStart(benchmark::State& state) {
  RunClusterBalance(state, false, 0, true);
}

// The anchor: nginx's consistent hash, rebuilt here for comparison (160 points per
// server keyed by CRC32 of "<server>\0<previous hash>" in nginx; any even spread of
// points costs the same to search).
class ConsistentHashRing {
 public:
  ConsistentHashRing() {
    for (uint32_t server = 0; server < kServers; ++server) {
      const std::string name = "10.0.0." + std::to_string(server) + ":8080";
      uLong hash =
          crc32(0L, reinterpret_cast<const Bytef*>(name.data()), static_cast<uInt>(name.size()));
      for (int point = 0; point < 160; ++point) {
        const uint32_t previous = static_cast<uint32_t>(hash);
        hash = crc32(hash, reinterpret_cast<const Bytef*>(&previous), sizeof(previous));
        points_.push_back({static_cast<uint32_t>(hash), server});
      }
    }
    std::sort(points_.begin(), points_.end());
  }
  uint32_t Find(std::string_view key) const {
    const uint32_t hash = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(key.data()), static_cast<uInt>(key.size())));
    auto it = std::lower_bound(points_.begin(), points_.end(), std::pair{hash, uint32_t{0}});
    if (it == points_.end()) it = points_.begin();
    return it->second;
  }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> points_;
};

// $cookie_JSESSIONID as nginx finds it: the first "JSESSIONID=" at a name boundary.
std::string_view NginxStyleCookie(std::string_view header, std::string_view name) {
  for (std::size_t at = header.find(name); at != std::string_view::npos;
       at = header.find(name, at + 1)) {
    if (at > 0 && header[at - 1] != ' ' && header[at - 1] != ';') continue;
    if (at + name.size() >= header.size() || header[at + name.size()] != '=') continue;
    const std::size_t start = at + name.size() + 1;
    const std::size_t end = header.find(';', start);
    return header.substr(start, end == std::string_view::npos ? end : end - start);
  }
  return {};
}

void BM_Anchor_NginxConsistentHash(benchmark::State& state) {
  const ConsistentHashRing ring;
  const std::vector<std::string> headers = MakeCookieHeaders(true);
  std::size_t next = 0;
  for (auto _ : state) {
    const std::string& header = headers[next++ % headers.size()];
    benchmark::DoNotOptimize(ring.Find(NginxStyleCookie(header, "JSESSIONID")));
  }
}

BENCHMARK(BM_ClusterBalance_Sticky);
BENCHMARK(BM_ClusterBalance_QuarterDown);
BENCHMARK(BM_ClusterBalance_NewSession);
BENCHMARK(BM_ClusterBalance_NewSessionSlowStart);
BENCHMARK(BM_Anchor_NginxConsistentHash);

}  // namespace

BENCHMARK_MAIN();
