// A numeric "ip:port" turned into the socket address a web server connects to.
//
// The view carries every server's HTTP address as text; the modules need a
// sockaddr for the servers that have no line in their own configuration (dynamic
// servers). Only numeric addresses are accepted: a web server worker must never
// block on DNS in the middle of a request. Pure and thread-safe.
#ifndef CLUSTER_BALANCE_SHARED_SOCKET_ADDRESS_H_
#define CLUSTER_BALANCE_SHARED_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <string>
#include <string_view>

#include "shared/status.h"

namespace cb {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // "10.0.0.7:8080" or "[fd00::7]:8080", as nginx names peers

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// "1.2.3.4:80" or "[::1]:80". A host name is refused (InvalidArgument naming it).
Result<SocketAddress> ParseNumericSocketAddress(std::string_view text);

// True when both hold the same family, address and port.
bool SameSocketAddress(const sockaddr* a, socklen_t a_length, const sockaddr* b,
                       socklen_t b_length);

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_SOCKET_ADDRESS_H_
