// clusterctl's clients against a sidecar that accepts connections and never
// answers (stopped with SIGSTOP, or wedged): each gives up at its timeout with an
// error naming the address, instead of hanging.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "sidecar/clusterctl/admin_client.h"
#include "sidecar/clusterctl/cache_client.h"

namespace cb {
namespace {

// A listening socket on a free loopback port that nobody accepts from: the kernel
// completes connections into the backlog, and nothing is ever read or written.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(address.sin_port);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  ~SilentListener() {
    if (fd_ >= 0) close(fd_);
  }

  HostPort address() const { return HostPort{"127.0.0.1", port_}; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST(ClientTimeoutTest, AdminCallGivesUpAtItsTimeout) {
  SilentListener silent;
  const auto started = steady_clock::now();
  Result<AdminReply> reply = CallAdmin(silent.address(), "GET", "/status", milliseconds(200));
  const auto took = steady_clock::now() - started;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().message(),
            "admin " + silent.address().ToString() + ": no answer within 200 ms");
  EXPECT_GE(took, milliseconds(150));
  EXPECT_LT(took, milliseconds(5000));  // not the 5 s default, nor forever
}

TEST(ClientTimeoutTest, MemcacheCallGivesUpAtItsTimeout) {
  SilentListener silent;
  const auto started = steady_clock::now();
  Result<std::string> reply =
      CallMemcache(silent.address(), CacheVerb::kGet, "get session:a\r\n", milliseconds(200));
  const auto took = steady_clock::now() - started;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().message(),
            "memcached " + silent.address().ToString() + ": no answer within 200 ms");
  EXPECT_GE(took, milliseconds(150));
  EXPECT_LT(took, milliseconds(5000));
}

TEST(ClientTimeoutTest, RefusedConnectionIsAnErrorAtOnce) {
  HostPort closed;
  {
    SilentListener gone;  // a port that was free a moment ago and is closed now
    closed = gone.address();
  }
  Result<std::string> reply =
      CallMemcache(closed, CacheVerb::kGet, "get session:a\r\n", milliseconds(5000));
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().message().find("is the sidecar running?"), std::string::npos)
      << reply.status().message();
}

}  // namespace
}  // namespace cb
